"""Related case studies: which earlier editions to suggest under this one.

Relatedness of two case studies *a* and *b* is one number::

    score(a, b) = cos(a, b) + W_COMPANY · Σ idf(shared company) + W_THEME · Σ idf(shared theme)

where ``cos`` is the cosine of their TF-IDF vectors (French analysis: lowercase, French stop words
from the ``stop-words`` package, Snowball French stemmer, accents stripped after stemming; the
weights of scikit-learn's ``TfidfVectorizer(sublinear_tf=True)``, computed by :func:`tfidf`),
and ``idf(name) = log((N + 1) / df) / log(N + 1)`` (``N`` case studies, ``df`` of them citing
the name; :func:`name_idf`) weighs a shared company or theme by how rare it is:
near 1 for a name few case studies cite, near 0 for one nearly all cite. Every part of it comes
out of the index fitted once; a query reads the row of the case study queried and those of its
candidates, so it stays in milliseconds on 10,000 case studies (see ``bench/render.py``).

How good the ranking is, is measured against an editorial judgement list (the neighbours a reader
would pick, ``tests/data/relatedness_judgements.yaml``) by :func:`ranking_quality` (precision@3,
recall@3, MRR); ``python -m bench.relatedness`` prints it for this method and the alternatives
tried (BM25, count weights, a multilingual sentence-embedding model).

Usage::

    index = build_index(corpus.cases)            # the expensive part: fit once
    index = load_or_build(corpus.cases, cache)   # ...or reuse the cached one (see below)
    index.related(slug, candidates=published, k=3)
    index.company_mentions(slug, candidates=published)

``candidates`` restricts the answers to case studies that may be linked to, e.g. the slugs already
published: an edition never links to a page that does not exist yet (no dead link, no spoiler).

Two kernels, one result. An index of fewer than :data:`PLAIN_BELOW` case studies is computed in
plain Python (:mod:`._plain`): importing NumPy alone would cost a 10-case-study corpus more
than all of its relatedness. A larger one uses NumPy (:mod:`._numeric`). Both compute the same
IEEE operations in the same order: the same scores, bit for bit (checked by the tests).

Caching. Fitting 10,000 case studies takes seconds, far over the per-edition budget, and a cron run
is a fresh process, so the index is cached on disk by :func:`load_or_build`, keyed by
:func:`corpus_fingerprint` (a hash of every case study's slug, position, companies, themes and
text, plus :data:`INDEX_VERSION`). Any edit to the corpus or to this algorithm gives a new key and
the index is recomputed; nothing has to be invalidated by hand. Recomputed, not refitted from
scratch: the cache keeps each case study's term counts and text digest, so after an edit only
the edited texts are analysed again (:func:`update_index`) and the rest is vectorised
arithmetic, with the result a full fit would give. The file (:mod:`._index`: flat arrays and
JSON, memory-mapped) can never run code; a query reads only the rows it needs. The last index
is also kept in memory for long-running processes (the scheduler, ``resume``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..corpus import CaseStudy, Corpus
from ..text import french_stem, french_stop_words, strip_accents
from . import _index, _store
from ._index import W_COMPANY, W_THEME, Related, RelatednessIndex
from ._quality import RankingQuality, ranking_quality
from ._store import (
    INDEX_VERSION,
    PLAIN_BELOW,
    Kernels,
    Store,
    name_weights,
    term_idf,
)

if TYPE_CHECKING:
    import numpy as np

    from ._numeric import CSR

# --------------------------------------------------------------------------- text analysis

# Letters only: apostrophes (’ and '), hyphens and digits split words, so "l’entreprise" gives
# "l" + "entreprise" and "co-branding" gives "co" + "branding". Numbers are dropped: amounts and
# years ("2021", "100K€") say little about what a case study is about and would link unrelated
# articles that happen to quote the same year.
_WORD = re.compile(r"[^\W\d_]+")
_STOP_WORDS = french_stop_words()


@lru_cache(maxsize=1 << 17)
def _stem(token: str) -> str:
    """Index term of a lowercase token, or ``""`` for a stop word or a one-letter token.

    Memoised: the vocabulary of a corpus is a few ten thousand words while it holds millions of
    tokens.
    """
    if len(token) < 2 or token in _STOP_WORDS:
        return ""
    # Accents are stripped *after* stemming (the Snowball French rules rely on them) so that
    # "reussite" typed without accents meets "réussite".
    return strip_accents(french_stem(token))


def analyze(text: str) -> list[str]:
    """French analysis of a text into index terms (stems), in order."""
    terms = []
    for token in _WORD.findall(text.lower()):
        stem = _stem(token)
        if stem:
            terms.append(stem)
    return terms


# --------------------------------------------------------------------------- names

_NAME_FOLD = str.maketrans({
    "’": "'", "‘": "'", "ʼ": "'", "`": "'",
    "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-",
})


@lru_cache(maxsize=1 << 16)  # a few hundred companies, cited again and again
def name_key(name: str) -> str:
    """Matching key of a company (or theme) name, blind to trivial spelling variants only.

    Case, accents, typographic apostrophes and dashes, and any run of spaces (including the
    non-breaking ones, U+00A0 and U+202F, that French typography puts everywhere) are folded.
    Nothing else is: "Alan" and "Alan & Co" stay two companies, as do "Qonto" and "Qonto Pro".
    """
    text = unicodedata.normalize("NFKC", name).translate(_NAME_FOLD)
    return " ".join(strip_accents(text).casefold().split())


@lru_cache(maxsize=1 << 14)  # called twice per case study by a fit; lists recur
def _unique_names(names: tuple[str, ...]) -> dict[str, str]:
    """{key: the name as first spelt} of a case study's names, in its order (not to be
    modified: memoised)."""
    seen: dict[str, str] = {}
    for name in names:
        key = name_key(name)
        if key and key not in seen:
            seen[key] = name.strip()
    return seen


def name_idf(df: np.ndarray, n: int) -> np.ndarray:
    """Rarity of names cited by ``df`` of ``n`` case studies: ``log((n + 1) / df) / log(n + 1)``.

    1 for a name in one case study, falling to nearly 0 for a name in all of them (never 0: two
    case studies of a two-case corpus that share a company are still related). Divided by
    ``log(n + 1)`` so that W_COMPANY and W_THEME keep their meaning whatever the size of the
    corpus: a name only two case studies share weighs 0.79 among 27 and 0.92 among 10,000.
    """
    import numpy as np

    return np.asarray(name_weights(np.asarray(df).tolist(), n), dtype=np.float32)


# --------------------------------------------------------------------------- fitting


def _kernels(rows: int) -> Kernels:
    """The kernels for an index of ``rows`` case studies (NumPy imported only past
    :data:`PLAIN_BELOW`)."""
    return _index.kernels(rows >= PLAIN_BELOW)


def _queue_order(cases: Iterable[CaseStudy]) -> list[CaseStudy]:
    return sorted(cases, key=lambda case: (case.position, case.slug))


def corpus_fingerprint(cases: Iterable[CaseStudy]) -> str:
    """Hash of everything relatedness depends on: the cache key of the index.

    The text enters by its :attr:`~syndicate.corpus.CaseStudy.text_digest` (a hash of the text
    itself, not the stored ``content_hash``, which an operator editing a file by hand may leave
    stale), which the corpus index keeps: fingerprinting needs no case study's body.

    One text hashed once, its fields joined by U+001F, each list of names preceded by its
    length: unambiguous as long as no field holds U+001F (counted; otherwise the JSON of the
    fields is hashed instead), and a quarter of the time of hashing field by field.
    """
    parts: list[str] = [INDEX_VERSION]
    for case in _queue_order(cases):
        parts += (case.slug, str(case.position), str(len(case.companies)), *case.companies,
                  str(len(case.themes)), *case.themes, case.text_digest)
    text = "\x1f".join(parts)
    if text.count("\x1f") != len(parts) - 1:
        text = json.dumps(parts)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=20).hexdigest()


#: Bumped whenever :func:`corpus_fingerprint` changes what it hashes or how: a fingerprint
#: kept beside the corpus index (:func:`kept_fingerprint`) is stamped with it.
FINGERPRINT_FORMAT = 1


def kept_fingerprint(corpus: Corpus) -> str:
    """:func:`corpus_fingerprint` of the whole corpus, kept beside its corpus index
    (:meth:`~syndicate.corpus.Corpus.kept`) while the index is unchanged: a publish at 10,000
    case studies reads one small file instead of filling every record (about 90 ms). Any
    edit rewrites the corpus index, and so makes it again."""
    version = f"{FINGERPRINT_FORMAT}\x1f{INDEX_VERSION}".encode()
    return corpus.kept("related.fingerprint", version,
                       lambda: corpus_fingerprint(corpus.cases).encode("ascii")).decode("ascii")


def build_index(cases: Iterable[CaseStudy], *, fingerprint: str | None = None) -> RelatednessIndex:
    """Fit the relatedness index over ``cases`` (drafts included: candidates filter at query).

    Pure and deterministic: the same corpus gives the same index, whatever the input order.
    """
    ordered = _queue_order(cases)
    kernels = _kernels(len(ordered))
    documents = [analyze(case.text) for case in ordered]
    vocabulary = sorted({term for terms in documents for term in terms})
    column = {term: col for col, term in enumerate(vocabulary)}
    indptr, indices, counts = _count_rows(kernels, documents, column)
    return _index_of(kernels, ordered, vocabulary, indptr, indices, counts, fingerprint)


def _count_rows(kernels: Kernels, documents: Sequence[Sequence[str]], column: dict[str, int]
                ) -> tuple[Any, Any, Any]:
    """(indptr, indices, counts) of analysed documents, as the kernels hold arrays."""
    if kernels.numeric:
        from . import _numeric

        return _numeric.stack(_numeric.count_rows(documents, column))
    indptr, indices, counts = [0], [], []
    for terms in documents:
        found = Counter(column[term] for term in terms)
        for col in sorted(found):
            indices.append(col)
            counts.append(found[col])
        indptr.append(len(indices))
    return indptr, indices, counts


def _index_of(
    kernels: Kernels,
    ordered: Sequence[CaseStudy],
    vocabulary: Sequence[str],
    indptr: Any,
    indices: Any,
    counts: Any,
    fingerprint: str | None,
) -> RelatednessIndex:
    """The index of term counts (rows in queue order, columns in ``vocabulary`` order):
    terms no row uses any more are dropped, then the idf, row norms and names computed."""
    n = len(ordered)
    df = kernels.document_frequency(indices, len(vocabulary))
    if 0 in df:  # terms only replaced texts had (an update): a fit would not know them
        kept = [col for col, d in enumerate(df) if d]
        indices = kernels.renumber(indices, kept, len(vocabulary))
        vocabulary = [vocabulary[col] for col in kept]
        df = [df[col] for col in kept]
    largest = kernels.largest(counts)
    idf = term_idf(df, n)
    arrays: dict[str, Any] = {
        "indptr": kernels.array_of(indptr, "q"), "indices": kernels.array_of(indices, "i"),
        "counts": kernels.array_of(counts, "i"), "idf": kernels.array_of(idf, "d"),
    }
    arrays["norms"] = kernels.array_of(kernels.norms(
        arrays["indptr"], arrays["indices"], arrays["counts"], arrays["idf"], largest), "d")
    for kind, (row_ptr, ids, frequency) in _names(ordered).items():
        arrays[f"{kind}_indptr"] = kernels.array_of(row_ptr, "q")
        arrays[f"{kind}_ids"] = kernels.array_of(ids, "i")
        arrays[f"{kind}_idf"] = kernels.array_of(name_weights(frequency, n), "f")
    lines = _store.names_lines(
        [(_unique_names(case.companies), _unique_names(case.themes)) for case in ordered])
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    arrays["names_offsets"] = kernels.array_of(offsets, "q")
    texts = {
        "slugs": _json([case.slug for case in ordered]), "names": b"".join(lines),
        "vocabulary": _json(list(vocabulary)),
        "digests": _json([case.text_digest for case in ordered]),
    }
    key = fingerprint if fingerprint is not None else corpus_fingerprint(ordered)
    return RelatednessIndex(Store(key, n, len(vocabulary), largest, MappingProxyType(arrays),
                                  MappingProxyType(texts), kernels.numeric))


def _names(ordered: Sequence[CaseStudy]) -> dict[str, tuple[list[int], list[int], list[int]]]:
    """Per kind (company, theme): each row's name numbers (indptr, ids; names numbered in
    order of first appearance) and each name's number of rows."""
    made = {}
    for kind, field in (("company", "companies"), ("theme", "themes")):
        column: dict[str, int] = {}
        row_ptr, ids = [0], list[int]()
        for case in ordered:
            ids.extend(column.setdefault(key, len(column))
                       for key in _unique_names(getattr(case, field)))
            row_ptr.append(len(ids))
        frequency = [0] * len(column)
        for col in ids:
            frequency[col] += 1
        made[kind] = (row_ptr, ids, frequency)
    return made


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def update_index(
    previous: RelatednessIndex, cases: Iterable[CaseStudy], *, fingerprint: str | None = None
) -> RelatednessIndex | None:
    """The index of ``cases`` computed from ``previous``: only the case studies whose text is
    not among ``previous``'s (by :attr:`~syndicate.corpus.CaseStudy.text_digest`) are read and
    analysed; the other rows' term counts are copied (a vectorised gather, renumbered if the
    vocabulary changed), then the idf, row norms and name signals are recomputed (vectorised,
    a fraction of a fit). The result equals :func:`build_index` of ``cases`` (same arrays:
    checked by the tests).

    None when most texts are new (a fit is then as cheap), or when the corpus crosses
    :data:`PLAIN_BELOW` (the other kernels: a fit).
    """
    store = previous._store
    ordered = _queue_order(cases)
    kernels = _kernels(len(ordered))
    if kernels.numeric != store.numeric:
        return None
    row_of = {digest: row for row, digest in enumerate(store.text("digests"))}
    sources = [row_of.get(case.text_digest, -1) for case in ordered]
    fresh = {index: analyze(case.text) for index, case in enumerate(ordered)
             if sources[index] < 0}
    if len(fresh) * 2 > len(ordered):
        return None
    known: list[str] = store.text("vocabulary")
    added = set().union(*fresh.values()).difference(known) if fresh else set()
    vocabulary = sorted(added.union(known)) if added else known
    column = {term: col for col, term in enumerate(vocabulary)}
    # Sorted vocabularies: the old-to-new column map is increasing, row columns stay sorted.
    remap = [column[term] for term in known] if added else None
    fresh_rows = _fresh_rows(fresh, column)
    indptr, indices, counts = kernels.assemble(store, sources, fresh_rows, remap)
    return _index_of(kernels, ordered, vocabulary, indptr, indices, counts, fingerprint)


