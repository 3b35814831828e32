"""Importing pages into the corpus: dedupe, conflicts, queue positions, the report.

Decisions, article by article, in page order:

* its text hash equals the ``content_hash`` of a corpus file (the hash *as imported*, so
  an operator's later typo fix does not matter), or the hash of a file's current text, or
  of an article imported earlier in the same run: **duplicate**, nothing written;
* it is the same article as a corpus file (same slug and same title or similar text, same
  title, or same source page and rank with similar text) but its text differs:
  **conflict**, written only with ``--force``, and then only the text (title, lede,
  sections), the source and the hash are replaced: the file name, slug, position, status,
  companies and themes stay as the operator left them;
* otherwise **new**: a file ``<slug>.md`` at the end of the queue (``-2``, ``-3``... when
  another article already has the slug, or when it is a reserved name: ``page-2``, see
  :func:`syndicate.text.reserved_slug`).

Nothing is written with ``dry_run``; files are written atomically. Unreadable pages are
reported as errors and the other pages are still imported. An HTML page is reduced to its
main content first (:mod:`.html`); a page that does not look French is imported with a
warning.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..corpus import CaseStudy, Source, check, content_hash, corpus_files, save
from ..errors import IngestError
from ..text import reserved_slug, slugify
from .companies import extract_companies
from .html import html_to_text, is_html, not_french
from .segment import ParsedArticle, Skipped, parse_page
from .themes import guess_themes

SIMILAR = 0.5  # word-set overlap above which two texts are versions of one article


@dataclass(frozen=True)
class Outcome:
    kind: str  # "new" | "duplicate" | "conflict"
    page: str
    rank: int
    slug: str
    detail: str
    written: bool = False


@dataclass
class ImportReport:
    dry_run: bool = False
    force: bool = False
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: list[tuple[str, Skipped]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    pages: list[tuple[str, int, int]] = field(default_factory=list)  # name, articles, skipped

    def count(self, kind: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.kind == kind)

    @property
    def written(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.written]

    def totals(self) -> str:
        return (f"new: {self.count('new')}, duplicate: {self.count('duplicate')}, "
                f"conflict: {self.count('conflict')}, skipped: {len(self.skipped)}, "
                f"errors: {len(self.errors)}")

    def lines(self, verbose: bool = False) -> list[str]:
        """The printed summary: per page, per article, then the totals line."""
        out = [f"warning: {warning}" for warning in self.warnings]
        for name, articles, skipped in self.pages:
            out.append(f"{name}: {articles} article{'s' * (articles != 1)}, "
                       f"{skipped} line{'s' * (skipped != 1)} skipped")
            for outcome in self.outcomes:
                if outcome.page == name:
                    out.append(f"  {outcome.kind:<9} #{outcome.rank} {outcome.slug}: "
                               f"{outcome.detail}")
            if verbose:
                out.extend(f"  skipped   line {item.line} ({item.reason}): {item.text}"
                           for page, item in self.skipped if page == name)
        out.extend(f"error: {error}" for error in self.errors)
        if self.dry_run:
            out.append("dry run: nothing written")
        out.append(self.totals())
        return out


def read_page(path: Path) -> str:
    """The text of a scraped page; :class:`IngestError` if it is no readable text page."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise IngestError(path, "no such file") from exc
    except IsADirectoryError as exc:
        raise IngestError(path, "is a directory, not a page") from exc
    except OSError as exc:
        raise IngestError(path, f"cannot read: {exc.strerror}") from exc
    if b"\x00" in raw[:65536]:
        raise IngestError(path, "binary file, not a text page")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise IngestError(path, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}, "
                                f"offset {exc.start})") from exc
    return text.removeprefix("\ufeff")


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w{3,}", text.lower()))


def similarity(a: str, b: str) -> float:
    """Overlap of the two texts' word sets (Jaccard)."""
    wa, wb = _words(a), _words(b)
    return len(wa & wb) / len(wa | wb) if wa and wb else 0.0


def _norm_title(title: str) -> str:
    return " ".join(unicodedata.normalize("NFC", title).casefold().split())


def build_case(article: ParsedArticle, page: str, position: int, slug: str) -> CaseStudy:
    """A new case study from an article read on ``page``."""
    texts = [article.title, article.lede]
    for section in article.sections:
        texts += [section.heading, *section.paragraphs]
    lowercase = {w for w in re.findall(r"\w+", " ".join(texts)) if w.islower()}
    # the chapô too: some pages tell a company's story there ("Alan, l’assureur santé, …")
    companies = extract_companies([(article.lede,), *(s.paragraphs for s in article.sections)],
                                  lowercase)
    themes = guess_themes(article.title, texts[1:])
    return CaseStudy(
        slug=slug, title=article.title, lede=article.lede, sections=article.sections,
        position=position, status="ready", companies=companies, themes=themes,
        source=Source(page, article.rank),
        content_hash=content_hash(article.title, article.lede, article.sections),
    )


