"""Every operator command on a large corpus: whole-process time and peak memory.

    python -m bench.scale                    # 10,000 case studies, this checkout
    python -m bench.scale --repo /tmp/old    # another checkout (a git worktree of an older
                                             # commit), for before/after figures
    python -m bench.scale --n 2000 --repeat 5

Builds, in a temporary folder, a site with the shipped config (feed, archive and outbox
channels: nothing leaves the machine) and a corpus of ``--n`` case studies generated from the
sample corpus (:mod:`bench._corpus`: varied text, companies and themes, as Markdown files), then
runs each command as a fresh ``python -m syndicate`` process with the checkout on
``PYTHONPATH`` and prints its median wall time over ``--repeat`` runs, its ratio to
``syndicate --help`` measured in the same run, and its peak RSS (``os.wait4``'s rusage of
that very child):

- ``queue``, ``status``, ``schedule --count 50``, ``corpus check``, ``corpus list --json``;
- ``publish-next`` with warm caches (one publish-next first fills them, not counted);
- ``publish-next`` after editing one corpus file (a sentence appended to a case study still
  in the queue, a different one each run): what one edit costs the next edition;
- cold ``publish-next`` on the 10 seed case studies, fresh site and ledger.

Every run of ``queue`` etc. reads warm caches: the first, not counted, may write them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python bench/scale.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._corpus import generate_corpus
from syndicate.corpus import dumps

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mib: float


def run(repo: Path, config: Path, args: Sequence[str], cwd: Path) -> Run:
    """One fresh process: wall time and its own peak RSS (``wait4``'s rusage)."""
    env = {**os.environ, "PYTHONPATH": str(repo)}
    command = [sys.executable, "-m", "syndicate", "--config", str(config), *args]
    started = time.perf_counter()
    with open(os.devnull, "wb") as devnull, tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=devnull, stderr=errors)
        _pid, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise SystemExit(f"{' '.join(args)} exited {process.returncode}: "
                             f"{errors.read().decode(errors='replace')[-500:]}")
    return Run(elapsed, usage.ru_maxrss / 1024)  # ru_maxrss is in KiB on Linux


def site(repo: Path, folder: Path) -> Path:
    """The shipped config and templates in ``folder``, its corpus at ``folder/corpus``."""
    shutil.copytree(repo / "config", folder / "config")
    config = folder / "config" / "syndicate.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('"../syndicate/examples/corpus"', '"../corpus"'),
                      encoding="utf-8")
    return config


def write_corpus(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for case in generate_corpus(n):
        path = folder / f"{case.slug}.md"
        path.write_text(dumps(case), encoding="utf-8")
        paths.append(path)
    return paths


def edit(path: Path, number: int) -> None:
    """Append a sentence to the last paragraph of a case study (its text changes)."""
    text = path.read_text(encoding="utf-8").rstrip("\n")
    path.write_text(f"{text} Une phrase ajoutée numéro {number}.\n", encoding="utf-8")


def median(repo: Path, config: Path, args: Sequence[str], cwd: Path, repeat: int) -> Run:
    runs = [run(repo, config, args, cwd) for _ in range(repeat)]
    return Run(statistics.median(r.seconds for r in runs), max(r.peak_mib for r in runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout to measure")
    parser.add_argument("--n", type=int, default=10_000, help="case studies to generate")
    parser.add_argument("--repeat", type=int, default=3, help="processes per figure (median)")
    args = parser.parse_args()
    repo = args.repo.resolve()
    rows: list[tuple[str, Run]] = []
    with tempfile.TemporaryDirectory(prefix="syndicate-scale-") as tmp:
        folder = Path(tmp)
        config = site(repo, folder)
        started = time.perf_counter()
        paths = write_corpus(folder / "corpus", args.n)
        print(f"checkout: {repo}\n{args.n} case studies generated in "
              f"{time.perf_counter() - started:.1f} s; median of {args.repeat} processes")
        helps = median(repo, config, ["--help"], folder, args.repeat)
        rows.append(("--help (baseline)", helps))
        # Fill the caches (ledger, relatedness index, corpus index): not counted.
        run(repo, config, ["publish-next"], folder)
        for label, command in (
            ("queue", ["queue"]),
            ("status", ["status"]),
            ("schedule --count 50", ["schedule", "--count", "50"]),
            ("corpus check", ["corpus", "check"]),
            ("corpus list --json", ["corpus", "list", "--json"]),
        ):
            run(repo, config, command, folder)  # warm-up (may write a cache)
            rows.append((label, median(repo, config, command, folder, args.repeat)))
        rows.append(("publish-next (warm caches)",
                     median(repo, config, ["publish-next"], folder, args.repeat)))
        edits = []
        for number in range(args.repeat):
            edit(paths[-1 - number], number)  # the end of the queue: never published here
            edits.append(run(repo, config, ["publish-next"], folder))
        rows.append(("edit one file, then publish-next",
                     Run(statistics.median(r.seconds for r in edits),
                         max(r.peak_mib for r in edits))))
    colds = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="syndicate-scale-cold-") as tmp:
            folder = Path(tmp)
            config = site(repo, folder)
            shutil.copytree(repo / "syndicate" / "examples" / "corpus", folder / "corpus")
            colds.append(run(repo, config, ["publish-next"], folder))
    rows.append(("cold publish-next, 10 seed case studies",
                 Run(statistics.median(r.seconds for r in colds), max(r.peak_mib for r in colds))))
    width = max(len(label) for label, _ in rows)
    print(f"{'command':<{width}}  {'seconds':>8}  {'x --help':>8}  {'peak MiB':>8}")
    for label, figure in rows:
        print(f"{label:<{width}}  {figure.seconds:8.2f}  {figure.seconds / helps.seconds:8.2f}  "
              f"{figure.peak_mib:8.0f}")


if __name__ == "__main__":
    main()
