"""The on-disk corpus index: the columns a command needs, validated by each file's stat."""

from __future__ import annotations

import contextlib
import functools
import marshal
import mmap
import os
import sys
import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from itertools import chain
from operator import attrgetter
from pathlib import Path
from stat import S_ISREG
from typing import Any, cast

from ..digest import sha256
from ..fs import write_atomic_bytes
from ..modules import module_source
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
#: one of 3, ``corpus-*.json``, is removed when the new one is written); 5: each column
#: its own marshal blob (decoded on first need), the folder's own stat instead of its
#: listing; 6: sizes and mtimes one array of 64-bit integers (compared with the stats as
#: bytes, not decoded), only the names decoded on every load, whether the slugs and the
#: positions are distinct kept in the header.
CORPUS_INDEX_VERSION = 6
_MAGIC = b"syndicate corpus index\n"
# marshal's format may change with Python, the stamps' byte order with the machine: an index
# written by another one is ignored.
_TAG = f"{sys.implementation.cache_tag}/marshal-{marshal.version}/{sys.byteorder}"

# The columns, one list per field and one row per corpus file, rows sorted by file name, in
# the order of a row's tuple (building and copying rows): the head, its problems, the detail.
_HEAD = ("names", "sizes", "mtimes", "slugs", "titles", "positions", "statuses")
_DETAIL = ("sha256", "companies", "themes", "sources", "content_hashes", "words", "sections",
           "digests")
_COLUMNS = _HEAD + _DETAIL
_PROBLEMS = len(_HEAD)
# Decoded and checked on every load: what validating the folder needs (a damaged one: the
# whole index is ignored). Every other column is decoded on first need (a damaged one: read
# again from the files, see _Table._repair).
_EAGER = ("names",)
# Sizes and mtimes are stored together as the stamps: ``array("q")`` of (mtime, size) per
# row, compared whole with the files' stats as bytes (see _Table.refresh); decoded into
# the two columns only when a row changes.
_STAMPED = ("mtimes", "sizes")
# The file's blobs, in this order: every other column, the stamps, the problems, the order.
_BLOBS = (*(name for name in _COLUMNS if name not in _STAMPED), "stamps", "problems", "order")
# A case study's attribute -> its column (what Corpus.values reads without a record);
# ``file_digest`` is the hex of ``sha256``.
_COLUMN = {"slug": "slugs", "title": "titles", "position": "positions", "status": "statuses",
           "companies": "companies", "themes": "themes", "content_hash": "content_hashes",
           "words": "words", "section_count": "sections", "text_digest": "digests",
           "file_digest": "sha256"}
# The types a column may hold (a damaged index is ignored, not trusted). Sizes and mtimes
# are only compared with a stat's: a value of another type is unequal (the file is read
# again), so only their lengths are checked (10,000 values looked at less on every load).
_TYPES: dict[str, set[type] | None] = {
    "names": {str}, "sizes": None, "mtimes": None, "slugs": {str, type(None)},
    "titles": {str, type(None)}, "positions": {int, type(None)},
    "statuses": {str, type(None)}, "sha256": {bytes}, "companies": {tuple},
    "themes": {tuple}, "sources": {tuple, type(None)}, "content_hashes": {str, type(None)},
    "words": {int, type(None)}, "sections": {int, type(None)},
    "digests": {str, type(None)},
}

# Racy listings (git's "racy clean" entries): the folder's stat vouches for its listing only
# if the folder last changed (mtime or ctime) longer than this before the stat was taken. A
# file system with coarse timestamps (2 s on FAT, 1 s on some) can give a change made in the
# same tick the same stat; past this margin, a later change gets a later one. One second more
# for a file server's clock a little behind this machine's.
_RACY_NS = 3_000_000_000
#: The clock the margin is measured against (tests move it).
_clock: Callable[[], int] = time.time_ns


def _is_case_file(name: str) -> bool:
    return name.endswith(".md") and not name.startswith(".")


