"""HTML pages and the page's language, before the structural reading of :mod:`.segment`.

An HTML page is reduced to its main content by trafilatura (a well-kept main-content
extractor: it drops the navigation, sidebars, footers, figure captions and images' alt text)
and written out as the same one-block-per-line text a scraped text page is, so the same
segmentation reads both. The text of each block is kept as the page has it (entities decoded,
runs of white space made one space); no tag ever reaches a title or a slug. The title is the
page's own (``<h1>``, ``og:title``), put first when the extracted text does not start with it.

The language test is a stop-word ratio: the share of a page's words that are French function
words ("le", "de", "que"…) against the share of English ones. Business prose in French has
about a third of its words in the French list and few in the English one.
"""

from __future__ import annotations

import re

from ..text import english_stop_words, french_stop_words

_HTML_START = re.compile(r"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b",
                         re.IGNORECASE | re.DOTALL)


def is_html(text: str, name: str = "") -> bool:
    """Whether a page is HTML: its name says so, or it starts like an HTML document."""
    return name.lower().endswith((".html", ".htm", ".xhtml")) or bool(_HTML_START.match(text))


def html_to_text(html: str) -> str:
    """The main content of an HTML page as text, one block per line, the title first.
    Empty when the page has no main content."""
    import trafilatura  # lazy: lxml and its friends, only for HTML pages

    body = trafilatura.extract(
        html, output_format="txt", include_comments=False, include_tables=True,
        include_images=False, include_links=False, include_formatting=False,
        deduplicate=False, with_metadata=False,
    ) or ""
    lines = [" ".join(line.split()) for line in body.splitlines()]
    lines = [line for line in lines if line]
    metadata = trafilatura.extract_metadata(html)
    title = " ".join((metadata.title or "").split()) if metadata is not None else ""
    if title and lines and title not in lines[:4]:
        lines.insert(0, title)
    return "\n".join(lines) + "\n" if lines else ""


_WORDS = re.compile(r"[^\W\d_]+(?:[’'][^\W\d_]+)?")


def language_ratios(text: str) -> tuple[float, float, int]:
    """The share of French and of English stop words among the words of ``text``, and
    the number of words."""
    words = [w.lower() for w in _WORDS.findall(text)]
    words = [w.split("’")[-1].split("'")[-1] if w[:2] in {"l’", "d’", "l'", "d'"} else w
             for w in words]
    if not words:
        return 0.0, 0.0, 0
    french_words, english_words = french_stop_words(), english_stop_words()
    french = sum(w in french_words for w in words) / len(words)
    english = sum(w in english_words for w in words) / len(words)
    return french, english, len(words)


def not_french(text: str) -> str | None:
    """Why a page does not look French (None when it does, or is too short to tell)."""
    french, english, words = language_ratios(text)
    if words < 40:
        return None
    if english > french or french < 0.2:
        return (f"{french:.0%} of its words are French stop words, {english:.0%} English "
                f"ones")
    return None
