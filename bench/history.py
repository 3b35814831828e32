"""A long history: what one publish writes, and the first rebuild of thousands of pages.

Run from the repository root::

    python -m bench.history                  # 5,000 editions
    python -m bench.history --editions 2000 --repeat 3

Builds a real SQLite ledger of ``--editions`` done editions (generated case studies, their
snapshots, companies and links stored through the ledger port, as the pipeline stores them),
then runs ``publish`` in fresh processes (the shipped config's ``feed`` and ``archive``
channels, the sample corpus as the queue) and prints, each against a baseline measured in
the same run:

- **one publish** at ``--editions`` with every page already on disk: time, files and bytes
  written (``public/`` compared before/after: new files and files whose mtime changed);
  baseline: the same publish on a ledger with one edition; also the edition views it built
  (``ViewBuilder.view`` and ``_light`` calls: the figure the machine's load cannot blur);
- **the first rebuild**: one publish with every archive page missing (a new public folder):
  time, peak RSS of the process (``ru_maxrss``), files written; baseline for the RSS: a
  publish on a ledger with one edition.

The relatedness index of the sample corpus is warm in every measured publish (fitting it is
the corpus's cost, measured by ``bench.render`` and ``bench.coldstart``), and the archive
channel gets a long ``deadline`` so that a slow machine measures the whole rebuild.

Each publish runs in its own ``python`` process so that its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python bench/history.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
SEED_CORPUS = REPO / "syndicate" / "examples" / "corpus"

# One publish, measured inside a fresh process: seconds and the process's peak RSS.
# Views built: every call of ViewBuilder.view (full) and ._light (light), counted by a wrapper
# (a figure free of the machine's noise; an older checkout has both methods too).
_CHILD = r"""
import json, resource, sys, time
from syndicate.app import load_config
from syndicate.pipeline import publish
from syndicate.views import ViewBuilder
built = [0]
def counted(method):
    def count(self, *args, **kwargs):
        built[0] += 1
        return method(self, *args, **kwargs)
    return count
ViewBuilder.view, ViewBuilder._light = counted(ViewBuilder.view), counted(ViewBuilder._light)
config = load_config(sys.argv[1])
t0 = time.perf_counter()
result = publish(config)
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "views": built[0], "summary": result.summary()}))
"""


@dataclass(frozen=True)
class Run:
    seconds: float
    rss_mib: float
    files: int
    bytes: int
    biggest: tuple[tuple[str, int], ...]
    views: int = 0  # edition views built (light or full)


def _config(folder: Path, database: Path) -> Path:
    """The shipped config with its own ledger, public folder and the sample corpus; feed and
    archive channels only (no email: this measures the history, not the fan-out)."""
    text = (REPO / "config" / "syndicate.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "corpus"
    if not corpus.exists():
        shutil.copytree(SEED_CORPUS, corpus)
    site = data["site"]
    lines = ["[site]"] + [f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in site.items()]
    lines += ["[storage]", f"database = {json.dumps(str(database))}",
              f"corpus = {json.dumps(str(corpus))}",
              f"public = {json.dumps(str(folder / 'public'))}",
              # A long deadline: the rebuild is measured whole, even on a busy machine.
              "[[channels]]", 'type = "feed"', "[[channels]]", 'type = "archive"',
              'deadline = "1h"']
    path = folder / "syndicate.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def build_ledger(database: Path, count: int, corpus: Path | None = None) -> float:
    """``count`` done editions, one a day ending yesterday, with what the pipeline keeps of
    each (snapshot, companies, links); returns the seconds it took. With ``corpus``, each case
    study is also written there as a file and snapshotted as read back from it, as a publish
    does (its snapshot then keeps the file's digest)."""
    from bench._corpus import generate_corpus
    from syndicate.corpus import dumps, load_file
    from syndicate.ledger import open_ledger
    from syndicate.render.urls import edition_url
    from syndicate.snapshots import snapshot_artefacts
    from syndicate.views import LINKS_ARTEFACT, Links

    started = time.perf_counter()
    cases = generate_corpus(count, seed=1)
    first = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0) - timedelta(
        days=count + 1)
    if corpus is not None:
        corpus.mkdir(parents=True, exist_ok=True)
        written = []
        for case in cases:
            path = corpus / f"{case.slug}.md"
            path.write_text(dumps(case), encoding="utf-8")
            written.append(load_file(path))
        cases = written
    with open_ledger(database) as ledger:
        for i, case in enumerate(cases):
            edition = ledger.claim_edition(
                slot=f"bench:{i}", slug=case.slug, title=case.title,
                url=edition_url("http://127.0.0.1:8080/", case.slug),
                published_at=first + timedelta(days=i))
            related = tuple(c.slug for c in cases[max(0, i - 3):i])
            links = Links(related, tuple((c, ()) for c in case.companies))
            ledger.store_artefacts(edition.id, {**snapshot_artefacts(case),
                                                LINKS_ARTEFACT: links.to_json()})
            ledger.set_edition_status(edition.id, "done")
    return time.perf_counter() - started


_BUILD = r"""
import json, sys
from pathlib import Path
from bench.history import build_ledger
corpus = Path(sys.argv[3]) if len(sys.argv) > 3 else None
print(json.dumps(build_ledger(Path(sys.argv[1]), int(sys.argv[2]), corpus)))
"""