def _fresh_rows(fresh: dict[int, list[str]], column: dict[str, int]
                ) -> dict[int, tuple[list[int], list[int]]]:
    """{row: (its sorted term numbers, their counts)} of the newly analysed texts."""
    made = {}
    for row, terms in fresh.items():
        found = Counter(column[term] for term in terms)
        ordered = sorted(found)
        made[row] = (ordered, [found[col] for col in ordered])
    return made


# --------------------------------------------------------------------------- TF-IDF alone


def term_counts(documents: Sequence[Sequence[str]]) -> tuple[list[str], CSR]:
    """(vocabulary in sorted order, document x term matrix of counts) of analysed documents."""
    from . import _numeric

    vocabulary = sorted({term for terms in documents for term in terms})
    column = {term: col for col, term in enumerate(vocabulary)}
    indptr, indices, counts = _numeric.stack(_numeric.count_rows(documents, column))
    return vocabulary, _numeric.CSR(counts, indices, indptr, (len(documents), len(vocabulary)))


def tfidf(counts: CSR) -> CSR:
    """TF-IDF rows of a count matrix, as scikit-learn's ``TfidfVectorizer(sublinear_tf=True)``
    computes them (checked by the tests): ``tf = 1 + log(count)``, the smooth
    ``idf = log((1 + n) / (1 + df)) + 1``, each row of unit Euclidean length; the very
    arithmetic of the index (float32 weights).

    Written out instead of importing scikit-learn, whose import alone (over a second) was most
    of a cold ``publish-next``; and a function of the counts only, so that an edited case
    study costs its own analysis, not the whole corpus's.
    """
    from . import _numeric

    return _numeric.tfidf(counts)


