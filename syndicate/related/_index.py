"""The fitted relatedness index: what it stores, its file, and the queries it answers.

An index is a handful of flat arrays (the layout below) and a few texts. A small corpus's
(below :data:`PLAIN_BELOW`) is fitted and held as tuples, computed by :mod:`._plain`, which
never imports NumPy; a large one is fitted as NumPy arrays (:mod:`._numeric`), and read back
as memoryviews of the mapped file, which either kernel can compute from: a query reading
fewer than :data:`PLAIN_VALUES` values (a publish with few editions published before it)
takes the plain kernels and imports no NumPy. Both kernels compute every number with the
same IEEE operations in the same order: the same scores bit for bit, the same file.

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

import heapq
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
from typing import Any, Protocol, cast

# --------------------------------------------------------------------------- weights
#
# Set against the judgement list (``python -m bench.relatedness``: 27 case studies, the 10 seeds
# and 17 hold-out articles), not guessed. The text cosine between two *different* case studies
# is narrow (quartiles 0.09 and 0.14 over the 27) because they share one genre and one
# vocabulary of management, and the text is the best single signal: alone it beats the old
# "0.2 per shared company" ranking on the hold-out set (precision@3 0.59 vs 0.43), because a
# company cited in passing (Shine in four seeds, Alan in three) made it the deciding link.
#
# - A shared company weighs W_COMPANY times its rarity (idf, at most 1): about the interquartile
#   range of the text cosine, so a company few case studies feature settles a close call
#   between texts, and never overrides a clearly closer text. The "Luko apparaît aussi
#   dans ..." block (:meth:`RelatednessIndex.company_mentions`) links every shared company
#   anyway: relatedness does not have to carry that link.
# - Themes are coarse tags; a shared theme weighs W_THEME times its rarity, so "ressources
#   humaines" (in 10 of the 27) counts for less than half of a rare theme.
#
# Any pair in 0.03-0.05 x 0.02-0.05 gives the same precision@3 on both sets (a plateau); the
# values are its middle, not the best point of the grid, so as not to fit 27 articles. On 27
# case studies the idf weighting ranks as plain counts at this scale would; it is there for
# scale: among 10,000 case studies a company cited in hundreds of them links nothing.
W_COMPANY = 0.04
W_THEME = 0.03

#: Bumped whenever the analysis, the weights or the cache layout change: it is part of the
#: cache key, so an upgrade refits instead of reading a stale index. 4: the mapped layout.
INDEX_VERSION = "related-4"

#: Below this many case studies an index lives in Python lists (:mod:`._plain`), above in
#: NumPy arrays. Measured by ``python -m bench.related_paths``: at 10 case studies the plain
#: kernels answer in a millisecond where importing NumPy alone costs 0.11-0.15 s; the plain
#: query over every row of a corpus costs about as much as that import only past ~1,000.
PLAIN_BELOW = 500

#: A query on a mapped index reading fewer stored values than this uses the plain kernels
#: when NumPy is not imported yet: they take about 0.4 µs a value (measured on the 10,000
#: case studies of ``bench.scale``: 0.10 s for 250,000 values, 700 candidates) where the
#: NumPy kernels take 0.12 s to import, then 0.015 s.
PLAIN_VALUES = 250_000


def numpy_imported() -> bool:
    return "numpy" in sys.modules


def kernels(numeric: bool) -> Kernels:
    """The NumPy kernels or the plain ones (imported on first use)."""
    if numeric:
        from . import _numeric as chosen
    else:
        from . import _plain as chosen  # type: ignore[no-redef]
    return cast(Kernels, chosen)


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


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Related:
    """A related case study, its score and why it was chosen.

    ``shared_companies`` and ``shared_themes`` are spelt as in the case study queried (the one the
    edition is about), in its order; ``score`` is ``text_similarity + W_COMPANY * Σ idf(company)
    + W_THEME * Σ idf(theme)`` over the shared ones (see :func:`name_idf`).
    """

    slug: str
    score: float
    text_similarity: float
    shared_companies: tuple[str, ...] = ()
    shared_themes: tuple[str, ...] = ()


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

    @property
    def kernels(self) -> Kernels:
        """The kernels that build and update this store."""
        return kernels(self.numeric)

    def query_kernels(self, rows: Sequence[int]) -> Kernels:
        """The kernels to answer a query reading ``rows``: the plain ones unless the
        arrays are NumPy's already, or the query reads more values than the plain kernels
        read in the time importing NumPy takes (:data:`PLAIN_VALUES`). A publish at 10,000
        case studies with a few hundred editions published imports no NumPy."""
        if not self.numeric or self.mapped is None or numpy_imported():
            return kernels(self.numeric)  # NumPy's, when there is no import to save
        indptr = self.arrays["indptr"]
        values = 0
        for row in rows:
            values += indptr[row + 1] - indptr[row]
            if values >= PLAIN_VALUES:
                return kernels(True)
        return kernels(False)

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


# --------------------------------------------------------------------------- the index


class RelatednessIndex:
    """Everything relatedness needs, computed once over a corpus; immutable, thread-safe reads.

    Case studies are stored in queue order (position, then slug), and ties between equal scores
    are broken in that order, so answers are deterministic.
    """

    __slots__ = ("_row", "_store", "fingerprint", "slugs")

    def __init__(self, store: Store) -> None:
        self._store = store
        self.fingerprint = store.fingerprint
        self.slugs: tuple[str, ...] = tuple(store.text("slugs"))
        self._row = {slug: row for row, slug in enumerate(self.slugs)}
        if len(self._row) != len(self.slugs):
            raise ValueError("duplicate slugs in the corpus")
        if len(self.slugs) != store.rows:
            raise ValueError("slugs and rows differ in number")

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, name):
            raise AttributeError(f"RelatednessIndex is immutable (cannot set {name!r})")
        object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return len(self.slugs)

    def __contains__(self, slug: object) -> bool:
        return slug in self._row

    def __repr__(self) -> str:
        return (f"RelatednessIndex({len(self)} case studies, {self._store.terms} terms, "
                f"fingerprint={self.fingerprint[:12]}…)")

    @property
    def numeric(self) -> bool:
        """Whether the index is held in NumPy arrays (a large corpus) or Python lists."""
        return self._store.numeric

    # ------------------------------------------------------------------ queries

    def _index_of(self, slug: str) -> int:
        try:
            return self._row[slug]
        except KeyError:
            raise KeyError(f"case study {slug!r} is not in the relatedness index") from None

    def _rows(self, candidates: Collection[str] | None, exclude: int) -> list[int]:
        """The rows of ``candidates`` (every row when None), ascending, ``exclude`` left out."""
        _check_candidates(candidates)
        if candidates is None:
            return [row for row in range(len(self.slugs)) if row != exclude]
        row_of = self._row
        return sorted({row_of[slug] for slug in candidates if slug in row_of} - {exclude})

    def _names(self, row: int) -> tuple[list[str], list[str]]:
        """(companies, themes) of a row as spelt, aligned with its ids."""
        offsets = self._store.arrays["names_offsets"]
        line = bytes(self._store.texts["names"][int(offsets[row]):int(offsets[row + 1])])
        return read_names_line(line.decode("utf-8", "surrogatepass"))

    def _ids(self, kind: str, row: int) -> list[int]:
        arrays = self._store.arrays
        indptr = arrays[f"{kind}_indptr"]
        return [int(i) for i in arrays[f"{kind}_ids"][int(indptr[row]):int(indptr[row + 1])]]

    def scores(self, slug: str) -> dict[str, tuple[float, float, float, float]]:
        """``{other slug: (score, text cosine, shared companies, shared themes)}`` against
        every other case study; the company and theme parts are the summed :func:`name_idf`
        of the names shared."""
        row = self._index_of(slug)
        rows = self._rows(None, row)
        kernels_ = self._store.query_kernels([row, *rows])
        text, companies, themes = kernels_.products(self._store, row, rows)
        return {self.slugs[other]: (t + W_COMPANY * c + W_THEME * h, t, c, h)
                for other, t, c, h in zip(rows, text, companies, themes, strict=True)}

    def related(
        self, slug: str, candidates: Collection[str] | None = None, k: int = 3
    ) -> tuple[Related, ...]:
        """The ``k`` case studies most related to ``slug``, best first.

        Only ``candidates`` (all others when ``None``) are considered, never ``slug`` itself, and
        never a case study with nothing in common (score 0). Equal scores are ordered by queue
        position, then slug. Raises ``KeyError`` if ``slug`` is not in the index.

        Only the rows of ``slug`` and of the candidates are read.
        """
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        row = self._index_of(slug)
        rows = self._rows(candidates, row)
        if k == 0 or not rows:
            return ()
        kernels_ = self._store.query_kernels([row, *rows])
        text, companies, themes = kernels_.products(self._store, row, rows)
        # Summed in this order, as ``text + W_COMPANY * companies + W_THEME * themes`` over
        # arrays would: the same float64 scores whichever kernels computed the parts.
        scored = [(-(t + W_COMPANY * c + W_THEME * h), other, t)
                  for other, t, c, h in zip(rows, text, companies, themes, strict=True)]
        # Rows are in queue order, so the row breaks ties.
        best = heapq.nsmallest(k, (entry for entry in scored if entry[0] < 0))
        my_companies, my_themes = self._names(row)
        mine_c, mine_t = self._ids("company", row), self._ids("theme", row)
        results = []
        for negative, other, t in best:
            theirs_c, theirs_t = set(self._ids("company", other)), set(self._ids("theme", other))
            results.append(Related(
                slug=self.slugs[other],
                score=-negative,
                text_similarity=t,
                shared_companies=tuple(
                    name for name, key in zip(my_companies, mine_c, strict=True)
                    if key in theirs_c),
                shared_themes=tuple(
                    name for name, key in zip(my_themes, mine_t, strict=True)
                    if key in theirs_t),
            ))
        return tuple(results)

    def company_mentions(
        self, slug: str, candidates: Collection[str] | None = None
    ) -> dict[str, tuple[str, ...]]:
        """For each company ``slug`` cites (as spelt there, in its order), the other case
        studies among ``candidates`` (all when ``None``) featuring it, in queue order.

        Companies featured nowhere else are kept with an empty tuple, so the caller can still
        link the company page. Raises ``KeyError`` if ``slug`` is not in the index.
        """
        row = self._index_of(slug)
        rows = self._rows(candidates, row)
        names, _themes = self._names(row)
        ids = self._ids("company", row)
        kernels_ = self._store.query_kernels([row, *rows])
        found = kernels_.featuring(self._store, "company", rows, set(ids))
        return {name: tuple(self.slugs[other] for other in found.get(key, ()))
                for name, key in zip(names, ids, strict=True)}

    def companies(self, slug: str) -> tuple[str, ...]:
        """The companies of ``slug`` as indexed (spelling variants deduplicated)."""
        return tuple(self._names(self._index_of(slug))[0])

    # ------------------------------------------------------------------ persistence

    def to_arrays(self) -> dict[str, Any]:
        """The index's arrays and JSON texts (as NumPy arrays), e.g. to compare two."""
        import numpy as np

        store = self._store
        arrays = {name: np.asarray(store.arrays[name], dtype=TYPES[typecode])
                  for name, typecode in ARRAYS.items()}
        for name in TEXTS:
            arrays[name] = np.frombuffer(bytes(store.texts[name]), dtype=np.uint8)
        arrays["header"] = np.asarray([store.rows, store.terms, store.largest], dtype=np.int64)
        return arrays


def _check_candidates(candidates: object) -> None:
    # A lone slug is a Collection[str] too: its letters would silently be the candidates.
    if isinstance(candidates, str):
        raise TypeError("candidates must be a collection of slugs, not one slug")