def build_ledger_apart(database: Path, count: int, corpus: Path | None = None) -> float:
    """:func:`build_ledger` in a child process. This one stays small: the publishes measured
    are its children, and a child's peak RSS counts the memory of the process it was forked
    from (generating and storing 5,000 case studies here would be counted in every one)."""
    command = [sys.executable, "-c", _BUILD, str(database), str(count)]
    if corpus is not None:
        command.append(str(corpus))
    done = subprocess.run(command, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                          check=True, capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


def _files(public: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(public)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in public.rglob("*") if p.is_file()}


def publish_once(config: Path, public: Path, repo: Path) -> Run:
    before = _files(public) if public.exists() else {}
    env = {**os.environ, "PYTHONPATH": str(repo)}
    env.pop("TERM", None)
    done = subprocess.run([sys.executable, "-c", _CHILD, str(config)], env=env, cwd=repo,
                          capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise SystemExit(f"publish failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    after = _files(public)
    written = {path: size for path, (mtime, size) in after.items() if before.get(path,
               (None, None))[0] != mtime}
    biggest = tuple(sorted(written.items(), key=lambda item: -item[1])[:4])
    print(f"  publish: {figures['seconds']:.2f} s, {figures['rss_kib'] / 1024:.0f} MiB, "
          f"{len(written)} files, {sum(written.values()):,} bytes, "
          f"{figures['views']} views built", file=sys.stderr)
    return Run(figures["seconds"], figures["rss_kib"] / 1024, len(written),
               sum(written.values()), biggest, figures["views"])


def _size(count: int) -> str:
    return f"{count / 1e6:.2f} MB" if count >= 1e6 else f"{count / 1e3:.1f} kB"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--editions", type=int, default=5000, help="editions in the ledger")
    parser.add_argument("--repeat", type=int, default=3,
                        help="publishes measured at each history size (median kept)")
    parser.add_argument("--repo", type=Path, default=REPO,
                        help="checkout whose syndicate package is measured (e.g. a git "
                        "worktree of an older commit, for before/after figures)")
    args = parser.parse_args(argv)
    repeat = max(1, min(args.repeat, 4))  # the sample corpus has 10 case studies to publish
    with tempfile.TemporaryDirectory(prefix="syndicate-bench-history-") as workdir:
        work = Path(workdir)
        small = _config(work / "small", work / "small" / "syndicate.db")
        publish_once(small, work / "small" / "public", args.repo)  # edition 1: writes all
        base = [publish_once(small, work / "small" / "public", args.repo)
                for _ in range(repeat)]

        database = work / "big" / "syndicate.db"
        database.parent.mkdir(parents=True)
        built = build_ledger_apart(database, args.editions)
        print(f"built a ledger of {args.editions} editions in {built:.1f} s "
              f"({database.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
        big = _config(work / "big", database)
        # The same sample corpus: its relatedness index, fitted by the small site's first
        # publish, is warm here too; these figures are the history's, not a first fit's.
        shutil.copytree(work / "small" / "cache", work / "big" / "cache")
        rebuild = publish_once(big, work / "big" / "public", args.repo)
        runs = [publish_once(big, work / "big" / "public", args.repo) for _ in range(repeat)]

    def median(runs: Sequence[Run], field: str) -> float:
        return statistics.median(float(getattr(r, field)) for r in runs)

    n = args.editions
    rows = [("measure", "figure", "baseline (1 edition)", "ratio")]
    for label, field, unit in (("one publish: time", "seconds", "s"),
                               ("one publish: files written", "files", ""),
                               ("one publish: bytes written", "bytes", "B"),
                               ("one publish: peak RSS", "rss_mib", "MiB"),
                               ("one publish: views built", "views", "")):
        got, ref = median(runs, field), median(base, field)
        show = (lambda v: _size(int(v))) if unit == "B" else (
            (lambda v: f"{v:.2f} s") if unit == "s" else (
                (lambda v: f"{v:.0f} MiB") if unit == "MiB" else (lambda v: f"{v:.0f}")))
        rows.append((f"{label} at {n:,} editions", show(got), show(ref),
                     f"{got / ref:.2f}×" if ref else "-"))
    ref_rss = median(base, "rss_mib")
    rows.append((f"first rebuild ({n:,} pages missing): time", f"{rebuild.seconds:.2f} s",
                 f"{median(base, 'seconds'):.2f} s",
                 f"{rebuild.seconds / median(base, 'seconds'):.1f}×"))
    rows.append(("first rebuild: peak RSS", f"{rebuild.rss_mib:.0f} MiB", f"{ref_rss:.0f} MiB",
                 f"{rebuild.rss_mib / ref_rss:.2f}×"))
    rows.append(("first rebuild: files written", f"{rebuild.files:,}",
                 f"{median(base, 'files'):.0f}", ""))
    rows.append(("first rebuild: bytes written", _size(rebuild.bytes), "", ""))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for number, row in enumerate(rows):
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(row, widths, strict=True))))
        if number == 0:
            print("  ".join("-" * w for w in widths))
    print("\nbiggest files of one publish at "
          f"{n:,} editions: " + ", ".join(f"{p} {_size(s)}" for p, s in runs[-1].biggest))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
