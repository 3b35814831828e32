"""Archive pages: one per edition, the index, numbered pages, year pages, one per company.

Pure: views and config in, ``(relative path, html)`` out; the ``archive`` channel
writes them. Paths follow :mod:`syndicate.render.urls` (``<slug>/index.html``,
``entreprises/<company-slug>/index.html``, ``page/<n>/index.html``, ``<year>/index.html``)
so every link in feeds and emails lands.

Publishing an edition changes only a few pages (its own, the index, the pages of
the companies it cites, its numbered page and its year's page); :func:`plan_archive`
names those plus any page that is missing, so a publication costs the same on a history
of 10 or 10,000 editions. The index lists the newest ``[publish] archive_page_size``
editions; every edition is also on a numbered page counted from the oldest (``page/1/``
holds editions 1 to 50: a page's address and content stay put as editions are added)
and on its year's page. Edition pages link to the previous and next editions, so
publishing one also rewrites the page of the edition before it (and after it, for a
correction). The sitemap is an index (``sitemap.xml``) of one small sitemap per year and
one of the other pages, so it too costs a publication the same whatever the history. The
shipped ``favicon.svg`` is written when missing (unless ``[site] favicon``).

:func:`iter_archive` renders the planned pages one at a time (edition pages completed in
batches by ``expand_many``), so a rebuild of thousands of pages never holds them all.

The layout (pages, years, companies, sitemaps) is made from the history's facts
(:class:`~syndicate.render.model.EditionFacts`: slug, number, date, companies), never from
its views: of a :class:`~syndicate.render.model.LazyHistory` only the views of the pages
rendered are built (a publish at 5,000 editions builds a few hundred, not 5,000).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from ..config import Config
from ..text import company_slug, reading_minutes
from .email import preheader_for
from .model import EditionFacts, EditionView, Link, ViewSequence, facts_of
from .templates import NBSP, french_date, render_template
from .urls import archive_page_url, asset_url, company_url, feed_url, year_url

NNBSP = "\u202f"  # the narrow no-break space between thousands

INDEX = "index.html"
COMPANIES_DIR = "entreprises"
COMPANIES_INDEX = f"{COMPANIES_DIR}/index.html"
#: The index shows an excerpt for this many recent editions, titles only for the rest
#: (a 10,000-edition index stays a few megabytes).
INDEX_EXCERPTS = 20
SITEMAP = "sitemap.xml"
#: The sitemap of every page but the editions (index, numbered pages, companies).
SITEMAP_PAGES = "sitemap-pages.xml"
FAVICON = "favicon.svg"
PAGES_DIR = "page"
#: Edition pages are completed (full text, links) this many at a time, in one ledger query.
EXPAND_BATCH = 100


def edition_path(slug: str) -> str:
    return f"{slug}/index.html"


def company_path(company: str) -> str:
    return f"{COMPANIES_DIR}/{company_slug(company)}/index.html"


def archive_page_path(page: int) -> str:
    return f"{PAGES_DIR}/{page}/index.html"


def year_path(year: int) -> str:
    return f"{year}/index.html"


def sitemap_year_path(year: int) -> str:
    return f"sitemap-{year}.xml"


class Picked(ViewSequence):
    """Some editions of a history, by position (newest first): their views are the
    history's, built when read; :meth:`fact` says what the layout needs without one."""

    def __init__(self, history: Sequence[EditionView], facts: Sequence[EditionFacts],
                 indices: Sequence[int]) -> None:
        self.history = history
        self.facts = facts
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)

    def _at(self, index: int) -> EditionView:
        return self.history[self.indices[index]]

    def fact(self, index: int) -> EditionFacts:
        return self.facts[self.indices[index]]


@dataclass(frozen=True)
class CompanyEntry:
    """A company's page: its name (as first cited), its URL, the editions citing it."""

    slug: str
    name: str
    url: str
    editions: Picked  # newest first


