"""French text helpers shared across the package: slugs and Snowball stems.

A leaf (no import from :mod:`syndicate`). One place for each rule, so that a corpus
file's slug, a company page's URL and the stems compared by the importer and by the
relatedness index never drift apart:

- :func:`slugify`: an ASCII slug from a French title (corpus slugs, hence edition URLs).
- :func:`company_slug`: a company's page slug (``entreprises/<slug>/``). Published URLs
  depend on it: changing it breaks readers' links (``tests/test_text.py`` pins them).
- :func:`french_stem`, :func:`strip_accents`, :func:`french_stop_words`: the French
  analysis used by :mod:`syndicate.related` (TF-IDF terms) and
  :mod:`syndicate.ingest.segment` (where one article ends and the next begins).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import cache, lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import snowballstemmer

# --------------------------------------------------------------------------- slugs


def slugify(text: str, max_length: int = 60) -> str:
    """ASCII slug from a French title, cut at a word boundary."""
    text = text.replace("œ", "oe").replace("Œ", "oe").replace("æ", "ae")
    text = re.sub(r"[’'`]", " ", text)  # "d’indépendance" -> "d-independance"
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > max_length:
            break
        slug = candidate
    return slug or "case-study"


@lru_cache(maxsize=1 << 16)
def company_slug(company: str) -> str:
    """The slug of a company's page: ``Alan & Co`` -> ``alan-co``.

    Cached: every light view of the history (thousands) names its companies' pages, and
    the company index walks every edition's companies at each publication.
    """
    return slugify(company)


# --------------------------------------------------------------------------- French analysis

# The analysis is loaded on first use: slugify is needed by every quick command (through
# the corpus), the stemmer (~25 ms to import: every Snowball language) only by the importer
# and the relatedness index.


@cache
def french_stop_words() -> frozenset[str]:
    """The ``stop-words`` package's French list (articles, pronouns, auxiliaries...)."""
    from stop_words import get_stop_words  # lazy: reads a file

    return frozenset(get_stop_words("french"))


@cache
def _stemmer() -> snowballstemmer.stemmer:
    import snowballstemmer  # lazy: imports the stemmers of every language (see above)

    return snowballstemmer.stemmer("french")


# snowballstemmer objects are not thread-safe (they keep the current word in attributes),
# and the web app and the daemon may analyse texts from several threads.
_STEM_LOCK = threading.Lock()


@lru_cache(maxsize=1 << 17)
def french_stem(word: str) -> str:
    """The Snowball French stem of a lowercase ``word``, accents kept (``réussite`` ->
    ``réussit``).

    Memoised: a corpus has a few ten thousand distinct words in millions of tokens, and
    the pure-Python stemmer is the slowest step of both the importer and the index fit.
    """
    stemmer = _stemmer()
    with _STEM_LOCK:
        return str(stemmer.stemWord(word))


def strip_accents(text: str) -> str:
    """``réussite`` -> ``reussite``: combining marks dropped after NFKD decomposition."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


__all__ = [
    "company_slug",
    "french_stem",
    "french_stop_words",
    "slugify",
    "strip_accents",
]
