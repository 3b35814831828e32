"""The README's module table ("How it works") matches the package tree, like the config docs.

Every path the table names exists, and every top-level module and package of ``syndicate/``
is named, so a module added, moved or turned into a package makes this test fail until the
table says so.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "syndicate"
HEADER = "| stage | module | what it does |"


def table_paths() -> list[str]:
    """The paths in the table's module column, ``syndicate/``-relative names completed."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index(HEADER)
    rows = readme[start:].split("\n\n", 1)[0].splitlines()[2:]  # header and |---| rule
    paths = []
    for row in rows:
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        assert len(cells) == 3, f"README module table: a row without 3 cells: {row!r}"
        for name in re.findall(r"`([^`]+)`", cells[1]):
            paths.append(name if name.startswith("syndicate/") else f"syndicate/{name}")
    return paths


def top_level_modules() -> set[str]:
    """``syndicate/x.py`` and ``syndicate/pkg/`` for every public top-level module/package."""
    found = set()
    for path in PACKAGE.iterdir():
        if path.name.startswith("_"):
            continue  # __init__, __main__, private modules
        if path.suffix == ".py":
            found.add(f"syndicate/{path.name}")
        elif path.is_dir() and (path / "__init__.py").exists():
            found.add(f"syndicate/{path.name}/")
    return found


def exists(name: str) -> bool:
    path = ROOT / name
    return path.is_dir() if name.endswith("/") else path.is_file()


def test_every_path_in_the_module_table_exists() -> None:
    paths = table_paths()
    assert len(paths) == len(set(paths)), "a module named twice in the README table"
    missing = [name for name in paths if not exists(name)]
    assert not missing, f"README module table names paths that do not exist: {missing}"


def test_every_top_level_module_is_in_the_module_table() -> None:
    absent = sorted(top_level_modules() - set(table_paths()))
    assert not absent, f"add to the README module table ('How it works'): {absent}"

