"""French text helpers shared across the package: slugs and Snowball stems.

A leaf (no import from :mod:`syndicate`). One place for each rule, so that a corpus
file's slug, a company page's URL and the stems compared by the importer and by the
relatedness index never drift apart:

- :func:`slugify`: an ASCII slug from a French title (corpus slugs, hence edition URLs).
- :func:`reserved_slug`: the names an edition slug must not take (the archive's own
  folders and files, the web app's routes).
- :func:`company_slug`: a company's page slug (``entreprises/<slug>/``). Published URLs
  depend on it: changing it breaks readers' links (``tests/test_text.py`` pins them).
- :func:`one_line_excerpt`: a lede's first sentence, cut at a word (archive "À lire
  aussi" blocks); :func:`reading_minutes`: words at :data:`READING_WPM`.
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


# An edition lives at <base_url><slug>/ (public/<slug>/index.html), beside the archive's
# own folders (page/<n>/, entreprises/, <year>/), its files (sitemap*.xml, feed.xml,
# feed.json, favicon.svg: a slug has no dot, but a folder named like them is a trap for
# static servers and readers alike) and the web app's routes (/subscribe, /confirm/…,
# /unsubscribe/…, /admin/, /r/…, /static/). tests/test_text.py checks this list against
# a real archive and the app's URL map.
RESERVED_SLUGS = frozenset({
    "page", "entreprises", "sitemap", "feed", "atom", "favicon", "static", "admin", "r", "o",
    "subscribe", "unsubscribe", "confirm", "hooks",
})
_RESERVED_SLUG = re.compile(r"^(?:\d{4}|sitemap-(?:\d{4}|pages)|feed-(?:xml|json))$")


def reserved_slug(slug: str) -> bool:
    """Whether an edition slug would collide with an archive folder or a web route: one of
    :data:`RESERVED_SLUGS`, a year (``2026``) or a sitemap / feed file's name (``sitemap-pages``,
    ``feed-json``). ``page-2`` or ``2026-2`` are free."""
    return slug in RESERVED_SLUGS or bool(_RESERVED_SLUG.match(slug))


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
def english_stop_words() -> frozenset[str]:
    """The same package's English list: the importer's test of a page's language."""
    from stop_words import get_stop_words  # lazy: reads a file

    return frozenset(get_stop_words("english"))


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


#: Reading speed used for "N min de lecture" (words per minute, an adult reading French).
READING_WPM = 230
#: The longest excerpt shown under a related link (about one line on a desktop page).
EXCERPT_LENGTH = 120
# A sentence ends at . ! ? … followed by a space and a capital (not after an initial "J.").
_SENTENCE_END = re.compile(r"(?<=[.!?…])(?<!\b[A-Z]\.)\s+(?=[«\"“A-ZÀ-ÖØ-Ý])")


def one_line_excerpt(text: str, limit: int = EXCERPT_LENGTH) -> str:
    """The first sentence of ``text``; longer than ``limit``, cut at a word with "…"."""
    flat = " ".join(text.split())
    first = _SENTENCE_END.split(flat, maxsplit=1)[0]
    if len(first) <= limit:
        return first
    cut = first[:limit].rsplit(" ", 1)[0].rstrip(" ,;:.–—«\u00a0")
    return cut + "…"


def reading_minutes(text: str, wpm: int = READING_WPM) -> int:
    """Minutes to read ``text`` at ``wpm`` words a minute, rounded up, at least 1."""
    words = len(text.split())
    return max(1, -(-words // wpm))


__all__ = [
    "EXCERPT_LENGTH",
    "READING_WPM",
    "RESERVED_SLUGS",
    "company_slug",
    "french_stem",
    "french_stop_words",
    "one_line_excerpt",
    "reading_minutes",
    "reserved_slug",
    "slugify",
    "strip_accents",
]
