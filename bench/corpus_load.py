"""Loading the corpus through its index, in this process: what every command pays first.

    python -m bench.corpus_load                      # 10,000 generated case studies
    python -m bench.corpus_load --n 2000 --repeat 9
    python -m bench.corpus_load --repo /tmp/old      # another checkout's syndicate (a git
                                                     # worktree of an older commit): before/after

Generates a corpus (:func:`bench.scale.write_corpus`, in a temporary folder), fills the corpus
index once (not counted), then prints for each figure the least CPU time (``process_time``:
on a shared machine, wall time follows the other processes) over ``--repeat`` runs and its
ratio to the *floor* measured in the same run: listing the folder and ``stat``-ing every
file, which validating an index cannot avoid (each file's size and mtime are checked).

- ``load``: :func:`syndicate.corpus.load` with a warm index;
- ``load + queue``: and the queue with the fields the ``queue`` command prints
  (``queue_values`` where the checkout has it, else read from ``queue``'s records);
- ``load + file digests``: each case study's slug and file digest (what ``status`` checks
  drift by: ``Corpus.values`` where it has that column, else the records);
- ``load + listing``: and the figures ``corpus list`` prints (``Corpus.values`` where the
  checkout has it, else read from the records);
- ``load + JSON listing``: and ``corpus list --json``'s text (kept beside the index by
  ``Corpus.kept`` where the checkout has it, else made);
- ``check``: :func:`syndicate.corpus.check` with a warm index;
- ``load after one edit``: a sentence appended to one file (another one each run);
- ``load after a file added``: a new file (the folder changed: listed again);
- ``load, no index``: every file parsed (once).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/corpus_load.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scale import REPO, edit, write_corpus

_LISTED = ("position", "slug", "title", "section_count", "words", "companies", "themes",
           "status")


def least(repeat: int, work: Callable[[], object], before: Callable[[], None] | None = None
          ) -> float:
    """The least CPU time of ``work`` over ``repeat`` runs (``before`` each, not counted)."""
    best = float("inf")
    for _ in range(repeat):
        if before is not None:
            before()
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def floor(directory: Path) -> None:
    """List the folder and stat every corpus file by name: the least a validation does."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        for name in os.listdir(fd):
            if name.endswith(".md") and not name.startswith("."):
                os.stat(name, dir_fd=fd)
    finally:
        os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout to measure")
    parser.add_argument("--n", type=int, default=10_000, help="case studies to generate")
    parser.add_argument("--repeat", type=int, default=7, help="runs per figure (least)")
    args = parser.parse_args()
    repo = args.repo.resolve()
    sys.path.insert(0, str(repo))
    for name in [name for name in sys.modules if name.split(".")[0] == "syndicate"]:
        del sys.modules[name]  # bench.scale's import chain may have brought this checkout's
    from syndicate import corpus

    assert Path(corpus.__file__).resolve().is_relative_to(repo), corpus.__file__

    with tempfile.TemporaryDirectory(prefix="syndicate-corpus-load-") as tmp:
        folder, cache = Path(tmp) / "corpus", Path(tmp) / "cache"
        paths = write_corpus(folder, args.n)
        cache.mkdir()
        started = time.process_time()
        corpus.load(folder, cache_dir=cache)  # fills the index
        first = time.process_time() - started
        print(f"checkout: {repo}\n{len(paths)} case studies; least CPU time of {args.repeat} "
              f"runs; ratio to the floor (listing + stat of every file) of the same run")

        def queued() -> list[tuple[Any, ...]]:
            loaded = corpus.load(folder, cache_dir=cache)
            if hasattr(corpus, "queue_values"):
                return list(corpus.queue_values(loaded, (), "position", "slug", "title"))
            return [(case.position, case.slug, case.title)
                    for case in corpus.queue(loaded, ())]

        def digests() -> list[tuple[Any, ...]]:
            loaded: Any = corpus.load(folder, cache_dir=cache)
            return list(loaded.values("slug", "file_digest"))

        from syndicate.cli.corpus import _json_listing

        def listed_json() -> str:
            loaded: Any = corpus.load(folder, cache_dir=cache)
            if not hasattr(loaded, "kept"):
                return _json_listing(loaded.values(*_LISTED))
            return str(loaded.kept("list.json", b"bench", lambda: _json_listing(
                loaded.values(*_LISTED)).encode()).decode())

        def listing() -> list[tuple[Any, ...]]:
            loaded: Any = corpus.load(folder, cache_dir=cache)
            if hasattr(loaded, "values"):
                return list(loaded.values(*_LISTED))
            return [tuple(getattr(case, name) for name in _LISTED) for case in loaded]

        edits = iter(range(len(paths) * args.repeat))

        def edited() -> None:
            number = next(edits)
            edit(paths[number % len(paths)], number)

        added = iter(range(args.repeat * 2))

        def add() -> None:  # a copy of the first case study, another slug and position
            number = next(added)
            text = re.sub(r"^slug: (.*)$", rf"slug: ajout-{number}-\1",
                          paths[0].read_text(encoding="utf-8"), count=1, flags=re.M)
            text = re.sub(r"^position: .*$", f"position: {10 ** 7 + number}", text, count=1,
                          flags=re.M)
            (folder / f"ajout-{number}.md").write_text(text, encoding="utf-8")

        figures = [
            ("floor: list + stat every file", least(args.repeat, lambda: floor(folder))),
            ("load", least(args.repeat, lambda: corpus.load(folder, cache_dir=cache))),
            ("load + queue (fields printed)", least(args.repeat, queued)),
            ("load + file digests (status)", least(args.repeat, digests)),
            ("load + listing (corpus list)", least(args.repeat, listing)),
            ("load + JSON listing (--json)", least(args.repeat, listed_json)),
            ("check", least(args.repeat, lambda: corpus.check(folder, cache_dir=cache))),
            ("load after one edit", least(args.repeat,
                                          lambda: corpus.load(folder, cache_dir=cache),
                                          before=edited)),
            ("load after a file added", least(args.repeat,
                                              lambda: corpus.load(folder, cache_dir=cache),
                                              before=add)),
            ("load, no index (every file parsed)", least(1, lambda: corpus.load(folder))),
            ("load, index built (not counted above)", first),
        ]
        base = figures[0][1]
        width = max(len(label) for label, _seconds in figures)
        print(f"{'':{width}}  {'CPU ms':>8}  {'x floor':>8}")
        for label, seconds in figures:
            print(f"{label:{width}}  {seconds * 1000:8.1f}  {seconds / base:8.2f}")


if __name__ == "__main__":
    main()