class _Corpus:
    """What the import knows of the corpus folder, kept up to date as it writes."""

    def __init__(self, directory: Path, report: ImportReport) -> None:
        self.directory = directory
        cases, problems = check(directory) if directory.is_dir() else ([], [])
        report.warnings.extend(f"{p} (file ignored by the import)" for p in problems)
        self.cases: list[CaseStudy] = cases
        loaded = {case.path for case in cases}
        # files that exist but could not be read: their names are taken, never overwritten
        self.broken = {p.stem for p in corpus_files(directory) if p not in loaded} \
            if directory.is_dir() else set()
        self.position = max((case.position for case in cases), default=0)

    def taken(self, slug: str) -> bool:
        return slug in self.broken or any(case.slug == slug for case in self.cases)

    def duplicate_of(self, digest: str) -> CaseStudy | None:
        for case in self.cases:
            if digest in (case.content_hash, case.computed_hash()):
                return case
        return None

    def same_article(self, article: ParsedArticle, page: str, slug: str) -> CaseStudy | None:
        text = _article_text(article)
        title = _norm_title(article.title)
        for case in self.cases:
            if case.slug == slug and (_norm_title(case.title) == title
                                      or similarity(case.text, text) >= SIMILAR):
                return case
        for case in self.cases:
            if _norm_title(case.title) == title:
                return case
        for case in self.cases:
            if (case.source == Source(page, article.rank)
                    and similarity(case.text, text) >= SIMILAR):
                return case
        return None

    def free_slug(self, slug: str) -> str:
        """The slug, or with ``-2``, ``-3``... when another article has it or it is a reserved
        name (``page``, ``2026``, ``subscribe``...: ``page-2``)."""
        candidate, n = slug, 1
        while self.taken(candidate) or reserved_slug(candidate):
            n += 1
            candidate = f"{slug}-{n}"
        return candidate

    def replace_case(self, old: CaseStudy, new: CaseStudy) -> None:
        self.cases = [new if case is old else case for case in self.cases]


def _article_text(article: ParsedArticle) -> str:
    parts = [article.title, article.lede]
    for section in article.sections:
        parts += [section.heading, *section.paragraphs]
    return "\n\n".join(parts)


def import_pages(pages: Iterable[Path], corpus_dir: Path, *, force: bool = False,
                 dry_run: bool = False) -> ImportReport:
    """Import scraped pages into ``corpus_dir``; see the module docstring."""
    report = ImportReport(dry_run=dry_run, force=force)
    corpus = _Corpus(corpus_dir, report)
    for path in pages:
        try:
            text = read_page(path)
            if is_html(text, path.name):
                text = html_to_text(text)
            parsed = parse_page(text)
            if not parsed.articles:
                raise IngestError(path, "no article found (expected a title, a one-paragraph "
                                        "lede, then headings with paragraphs)")
        except IngestError as exc:
            report.errors.append(str(exc))
            continue
        name = path.name
        foreign = not_french("\n".join(_article_text(a) for a in parsed.articles))
        if foreign is not None:
            report.warnings.append(f"{name}: the page does not look French ({foreign}); "
                                   f"imported anyway, check its case studies")
        report.pages.append((name, len(parsed.articles), len(parsed.skipped)))
        report.skipped.extend((name, item) for item in parsed.skipped)
        for article in parsed.articles:
            report.outcomes.append(_import_article(article, name, corpus, force, dry_run))
    return report


def _import_article(article: ParsedArticle, page: str, corpus: _Corpus, force: bool,
                    dry_run: bool) -> Outcome:
    digest = content_hash(article.title, article.lede, article.sections)
    slug = slugify(article.title)
    original = corpus.duplicate_of(digest)
    if original is not None:
        return Outcome("duplicate", page, article.rank, slug,
                       f"duplicate of {original.slug}")
    if slug in corpus.broken:
        return Outcome("conflict", page, article.rank, slug,
                       f"{slug}.md exists but is not a valid corpus file (see `syndicate "
                       f"corpus check`); not written, even with --force")
    existing = corpus.same_article(article, page, slug)
    if existing is not None:
        where = existing.path.name if existing.path else f"{existing.slug}.md"
        if not force:
            return Outcome("conflict", page, article.rank, existing.slug,
                           f"text differs from {where}; not written (--force replaces the "
                           f"text, keeping position, status, companies and themes)")
        updated = replace(existing, title=article.title, lede=article.lede,
                          sections=article.sections, source=Source(page, article.rank),
                          content_hash=digest)
        if not dry_run:
            save(updated, corpus.directory)
        corpus.replace_case(existing, updated)
        return Outcome("conflict", page, article.rank, existing.slug,
                       f"text replaced in {where} (--force; position {existing.position}, "
                       f"status, companies and themes kept)", written=not dry_run)
    slug = corpus.free_slug(slug)
    corpus.position += 1
    case = build_case(article, page, corpus.position, slug)
    if not dry_run:
        path = save(case, corpus.directory)
        case = replace(case, path=path)
    else:
        case = replace(case, path=corpus.directory / f"{slug}.md")
    corpus.cases.append(case)
    companies = ", ".join(case.companies) or "none found"
    return Outcome("new", page, article.rank, slug,
                   f"position {case.position}, {len(case.sections)} sections, "
                   f"companies: {companies}", written=not dry_run)