def companies_of(history: Sequence[EditionView], base_url: str,
                 facts: Sequence[EditionFacts] | None = None) -> dict[str, CompanyEntry]:
    """Every company cited in ``history`` (newest first), keyed by company slug.

    Names that slugify alike ("Back Market", "BackMarket"?) share one page, under the
    name used by the earliest edition (the first time readers met it). Made from
    ``facts`` (default: the history's): no view is built.
    """
    facts = facts_of(history) if facts is None else facts
    names: dict[str, str] = {}
    editions: dict[str, list[int]] = {}
    slugs: dict[str, str] = {}  # company_slug is a regex or two: once per name
    for index, fact in enumerate(facts):  # newest first: the last name seen is the earliest
        for company in fact.companies:
            slug = slugs.get(company)
            if slug is None:
                slug = slugs[company] = company_slug(company)
            names[slug] = company
            cited = editions.get(slug)
            if cited is None:
                editions[slug] = [index]
            elif cited[-1] != index:  # twice in one edition ("Alan", "alan"): listed once
                cited.append(index)
    return {
        slug: CompanyEntry(slug, names[slug], company_url(base_url, names[slug]),
                           Picked(history, facts, editions[slug]))
        for slug in sorted(names)
    }


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
        "favicon": asset_url(base, site.favicon or FAVICON),
        "wordmark": asset_url(base, site.wordmark) if site.wordmark else "",
        "wordmark_dark": (asset_url(base, site.wordmark_dark)
                          if site.wordmark and site.wordmark_dark else ""),
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




# --------------------------------------------------------------------------- layout


