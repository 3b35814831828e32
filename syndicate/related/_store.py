"""The relatedness index's storage: its arrays, its file, and the arithmetic both kernels share.

Layout (``N`` case studies in queue order, ``V`` terms in sorted order):

- text: the term counts as compressed sparse rows, ``indptr`` (N + 1, int64), ``indices``
  (term numbers, sorted within a row, int32), ``counts`` (int32); per term ``idf``
  (float64, scikit-learn's smooth idf) and per row ``norms`` (float64, the Euclidean length
  of its ``tf · idf`` row). The TF-IDF weight of a stored value is ``float32(tf(count) ·
  idf / norm)``, ``tf(c) = 1 + log c``: computed for the rows a query touches, not stored,
  so that an edit rewrites counts, not every weight of the corpus.
- names, for companies and themes alike: per row the column numbers of its names
  (``company_indptr``, ``company_ids``: names deduplicated by key, in the row's order) and
  per column its rarity (``company_idf``, float32, :func:`name_weights`).
- texts: ``slugs`` (JSON); ``names`` (one line per row: its companies and themes as spelt,
  aligned with its ids, see :func:`names_lines`; ``names_offsets`` says where each line
  starts); ``vocabulary`` and ``digests`` (JSON: each row's text digest), read only by an
  update after an edit.

The file is a short JSON header (each section's type, offset and length) followed by the raw
little-endian sections, each at an 8-byte boundary. A large index is memory-mapped: a
query reads the pages of the rows it touches (the case study queried and its candidates),
not 60 MB; nothing in the file is ever executed or unpickled.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import struct
import sys
import tempfile
from array import array
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

#: Bumped whenever the analysis, the weights or the cache layout change: it is part of the
#: cache key, so an upgrade refits instead of reading a stale index. 4: the mapped layout.
INDEX_VERSION = "related-4"

#: Below this many case studies an index lives in Python lists (:mod:`._plain`), above in
#: NumPy arrays. Measured by ``python -m bench.related_paths``: at 10 case studies the plain
#: kernels answer in a millisecond where importing NumPy alone costs 0.11-0.15 s; the plain
#: query over every row of a corpus costs about as much as that import only past ~1,000.
PLAIN_BELOW = 500

# Python float -> nearest float32, as NumPy's astype(float32) rounds it.
_F32 = struct.Struct("<f")


def f32(value: float) -> float:
    return float(_F32.unpack(_F32.pack(value))[0])


def tf_table(largest: int) -> list[float]:
    """``1 + log(c)`` for every count up to ``largest`` (index 0 unused): the sublinear term
    frequency, computed once per count rather than once per stored value."""
    return [0.0] + [math.log(count) + 1.0 for count in range(1, largest + 1)]


def term_idf(df: Iterable[int], n: int) -> list[float]:
    """scikit-learn's smooth idf, ``log((1 + n) / (1 + df)) + 1``, per term."""
    return [math.log((1.0 + n) / (1.0 + d)) + 1.0 for d in df]


def name_weights(df: Iterable[float], n: int) -> list[float]:
    """``log((n + 1) / df) / log(n + 1)`` per name (df at least 1), rounded to float32."""
    scale = math.log(n + 1)
    return [f32(math.log((n + 1) / max(float(d), 1.0)) / scale) for d in df]


# --------------------------------------------------------------------------- storage

_MAGIC = b"syndicate-related\n"
_HEAD = struct.Struct("<Q")
#: Section types: array module typecode -> NumPy dtype (``b``: raw bytes, JSON text).
TYPES = {"q": "<i8", "i": "<i4", "d": "<f8", "f": "<f4", "b": "u1"}
ARRAYS = {
    "indptr": "q", "indices": "i", "counts": "i", "idf": "d", "norms": "d",
    "company_indptr": "q", "company_ids": "i", "company_idf": "f",
    "theme_indptr": "q", "theme_ids": "i", "theme_idf": "f", "names_offsets": "q",
}
TEXTS = ("slugs", "names", "vocabulary", "digests")


