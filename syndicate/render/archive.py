"""Archive pages: one per edition, the index of editions, one per company.

Pure: views and config in, ``{relative path: html}`` out; the ``archive`` channel
writes them. Paths follow :mod:`syndicate.render.urls` (``<slug>/index.html``,
``entreprises/<company-slug>/index.html``) so every link in feeds and emails lands.

Publishing an edition changes only a few pages (its own, the index, the pages of
the companies it cites); :func:`render_archive` renders those plus any page that
is missing, so a publication costs the same on a corpus of 10 or 10,000.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ..config import Config
from ..text import company_slug
from .email import preheader_for
from .model import EditionView
from .templates import NBSP, french_date, render_template
from .urls import company_url, feed_url

INDEX = "index.html"
COMPANIES_DIR = "entreprises"
COMPANIES_INDEX = f"{COMPANIES_DIR}/index.html"
#: The index shows an excerpt for this many recent editions, titles only for the rest
#: (a 10,000-edition index stays a few megabytes).
INDEX_EXCERPTS = 20


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


def _layout(config: Config, canonical: str, page_title: str) -> dict[str, object]:
    base = config.site.base_url
    return {
        "site": config.site,
        "canonical": canonical,
        "page_title": page_title,
        "feeds": {kind: feed_url(base, kind) for kind in ("rss", "atom", "json")},
    }


def render_edition_page(view: EditionView, config: Config) -> str:
    return render_template(
        config, "archive/edition.html.j2",
        **_layout(config, view.url, f"{view.title} · {config.site.title}"),
        edition=view,
        date=french_date(view.published_at),
        excerpt=preheader_for(view.case.lede),
    )


def render_index(history: Sequence[EditionView], config: Config) -> str:
    return render_template(
        config, "archive/index.html.j2",
        **_layout(config, config.site.base_url, config.site.title),
        editions=history,
        dates={view.number: french_date(view.published_at) for view in history},
        excerpts={view.number: preheader_for(view.case.lede)
                  for view in history[:INDEX_EXCERPTS] if not view.text_missing},
    )


def render_company_page(entry: CompanyEntry, config: Config) -> str:
    return render_template(
        config, "archive/company.html.j2",
        **_layout(config, entry.url, f"{entry.name} · {config.site.title}"),
        company=entry.name,
        editions=entry.editions,
        dates={view.number: french_date(view.published_at) for view in entry.editions},
    )


def render_companies_index(entries: Iterable[CompanyEntry], config: Config) -> str:
    rows = sorted(((e.name, e.url, len(e.editions)) for e in entries),
                  key=lambda row: row[0].casefold())
    return render_template(
        config, "archive/companies.html.j2",
        **_layout(config, f"{config.site.base_url}{COMPANIES_DIR}/",
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

    pages: dict[str, str] = {}
    for view in history:
        path = edition_path(view.slug)
        if view.text_missing:
            continue
        if wanted(path, changed is not None and view.slug == changed.slug):
            full = expand(view) if expand is not None and view is not changed else view
            pages[path] = render_edition_page(full, config)
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
    return pages


__all__ = [
    "NBSP", "CompanyEntry", "companies_of", "company_path", "edition_path", "render_archive",
    "render_companies_index", "render_company_page", "render_edition_page", "render_index",
]