# --------------------------------------------------------------------------- cache (I/O)

_CACHE_PREFIX = "related-"
_CACHE_SUFFIX = ".rel"
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Memory:
    cases: tuple[CaseStudy, ...]
    key: str
    index: RelatednessIndex


_memory: list[_Memory] = []  # zero or one entry
_memory_lock = threading.Lock()


def save_index(index: RelatednessIndex, path: Path) -> None:
    """Write ``index`` to ``path`` atomically."""
    _store.write(index._store, path)


def load_index(path: Path) -> RelatednessIndex:
    """Read an index written by :func:`save_index` (never runs anything from the file): a
    large one is memory-mapped, only the rows a query touches are read."""
    # This module's PLAIN_BELOW, read at call time (what tests and benches move).
    return RelatednessIndex(_store.read(path, lambda rows: rows >= PLAIN_BELOW))


def load_or_build(
    cases: Sequence[CaseStudy],
    cache_dir: Path | None = None,
    *,
    fingerprint: str | None = None,
) -> RelatednessIndex:
    """The index of ``cases``: from memory, else from ``cache_dir``, else fitted (and cached).

    The cache file is ``<cache_dir>/related-<fingerprint>.rel``; older ones are removed when a
    new one is written. A missing, corrupt or outdated file is never an error: the index is
    refitted (and a cache that cannot be written is only logged). With ``cache_dir=None`` only
    the in-memory copy is used.

    In memory, the last corpus is kept: called again with equal case studies (the same objects
    cost microseconds, equal ones reloaded from disk a few ms at 10,000), the index is
    returned without fingerprinting. Otherwise the key is :func:`corpus_fingerprint` (about
    20 ms at 10,000 case studies); a caller holding a cheaper key that changes whenever the
    corpus does may pass it as ``fingerprint`` instead.
    """
    cases = tuple(cases)
    key = None
    if fingerprint is not None:
        # The algorithm version is part of every key, whoever computed the rest.
        key = hashlib.blake2b(
            f"{INDEX_VERSION}\x1f{fingerprint}".encode(), digest_size=20).hexdigest()
    with _memory_lock:
        memory = _memory[0] if _memory else None
    if memory is not None and (memory.key == key if key is not None
                               else _same_cases(memory.cases, cases)):
        return memory.index
    if key is None:
        key = corpus_fingerprint(cases)
    path = cache_dir / f"{_CACHE_PREFIX}{key}{_CACHE_SUFFIX}" if cache_dir is not None else None
    index = None
    if memory is not None and memory.key == key:
        index = memory.index  # same corpus, other objects or order
    elif path is not None and path.is_file():
        try:
            index = load_index(path)
        except Exception as exc:  # a cache: whatever is wrong with the file, refit instead
            _log.info("relatedness cache %s unreadable (%s), refitting", path, exc)
        if index is not None and index.fingerprint != key:
            index = None
    if index is None:
        previous = memory.index if memory is not None else None
        if previous is None and cache_dir is not None:
            previous = _latest_cached(cache_dir)
        if previous is not None:
            try:
                index = update_index(previous, cases, fingerprint=key)
            except (ValueError, KeyError, IndexError) as exc:  # a damaged cache: a fit
                _log.info("relatedness update failed (%s), refitting", exc)
        if index is None:
            index = build_index(cases, fingerprint=key)
        if path is not None:
            try:
                save_index(index, path)
                for old in [*path.parent.glob(f"{_CACHE_PREFIX}*{_CACHE_SUFFIX}"),
                            *path.parent.glob(f"{_CACHE_PREFIX}*.npz")]:  # related-3's
                    if old != path:
                        old.unlink(missing_ok=True)
            except OSError as exc:
                _log.warning("cannot write the relatedness cache %s: %s", path, exc)
    with _memory_lock:
        # One entry is enough: a process works on one corpus; keeping older ones would only
        # hold memory (tens of MB at 10,000 case studies).
        _memory[:] = [_Memory(cases, key, index)]
    return index


