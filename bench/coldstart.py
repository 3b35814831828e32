"""Cold start and the shape of the imports: what a command pays before it does anything.

    python -m bench.coldstart                 # this checkout
    python -m bench.coldstart --repo ../old   # another checkout (e.g. a git worktree of an
                                              # older commit), for before/after figures

Prints, for the checkout:

- import cycles: the strongly connected groups of ``syndicate``'s module graph (grimp,
  installed with import-linter); 0 is the target (``lint-imports`` enforces it);
- function-local imports (each should be a deliberate lazy load of a heavy library);
- ``python -X importtime -c "import syndicate.cli"`` and ``"import syndicate.config"``:
  cumulative milliseconds, median of ``--repeat`` fresh processes;
- whole-process time of ``syndicate publish-next`` on the sample corpus with a fresh
  ledger (feed, archive and outbox channels, the shipped config), median of ``--repeat``,
  against ``syndicate --help`` measured in the same run (the baseline: interpreter, click
  and the package's own import).
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_CYCLES = r"""
import sys
import grimp

sys.setrecursionlimit(10000)
graph = grimp.build_graph("syndicate", cache_dir=None)
index, low, stack, on_stack, groups = {}, {}, [], set(), []

def visit(module, counter=[0]):
    index[module] = low[module] = counter[0]
    counter[0] += 1
    stack.append(module)
    on_stack.add(module)
    for imported in graph.find_modules_directly_imported_by(module):
        if imported not in index:
            visit(imported)
            low[module] = min(low[module], low[imported])
        elif imported in on_stack:
            low[module] = min(low[module], index[imported])
    if low[module] == index[module]:
        group = []
        while True:
            member = stack.pop()
            on_stack.discard(member)
            group.append(member)
            if member == module:
                break
        if len(group) > 1:
            groups.append(len(group))

for module in sorted(graph.modules):
    if module not in index:
        visit(module)
print(groups)
"""


def _env(repo: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(repo)}


def cycles(repo: Path) -> str:
    result = subprocess.run([sys.executable, "-c", _CYCLES], env=_env(repo), cwd=repo,
                            capture_output=True, text=True, timeout=300)
    return result.stdout.strip() or f"(grimp failed: {result.stderr.strip()[-200:]})"


def local_imports(repo: Path) -> int:
    count = 0
    for path in (repo / "syndicate").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                count += sum(isinstance(sub, (ast.Import, ast.ImportFrom))
                             for sub in ast.walk(node))
    return count


def import_ms(repo: Path, module: str, repeat: int) -> float:
    values = []
    for _ in range(repeat):
        result = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                                env=_env(repo), cwd=tempfile.gettempdir(),
                                capture_output=True, text=True, timeout=120)
        lines = [line for line in result.stderr.splitlines()
                 if line.rstrip().endswith(f"| {module}")]
        values.append(int(lines[-1].split("|")[1]) / 1000)
    return statistics.median(values)


def _sample_site(repo: Path, folder: Path) -> Path:
    """A copy of the repo's shipped config and sample corpus (either layout)."""
    shutil.copytree(repo / "config", folder / "config")
    corpus = repo / "syndicate" / "examples" / "corpus"
    if not corpus.is_dir():
        corpus = repo / "corpus"
    shutil.copytree(corpus, folder / "corpus")
    if (repo / "templates").is_dir():
        shutil.copytree(repo / "templates", folder / "templates")
    config = folder / "config" / "syndicate.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('"../syndicate/examples/corpus"', '"../corpus"'),
                      encoding="utf-8")
    return config


def process_ms(repo: Path, repeat: int) -> tuple[float, float]:
    publish, helps = [], []
    for _ in range(repeat):
        folder = Path(tempfile.mkdtemp(prefix="syndicate-coldstart-"))
        try:
            config = _sample_site(repo, folder)
            command = [sys.executable, "-m", "syndicate", "--config", str(config)]
            started = time.perf_counter()
            result = subprocess.run([*command, "publish-next"], env=_env(repo), cwd=folder,
                                    capture_output=True, text=True, timeout=300)
            publish.append((time.perf_counter() - started) * 1000)
            if result.returncode != 0:
                raise SystemExit(f"publish-next failed: {result.stderr.strip()[-300:]}")
            started = time.perf_counter()
            subprocess.run([*command, "--help"], env=_env(repo), cwd=folder,
                           capture_output=True, timeout=120)
            helps.append((time.perf_counter() - started) * 1000)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return statistics.median(publish), statistics.median(helps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=REPO, help="checkout to measure")
    parser.add_argument("--repeat", type=int, default=5, help="processes per figure (median)")
    args = parser.parse_args()
    repo = args.repo.resolve()
    print(f"checkout: {repo}")
    print(f"  import cycles (sizes of strongly connected groups): {cycles(repo)}")
    print(f"  function-local imports: {local_imports(repo)}")
    for module in ("syndicate.cli", "syndicate.config"):
        print(f"  import {module}: {import_ms(repo, module, args.repeat):.0f} ms "
              f"(cumulative, median of {args.repeat})")
    publish, helps = process_ms(repo, args.repeat)
    print(f"  publish-next, sample corpus, fresh ledger: {publish:.0f} ms; "
          f"--help {helps:.0f} ms; ratio {publish / helps:.2f}x (median of {args.repeat})")


if __name__ == "__main__":
    main()