class Kernels(Protocol):
    """The arithmetic of an index, on NumPy arrays or on Python lists (same results)."""

    numeric: bool

    def array_of(self, values: Any, typecode: str) -> Any: ...

    def products(self, store: Store, row: int, rows: Sequence[int]
                 ) -> tuple[list[float], list[float], list[float]]: ...

    def featuring(self, store: Store, kind: str, rows: Sequence[int], ids: Collection[int]
                  ) -> dict[int, list[int]]: ...

    def norms(self, indptr: Any, indices: Any, counts: Any, idf: Any, largest: int) -> Any: ...

    def document_frequency(self, indices: Any, terms: int) -> list[int]: ...

    def renumber(self, indices: Any, kept: Sequence[int], terms: int) -> Any: ...

    def largest(self, counts: Any) -> int: ...

    def assemble(self, old: Store, sources: Sequence[int],
                 fresh: Mapping[int, tuple[list[int], list[int]]],
                 remap: Sequence[int] | None) -> tuple[Any, Any, Any]: ...


@dataclass(frozen=True)
class Store:
    """An index's arrays (:data:`ARRAYS`), JSON texts (:data:`TEXTS`, bytes) and header."""

    fingerprint: str
    rows: int
    terms: int
    largest: int  # the largest term count (the tf table's size)
    arrays: Mapping[str, Any]  # NumPy arrays, tuples, or memoryviews of the mapped file
    texts: Mapping[str, Any]  # bytes, or a memoryview of the mapped file
    numeric: bool  # built (and updated) by the NumPy kernels
    mapped: mmap.mmap | None = None  # the file, when the arrays are views of its map
    offsets: Mapping[str, int] = field(default_factory=dict)  # each array's, in the file

    def text(self, name: str) -> Any:
        return json.loads(bytes(self.texts[name]))

    def release(self, name: str, start: int, stop: int) -> None:
        """Let the kernel drop the pages of items ``start:stop`` of a mapped array (read
        once, e.g. copied by an update): they leave this process's resident memory (they
        stay in the page cache). Nothing for an array in memory."""
        if self.mapped is None or name not in self.offsets:
            return
        width = struct.calcsize(ARRAYS[name])
        first = -(-(self.offsets[name] + start * width) // mmap.PAGESIZE) * mmap.PAGESIZE
        last = (self.offsets[name] + stop * width) // mmap.PAGESIZE * mmap.PAGESIZE
        if last > first:
            self.mapped.madvise(mmap.MADV_DONTNEED, first, last - first)


def write(store: Store, path: Path) -> None:
    """Write ``store`` to ``path`` atomically (temporary file, then rename)."""
    sections: list[tuple[str, str, Any, int]] = []
    for name, typecode in ARRAYS.items():
        sections.append((name, typecode, store.arrays[name], len(store.arrays[name])))
    for name in TEXTS:
        sections.append((name, "b", store.texts[name], len(store.texts[name])))
    table: dict[str, list[Any]] = {}
    offset = 0
    for name, typecode, _values, count in sections:
        table[name] = [typecode, offset, count]
        offset += _padded(count * struct.calcsize(typecode if typecode != "b" else "B"))
    header = json.dumps({
        "version": INDEX_VERSION, "fingerprint": store.fingerprint, "rows": store.rows,
        "terms": store.terms, "largest": store.largest, "byteorder": "little",
        "sections": table,
    }).encode("utf-8")
    start = _padded(len(_MAGIC) + _HEAD.size + len(header))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(_MAGIC + _HEAD.pack(len(header)) + header)
            handle.write(b"\0" * (start - handle.tell()))
            for _name, typecode, values, _count in sections:
                data = _bytes(values, typecode)
                handle.write(data)
                handle.write(b"\0" * (_padded(len(data)) - len(data)))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _padded(size: int) -> int:
    return (size + 7) // 8 * 8


def _bytes(values: Any, typecode: str) -> Any:
    if typecode == "b":
        return bytes(values)
    if isinstance(values, (list, tuple)):
        return array(typecode, values).tobytes()
    return memoryview(values).cast("B")  # a contiguous NumPy array: no copy


def read(path: Path, numeric_for: Callable[[int], bool] | None = None) -> Store:
    """The store written at ``path``: a large one memory-mapped (its arrays memoryviews of
    the map: nothing is read until used, and NumPy is not imported), a small one (below
    :data:`PLAIN_BELOW`) read whole into tuples. ``numeric_for(rows)``: whether an index of
    that many rows is the NumPy kernels' (default: by :data:`PLAIN_BELOW`). Raises
    ValueError (or OSError) for anything but a complete index of this version."""
    if sys.byteorder != "little":
        raise ValueError("the relatedness cache is little-endian")
    with open(path, "rb") as handle:
        prefix = handle.read(len(_MAGIC) + _HEAD.size)
        if len(prefix) != len(_MAGIC) + _HEAD.size or not prefix.startswith(_MAGIC):
            raise ValueError("not a relatedness index")
        (size,) = _HEAD.unpack(prefix[len(_MAGIC):])
        if size > 1 << 20:
            raise ValueError("relatedness index header too large")
        header = json.loads(handle.read(size))
        if header.get("version") != INDEX_VERSION:
            raise ValueError(f"index version {header.get('version')!r}, "
                             f"expected {INDEX_VERSION!r}")
        rows = int(header["rows"])
        numeric = rows >= PLAIN_BELOW if numeric_for is None else numeric_for(rows)
        if numeric:
            buffer: Any = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        else:
            handle.seek(0)
            buffer = handle.read()
    start = _padded(len(_MAGIC) + _HEAD.size + size)
    arrays: dict[str, Any] = {}
    texts: dict[str, Any] = {}
    offsets: dict[str, int] = {}
    sections = header["sections"]
    view = memoryview(buffer)
    for name, typecode in [*ARRAYS.items(), *((name, "b") for name in TEXTS)]:
        kind, offset, count = sections[name]
        if kind != typecode:
            raise ValueError(f"section {name} has type {kind!r}")
        offset, count = start + int(offset), int(count)
        width = 1 if typecode == "b" else struct.calcsize(typecode)
        if offset + count * width > len(buffer):
            raise ValueError(f"section {name} is truncated")
        part: Any = view[offset:offset + count * width]
        if typecode == "b":
            texts[name] = part
        elif numeric:
            arrays[name] = part.cast(typecode)
            offsets[name] = offset
        else:
            arrays[name] = tuple(part.cast(typecode).tolist())
    store = Store(str(header["fingerprint"]), rows, int(header["terms"]),
                  int(header["largest"]), MappingProxyType(arrays), MappingProxyType(texts),
                  numeric, buffer if numeric else None, MappingProxyType(offsets))
    if len(arrays["indptr"]) != store.rows + 1 or len(arrays["norms"]) != store.rows:
        raise ValueError("inconsistent relatedness index")
    return store


# A row's names line: its companies, then its themes, as spelt, each name followed by U+001F,
# the two lists separated by U+001E; a row where a name holds one of these characters is
# written as JSON behind U+001D instead. Joining is a fifth of the time of 10,000 json.dumps.
_NAME_END, _LIST_END, _AS_JSON = "\x1f", "\x1e", "\x1d"


def names_lines(rows: Sequence[tuple[Mapping[str, str], Mapping[str, str]]]) -> list[bytes]:
    """The names line of each row, from its ({key: name} of companies, of themes)."""
    lines = []
    for companies, themes in rows:
        line = "".join(f"{name}{_NAME_END}" for name in companies.values()) + _LIST_END + "".join(
            f"{name}{_NAME_END}" for name in themes.values())
        if line.count(_NAME_END) != len(companies) + len(themes) or line.count(
                _LIST_END) != 1 or _AS_JSON in line:
            line = _AS_JSON + json.dumps([list(companies.values()), list(themes.values())])
        lines.append(line.encode("utf-8", "surrogatepass"))
    return lines


def read_names_line(line: str) -> tuple[list[str], list[str]]:
    if line.startswith(_AS_JSON):
        companies, themes = json.loads(line[1:])
        return companies, themes
    companies_part, themes_part = line.split(_LIST_END)
    return companies_part.split(_NAME_END)[:-1], themes_part.split(_NAME_END)[:-1]