def _valid(name: str, column: object, rows: int) -> bool:
    if type(column) is not list or len(column) != rows:
        return False
    kinds = _TYPES[name]
    return kinds is None or set(map(type, column)) <= kinds


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

    def key(self) -> tuple[int, int, int, int] | None:
        """The folder's own stat (device, inode, mtime, ctime): adding, removing or renaming
        a file in it changes it (in-place edits do not: each file's stat tells those). None
        when it cannot vouch for a listing taken now: the folder changed within
        :data:`_RACY_NS` of now (see there), or it cannot be read."""
        now = _clock()  # before the stat: a change after it is later than the margin
        try:
            found = os.fstat(self.fd) if self.fd is not None else os.stat(self.directory)
        except OSError:
            return None
        if max(found.st_mtime_ns, found.st_ctime_ns) >= now - _RACY_NS:
            return None
        return (found.st_dev, found.st_ino, found.st_mtime_ns, found.st_ctime_ns)

    def listing(self) -> list[str]:
        return os.listdir(self.fd if self.fd is not None else self.directory)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


# What a row's stamp holds of a file's stat, in the order of the stamps array.
_STAMP = attrgetter("st_mtime_ns", "st_size")


def _stamps(mtimes: Iterable[int], sizes: Iterable[int]) -> array[int]:
    return array("q", chain.from_iterable(zip(mtimes, sizes, strict=True)))


