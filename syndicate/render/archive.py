"""Archive pages: one per edition, the index of editions, one per company.

Pure: views and config in, ``{relative path: html}`` out; the ``archive`` channel
writes them. Paths follow :mod:`syndicate.render.urls` (``<slug>/index.html``,
``entreprises/<company-slug>/index.html``) so every link in feeds and emails lands.

Publishing an edition changes only a few pages (its own, the index, the pages of
the companies it cites); :func:`render_archive` renders those plus any page that
is missing, so a publication costs the same on a corpus of 10 or 10,000. Edition pages
link to the previous and next editions, so publishing one also rewrites the page of
the edition before it (and after it, for a correction). ``sitemap.xml`` is written
with the index; the shipped ``favicon.svg`` when missing (unless ``[site] favicon``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ..config import Config
from ..text import company_slug, reading_minutes
from .email import preheader_for
from .model import EditionView, Link
from .templates import NBSP, french_date, render_template
from .urls import company_url, feed_url

INDEX = "index.html"
COMPANIES_DIR = "entreprises"
COMPANIES_INDEX = f"{COMPANIES_DIR}/index.html"
#: The index shows an excerpt for this many recent editions, titles only for the rest
#: (a 10,000-edition index stays a few megabytes).
INDEX_EXCERPTS = 20
SITEMAP = "sitemap.xml"
FAVICON = "favicon.svg"


def edition_path(slug: str) -> str:
    return f"{slug}/index.html"


def company_path(company: str) -> str:
    return f"{COMPANIES_DIR}/{company_slug(company)}/index.html"


@dataclass(frozen=True)
class CompanyEntry:
    """A company's page: its name (as first cited), its URL, the editions citing it."""

    slug: str
    name: str
    url: str
    editions: tuple[EditionView, ...]  # newest first


def companies_of(history: Sequence[EditionView], base_url: str) -> dict[str, CompanyEntry]:
    """Every company cited in ``history`` (newest first), keyed by company slug.

    Names that slugify alike ("Back Market", "BackMarket"?) share one page, under the
    name used by the earliest edition (the first time readers met it).
    """
    names: dict[str, str] = {}
    editions: dict[str, list[EditionView]] = {}
    for view in history:  # newest first: the last name seen is the earliest one
        for company in dict.fromkeys(view.case.companies):
            slug = company_slug(company)
            names[slug] = company
            cited = editions.setdefault(slug, [])
            if not cited or cited[-1] is not view:
                cited.append(view)
    return {
        slug: CompanyEntry(slug, names[slug], company_url(base_url, names[slug]),
                           tuple(editions[slug]))
        for slug in sorted(names)
    }


def _asset_url(base: str, value: str) -> str:
    """An absolute URL as written; a path (``logo.svg``, ``/logo.svg``) under ``base``."""
    return value if value.startswith(("http://", "https://")) else base + value.lstrip("/")


def layout_context(config: Config, canonical: str, page_title: str,
            description: str = "") -> dict[str, object]:
    """What ``archive/_base.html.j2`` needs (the web app's pages extend it too)."""
    base = config.site.base_url
    site = config.site
    return {
        "site": site,
        "canonical": canonical,
        "page_title": page_title,
        "description": description or site.description,
        "feeds": {kind: feed_url(base, kind) for kind in ("rss", "atom", "json")},
        "subscribe_url": f"{base}subscribe",
        "favicon": _asset_url(base, site.favicon or FAVICON),
        "wordmark": _asset_url(base, site.wordmark) if site.wordmark else "",
    }


def _link(view: EditionView | None) -> Link | None:
    return None if view is None else Link(view.slug, view.title, view.url)


def reading_time(view: EditionView) -> int:
    """Minutes to read the edition (title, lede, headings and paragraphs)."""
    case = view.case
    parts = [case.title, case.lede]
    for section in case.sections:
        parts.append(section.heading)
        parts.extend(section.paragraphs)
    return reading_minutes(" ".join(parts))


def render_edition_page(view: EditionView, config: Config, *,
                        previous: EditionView | None = None,
                        following: EditionView | None = None) -> str:
    """``previous``/``following``: the editions published just before and after it."""
    excerpt = preheader_for(view.case.lede)
    return render_template(
        config, "archive/edition.html.j2",
        **layout_context(config, view.url, f"{view.title} · {config.site.title}", excerpt),
        edition=view,
        date=french_date(view.published_at),
        excerpt=excerpt,
        minutes=reading_time(view),
        previous=_link(previous),
        following=_link(following),
    )


def render_index(history: Sequence[EditionView], config: Config) -> str:
    return render_template(
        config, "archive/index.html.j2",
        **layout_context(config, config.site.base_url, config.site.title),
        editions=history,
        dates={view.number: french_date(view.published_at) for view in history},
        excerpts={view.number: preheader_for(view.case.lede)
                  for view in history[:INDEX_EXCERPTS] if not view.text_missing},
    )


