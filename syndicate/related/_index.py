"""The fitted relatedness index and the queries it answers (its storage: :mod:`._store`).

A small corpus's index (below :data:`~._store.PLAIN_BELOW`) is fitted and held as tuples,
computed by :mod:`._plain`, which never imports NumPy; a large one is fitted as NumPy arrays
(:mod:`._numeric`), and read back as memoryviews of the mapped file, which either kernel can
compute from: a query reading fewer than :data:`PLAIN_VALUES` values (a publish with few
editions published before it) takes the plain kernels and imports no NumPy. Both kernels
compute every number with the same IEEE operations in the same order: the same scores bit
for bit, the same file.
"""

from __future__ import annotations

import heapq
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, cast

from ._store import ARRAYS, TEXTS, TYPES, Kernels, Store, read_names_line

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


def query_kernels(store: Store, rows: Sequence[int]) -> Kernels:
    """The kernels to answer a query reading ``rows``: the plain ones unless the arrays are
    NumPy's already, or the query reads more values than the plain kernels read in the time
    importing NumPy takes (:data:`PLAIN_VALUES`). A publish at 10,000 case studies with a few
    hundred editions published imports no NumPy."""
    if not store.numeric or store.mapped is None or numpy_imported():
        return kernels(store.numeric)  # NumPy's, when there is no import to save
    indptr = store.arrays["indptr"]
    values = 0
    for row in rows:
        values += indptr[row + 1] - indptr[row]
        if values >= PLAIN_VALUES:
            return kernels(True)
    return kernels(False)


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
        kernels_ = query_kernels(self._store, [row, *rows])
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
        kernels_ = query_kernels(self._store, [row, *rows])
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
        kernels_ = query_kernels(self._store, [row, *rows])
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
