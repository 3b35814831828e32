"""Relatedness arithmetic in plain Python, for small corpora: no NumPy import.

Every number is computed as :mod:`._numeric` computes it, operation for operation: float64
arithmetic, the TF-IDF weights and their products rounded to float32 (:func:`f32`, as NumPy's
float32 arrays round them: a product of two float32 values is exact in float64, so rounding it
once gives NumPy's float32 product), and each row's sum added in row order from 0.0, as
``numpy.bincount`` adds it. Zero products are skipped: adding 0.0 leaves a sum unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from ._store import Store, f32, tf_table

numeric = False


def array_of(values: Any, typecode: str) -> tuple[Any, ...]:
    return tuple(values)  # immutable, as the NumPy kernels' read-only arrays


def norms(indptr: Sequence[int], indices: Sequence[int], counts: Sequence[int],
          idf: Sequence[float], largest: int) -> list[float]:
    """Each row's Euclidean length of ``tf · idf`` (1.0 for an empty row)."""
    tf = tf_table(largest)
    lengths = []
    for row in range(len(indptr) - 1):
        total = 0.0
        for p in range(indptr[row], indptr[row + 1]):
            weight = tf[counts[p]] * idf[indices[p]]
            total += weight * weight
        length = math.sqrt(total)
        lengths.append(length if length != 0 else 1.0)
    return lengths


def _weights(store: Store, row: int) -> dict[int, float]:
    """{term: float32 TF-IDF weight} of one row."""
    arrays = store.arrays
    indptr, indices, counts = arrays["indptr"], arrays["indices"], arrays["counts"]
    idf, norm = arrays["idf"], arrays["norms"][row]
    tf = tf_table(store.largest)
    return {indices[p]: f32((tf[counts[p]] * idf[indices[p]]) / norm)
            for p in range(indptr[row], indptr[row + 1])}


def products(store: Store, row: int, rows: Sequence[int]
             ) -> tuple[list[float], list[float], list[float]]:
    """Per row of ``rows``: (text cosine, summed idf of shared companies, of shared themes)
    with ``row``."""
    arrays = store.arrays
    indptr, indices, counts = arrays["indptr"], arrays["indices"], arrays["counts"]
    idf, norms_ = arrays["idf"], arrays["norms"]
    tf = tf_table(store.largest)
    mine = _weights(store, row)
    text = []
    for other in rows:
        total, norm = 0.0, norms_[other]
        for p in range(indptr[other], indptr[other + 1]):
            term = indices[p]
            weight = mine.get(term)
            if weight is not None:
                total += f32(f32((tf[counts[p]] * idf[term]) / norm) * weight)
        text.append(total)
    return text, _shared(store, "company", row, rows), _shared(store, "theme", row, rows)


def _shared(store: Store, kind: str, row: int, rows: Sequence[int]) -> list[float]:
    arrays = store.arrays
    indptr, ids, weights = arrays[f"{kind}_indptr"], arrays[f"{kind}_ids"], arrays[f"{kind}_idf"]
    mine = {ids[p]: weights[ids[p]] for p in range(indptr[row], indptr[row + 1])}
    sums = []
    for other in rows:
        total = 0.0
        for p in range(indptr[other], indptr[other + 1]):
            weight = mine.get(ids[p])
            if weight is not None:
                total += weight
        sums.append(total)
    return sums


def featuring(store: Store, kind: str, rows: Sequence[int], ids: Collection[int]
              ) -> dict[int, list[int]]:
    """{id: the rows of ``rows`` (in their order) whose names include it} for ``ids``."""
    indptr, row_ids = store.arrays[f"{kind}_indptr"], store.arrays[f"{kind}_ids"]
    found: dict[int, list[int]] = {}
    for other in rows:
        for p in range(indptr[other], indptr[other + 1]):
            if row_ids[p] in ids:
                found.setdefault(row_ids[p], []).append(other)
    return found


def document_frequency(indices: Sequence[int], terms: int) -> list[int]:
    """Per term, the rows holding it (a term appears once per row)."""
    df = [0] * terms
    for col in indices:
        df[col] += 1
    return df


def renumber(indices: Sequence[int], kept: Sequence[int], terms: int) -> list[int]:
    """``indices`` once only the ``kept`` columns (ascending) are left."""
    new = {old: col for col, old in enumerate(kept)}
    return [new[col] for col in indices]


def largest(counts: Sequence[int]) -> int:
    return max(counts, default=0)


def assemble(old: Store, sources: Sequence[int],
             fresh: Mapping[int, tuple[list[int], list[int]]], remap: Sequence[int] | None
             ) -> tuple[list[int], list[int], list[int]]:
    """(indptr, indices, counts) of new rows: row ``i`` is old row ``sources[i]`` (its
    columns through ``remap``, when the vocabulary changed) or, for ``sources[i] < 0``,
    ``fresh[i]``."""
    old_indptr, old_indices, old_counts = (old.arrays[name] for name in
                                           ("indptr", "indices", "counts"))
    indptr, indices, counts = [0], [], []
    for row, source in enumerate(sources):
        if source < 0:
            columns, found = fresh[row]
            indices.extend(columns)
            counts.extend(found)
        else:
            lo, hi = old_indptr[source], old_indptr[source + 1]
            part = old_indices[lo:hi]
            indices.extend(part if remap is None else [remap[col] for col in part])
            counts.extend(old_counts[lo:hi])
        indptr.append(len(indices))
    return indptr, indices, counts
