"""The on-disk corpus index: the columns a command needs, validated by each file's stat."""

from __future__ import annotations

import functools
import hashlib
import marshal
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from stat import S_ISREG
from typing import Any, cast

from ..fs import write_atomic_bytes
from ._case import (
    _ROW,
    _UNLOADED,
    CaseStudy,
    Source,
    _child,
    _cross_file_problems,
    _parse,
    _Problems,
    load_file,
)

# --------------------------------------------------------------------------- the index

#: Bumped whenever the parser or the index layout change: an index of another version is
#: ignored (and rewritten). 2: reserved slugs are problems (entries of 1 would miss them);
#: 3: compact arrays instead of one object per file; 4: columns in a marshal file (the JSON
#: one of 3, ``corpus-*.json``, is removed when the new one is written).
CORPUS_INDEX_VERSION = 4
_MAGIC = b"syndicate corpus index\n"
# marshal's format may change with Python: an index written by another one is ignored.
_TAG = f"{sys.implementation.cache_tag}/marshal-{marshal.version}"

# The columns, one list per field and one row per corpus file, rows sorted by file name.
# "head" is decoded on every load: what validating the folder and the queue need. "detail"
# only when a record is filled, a listing reads it or a changed file's hash is compared.
_HEAD = ("names", "sizes", "mtimes", "slugs", "titles", "positions", "statuses")
_DETAIL = ("sha256", "companies", "themes", "sources", "content_hashes", "words", "sections",
           "digests")
# A row as a tuple (building and copying rows): the head, its problems, the detail.
_PROBLEMS = len(_HEAD)
# A case study's attribute -> its column (what Corpus.values reads without a record).
_COLUMN = {"slug": "slugs", "title": "titles", "position": "positions", "status": "statuses",
           "companies": "companies", "themes": "themes", "content_hash": "content_hashes",
           "words": "words", "section_count": "sections", "text_digest": "digests"}
# The types a column may hold (a damaged index is ignored, not trusted).
_TYPES: dict[str, set[type]] = {
    "names": {str}, "sizes": {int}, "mtimes": {int}, "slugs": {str, type(None)},
    "titles": {str, type(None)}, "positions": {int, type(None)},
    "statuses": {str, type(None)}, "sha256": {bytes}, "companies": {tuple},
    "themes": {tuple}, "sources": {tuple, type(None)}, "content_hashes": {str, type(None)},
    "words": {int, type(None)}, "sections": {int, type(None)},
    "digests": {str, type(None)},
}


def _valid(columns: object, names: tuple[str, ...], length: int | None = None) -> bool:
    if type(columns) is not list or len(columns) != len(names):
        return False
    for name, column in zip(names, columns, strict=True):
        if type(column) is not list:
            return False
        if length is None:
            length = len(column)
        if len(column) != length or not set(map(type, column)) <= _TYPES[name]:
            return False
    return True


