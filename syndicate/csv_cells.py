"""CSV cells that a spreadsheet will not run as formulas (OWASP "CSV injection").

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
read by Excel, LibreOffice and Google Sheets as a formula, and subscriber names
(and, rarely, addresses such as ``=x@example.org``) come from the public
subscribe form. OWASP's advice is to prefix such a cell with a single quote,
which spreadsheets show as text. We do that on export and undo it on import, so
``subscribers import`` of an export gives back the original values exactly.

To keep the mapping reversible, a value that already starts with quotes
followed by one of those characters (``'=x``) gets one more quote; :func:`restore`
removes exactly one. ``defusedcsv`` was considered: it also rewrites ``|`` inside
the cell and ignores tab and CR, so its output cannot be read back to the
original value.
"""

from __future__ import annotations

#: First characters that make a spreadsheet evaluate the cell (OWASP's list).
FORMULA_STARTS = frozenset("=+-@\t\r")


def _risky(value: str) -> bool:
    """``value`` is a formula once any leading quotes (ours) are removed."""
    return value.lstrip("'")[:1] in FORMULA_STARTS


def neutralize(value: str) -> str:
    """The cell to write for ``value``: prefixed with ``'`` when it would run as a formula."""
    return "'" + value if value and _risky(value) else value


def restore(cell: str) -> str:
    """The original value of a cell written by :func:`neutralize` (other cells unchanged)."""
    return cell[1:] if cell.startswith("'") and _risky(cell[1:]) else cell


__all__ = ["FORMULA_STARTS", "neutralize", "restore"]