class ArchiveLayout:
    """Where each edition of ``history`` (newest first) is listed: the index (the newest
    ``size``), numbered pages of ``size`` counted from the oldest, one page per year.
    Made from the history's facts (``facts``, default: read from ``history``)."""

    def __init__(self, history: Sequence[EditionView], size: int,
                 facts: Sequence[EditionFacts] | None = None) -> None:
        self.history = history
        self.facts = facts_of(history) if facts is None else facts
        self.size = size
        self.total = len(self.facts)
        self.pages = -(-self.total // size)  # ceil: page/1/ .. page/<pages>/
        self.at = {fact.slug: i for i, fact in enumerate(self.facts)}
        years: dict[int, list[int]] = {}
        for i, fact in enumerate(self.facts):
            years.setdefault(fact.published_at.year, []).append(i)  # newest first
        self.years = {year: Picked(history, self.facts, at) for year, at in years.items()}

    def page_of(self, index: int) -> int:
        """The numbered page of ``history[index]`` (page 1: the oldest editions)."""
        return (self.total - 1 - index) // self.size + 1

    def _bounds(self, page: int) -> tuple[int, int]:
        return max(self.total - page * self.size, 0), self.total - (page - 1) * self.size

    def page(self, page: int) -> Sequence[EditionView]:
        """The editions of numbered page ``page``, newest first."""
        start, stop = self._bounds(page)
        return self.history[start:stop]

    def page_facts(self, page: int) -> Sequence[EditionFacts]:
        """The facts of numbered page ``page``'s editions, newest first (no view built)."""
        start, stop = self._bounds(page)
        return self.facts[start:stop]


@dataclass(frozen=True)
class PageLink:
    """A link of a list page's pager (older on the left, newer on the right)."""

    url: str
    label: str


def _range_label(views: Sequence[EditionView] | Sequence[EditionFacts]) -> str:
    """``n° 51 à 100`` for a page's editions (newest first)."""
    first, last = views[-1].number, views[0].number
    return f"n°{NBSP}{first}" if first == last else f"n°{NBSP}{first} à {last}"


def _page_link(layout: ArchiveLayout, page: int, base: str) -> PageLink:
    label = _range_label(layout.page_facts(page))
    return PageLink(archive_page_url(base, page), f"Éditions {label}")


def _list_context(views: Sequence[EditionView], excerpts: int = 0) -> dict[str, object]:
    return {
        "editions": views,
        "dates": {view.number: french_date(view.published_at) for view in views},
        "excerpts": {view.number: preheader_for(view.case.lede)
                     for view in views[:excerpts] if not view.text_missing},
    }


def render_index(history: Sequence[EditionView], config: Config,
                 layout: ArchiveLayout | None = None) -> str:
    """The newest ``archive_page_size`` editions, the years, a link to the older ones
    (``layout``: the history's, when the caller has it)."""
    size = config.publish.archive_page_size
    if layout is None or layout.size != size:
        layout = ArchiveLayout(history, size)
    base = config.site.base_url
    older = None
    if layout.total > size:  # the numbered page holding the newest edition not listed here
        older = _page_link(layout, layout.page_of(size), base)
    return render_template(
        config, "archive/index.html.j2",
        **layout_context(config, base, config.site.title),
        **_list_context(history[:size], INDEX_EXCERPTS),
        total=layout.total,
        total_label=f"{layout.total:,}".replace(",", NNBSP),  # 5 003, the French way
        years=[(year, year_url(base, year), len(views)) for year, views in layout.years.items()],
        older=older,
    )


def render_archive_page(layout: ArchiveLayout, page: int, config: Config) -> str:
    """Numbered page ``page`` (``page/<n>/``): its editions, links to the pages around it."""
    base = config.site.base_url
    views = layout.page(page)
    heading = f"Éditions {_range_label(views)}"
    return render_template(
        config, "archive/list.html.j2",
        **layout_context(config, archive_page_url(base, page),
                         f"{heading} · {config.site.title}"),
        **_list_context(views),
        heading=heading,
        older=_page_link(layout, page - 1, base) if page > 1 else None,
        newer=_page_link(layout, page + 1, base) if page < layout.pages else None,
        pager_label="Pages d’éditions",
    )


def render_year_page(layout: ArchiveLayout, year: int, config: Config) -> str:
    """The editions of ``year`` (``<year>/``), links to the years before and after."""
    base = config.site.base_url
    years = sorted(layout.years)
    at = years.index(year)
    heading = f"Éditions de {year}"
    return render_template(
        config, "archive/list.html.j2",
        **layout_context(config, year_url(base, year), f"{heading} · {config.site.title}"),
        **_list_context(layout.years[year][:]),
        heading=heading,
        older=PageLink(year_url(base, years[at - 1]), str(years[at - 1])) if at else None,
        newer=(PageLink(year_url(base, years[at + 1]), str(years[at + 1]))
               if at + 1 < len(years) else None),
        pager_label="Années",
    )


def render_company_page(entry: CompanyEntry, config: Config) -> str:
    """A company's page: the latest ``[publish] archive_page_size`` editions citing it (the
    page of a company cited every week for years stays one screenful, and cheap to rewrite
    at each of its publications), then, if there are more, the years of the older ones,
    each linking to its year's page."""
    cap = config.publish.archive_page_size
    shown = entry.editions[:cap]
    years: dict[int, int] = {}
    for at in range(cap, len(entry.editions)):  # newest first: so are the years
        year = entry.editions.fact(at).published_at.year
        years[year] = years.get(year, 0) + 1
    base = config.site.base_url
    return render_template(
        config, "archive/company.html.j2",
        **layout_context(config, entry.url, f"{entry.name} · {config.site.title}"),
        company=entry.name,
        total=len(entry.editions),
        editions=shown,
        dates={view.number: french_date(view.published_at) for view in shown},
        older_years=[(year, year_url(base, year), count) for year, count in years.items()],
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




# --------------------------------------------------------------------------- what to write

PageKind = Literal["edition", "company", "page", "year", "index", "companies",
                   "sitemap-year", "sitemap-pages", "sitemap", "favicon"]


@dataclass(frozen=True)
class PlannedPage:
    """One file to (re)write: its path under ``public/``, what it is, which one."""

    path: str
    kind: PageKind
    key: str | int = ""  # the edition's slug, the company's slug, the page number, the year


@dataclass(frozen=True)
class ArchivePlan:
    """The pages to write, in writing order: edition pages first, the indexes and the
    sitemap last (a reader never follows a link to a page not written yet)."""

    history: Sequence[EditionView]
    layout: ArchiveLayout
    companies: dict[str, CompanyEntry]
    pages: tuple[PlannedPage, ...]

    def __len__(self) -> int:
        return len(self.pages)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(page.path for page in self.pages)


def plan_archive(
    history: Sequence[EditionView],
    config: Config,
    *,
    changed: EditionView | None = None,
    missing: Callable[[str], bool] | None = None,
    companies: Iterable[str] = (),
) -> ArchivePlan:
    """The pages to (re)write for ``history`` (every published edition, newest first).

    ``changed`` is the edition being published (or corrected): its page and its neighbours'
    (their previous/next links), the index, its numbered page (and the one before, whose
    "newer" link appears when ``changed`` opens a page; every later one when ``changed`` is
    not the newest, as positions may have moved), the year pages of it and its neighbours,
    the pages of the companies it cites (and of ``companies``: those a corrected edition no
    longer cites), the companies index and the sitemaps it appears in. ``missing(path)`` says
    whether a page is absent on disk: those are planned too. Without ``changed`` and
    ``missing``, everything is planned (a full rebuild). An edition whose text is unknown
    (``text_missing``) never gets its page rendered: the one on disk, if any, is all that is
    left of it.
    """
    everything = changed is None and missing is None
    layout = ArchiveLayout(history, config.publish.archive_page_size)
    entries = companies_of(history, config.site.base_url, layout.facts)

    def wanted(path: str, affected: bool) -> bool:
        return everything or affected or (missing is not None and missing(path))

    at = layout.at.get(changed.slug) if changed is not None else None
    near = [] if at is None else layout.facts[max(at - 1, 0):at + 2]
    near_slugs = {view.slug for view in near}
    pages_hit: set[int] = set()
    years_hit = {view.published_at.year for view in near}
    if at is not None:
        first = layout.page_of(at)
        opens = (layout.total - 1 - at) % layout.size == 0
        last = first if at == 0 else layout.pages
        pages_hit = set(range(max(first - opens, 1), last + 1))

    planned: list[PlannedPage] = []
    for fact in layout.facts:
        path = edition_path(fact.slug)
        if not fact.text_missing and wanted(path, fact.slug in near_slugs):
            planned.append(PlannedPage(path, "edition", fact.slug))
    touched = ({company_slug(c) for c in (*changed.case.companies, *companies)}
               if changed else set())
    for slug, entry in entries.items():
        path = company_path(entry.name)
        if wanted(path, slug in touched):
            planned.append(PlannedPage(path, "company", slug))
    for page in range(1, layout.pages + 1):
        path = archive_page_path(page)
        if wanted(path, page in pages_hit):
            planned.append(PlannedPage(path, "page", page))
    for year in sorted(layout.years):
        path = year_path(year)
        if wanted(path, year in years_hit):
            planned.append(PlannedPage(path, "year", year))
    if wanted(INDEX, changed is not None):
        planned.append(PlannedPage(INDEX, "index"))
    if entries and wanted(COMPANIES_INDEX, bool(touched)):
        planned.append(PlannedPage(COMPANIES_INDEX, "companies"))
    own_year = None if changed is None else changed.published_at.year
    for year in sorted(layout.years):
        path = sitemap_year_path(year)
        if wanted(path, year == own_year):
            planned.append(PlannedPage(path, "sitemap-year", year))
    if wanted(SITEMAP_PAGES, changed is not None):
        planned.append(PlannedPage(SITEMAP_PAGES, "sitemap-pages"))
    if wanted(SITEMAP, changed is not None):
        planned.append(PlannedPage(SITEMAP, "sitemap"))
    if config.site.favicon is None and wanted(FAVICON, False):
        planned.append(PlannedPage(FAVICON, "favicon"))
    return ArchivePlan(history, layout, entries, tuple(planned))


def _expand_each(expand: Callable[[EditionView], EditionView] | None
                 ) -> Callable[[Sequence[EditionView]], Sequence[EditionView]]:
    if expand is None:
        return lambda views: views
    return lambda views: [expand(view) for view in views]


def iter_archive(
    plan: ArchivePlan,
    config: Config,
    *,
    changed: EditionView | None = None,
    expand: Callable[[EditionView], EditionView] | None = None,
    expand_many: Callable[[Sequence[EditionView]], Sequence[EditionView]] | None = None,
) -> Iterator[tuple[str, str]]:
    """Render ``plan``'s pages one at a time, ``(path, text)``, in its order.

    Light views of the history (no text, no links) are completed before their own page is
    rendered: ``expand_many`` (a batch, in one read) or ``expand`` (one by one); ``changed``
    is complete already. At most :data:`EXPAND_BATCH` complete views are held at once.
    """
    complete = expand_many or _expand_each(expand)
    history, layout = plan.history, plan.layout
    pending: list[PlannedPage] = []

    def editions() -> Iterator[tuple[str, str]]:
        lights = [history[layout.at[str(page.key)]] for page in pending]
        todo = [view for view in lights if view is not changed]
        full = {view.slug: view for view in complete(todo)} if todo else {}
        for page, light in zip(pending, lights, strict=True):
            i = layout.at[light.slug]
            yield page.path, render_edition_page(
                full.get(light.slug, light), config,
                previous=history[i + 1] if i + 1 < len(history) else None,
                following=history[i - 1] if i > 0 else None)
        pending.clear()

    for page in plan.pages:
        if page.kind == "edition":
            pending.append(page)
            if len(pending) >= EXPAND_BATCH:
                yield from editions()
            continue
        if pending:
            yield from editions()
        yield page.path, _render_other(plan, page, config)
    if pending:
        yield from editions()


def _render_other(plan: ArchivePlan, page: PlannedPage, config: Config) -> str:
    layout = plan.layout
    if page.kind == "company":
        return render_company_page(plan.companies[str(page.key)], config)
    if page.kind == "page":
        return render_archive_page(layout, int(page.key), config)
    if page.kind == "year":
        return render_year_page(layout, int(page.key), config)
    if page.kind == "index":
        return render_index(plan.history, config, layout)
    if page.kind == "companies":
        return render_companies_index(plan.companies.values(), config)
    if page.kind == "sitemap-year":
        return render_year_sitemap(layout, int(page.key), config)
    if page.kind == "sitemap-pages":
        return render_pages_sitemap(layout, plan.companies.values(), config)
    if page.kind == "sitemap":
        return render_sitemap_index(layout, plan.companies.values(), config)
    if page.kind == "favicon":
        return render_template(config, "archive/favicon.svg.j2")
    raise ValueError(f"not a page to render here: {page}")


def render_archive(
    history: Sequence[EditionView],
    config: Config,
    *,
    changed: EditionView | None = None,
    missing: Callable[[str], bool] | None = None,
    expand: Callable[[EditionView], EditionView] | None = None,
    companies: Iterable[str] = (),
) -> dict[str, str]:
    """Every page :func:`plan_archive` names, rendered, ``{path relative to public/: html}``
    in writing order (small histories, previews, corrections; the ``archive`` channel
    streams with :func:`iter_archive`). ``expand`` completes a light view of ``history``
    (no related links) before its own page is rendered."""
    plan = plan_archive(history, config, changed=changed, missing=missing, companies=companies)
    return dict(iter_archive(plan, config, changed=changed, expand=expand))


# --------------------------------------------------------------------------- sitemaps


def _day(view: EditionView | EditionFacts) -> str:
    return view.published_at.date().isoformat()


def render_year_sitemap(layout: ArchiveLayout, year: int, config: Config) -> str:
    """``sitemap-<year>.xml``: the year's page and its editions, each with its date."""
    views = layout.years[year]
    urls = [(year_url(config.site.base_url, year), _day(views[0]))]
    urls.extend((view.url, _day(view)) for view in views)
    return render_template(config, "archive/sitemap.xml.j2", urls=urls)


def render_pages_sitemap(layout: ArchiveLayout, entries: Iterable[CompanyEntry],
                         config: Config) -> str:
    """``sitemap-pages.xml``: the index, the numbered pages and the company pages, each with
    the date of the newest edition it shows."""
    base = config.site.base_url
    urls: list[tuple[str, str]] = [(base, _day(layout.facts[0]) if layout.facts else "")]
    urls.extend((archive_page_url(base, page), _day(layout.page_facts(page)[0]))
                for page in range(1, layout.pages + 1))
    entries = list(entries)
    if entries:
        urls.append((f"{base}{COMPANIES_DIR}/", max(_day(e.editions.fact(0)) for e in entries)))
        urls.extend((e.url, _day(e.editions.fact(0))) for e in entries)
    return render_template(config, "archive/sitemap.xml.j2", urls=urls)


def render_sitemap_index(layout: ArchiveLayout, entries: Iterable[CompanyEntry],
                         config: Config) -> str:
    """``sitemap.xml`` (sitemaps.org 0.9 index): the pages' sitemap and one per year, each
    with the date of the newest edition it lists."""
    base = config.site.base_url
    newest = _day(layout.facts[0]) if layout.facts else ""
    company_days = [_day(e.editions.fact(0)) for e in entries]
    maps = [(f"{base}{SITEMAP_PAGES}", max([newest, *company_days]))]
    maps.extend((f"{base}{sitemap_year_path(year)}", _day(layout.years[year].fact(0)))
                for year in sorted(layout.years))
    return render_template(config, "archive/sitemapindex.xml.j2", sitemaps=maps)


__all__ = [
    "EXPAND_BATCH",
    "FAVICON",
    "NBSP",
    "SITEMAP",
    "SITEMAP_PAGES",
    "ArchiveLayout",
    "ArchivePlan",
    "CompanyEntry",
    "Picked",
    "PlannedPage",
    "archive_page_path",
    "companies_of",
    "company_path",
    "edition_path",
    "iter_archive",
    "layout_context",
    "plan_archive",
    "reading_time",
    "render_archive",
    "render_archive_page",
    "render_companies_index",
    "render_company_page",
    "render_edition_page",
    "render_index",
    "render_pages_sitemap",
    "render_sitemap_index",
    "render_year_page",
    "render_year_sitemap",
    "sitemap_year_path",
    "year_path",
]