class _Folder:
    """A corpus folder read by file name: its listing, and each file's stat relative to an
    open descriptor of the folder (no path resolved per file) where the platform has it."""

    def __init__(self, directory: Path) -> None:
        self.fd: int | None = None
        self.stat: Callable[[str], os.stat_result]
        if os.stat in os.supports_dir_fd and os.listdir in os.supports_fd:
            try:
                self.fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            except OSError:
                self.fd = None
        if self.fd is not None:
            self.stat = functools.partial(os.stat, dir_fd=self.fd)
        else:
            base = str(directory)
            self.stat = lambda name: os.stat(os.path.join(base, name))
        self.directory = directory

    def listing(self) -> list[str]:
        return os.listdir(self.fd if self.fd is not None else self.directory)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class _Table:
    """The on-disk corpus index: per corpus file, its (size, mtime_ns, sha256 of the bytes)
    and what parsing it gave (the front matter and figures of its case study, or its
    problems), as columns (one list per field; rows sorted by file name).

    The file ``corpus-<hash of the folder>.idx`` in the cache folder is ``_MAGIC`` then a
    marshal'd ``(version, Python tag, folder, head, detail)``, ``head`` and ``detail``
    themselves marshal'd: ``head`` = (the folder's listing as ``os.listdir`` gave it, the
    :data:`_HEAD` columns, ``{row: problems}``, the readable rows in queue order), decoded on
    every load; ``detail`` = the :data:`_DETAIL` columns, decoded on first need. marshal,
    not pickle: it builds only plain values (no class named by the file is ever called), and
    decodes four times faster than JSON; the file is trusted only under its version, the
    Python tag and the folder, and with its columns of the expected shapes and types, else
    ignored and rebuilt (it is a cache). Written atomically, only when something changed.

    A load: list the folder; the same listing as stored (``==`` on two lists) means the
    same files, so each is ``stat``-ed by name and its size and mtime compared with the
    columns; a changed stat re-hashes that file, changed bytes parse it again (that row is
    updated in place). Another listing rebuilds the rows by name, reusing every unchanged
    one. Records are built from the columns (:meth:`records`) with their queue fields only.
    """

    def __init__(self, directory: Path, path: Path, folder: str, listing: list[str],
                 head: list[list[Any]], problems: dict[int, tuple[str, ...]],
                 order: list[int], detail: bytes | list[list[Any]]) -> None:
        self.directory = directory
        self.path = path
        self.folder = folder
        self.listing = listing
        self.columns: dict[str, list[Any]] = dict(zip(_HEAD, head, strict=True))
        self.problems = problems
        self.order = order
        self._detail_raw = detail if isinstance(detail, bytes) else None
        self._detail: dict[str, list[Any]] | None = (
            None if isinstance(detail, bytes) else dict(zip(_DETAIL, detail, strict=True)))
        self.parsed: dict[int, CaseStudy] = {}  # rows parsed in this run: whole records
        self.changed = False  # head or detail differ from the file
        self._records: list[CaseStudy | None] | None = None
        self._fill: tuple[Any, ...] | None = None  # what fill reads (the detail decoded)
        self._path: Callable[[str], Path] | None = None

    # ------------------------------------------------------------------ reading the file

    @classmethod
    def scan(cls, directory: Path, cache_dir: Path) -> tuple[_Table, list[str]]:
        """The corpus index of ``directory`` brought up to date with the files (and saved if
        it changed), and every problem of the corpus."""
        folder = str(directory.resolve())
        path = cache_dir / f"corpus-{hashlib.sha256(folder.encode()).hexdigest()[:16]}.idx"
        table = cls.read(directory, path, folder)
        found = _Folder(directory)
        try:
            listing = found.listing()
            # The same listing (most loads: one list comparison) or the same names in
            # another order (a file system that does not keep it): the same files.
            same = table is not None and (listing == table.listing
                                          or sorted(listing) == sorted(table.listing))
            if table is None or not same or not table.refresh(found):
                table = cls.rebuild(directory, path, folder, found, listing, table)
            table.listing = listing
        finally:
            found.close()
        if table.changed:
            table.save()
        return table, table.problem_list()

    @classmethod
    def read(cls, directory: Path, path: Path, folder: str) -> _Table | None:
        try:
            raw = path.read_bytes()
        except OSError:
            return None  # no index yet
        if not raw.startswith(_MAGIC):
            return None  # another format (the JSON of version 3), or not an index
        try:
            outer = marshal.loads(memoryview(raw)[len(_MAGIC):])
            if (type(outer) is not tuple or len(outer) != 5
                    or outer[:3] != (CORPUS_INDEX_VERSION, _TAG, folder)
                    or type(outer[3]) is not bytes or type(outer[4]) is not bytes):
                return None
            head = marshal.loads(outer[3])
        except (ValueError, TypeError, EOFError):
            return None  # a damaged file
        if type(head) is not tuple or len(head) != 4:
            return None
        listing, columns, problems, order = head
        if (type(listing) is not list or not set(map(type, listing)) <= {str}
                or not _valid(columns, _HEAD) or type(problems) is not dict
                or type(order) is not list or not set(map(type, order)) <= {int}):
            return None
        rows = len(columns[0])
        if (any(type(r) is not int or not 0 <= r < rows or type(p) is not tuple
                for r, p in problems.items())
                or (order and not (min(order) >= 0 and max(order) < rows))):
            return None
        return cls(directory, path, folder, listing, columns, problems, order, outer[4])

    def detail(self) -> dict[str, list[Any]]:
        """The :data:`_DETAIL` columns, decoded on first need."""
        if self._detail is None:
            rows = len(self.columns["names"])
            try:
                columns = marshal.loads(self._detail_raw or b"")
            except (ValueError, TypeError, EOFError):
                columns = None
            if not _valid(columns, _DETAIL, rows):
                self._detail = dict(zip(_DETAIL, self._detail_from_files(), strict=True))
                self.save()  # repaired
            else:
                self._detail = dict(zip(_DETAIL, columns, strict=True))
        return self._detail

    def _detail_from_files(self) -> list[list[Any]]:
        """The detail columns of a damaged index, from the files (parsed again; a file with
        a problem now raises it): slow, and only after a damaged file."""
        rows = []
        names = self.columns["names"]
        for row, name in enumerate(names):
            if self.columns["slugs"][row] is None:
                rows.append((b"", (), (), None, None, None, None, None))
            else:
                path = _child(self.directory, name)
                case = load_file(path)
                # The digest of the very bytes parsed (load_file keeps it): one read, one hash.
                digest = bytes.fromhex(case.file_digest or "")
                rows.append(_row_of(name, os.stat(path), digest, case)[_PROBLEMS + 1:])
        self.changed = True
        self._detail_raw = None
        result = [list(column) for column in zip(*rows, strict=True)]
        return result or [[] for _ in _DETAIL]

    # ------------------------------------------------------------------ bringing it up to date

    def refresh(self, found: _Folder) -> bool:
        """Check every file's stat against the columns (the listing is the stored one);
        re-read the rows that changed. False: a file vanished or is no longer a regular file
        (the caller rebuilds)."""
        names, sizes, mtimes = (self.columns[name] for name in ("names", "sizes", "mtimes"))
        try:
            stats = list(map(found.stat, names))
        except OSError:
            return False
        if [s.st_size for s in stats] == sizes and [s.st_mtime_ns for s in stats] == mtimes:
            return True
        moved = False
        for row, stat in enumerate(stats):
            if stat.st_size != sizes[row] or stat.st_mtime_ns != mtimes[row]:
                if not S_ISREG(stat.st_mode):
                    return False
                moved |= self._set_row(row, self._entry(names[row], stat, self, row))
        if moved:
            self._sort()
        return True

    @classmethod
    def rebuild(cls, directory: Path, path: Path, folder: str, found: _Folder,
                listing: list[str], old: _Table | None) -> _Table:
        """The rows of the files now in the folder (sorted by name), each unchanged one
        taken from ``old``."""
        by_name = {name: row for row, name in enumerate(old.columns["names"])} if old else {}
        rows: list[tuple[Any, ...]] = []
        parsed: dict[int, CaseStudy] = {}
        for name in sorted(n for n in listing if n.endswith(".md") and not n.startswith(".")):
            try:
                stat = found.stat(name)
            except FileNotFoundError:
                continue  # a broken link (not a file, as for os.scandir), or gone since
            except OSError as exc:
                rows.append(_unreadable(name, exc))
                continue
            if not S_ISREG(stat.st_mode):
                continue
            row = by_name.get(name)
            if (old is not None and row is not None and old.columns["sizes"][row]
                    == stat.st_size and old.columns["mtimes"][row] == stat.st_mtime_ns):
                rows.append(old._row(row))
            else:
                entry, case = cls._entry_of(directory, name, stat, old, row)
                if case is not None:
                    parsed[len(rows)] = case
                rows.append(entry)
        columns = [list(column) for column in zip(*rows, strict=True)] or [
            [] for _ in range(len(_HEAD) + 1 + len(_DETAIL))]
        table = cls(directory, path, folder, listing, columns[:_PROBLEMS],
                    {row: entry[_PROBLEMS] for row, entry in enumerate(rows)
                     if entry[_PROBLEMS]}, [], columns[_PROBLEMS + 1:])
        table.parsed = parsed
        table.changed = True
        table._sort()
        return table

    def _entry(self, name: str, stat: os.stat_result, old: _Table, row: int) -> tuple[Any, ...]:
        entry, case = self._entry_of(self.directory, name, stat, old, row)
        if case is not None:
            self.parsed[row] = case
        return entry

    @staticmethod
    def _entry_of(directory: Path, name: str, stat: os.stat_result, old: _Table | None,
                  row: int | None) -> tuple[tuple[Any, ...], CaseStudy | None]:
        """The row of a new or changed file: ``old``'s row with the new stat if its bytes are
        the same, else the file parsed (and its whole case study, if it has no problem)."""
        path = _child(directory, name)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            return _unreadable(name, exc), None
        digest = hashlib.sha256(raw).digest()
        if old is not None and row is not None and old.detail()["sha256"][row] == digest:
            return (name, stat.st_size, stat.st_mtime_ns, *old._row(row)[3:]), None
        problems = _Problems(path)
        case = _parse(path, raw, problems)
        if case is None:
            # Without the path prefix: the folder may be moved or renamed.
            return (name, stat.st_size, stat.st_mtime_ns, None, None, None, None,
                    tuple(item[len(str(path)):] for item in problems.items), digest,
                    (), (), None, None, None, None, None), None
        return _row_of(name, stat, digest, case), case

    def _row(self, row: int) -> tuple[Any, ...]:
        detail = self.detail()
        return (*(self.columns[name][row] for name in _HEAD), self.problems.get(row),
                *(detail[name][row] for name in _DETAIL))

    def _set_row(self, row: int, entry: tuple[Any, ...]) -> bool:
        """Replace a row; True if its place in the queue may have changed."""
        detail = self.detail()
        slugs, positions = self.columns["slugs"], self.columns["positions"]
        moved = (slugs[row], positions[row]) != (entry[_HEAD.index("slugs")],
                                                  entry[_HEAD.index("positions")])
        for index, name in enumerate(_HEAD):
            self.columns[name][row] = entry[index]
        if entry[_PROBLEMS]:
            self.problems[row] = entry[_PROBLEMS]
        else:
            self.problems.pop(row, None)
        for index, name in enumerate(_DETAIL, _PROBLEMS + 1):
            detail[name][row] = entry[index]
        self._detail_raw = None
        self._fill = None
        self.changed = True
        return moved

    def _sort(self) -> None:
        slugs, positions = self.columns["slugs"], self.columns["positions"]
        self.order = sorted((row for row, slug in enumerate(slugs) if slug is not None),
                            key=lambda row: (positions[row], slugs[row]))

    def save(self) -> None:
        if not self.path.parent.parent.is_dir():
            return  # e.g. the ledger's folder does not exist yet: no cache created for it
        head = marshal.dumps((self.listing, [self.columns[name] for name in _HEAD],
                              self.problems, self.order))
        detail = self._detail_raw
        if detail is None:
            columns = self.detail()
            detail = marshal.dumps([columns[name] for name in _DETAIL])
        data = marshal.dumps((CORPUS_INDEX_VERSION, _TAG, self.folder, head, detail))
        try:
            write_atomic_bytes(self.path, _MAGIC + data)
            self.path.with_suffix(".json").unlink(missing_ok=True)  # version 3's
        except OSError:
            pass  # a cache that cannot be written costs time, never correctness

    # ------------------------------------------------------------------ what loads read

    def problem_list(self) -> list[str]:
        """Each file's problems (files in name order), then the duplicates across files."""
        problems: list[str] = []
        names = self.columns["names"]
        for row in sorted(self.problems):
            path = str(_child(self.directory, names[row]))
            problems.extend(path + item for item in self.problems[row])
        for name in ("slugs", "positions"):
            distinct = set(self.columns[name])
            distinct.discard(None)
            if len(distinct) != len(self.order):  # some value twice: say where, as check does
                problems.extend(_cross_file_problems(self.by_name()))
                break
        return problems

    def records(self) -> list[CaseStudy | None]:
        """A case study per row (None: the file has problems), born with its queue fields
        and filled from the columns on first use of another (:meth:`fill`)."""
        if self._records is None:
            new, set_fields = object.__new__, object.__setattr__
            records: list[CaseStudy | None] = []
            append = records.append
            columns = self.columns
            for row, (slug, title, position, status) in enumerate(zip(
                    columns["slugs"], columns["titles"], columns["positions"],
                    columns["statuses"], strict=True)):
                if slug is None:
                    append(None)
                    continue
                case = new(CaseStudy)
                set_fields(case, "__dict__", {"slug": slug, "title": title, "position": position,
                                              "status": status, _ROW: (self, row)})
                append(case)
            for row, parsed in self.parsed.items():
                records[row] = parsed
            self._records = records
        return self._records

    def fill(self, fields: dict[str, Any], row: int) -> None:
        """Every field of the record of ``row`` but its path and body, from the columns
        (looked up once per table: this runs for every record a relatedness fingerprint
        reads)."""
        if self._fill is None:
            detail = self.detail()
            self._fill = tuple(detail[name] for name in _DETAIL)
        files, companies, themes, sources, hashes, words, sections, digests = self._fill
        source = sources[row]
        fields["lede"] = fields["sections"] = _UNLOADED
        fields["companies"] = companies[row]
        fields["themes"] = themes[row]
        fields["source"] = None if source is None else Source(str(source[0]), int(source[1]))
        fields["content_hash"] = hashes[row]
        fields["words"] = words[row]
        fields["section_count"] = sections[row]
        fields["text_digest"] = digests[row]
        fields["file_digest"] = files[row].hex()  # the bytes every column above was read from

    def path_of(self, row: int) -> Path:
        if self._path is None:
            make = getattr(self.directory, "_make_child_relpath", None)  # see _child
            self._path = make if callable(make) else functools.partial(_child, self.directory)
        path: Path = self._path(self.columns["names"][row])
        return path

    def by_name(self) -> list[CaseStudy]:
        return [case for case in self.records() if case is not None]

    def in_order(self) -> tuple[CaseStudy, ...]:
        records = cast(list[CaseStudy], self.records())
        return tuple(map(records.__getitem__, self.order))

    def values(self, names: Sequence[str]) -> list[tuple[Any, ...]]:
        if not all(name in _COLUMN for name in names):
            records = self.in_order()
            return [tuple(getattr(case, name) for name in names) for case in records]
        columns = [self.columns[_COLUMN[name]] if _COLUMN[name] in self.columns
                   else self.detail()[_COLUMN[name]] for name in names]
        order = self.order
        return list(zip(*(list(map(column.__getitem__, order)) for column in columns),
                        strict=True))


def _row_of(name: str, stat: os.stat_result, digest: bytes, case: CaseStudy) -> tuple[Any, ...]:
    """The row of a parsed case study (strings that repeat across rows interned: marshal
    then writes each once)."""
    source = case.source
    return (name, stat.st_size, stat.st_mtime_ns, case.slug, case.title, case.position,
            sys.intern(case.status), None, digest,
            tuple(map(sys.intern, case.companies)), tuple(map(sys.intern, case.themes)),
            None if source is None else (source.page, source.position), case.content_hash,
            case.words, case.section_count, case.text_digest)


def _unreadable(name: str, exc: OSError) -> tuple[Any, ...]:
    """The row of a file that cannot be read: a problem, and a stat no file has (read again
    at the next load)."""
    return (name, -1, -1, None, None, None, None, (f":1: cannot read file: {exc.strerror}",),
            b"", (), (), None, None, None, None, None)


