"""How well rankings match an editorial judgement list (precision@k, recall@k, MRR)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RankingQuality:
    """How well rankings match an editorial judgement list, averaged over the queries.

    ``precision``: share of the top ``k`` that the judgement expects (precision@k); ``recall``:
    share of the expected neighbours found in the top ``k`` (recall@k); ``mrr``: mean of 1 / the
    rank of the first expected neighbour in the whole ranking (0 if none is ranked).
    """

    precision: float
    recall: float
    mrr: float
    queries: int
    k: int


def ranking_quality(
    rankings: Mapping[str, Sequence[str]],
    expected: Mapping[str, Collection[str]],
    k: int = 3,
) -> RankingQuality:
    """Precision@k, recall@k and MRR of ``rankings`` (slug -> other slugs, best first) against
    ``expected`` (slug -> the neighbours a reader would pick), over the slugs of ``expected``.

    Pure. A slug of ``expected`` without a ranking counts as ranked nothing (0 everywhere), so a
    method cannot score better by failing to answer.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    precision = recall = mrr = 0.0
    for slug, wanted in expected.items():
        wanted = set(wanted)
        if not wanted:
            raise ValueError(f"no expected neighbour for {slug!r}")
        ranking = rankings.get(slug, ())
        hits = len(wanted.intersection(ranking[:k]))
        precision += hits / k
        recall += hits / len(wanted)
        mrr += next((1 / rank for rank, other in enumerate(ranking, 1) if other in wanted), 0.0)
    n = len(expected)
    if n == 0:
        return RankingQuality(0.0, 0.0, 0.0, 0, k)
    return RankingQuality(precision / n, recall / n, mrr / n, n, k)
