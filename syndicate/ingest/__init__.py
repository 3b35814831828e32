"""The importer: scraped blog pages in, corpus files out.

* :mod:`.html` turns an HTML page into text (trafilatura) and tells a page not in French;
* :mod:`.segment` reads a page into articles (structure, no list of titles);
* :mod:`.chrome` names the site chrome it strips;
* :mod:`.companies` finds the companies whose story each section tells;
* :mod:`.themes` guesses a few tags from a small lexicon;
* :mod:`.importer` dedupes against the corpus, handles conflicts and writes files.
"""

from __future__ import annotations

from .companies import extract_companies
from .importer import ImportReport, Outcome, build_case, import_pages, read_page
from .segment import ParsedArticle, ParsedPage, Skipped, parse_page
from .themes import guess_themes

__all__ = [
    "ImportReport", "Outcome", "ParsedArticle", "ParsedPage", "Skipped", "build_case",
    "extract_companies", "guess_themes", "import_pages", "parse_page", "read_page",
]