def render_company_page(entry: CompanyEntry, config: Config) -> str:
    return render_template(
        config, "archive/company.html.j2",
        **layout_context(config, entry.url, f"{entry.name} · {config.site.title}"),
        company=entry.name,
        editions=entry.editions,
        dates={view.number: french_date(view.published_at) for view in entry.editions},
    )


def render_companies_index(entries: Iterable[CompanyEntry], config: Config) -> str:
    rows = sorted(((e.name, e.url, len(e.editions)) for e in entries),
                  key=lambda row: row[0].casefold())
    return render_template(
        config, "archive/companies.html.j2",
        **layout_context(config, f"{config.site.base_url}{COMPANIES_DIR}/",
                  f"Entreprises · {config.site.title}"),
        companies=rows,
    )


def render_archive(
    history: Sequence[EditionView],
    config: Config,
    *,
    changed: EditionView | None = None,
    missing: Callable[[str], bool] | None = None,
    expand: Callable[[EditionView], EditionView] | None = None,
    companies: Iterable[str] = (),
) -> dict[str, str]:
    """The pages to (re)write, ``{path relative to public/: html}``.

    ``history`` is every published edition, newest first (``job.history``).
    ``changed`` is the edition being published: its page, the index and the pages
    of the companies it cites are rendered. ``missing(path)`` says whether a page
    is absent on disk: those are rendered too. Without ``changed`` and ``missing``,
    everything is rendered (a full rebuild). ``expand`` completes a light view of
    ``history`` (no related links) before its own page is rendered. ``companies`` names
    more companies whose pages to render with ``changed``'s (those a corrected edition no
    longer cites). An edition whose text is unknown (``text_missing``) never gets its page
    rendered: the one on disk, if any, is all that is left of it.
    """
    everything = changed is None and missing is None

    def wanted(path: str, affected: bool) -> bool:
        return everything or affected or (missing is not None and missing(path))

    # Neighbours of the changed edition: their previous/next links name it.
    at = next((i for i, v in enumerate(history) if changed and v.slug == changed.slug), None)
    neighbours = set() if at is None else {
        v.slug for v in history[max(at - 1, 0):at + 2] if v.slug != history[at].slug}
    pages: dict[str, str] = {}
    for i, view in enumerate(history):
        path = edition_path(view.slug)
        if view.text_missing:
            continue
        affected = changed is not None and (view.slug == changed.slug or view.slug in neighbours)
        if wanted(path, affected):
            full = expand(view) if expand is not None and view is not changed else view
            pages[path] = render_edition_page(
                full, config,
                previous=history[i + 1] if i + 1 < len(history) else None,
                following=history[i - 1] if i > 0 else None)
    if wanted(INDEX, changed is not None):
        pages[INDEX] = render_index(history, config)
    entries = companies_of(history, config.site.base_url)
    touched = ({company_slug(c) for c in (*changed.case.companies, *companies)}
               if changed else set())
    for slug, entry in entries.items():
        path = company_path(entry.name)
        if wanted(path, slug in touched):
            pages[path] = render_company_page(entry, config)
    if entries and wanted(COMPANIES_INDEX, bool(touched)):
        pages[COMPANIES_INDEX] = render_companies_index(entries.values(), config)
    if wanted(SITEMAP, changed is not None):
        pages[SITEMAP] = render_sitemap(history, entries.values(), config)
    if config.site.favicon is None and wanted(FAVICON, False):
        pages[FAVICON] = render_template(config, "archive/favicon.svg.j2")
    return pages


def render_sitemap(history: Sequence[EditionView], entries: Iterable[CompanyEntry],
                   config: Config) -> str:
    """``sitemap.xml`` (sitemaps.org 0.9): the index, every edition and company page, each
    with the date of the newest edition it shows."""
    base = config.site.base_url
    def day(view: EditionView) -> str:
        return view.published_at.date().isoformat()
    urls: list[tuple[str, str]] = []
    entries = list(entries)
    if history:
        urls.append((base, day(history[0])))
    urls.extend((view.url, day(view)) for view in history)
    if entries:
        newest = max(day(e.editions[0]) for e in entries)
        urls.append((f"{base}{COMPANIES_DIR}/", newest))
        urls.extend((e.url, day(e.editions[0])) for e in entries)
    if not history:
        urls.append((base, ""))
    return render_template(config, "archive/sitemap.xml.j2", urls=urls)

__all__ = [
    "FAVICON",
    "NBSP",
    "SITEMAP",
    "CompanyEntry",
    "companies_of",
    "company_path",
    "edition_path",
    "layout_context",
    "reading_time",
    "render_archive",
    "render_companies_index",
    "render_company_page",
    "render_edition_page",
    "render_index",
    "render_sitemap",
]