class _Table:
    """The on-disk corpus index: per corpus file, its (size, mtime_ns, sha256 of the bytes)
    and what parsing it gave (the front matter and figures of its case study, or its
    problems), as columns (one list per field; rows sorted by file name).

    The file ``corpus-<hash of the folder>.idx`` in the cache folder is ``_MAGIC``, the
    length of a header (8 bytes, little-endian), the header: marshal'd ``(version, Python
    tag, folder, folder key, rows, spans, token, distinct)``, then one blob per
    :data:`_BLOBS` (each column marshal'd, the stamps as raw ``array("q")`` bytes,
    ``{row: problems}`` and the readable rows in queue order marshal'd) where ``spans`` says
    (start and end of each, after the header). A load maps the file (only the pages read
    are read: a 10,000-file index is 4 MB, a load reads a few hundred kB of it; read whole
    where the file system cannot map it) and decodes
    the header, the :data:`_EAGER` columns, the problems and the order, each from a view of
    the mapping (nothing copied); any other column on first need. The file is never changed
    in place (written whole, then renamed over), so a mapping stays the file it mapped.
    ``distinct``: no two rows have the same slug or position (what :meth:`problem_list`
    would otherwise check by decoding both columns). marshal, not pickle: it builds only
    plain values (no class named by the file is ever called), and decodes four times faster
    than JSON; the file is trusted only under its version, the Python tag and the folder,
    and with its columns of the expected shapes and types, else ignored and rebuilt (it is a
    cache): a damaged eager column at load, a damaged other one when first decoded (its
    columns then read again from the files). Written atomically, only when something changed.

    A load: the folder's own stat (:meth:`_Folder.key`) equal to the stored key means the
    same names as stored (no listing: a file added, removed or renamed changes the
    folder's mtime and ctime); otherwise the folder is listed and its case files compared
    with the ``names`` column. The same names: each file is ``stat``-ed by name and its mtime
    and size compared with the stamps; a changed stat re-hashes that file, changed bytes
    parse it again (that row is updated in place). Other names rebuild the rows by name,
    reusing every unchanged one. Records are built from the columns (:meth:`records`) with
    their queue fields only.
    """

    def __init__(self, directory: Path, path: Path, folder: str, key: Any, rows: int,
                 columns: dict[str, list[Any]], problems: dict[int, tuple[str, ...]],
                 order: list[int], blobs: dict[str, memoryview] | None = None,
                 token: str | None = None, distinct: bool | None = None) -> None:
        self.directory = directory
        self.path = path
        self.folder = folder
        self.key = key  # the folder's stat the names are vouched by (None: list it)
        # Names the columns as written: a new one at every save (None: not saved yet).
        self.token = token
        self.rows = rows
        self.columns = columns  # the decoded ones
        self.problems = problems
        self.order = order
        self._blobs = blobs or {}  # the columns not decoded yet (and the stamps as read)
        self.distinct = distinct  # no slug or position twice (None: not known yet)
        self.parsed: dict[int, CaseStudy] = {}  # rows parsed in this run: whole records
        self.changed = False  # the columns, problems or key differ from the file
        self._records: list[CaseStudy | None] | None = None
        self._single: dict[int, CaseStudy] = {}  # records built one by one (see record)
        self._slug_rows: dict[str, int] | None = None
        self._fill: tuple[Any, ...] | None = None  # what fill reads (the detail decoded)
        self._path: Callable[[str], Path] | None = None

    # ------------------------------------------------------------------ reading the file

    @classmethod
    def scan(cls, directory: Path, cache_dir: Path) -> tuple[_Table, list[str]]:
        """The corpus index of ``directory`` brought up to date with the files (and saved if
        it changed), and every problem of the corpus."""
        folder = str(directory.resolve())
        path = cache_dir / f"corpus-{sha256(folder.encode()).hexdigest()[:16]}.idx"
        table = cls.read(directory, path, folder)
        found = _Folder(directory)
        try:
            key = found.key()
            # The folder's stat unchanged since a listing it vouches for (most loads): the
            # same names, no listing. Else the same case files listed: the same names too.
            names = None
            same = table is not None and key is not None and key == table.key
            if table is not None and not same:
                names = sorted(filter(_is_case_file, found.listing()))
                same = names == table.columns["names"]
            if table is None or not same or not table.refresh(found):
                table = cls.rebuild(directory, path, folder, found, names, table)
            if table.key != key:
                table.key = key
                table.changed = True
        finally:
            found.close()
        if table.changed:
            table.save()
        return table, table.problem_list()

    @classmethod
    def read(cls, directory: Path, path: Path, folder: str) -> _Table | None:
        raw: mmap.mmap | bytes
        try:
            with open(path, "rb") as file:
                try:
                    raw = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
                except (OSError, ValueError):  # empty, or a file system that cannot map
                    raw = file.read()
        except OSError:
            return None  # no index yet
        if raw[:len(_MAGIC)] != _MAGIC:
            return None  # another format (the JSON of version 3), or not an index
        view = memoryview(raw)
        start = len(_MAGIC) + 8
        base = start + int.from_bytes(view[len(_MAGIC):start], "little")
        try:
            header = marshal.loads(view[start:base])
            if (type(header) is not tuple or len(header) != 8
                    or header[:3] != (CORPUS_INDEX_VERSION, _TAG, folder)):
                return None
            key, rows, spans, token, distinct = header[3:]
            if (type(rows) is not int or type(spans) is not list or type(token) is not str
                    or type(distinct) is not bool or len(spans) != 2 * len(_BLOBS)
                    or not all(type(at) is int and 0 <= at <= len(raw) - base
                               for at in spans)
                    or (key is not None and (type(key) is not tuple or len(key) != 4
                                             or not all(type(n) is int for n in key)))):
                return None
            blobs = {name: view[base + spans[2 * at]:base + spans[2 * at + 1]]
                     for at, name in enumerate(_BLOBS)}
            columns = {name: marshal.loads(blobs.pop(name)) for name in _EAGER}
            problems = marshal.loads(blobs.pop("problems"))
            order = marshal.loads(blobs.pop("order"))
        except (ValueError, TypeError, EOFError):
            return None  # a damaged file
        if (not all(_valid(name, column, rows) for name, column in columns.items())
                or len(blobs["stamps"]) != 2 * rows * array("q").itemsize
                or type(problems) is not dict
                or type(order) is not list or not set(map(type, order)) <= {int}):
            return None
        if (any(type(r) is not int or not 0 <= r < rows or type(p) is not tuple
                for r, p in problems.items())
                or (order and not (min(order) >= 0 and max(order) < rows))):
            return None
        return cls(directory, path, folder, key, rows, columns, problems, order, blobs, token,
                   distinct)

    def column(self, name: str) -> list[Any]:
        """A column, decoded on first need (damaged: all of them read from the files)."""
        column = self.columns.get(name)
        if column is not None:
            return column
        if name in _STAMPED:  # both from the stamps, which hold nothing but integers
            stamps = array("q")
            stamps.frombytes(self._blobs.pop("stamps"))
            self.columns["mtimes"], self.columns["sizes"] = (
                stamps[0::2].tolist(), stamps[1::2].tolist())
            return self.columns[name]
        try:
            decoded: object = marshal.loads(self._blobs.pop(name))
        except (ValueError, TypeError, EOFError):
            decoded = None
        if not _valid(name, decoded, self.rows):
            self._repair()
            return self.columns[name]
        self.columns[name] = cast(list[Any], decoded)
        return self.columns[name]

    def _repair(self) -> None:
        """Every column but the eager ones from the files (parsed again; a file with a
        problem now raises it), after a damaged one: slow, and only after a damaged file."""
        lazy = [name for name in _COLUMNS if name not in _EAGER]
        rows = []
        # A row has problems exactly when it has no slug (no case study): the slugs may be
        # the damaged column.
        for row, name in enumerate(self.columns["names"]):
            if row in self.problems:
                rows.append((name, -1, -1, None, None, None, None, None,
                             b"", (), (), None, None, None, None, None))
            else:
                path = _child(self.directory, name)
                case = load_file(path)
                # The digest of the very bytes parsed (load_file keeps it): one read, one hash.
                digest = bytes.fromhex(case.file_digest or "")
                rows.append(_row_of(name, os.stat(path), digest, case))
        built = [list(column) for column in zip(*rows, strict=True)] or [
            [] for _ in range(len(_COLUMNS) + 1)]
        del built[_PROBLEMS]
        for name, column in zip(_COLUMNS, built, strict=True):
            if name in lazy:
                self.columns[name] = column
        self._blobs.clear()
        self._fill = None
        self._slug_rows = None
        self.distinct = None
        self._sort()  # the slugs and positions are new too
        self.changed = True
        self.save()  # repaired

    # ------------------------------------------------------------------ bringing it up to date

    def refresh(self, found: _Folder) -> bool:
        """Check every file's stat against the columns (its names are the folder's case
        files); re-read the rows that changed. False: a file vanished or is no longer a
        regular file (the caller rebuilds)."""
        names = self.columns["names"]
        try:
            # Each stat's (mtime, size) into one array as it comes: 10,000 stat results are
            # not kept (new memory is a large part of a light command's time).
            now = array("q", chain.from_iterable(map(_STAMP, map(found.stat, names))))
        except OSError:
            return False
        stamps = self._blobs.get("stamps")
        if (memoryview(now).cast("B") == stamps if stamps is not None  # as read: bytes
                else now == _stamps(self.columns["mtimes"], self.columns["sizes"])):
            return True
        moved = False
        mtimes, sizes = self.column("mtimes"), self.column("sizes")
        for row, name in enumerate(names):
            if now[2 * row] != mtimes[row] or now[2 * row + 1] != sizes[row]:
                try:
                    stat = found.stat(name)
                except OSError:
                    return False
                if not S_ISREG(stat.st_mode):
                    return False
                moved |= self._set_row(row, self._entry(name, stat, self, row))
        if moved:
            self._sort()
        return True

    @classmethod
    def rebuild(cls, directory: Path, path: Path, folder: str, found: _Folder,
                names: list[str] | None, old: _Table | None) -> _Table:
        """The rows of the case files now in the folder (``names``, sorted: listed if None),
        each unchanged one taken from ``old``."""
        if names is None:
            names = sorted(filter(_is_case_file, found.listing()))
        by_name = {name: row for row, name in enumerate(old.columns["names"])} if old else {}
        sizes, mtimes = (old.column("sizes"), old.column("mtimes")) if old else ([], [])
        # Per file: its row in ``old`` (unchanged) or its new row; the columns built after,
        # one at a time (10,000 unchanged rows are not made into tuples and back).
        rows: list[int | tuple[Any, ...]] = []
        parsed: dict[int, CaseStudy] = {}
        for name in names:
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
            if (row is not None and sizes[row] == stat.st_size
                    and mtimes[row] == stat.st_mtime_ns):
                rows.append(row)
            else:
                entry, case = cls._entry_of(directory, name, stat, old, row)
                if case is not None:
                    parsed[len(rows)] = case
                rows.append(entry)
        columns = {}
        for at, name in enumerate((*_HEAD, "", *_DETAIL)):
            if name:
                was = old.column(name) if old is not None else []
                columns[name] = [was[r] if isinstance(r, int) else r[at] for r in rows]
        problems = {}
        for at, r in enumerate(rows):
            if isinstance(r, int):
                kept = old.problems.get(r) if old is not None else None
            else:
                kept = r[_PROBLEMS]
            if kept:
                problems[at] = kept
        table = cls(directory, path, folder, None, len(rows), columns, problems, [])
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
        digest = sha256(raw).digest()
        if old is not None and row is not None and old.column("sha256")[row] == digest:
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
        return (*(self.column(name)[row] for name in _HEAD), self.problems.get(row),
                *(self.column(name)[row] for name in _DETAIL))

    def _set_row(self, row: int, entry: tuple[Any, ...]) -> bool:
        """Replace a row; True if its place in the queue may have changed."""
        columns = [self.column(name) for name in _COLUMNS]  # all decoded before any change
        slugs, positions = self.column("slugs"), self.column("positions")
        self.distinct = None
        moved = (slugs[row], positions[row]) != (entry[_HEAD.index("slugs")],
                                                  entry[_HEAD.index("positions")])
        for column, value in zip(columns, (*entry[:_PROBLEMS], *entry[_PROBLEMS + 1:]),
                                 strict=True):
            column[row] = value
        if entry[_PROBLEMS]:
            self.problems[row] = entry[_PROBLEMS]
        else:
            self.problems.pop(row, None)
        self._fill = None
        self._slug_rows = None
        self.changed = True
        return moved

    def _sort(self) -> None:
        slugs, positions = self.column("slugs"), self.column("positions")
        self.order = sorted((row for row, slug in enumerate(slugs) if slug is not None),
                            key=lambda row: (positions[row], slugs[row]))

    def save(self) -> None:
        if not self.path.parent.parent.is_dir():
            self.token = None
            return  # e.g. the ledger's folder does not exist yet: no cache created for it
        # A column not decoded is written as read (its bytes); the others marshal'd again.
        blobs = [marshal.dumps(self.columns[name]) if name in self.columns
                 else self._blobs[name] for name in _BLOBS[:-3]]
        stamps = self._blobs.get("stamps")
        blobs += [_stamps(self.columns["mtimes"], self.columns["sizes"]).tobytes()
                  if stamps is None else stamps,
                  marshal.dumps(self.problems), marshal.dumps(self.order)]
        spans, at = [], 0
        for blob in blobs:
            spans += [at, at + len(blob)]
            at += len(blob)
        # A new token even if the file cannot be written: these columns are not its.
        self.token = os.urandom(12).hex()
        header = marshal.dumps((CORPUS_INDEX_VERSION, _TAG, self.folder, self.key,
                                self.rows, spans, self.token, self._distinct()))
        data = b"".join([_MAGIC, len(header).to_bytes(8, "little"), header, *blobs])
        try:
            write_atomic_bytes(self.path, data)
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
        if not self._distinct():  # some value twice: say where, as check does
            problems.extend(_cross_file_problems(self.by_name()))
        return problems

    def _distinct(self) -> bool:
        """No two case studies with the same slug or position (known from the file's header
        until a row changes)."""
        if self.distinct is None:
            self.distinct = True
            for name in ("slugs", "positions"):
                values = set(self.column(name))
                values.discard(None)
                if len(values) != len(self.order):
                    self.distinct = False
        return self.distinct

    def records(self) -> list[CaseStudy | None]:
        """A case study per row (None: the file has problems), born with its queue fields
        and filled from the columns on first use of another (:meth:`fill`)."""
        if self._records is None:
            new, set_fields = object.__new__, object.__setattr__
            records: list[CaseStudy | None] = []
            append = records.append
            for row, (slug, title, position, status) in enumerate(zip(
                    self.column("slugs"), self.column("titles"), self.column("positions"),
                    self.column("statuses"), strict=True)):
                if slug is None:
                    append(None)
                    continue
                case = new(CaseStudy)
                set_fields(case, "__dict__", {"slug": slug, "title": title, "position": position,
                                              "status": status, _ROW: (self, row)})
                append(case)
            for row, parsed in (*self._single.items(), *self.parsed.items()):
                records[row] = parsed
            self._records = records
        return self._records

    def slug_rows(self) -> dict[str, int]:
        """``{slug: row}``: one dict for any number of lookups (drift: thousands)."""
        if self._slug_rows is None:
            self._slug_rows = {slug: row for row, slug in enumerate(self.column("slugs"))
                               if slug is not None}
        return self._slug_rows

    def file_digests(self, slugs: Iterable[str]) -> dict[str, str]:
        """``{slug: hex sha256 of its file}`` of those of ``slugs`` in the corpus (only
        theirs hexed)."""
        rows, digests = self.slug_rows(), self.column("sha256")
        return {slug: digests[row].hex() for slug in slugs
                if (row := rows.get(slug)) is not None}

    def record(self, slug: str) -> CaseStudy | None:
        """The record of ``slug`` (None: no such case study), the very one
        :meth:`records` gives, without building the others."""
        row = self.slug_rows().get(slug)
        if row is None:
            return None
        if self._records is not None:
            return self._records[row]
        case = self.parsed.get(row) or self._single.get(row)
        if case is None:
            case = self._single[row] = object.__new__(CaseStudy)
            object.__setattr__(case, "__dict__", {
                "slug": slug, "title": self.column("titles")[row],
                "position": self.column("positions")[row],
                "status": self.column("statuses")[row], _ROW: (self, row)})
        return case

    def fill(self, fields: dict[str, Any], row: int) -> None:
        """Every field of the record of ``row`` but its path and body, from the columns
        (looked up once per table: this runs for every record a relatedness fingerprint
        reads)."""
        if self._fill is None:
            self._fill = tuple(self.column(name) for name in _DETAIL)
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

    def values(self, names: Sequence[str], rows: list[int] | None = None
               ) -> list[tuple[Any, ...]]:
        """The attributes ``names`` of the case studies of ``rows`` (default: every one, in
        queue order), from the columns when they all have one, else from the records."""
        rows = self.order if rows is None else rows
        if not all(name in _COLUMN for name in names):
            records = cast(list[CaseStudy], self.records())
            return [tuple(getattr(records[row], name) for name in names) for row in rows]
        columns = []
        for name in names:
            column = self.column(_COLUMN[name])
            picked = map(column.__getitem__, rows)
            # file_digest: the hex of the sha256, as CaseStudy.file_digest gives it
            columns.append(list(map(bytes.hex, picked) if name == "file_digest" else picked))
        return list(zip(*columns, strict=True))

    def kept(self, name: str, version: bytes | None, make: Callable[[], bytes]
             ) -> bytes:
        """``make()``, kept in a file beside the index (``<index>.<name>``) under a stamp
        (the index's token, ``version`` and this module's source: how values are read) and
        given again from there while the stamp is the same: the columns are then the very
        ones it was made from."""
        path = self.path.with_name(f"{self.path.name}.{name}")
        stamp = self._stamp(version)
        if stamp is not None:
            try:
                raw = path.read_bytes()
            except OSError:
                raw = b""
            if raw[:len(stamp)] == stamp:
                return raw[len(stamp):]
        data = make()
        stamp = self._stamp(version)  # after make: it may have repaired (saved) the index
        if stamp is not None:
            # a cache that cannot be written costs time, never correctness
            with contextlib.suppress(OSError):
                write_atomic_bytes(path, stamp + data)
        return data

    def _stamp(self, version: bytes | None) -> bytes | None:
        source = module_source(__file__)  # how the kept output's columns were read
        if self.token is None or version is None or source is None:
            return None  # no source to tell this code from another's: nothing kept
        digest = sha256(version + b"\0" + source).hexdigest()
        return f"{self.token} {digest}\n".encode()

    def queue_head(self, published: Iterable[str], names: Sequence[str], limit: int
                   ) -> tuple[int, list[tuple[Any, ...]]]:
        """How many rows are still to publish, and the values ``names`` of the first
        ``limit``: kept (:meth:`kept`) per state of the columns, set of ``published`` slugs,
        ``names`` and ``limit``, for the commands run again and again on an unchanged
        corpus (``status``, ``schedule``): at 10,000 case studies, decoding the slugs and
        statuses costs as much again as checking the files."""
        if not isinstance(published, (set, frozenset)):
            published = set(published)
        taken = published
        if not all(name in _COLUMN for name in names):  # values from the records: not kept
            rows = self.queue_rows(taken)
            return len(rows), self.values(names, rows[:limit])

        def make() -> bytes:
            rows = self.queue_rows(taken)
            return marshal.dumps((len(rows), self.values(names, rows[:limit])))

        version = f"{names!r} {limit}\n".encode() + "\n".join(sorted(published)).encode()
        count, values = marshal.loads(self.kept("queue." + ".".join(names), version, make))
        return count, values

    def queue_rows(self, published: Iterable[str]) -> list[int]:
        """The rows still to publish (not a draft, not in ``published``), in queue order."""
        if not isinstance(published, (set, frozenset)):
            published = set(published)
        slugs, statuses = self.column("slugs"), self.column("statuses")
        return [row for row in self.order
                if statuses[row] != "draft" and slugs[row] not in published]


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