def _same_cases(one: Sequence[CaseStudy], two: Sequence[CaseStudy]) -> bool:
    """Whether two corpora are the same for relatedness, in the same order, without reading
    the body of a case study from the corpus index (``==`` would read every file)."""
    def key(case: CaseStudy) -> tuple[object, ...]:
        return (case.slug, case.position, case.companies, case.themes, case.text_digest)

    return len(one) == len(two) and all(
        a is b or key(a) == key(b) for a, b in zip(one, two, strict=True))


def _latest_cached(cache_dir: Path) -> RelatednessIndex | None:
    """The index cached for an earlier state of the corpus, if a readable one is there: what
    an edit's update starts from (mapped: only what the update reads is read)."""
    try:
        files = sorted(cache_dir.glob(f"{_CACHE_PREFIX}*{_CACHE_SUFFIX}"),
                       key=lambda path: path.stat().st_mtime_ns, reverse=True)
    except OSError:
        return None
    for path in files[:3]:  # a few at most: older ones are removed when one is written
        try:
            return load_index(path)
        except Exception as exc:  # a cache: a bad file only means a full fit
            _log.info("relatedness cache %s unreadable (%s), ignored", path, exc)
    return None


def clear_memory_cache() -> None:
    """Forget the in-memory index (tests, benchmarks)."""
    with _memory_lock:
        _memory.clear()


__all__ = [
    "FINGERPRINT_FORMAT", "INDEX_VERSION", "PLAIN_BELOW", "W_COMPANY", "W_THEME",
    "RankingQuality", "Related", "RelatednessIndex", "analyze", "build_index",
    "clear_memory_cache", "corpus_fingerprint", "kept_fingerprint", "load_index",
    "load_or_build", "name_idf", "name_key", "ranking_quality", "save_index",
    "term_counts", "tfidf", "update_index",
]
