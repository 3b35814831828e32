"""CSV cells that a spreadsheet will not run as formulas (OWASP "CSV injection"), and the
subscriber CSV as ``subscribers import`` and the console read it (:func:`read_subscriber_csv`).

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

import csv
import io
from dataclasses import dataclass

from .errors import SyndicateError

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




class CsvImportError(SyndicateError):
    """The file cannot be read as a CSV with an ``email`` column; nothing was imported."""


@dataclass(frozen=True)
class CsvRow:
    line: int  # 1-based line of the file where the record starts
    email: str
    name: str | None


def read_subscriber_csv(text: str, source: str = "<csv>") -> list[CsvRow]:
    """Parse a subscriber CSV (header row with ``email``, optional ``name``).

    Pure: raises :class:`CsvImportError` for a file that is not such a CSV.
    The delimiter is sniffed among ``,``, ``;`` and tab (spreadsheets in French
    locales export with ``;``).
    """
    if not text.strip():
        raise CsvImportError(f"{source}: empty file (expected a header row with an 'email' column)")
    first_line = text.lstrip("\ufeff").splitlines()[0]
    try:
        delimiter = csv.Sniffer().sniff(first_line, ",;\t").delimiter
    except csv.Error:
        delimiter = ","
    # Only the delimiter is sniffed: on a header without quotes the Sniffer also
    # guesses doublequote=False, which would misread a name containing '"'.
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), csv.excel,
                        delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise CsvImportError(f"{source}: not a readable CSV header ({exc})") from None
    columns = [column.strip().lower() for column in header]
    if "email" not in columns:
        shown = ", ".join(repr(c) for c in header) or "nothing"
        raise CsvImportError(
            f"{source}:1: no 'email' column in the header row (found {shown}); "
            "expected a header such as: email,name"
        )
    email_at = columns.index("email")
    name_at = columns.index("name") if "name" in columns else None
    rows: list[CsvRow] = []
    start = reader.line_num + 1
    try:
        for record in reader:
            if not any(field.strip() for field in record):
                start = reader.line_num + 1
                continue  # blank line
            # restore(): undo the quote our export puts before formula-like cells.
            email = restore(record[email_at]).strip() if email_at < len(record) else ""
            name = None
            if name_at is not None and name_at < len(record):
                name = restore(record[name_at]).strip() or None
            rows.append(CsvRow(start, email, name))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise CsvImportError(f"{source}:{reader.line_num}: not valid CSV ({exc})") from None
    return rows


def decode_csv(data: bytes, source: str) -> str:
    """The text of an uploaded or read CSV file: UTF-8 (a BOM allowed), never binary."""
    if b"\x00" in data:
        raise CsvImportError(f"{source}: a binary file, not a CSV")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CsvImportError(
            f"{source}: not UTF-8 text (byte offset {exc.start}); save the CSV as UTF-8"
        ) from None


__all__ = ["FORMULA_STARTS", "CsvImportError", "CsvRow", "decode_csv", "neutralize",
           "read_subscriber_csv", "restore"]
