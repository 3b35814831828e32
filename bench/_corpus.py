"""A synthetic corpus of French-ish case studies, for benchmarks at scale.

``generate_corpus(10_000)`` gives 10,000 case studies shaped like the seeds (a title, a lede,
5-7 sections of 2 paragraphs, 3-6 companies drawn from a pool of a few hundred, 1-3 themes) whose
words are drawn from the seed corpus with its own frequencies (Zipf-like, as real text), so
tokenising, stemming and TF-IDF cost what they would on real articles. Each case study also leans
on one seed article's vocabulary (its "topic"), so that relatedness has real structure to find.

Deterministic: the same ``n``, ``seed`` and source corpus give the same case studies.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from syndicate.corpus import CaseStudy, Section, content_hash, load
from syndicate.text import slugify

REPO = Path(__file__).resolve().parents[1]
SEED_CORPUS = REPO / "syndicate" / "examples" / "corpus"  # the sample case studies

_WORD = re.compile(r"[^\W\d_]+(?:[’'-][^\W\d_]+)*")

THEMES = (
    "financement", "croissance", "management", "organisation du travail", "relation client",
    "produit", "recrutement", "culture d’entreprise", "stratégie", "gestion de crise",
    "partenariats", "innovation", "intelligence artificielle", "rentabilité", "international",
    "marque employeur", "pivot", "gouvernance", "prix", "données",
)

# Company names: the seed companies plus names built from these syllables (with a few "&",
# accents and two-word names, so that name matching meets its real difficulties at scale).
_SYLLABLES = ("ka", "lo", "ra", "vi", "ne", "to", "mi", "sa", "po", "li", "za", "qu", "é", "on",
              "ar", "bel", "cor", "dan", "fé", "gal", "hor", "jo", "ly", "mar", "nor", "pi",
              "ré", "sol", "ter", "vox", "wa", "xy")
_SUFFIXES = ("", "", "", "", " Lab", " & Co", " Cloud", " Studio", " Santé", " Énergie")

TOPIC_SHARE = 0.4  # part of a case study's words drawn from its topic article


def _seed_cases(source: Sequence[CaseStudy] | None) -> Sequence[CaseStudy]:
    if source is not None:
        cases = source
    else:
        cases = load(SEED_CORPUS).cases if SEED_CORPUS.is_dir() else ()
    if not cases:
        raise RuntimeError(
            f"no seed case study in {SEED_CORPUS}: import the seeds first "
            "(syndicate corpus import) or pass source=")
    return cases


def _distribution(words: list[str], vocabulary: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """(word ids, cumulative probabilities) of a bag of words, for inverse-CDF sampling."""
    counts = Counter(words)
    ids = np.array([vocabulary[word] for word in sorted(counts)], dtype=np.int64)
    weights = np.array([counts[word] for word in sorted(counts)], dtype=np.float64)
    return ids, np.cumsum(weights) / weights.sum()


def _company_pool(rng: np.random.Generator, seed_names: Sequence[str], size: int) -> list[str]:
    pool = list(dict.fromkeys(seed_names))
    seen = {name.casefold() for name in pool}
    while len(pool) < size:
        count = int(rng.integers(2, 4))
        stem = "".join(_SYLLABLES[i] for i in rng.integers(0, len(_SYLLABLES), count))
        name = stem.capitalize() + _SUFFIXES[int(rng.integers(0, len(_SUFFIXES)))]
        if name.casefold() not in seen:
            seen.add(name.casefold())
            pool.append(name)
    return pool


def generate_corpus(
    n: int,
    seed: int = 0,
    *,
    source: Sequence[CaseStudy] | None = None,
    companies: int = 300,
) -> list[CaseStudy]:
    """``n`` synthetic case studies (positions 1..n, unique slugs), in queue order.

    ``source`` is the corpus whose vocabulary is reused (default: the repository's ``corpus/``).
    """
    cases = _seed_cases(source)
    rng = np.random.default_rng(seed)
    per_case = [
        [w.lower() if not w[:1].isupper() or i == 0 else w
         for paragraph in case.paragraphs for i, w in enumerate(_WORD.findall(paragraph))]
        for case in cases
    ]
    words = sorted({word for bag in per_case for word in bag})
    vocabulary = {word: i for i, word in enumerate(words)}
    global_ids, global_cdf = _distribution([w for bag in per_case for w in bag], vocabulary)
    topics = [_distribution(bag, vocabulary) for bag in per_case]
    pool = _company_pool(rng, [name for case in cases for name in case.companies], companies)
    # Zipf-like popularity: a few companies are cited again and again, most only a few times.
    popularity = 1.0 / np.arange(1, len(pool) + 1) ** 0.8
    popularity /= popularity.sum()

    def draw(count: int, topic: int) -> list[str]:
        ids, cdf = topics[topic]
        from_topic = rng.random(count) < TOPIC_SHARE
        picks = np.where(
            from_topic,
            ids[np.minimum(np.searchsorted(cdf, rng.random(count)), ids.size - 1)],
            global_ids[np.minimum(np.searchsorted(global_cdf, rng.random(count)),
                                  global_ids.size - 1)],
        )
        return [words[i] for i in picks.tolist()]

    result = []
    for number in range(1, n + 1):
        topic = int(rng.integers(0, len(cases)))
        cited = [pool[i] for i in rng.choice(len(pool), size=int(rng.integers(3, 7)),
                                             replace=False, p=popularity).tolist()]
        themes = tuple(THEMES[i] for i in sorted(
            rng.choice(len(THEMES), size=int(rng.integers(1, 4)), replace=False).tolist()))
        n_sections = int(rng.integers(5, 8))
        # The shape first (words per sentence, sentences per paragraph), then every word of the
        # case study in one draw: numpy calls per sentence would dominate the generation time.
        # Paragraphs: the lede, then 2 per section; the title and headings are one sentence each.
        shape = [int(n) for n in rng.integers(3, 6, size=1 + 2 * n_sections)]
        lengths = rng.integers(12, 25, size=sum(shape)).tolist()
        title_len, heading_lens = int(rng.integers(6, 11)), rng.integers(3, 7, n_sections).tolist()
        stream = draw(sum(lengths) + title_len + sum(heading_lens), topic)
        cursor = [0]  # read position in the stream

        def sentence(count: int, lead: str = "", end: str = ".", stream=stream,
                     cursor=cursor) -> str:
            start = cursor[0]
            cursor[0] = start + count
            text = " ".join(stream[start:start + count])
            return (lead + text if lead else text[:1].upper() + text[1:]) + end

        counts = iter(lengths)

        def paragraph(sentences: int, lead: str = "", counts=counts, sentence=sentence) -> str:
            return " ".join([sentence(next(counts), lead if i == 0 else "")
                             for i in range(sentences)])

        title = sentence(title_len, end="")
        lede = paragraph(shape[0])
        sections = tuple(
            Section(sentence(heading_lens[index], end=""), (
                # Most sections tell one company's story, as in the seeds ("Chez Skello, ...").
                paragraph(shape[1 + 2 * index], lead=f"Chez {cited[index % len(cited)]}, "),
                paragraph(shape[2 + 2 * index]),
            ))
            for index in range(n_sections)
        )
        result.append(CaseStudy(
            slug=f"{slugify(title, max_length=48)}-{number}",
            title=title,
            lede=lede,
            sections=sections,
            position=number,
            companies=tuple(cited),
            themes=themes,
            content_hash=content_hash(title, lede, sections),
        ))
    return result


__all__ = ["THEMES", "generate_corpus"]
