"""Archive pages: one per edition, the index, numbered and year pages, one per company; and
the ``archive`` channel."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from _render_support import PARIS, hostile_case, make_config, make_history, seed_cases
from markupsafe import escape

from syndicate.render.archive import (
    COMPANIES_INDEX,
    FAVICON,
    INDEX,
    SITEMAP,
    SITEMAP_PAGES,
    archive_page_path,
    companies_of,
    company_path,
    edition_path,
    render_archive,
    sitemap_year_path,
    year_path,
)
from syndicate.render.email import french_date
from syndicate.render.urls import FEED_FILES, company_url, year_url
from syndicate.typography import french

VOID = {"meta", "link", "br", "hr", "img", "input", "source", "wbr", "area", "base", "col"}


class _Page(HTMLParser):
    """Collects links, head links and checks that tags are balanced."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.hrefs: list[str] = []
        self.head_links: list[dict[str, str]] = []
        self.html_lang = ""
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.html_lang = values.get("lang", "")
        if tag == "script":
            self.scripts += 1
        if tag == "a" and "href" in values:
            self.hrefs.append(values["href"])
        if tag == "link":
            self.head_links.append(values)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> (open: {self.stack[-3:]})")
            return
        self.stack.pop()


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    assert not page.errors and not page.stack, (page.errors, page.stack)
    return page


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory):
    return make_config(tmp_path_factory.mktemp("archive"))


@pytest.fixture(scope="module")
def history(config):
    return make_history(seed_cases(), config)


@pytest.fixture(scope="module")
def pages(history, config) -> dict[str, str]:
    return render_archive(history, config)


def _path_of(url: str, base: str) -> str:
    rest = url.removeprefix(base)
    return rest + "index.html" if rest == "" or rest.endswith("/") else rest


def test_full_rebuild_has_every_page(pages, history, config):
    companies = companies_of(history, config.site.base_url)
    expected = {edition_path(v.slug) for v in history} | {INDEX, COMPANIES_INDEX}
    expected |= {company_path(e.name) for e in companies.values()}
    years = {v.published_at.year for v in history}
    expected |= {archive_page_path(1)} | {year_path(y) for y in years}
    sitemaps = {SITEMAP, SITEMAP_PAGES} | {sitemap_year_path(y) for y in years}
    assert set(pages) == expected | sitemaps | {FAVICON}
    assert len(companies) >= 10  # the seeds cite many companies
    for path in expected:
        page = parse(pages[path])
        assert page.html_lang == "fr" and page.scripts == 0


def test_no_dead_internal_link(pages, config):
    base = config.site.base_url
    targets = set(pages) | set(FEED_FILES.values()) | {"subscribe"}  # the web app's form
    checked = 0
    for path, html in pages.items():
        if not path.endswith(".html"):
            continue
        page = parse(html)
        for href in page.hrefs + [link["href"] for link in page.head_links]:
            assert href.startswith(base), (path, href)  # absolute, on the public address
            assert _path_of(href, base) in targets, (path, href)
            checked += 1
    assert checked > 200


def test_edition_page(pages, history, config):
    view = next(v for v in history if v.related and any(m.earlier for m in v.companies))
    html = pages[edition_path(view.slug)]
    page = parse(html)
    canonical = [link for link in page.head_links if link.get("rel") == "canonical"]
    assert [link["href"] for link in canonical] == [view.url]
    assert f"<title>{escape(french(view.title))} · Études de cas</title>" in html
    assert f'<meta property="og:url" content="{view.url}">' in html
    # Text with French no-break spaces; attributes as written.
    assert f'<meta property="og:title" content="{escape(view.title)}">' in html
    assert str(escape(french(view.case.lede))) in html
    for section in view.case.sections:
        assert f"<h2>{escape(french(section.heading))}</h2>" in html
        for paragraph in section.paragraphs:
            assert f"<p>{escape(french(paragraph))}</p>" in html
    assert "À lire aussi" in html
    for link in view.related:
        assert (f'<a class="card" href="{link.url}"><span class="card-title">'
                f'{escape(french(link.title))}</span>') in html
    for mention in view.companies:
        assert f'href="{company_url(config.site.base_url, mention.company)}"' in html
        if mention.earlier:
            assert f"{mention.company} apparaît aussi dans\u00a0:" in html
    date = french_date(view.published_at)
    assert f'<time datetime="{view.published_at.date().isoformat()}">{date}</time>' in html


def test_feeds_are_announced(pages, config):
    page = parse(pages[INDEX])
    alternates = {link["type"]: link["href"] for link in page.head_links
                  if link.get("rel") == "alternate"}
    base = config.site.base_url
    assert alternates == {
        "application/rss+xml": f"{base}feed.xml",
        "application/atom+xml": f"{base}atom.xml",
        "application/feed+json": f"{base}feed.json",
    }


def test_index_lists_all_editions_newest_first(pages, history, config):
    page = parse(pages[INDEX])
    edition_links = [h for h in page.hrefs if h in {v.url for v in history}]
    assert edition_links == [v.url for v in history]  # newest first, each once
    assert history[0].number > history[-1].number
    assert f"{len(history)} éditions" in pages[INDEX]
    canonical = [link["href"] for link in page.head_links if link.get("rel") == "canonical"]
    assert canonical == [config.site.base_url]


def test_company_pages_list_the_editions_citing_them(pages, history, config):
    base = config.site.base_url
    entries = companies_of(history, base)
    for entry in entries.values():
        html = pages[company_path(entry.name)]
        page = parse(html)
        citing = [v.url for v in history if entry.name in v.case.companies]
        assert [h for h in page.hrefs if h in {v.url for v in history}] == citing
        assert f"<h1>{escape(entry.name)}</h1>" in html
        assert entry.url == company_url(base, entry.name)
    alan = entries["alan"]
    assert len(alan.editions) >= 3
    index = parse(pages[COMPANIES_INDEX])
    assert [h for h in index.hrefs if h.startswith(f"{base}entreprises/") and h.count("/") > 4] \
        == sorted(
        (e.url for e in entries.values()), key=lambda u: entries[u.split("/")[-2]].name.lower())


def test_a_company_page_lists_the_latest_editions_and_links_the_older_years(tmp_path):
    """A company cited every week for years: its page lists the latest archive_page_size
    editions, then the years of the older ones (with their counts) linking to year pages."""
    config = make_config(tmp_path, publish={"archive_page_size": 4})
    base_case = seed_cases()[0]
    cases = [replace(base_case, slug=f"edition-{n}", title=f"Édition {n}", position=n,
                     companies=("Alan",)) for n in range(1, 31)]
    history = make_history(cases, config, start=datetime(2025, 10, 7, 8, 0, tzinfo=PARIS))
    pages = render_archive(history, config)
    html = pages[company_path("Alan")]
    page = parse(html)
    listed = [h for h in page.hrefs if h.startswith(f"{config.site.base_url}edition-")]
    assert listed == [v.url for v in history[:4]]  # the four newest, newest first
    assert "Alan apparaît dans 30 éditions\u00a0; les 4 plus récentes\u00a0:" in html
    older = history[4:]
    years = {}
    for view in older:
        years[view.published_at.year] = years.get(view.published_at.year, 0) + 1
    assert list(years) == [2026, 2025]
    for year, count in years.items():
        assert f'<a href="{year_url(config.site.base_url, year)}">{year}</a> ({count})' in html
        assert year_path(year) in pages  # the link leads to a page
    # a company cited fewer times than the cap: every edition, no year links
    few = make_config(tmp_path / "few", publish={"archive_page_size": 50})
    html = render_archive(history, few)[company_path("Alan")]
    assert "plus anciennes" not in html and "Alan apparaît dans 30 éditions\u00a0:" in html


def test_incremental_render_touches_only_what_changes(history, config):
    view = history[0]
    pages = render_archive(history, config, changed=view, missing=lambda path: False)
    # The previous edition's page too: its "next" link now points to this one.
    year = view.published_at.year
    expected = {edition_path(view.slug), edition_path(history[1].slug), INDEX,
                COMPANIES_INDEX, SITEMAP, SITEMAP_PAGES, sitemap_year_path(year),
                archive_page_path(1)}
    expected |= {year_path(v.published_at.year) for v in history[:2]}
    expected |= {company_path(c) for c in view.case.companies}
    assert set(pages) == expected
    lost = edition_path(history[3].slug)
    pages = render_archive(history, config, changed=view, missing=lambda path: path == lost)
    assert set(pages) == expected | {lost}


def test_hostile_text_is_escaped(config):
    view = make_history([hostile_case()], config)[0]
    pages = render_archive((view,), config)
    html = pages[edition_path(view.slug)]
    page = parse(html)
    assert page.scripts == 0 and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "{{ self.__init__ }}" in html and "{{ 7*7 }}" in html
    assert "Acme &lt;i&gt;SA&lt;/i&gt;" in html
    assert "Acme &lt;i&gt;SA&lt;/i&gt;" in pages[company_path("Acme <i>SA</i>")]
    assert not re.search(r"<(?!/?(?:a|p|h1|h2|ul|li|br|span|strong|section|article|main|header|"
                         r"footer|div|time|html|head|body|title|meta|link|style|nav|form|label|input|"
                         r"button)\b)[a-z]",
                         html)


def test_names_that_slugify_alike_share_one_page(config):
    one, two = seed_cases()[:2]
    one = replace(one, companies=("Back Market",))
    two = replace(two, companies=("Back-Market",))
    history = make_history([one, two], config)
    entries = companies_of(history, config.site.base_url)
    assert list(entries) == ["back-market"]
    assert entries["back-market"].name == "Back Market"  # as first cited
    assert len(entries["back-market"].editions) == 2


def test_empty_history_renders_an_index(config):
    pages = render_archive((), config)
    assert set(pages) == {INDEX, SITEMAP, SITEMAP_PAGES, FAVICON}
    assert "Aucune édition" in pages[INDEX]


def test_pages_share_the_email_look(pages):
    # Same palette as the email (templates/_theme.j2), dark mode included.
    html = pages[INDEX]
    assert "--paper: #f4f1ea" in html and "prefers-color-scheme: dark" in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html


def test_public_paths_are_inside_public(pages):
    for path in pages:
        assert not Path(path).is_absolute() and ".." not in Path(path).parts


# --------------------------------------------------------------------------- the channel


def _channel(config, **settings):
    from syndicate.channels import build_channel
    from syndicate.channels.archive import ArchiveSettings

    return build_channel(ArchiveSettings.model_validate({"type": "archive", **settings}), config)


@pytest.fixture
def ledger(tmp_path):
    from syndicate.ledger import Ledger

    with Ledger(tmp_path / "var" / "syndicate.db") as ledger:
        yield ledger


def test_channel_writes_pages_once_and_records_it(tmp_path, ledger):
    from _render_support import make_job

    config = make_config(tmp_path)
    history = make_history(seed_cases()[:3], config)
    public = config.public_dir
    first = make_job(config, ledger, history, 2)  # the oldest edition, alone
    report = _channel(config).deliver(first)
    assert report.sent == 1 and report.ok, report
    written = sorted(str(p.relative_to(public)) for p in public.rglob("*") if p.is_file())
    assert written == sorted(render_archive(first.history, config))
    page = public / edition_path(first.view.slug)
    assert first.view.case.lede[:40] in page.read_text(encoding="utf-8")
    rows = ledger.delivery_counts(first.edition.id)
    assert rows == {"archive": {"sent": 1, "failed": 0, "pending": 0}}
    assert not list(public.rglob("*.tmp"))

    # Resume: already sent, nothing rewritten.
    stamp = (public / INDEX).stat().st_mtime_ns
    again = _channel(config).deliver(first)
    assert again.skipped == 1 and again.sent == 0
    assert (public / INDEX).stat().st_mtime_ns == stamp

    # Next edition: its page, the index, its companies; a deleted page comes back.
    (public / edition_path(first.view.slug)).unlink()
    second = make_job(config, ledger, history, 1)
    assert _channel(config).deliver(second).sent == 1
    assert (public / edition_path(first.view.slug)).exists()
    index = (public / INDEX).read_text(encoding="utf-8")
    assert index.index(second.view.url) < index.index(first.view.url)
    assert ledger.delivery_counts(second.edition.id)["archive"]["sent"] == 1


def test_channel_rebuild_rewrites_everything(tmp_path, ledger):
    from _render_support import make_job

    config = make_config(tmp_path)
    history = make_history(seed_cases()[:4], config)
    job = make_job(config, ledger, history, 0)
    old = config.public_dir / edition_path(history[3].slug)
    old.parent.mkdir(parents=True)
    old.write_text("stale", encoding="utf-8")
    assert _channel(config).deliver(job).sent == 1
    assert old.read_text(encoding="utf-8") == "stale"  # default: existing pages kept
    # Another archive channel (its own ledger rows) set to rebuild rewrites it.
    assert _channel(config, name="full", rebuild=True).deliver(job).sent == 1
    assert old.read_text(encoding="utf-8").startswith("<!doctype html>")


def test_channel_records_a_failure(tmp_path, ledger):
    from _render_support import make_job

    config = make_config(tmp_path)
    config.public_dir.parent.mkdir(parents=True, exist_ok=True)
    config.public_dir.write_text("not a folder", encoding="utf-8")
    job = make_job(config, ledger, make_history(seed_cases()[:1], config), 0)
    report = _channel(config).deliver(job)
    assert report.failed == 1 and not report.ok
    assert "cannot write the archive pages" in report.detail
    (failed,) = ledger.failed_deliveries(job.edition.id)
    assert failed.channel == "archive" and "archive pages" in failed.response
    # Failed waits for retry-failed; it is not retried behind the operator's back.
    assert _channel(config).deliver(job).failed == 1


# --------------------------------------------------------------------------- readers' pages


def _meta(html: str) -> dict[str, str]:
    found = re.findall(r'<meta (?:property|name)="([^"]+)" content="([^"]*)">', html)
    return dict(found)


def test_edition_page_has_byline_reading_time_and_sharing_meta(pages, history, config):
    from syndicate.render.archive import reading_time

    view = history[2]
    html = pages[edition_path(view.slug)]
    words = len(" ".join([view.case.title, view.case.lede,
                          *(s.heading for s in view.case.sections),
                          *(p for s in view.case.sections for p in s.paragraphs)]).split())
    minutes = reading_time(view)
    assert minutes == -(-words // 230) and minutes >= 2
    assert f"Par {config.site.author} · {minutes}\u00a0min de lecture" in html
    meta = _meta(html)
    assert meta["og:type"] == "article" and meta["twitter:card"] == "summary"
    assert meta["og:url"] == view.url and meta["og:site_name"] == config.site.title
    assert meta["og:title"] == str(escape(view.title))
    assert meta["og:description"] == meta["description"] != config.site.description
    index_meta = _meta(pages[INDEX])
    assert index_meta["og:type"] == "website"
    assert index_meta["og:url"] == config.site.base_url
    for path, page in pages.items():
        if path.endswith(".html"):
            assert {"og:title", "og:description", "og:url", "og:site_name",
                    "twitter:card"} <= set(_meta(page)), path


def test_site_title_once_and_each_page_its_own_h1(pages, history, config):
    title = escape(french(config.site.title))
    for path, html in pages.items():
        if not path.endswith(".html"):
            continue
        main = html[html.index("<main>"):html.index("</main>")]
        assert str(title) not in main, path  # not repeated as the H1
        assert html.count(f'<a class="site" href="{config.site.base_url}">{title}</a>') == 1
        assert main.count("<h1>") == 1
    view = history[0]
    assert f"<h1>{escape(french(view.title))}</h1>" in pages[edition_path(view.slug)]


def test_related_are_blocks_with_an_excerpt_and_companies_chips(pages, history):
    view = next(v for v in history if len(v.related) >= 3 and len(v.companies) >= 3)
    html = pages[edition_path(view.slug)]
    for link in view.related:
        assert link.excerpt and len(link.excerpt) <= 121
        assert f'<span class="card-excerpt">{escape(french(link.excerpt))}</span>' in html
    chips = re.findall(r'<a class="chip" href="([^"]+)">', html)
    assert chips == [m.url for m in view.companies]
    assert "<strong>" not in html[html.index("Les entreprises"):]


def test_one_line_excerpt_is_the_first_sentence_cut_cleanly():
    from syndicate.text import one_line_excerpt

    assert one_line_excerpt("Court. Deuxième phrase.") == "Court."
    long = "Une phrase " + "très " * 40 + "longue. Suite."
    cut = one_line_excerpt(long)
    assert cut.endswith("très…") and len(cut) <= 121 and "  " not in cut
    assert one_line_excerpt("M. Dupont a dit oui. Puis non.") == "M. Dupont a dit oui."


def test_sitemap_lists_every_page_with_lastmod(pages, history, config):
    import xml.etree.ElementTree as ET

    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    base = config.site.base_url
    index = ET.fromstring(pages[SITEMAP])  # a sitemap index: the pages', one per year
    parts = [m.findtext("s:loc", namespaces=ns) for m in index.findall("s:sitemap", ns)]
    assert parts == [f"{base}{SITEMAP_PAGES}"] + [
        f"{base}{sitemap_year_path(y)}" for y in sorted({v.published_at.year for v in history})]
    entries: dict[str | None, str | None] = {}
    for part in parts:
        root = ET.fromstring(pages[part.removeprefix(base)])
        entries.update((u.findtext("s:loc", namespaces=ns), u.findtext("s:lastmod", namespaces=ns))
                       for u in root.findall("s:url", ns))
    html_pages = {p for p in pages if p.endswith(".html")}
    assert {_path_of(url, base) for url in entries} == html_pages
    assert entries[base] == history[0].published_at.date().isoformat()
    for view in history:
        assert entries[view.url] == view.published_at.date().isoformat()
    alan = companies_of(history, base)["alan"]
    assert entries[alan.url] == alan.editions[0].published_at.date().isoformat()


def test_favicon_is_linked_from_every_page_and_configurable(pages, config, tmp_path):
    base = config.site.base_url
    assert pages[FAVICON].startswith("<svg") and len(pages[FAVICON]) < 1000
    for path, html in pages.items():
        if path.endswith(".html"):
            assert f'<link rel="icon" href="{base}favicon.svg" type="image/svg+xml">' in html
    own = make_config(tmp_path, site={"favicon": "https://cdn.example.org/i.png",
                                      "wordmark": "logo.svg"})
    view = make_history(seed_cases()[:1], own)[0]
    custom = render_archive((view,), own)
    assert FAVICON not in custom
    html = custom[edition_path(view.slug)]
    assert '<link rel="icon" href="https://cdn.example.org/i.png">' in html
    assert (f'<img class="wordmark plate" src="{own.site.base_url}logo.svg" '
            f'alt="{own.site.title}" height="32">') in html
    assert ".wordmark.plate {" in html  # a light plate in dark mode (no dark version)


def test_a_dark_wordmark_is_a_picture_source_for_dark_mode(tmp_path):
    own = make_config(tmp_path, site={"wordmark": "logo.svg",
                                      "wordmark_dark": "https://cdn.example.org/logo-dark.svg"})
    view = make_history(seed_cases()[:1], own)[0]
    html = render_archive((view,), own)[edition_path(view.slug)]
    base = own.site.base_url
    assert ('<picture><source srcset="https://cdn.example.org/logo-dark.svg" '
            'media="(prefers-color-scheme: dark)">'
            f'<img class="wordmark" src="{base}logo.svg" alt="{own.site.title}" height="32">'
            '</picture>') in html
    assert ".wordmark.plate" not in html
    # without a wordmark, wordmark_dark alone changes nothing: the title in text
    alone = make_config(tmp_path / "alone", site={"wordmark_dark": "logo-dark.svg"})
    view = make_history(seed_cases()[:1], alone)[0]
    html = render_archive((view,), alone)[edition_path(view.slug)]
    assert "<picture" not in html and "<img" not in html.split("<main>")[0]


def test_subscribe_box_on_index_and_edition_pages(pages, history, config):
    action = f'<form method="get" action="{config.site.base_url}subscribe">'
    for path in (INDEX, edition_path(history[0].slug), edition_path(history[-1].slug)):
        html = pages[path]
        assert action in html and 'name="email"' in html, path


def _pager(html: str) -> tuple[str | None, str | None]:
    prev = re.search(r'<a class="prev" rel="prev" href="([^"]+)"', html)
    nxt = re.search(r'<a class="next" rel="next" href="([^"]+)"', html)
    return (prev.group(1) if prev else None, nxt.group(1) if nxt else None)


def test_previous_and_next_links_after_three_publications(tmp_path, ledger):
    from _render_support import make_job

    config = make_config(tmp_path)
    history = make_history(seed_cases()[:3], config)  # newest first
    oldest, middle, newest = history[2], history[1], history[0]
    public = config.public_dir
    for index in (2, 1, 0):  # published in order, each with its own history
        assert _channel(config).deliver(make_job(config, ledger, history, index)).sent == 1

    def pager(view):
        return _pager((public / edition_path(view.slug)).read_text(encoding="utf-8"))

    assert pager(oldest) == (None, middle.url)  # rewritten when the middle one came out
    assert pager(middle) == (oldest.url, newest.url)  # rewritten when the newest came out
    assert pager(newest) == (middle.url, None)
    sitemaps = [public / SITEMAP_PAGES, *list(public.glob("sitemap-2*.xml"))]
    assert sum(p.read_text(encoding="utf-8").count("<url>") for p in sitemaps) == (
        1 + 1 + 3 + len(companies_of(history, config.site.base_url)) + 1 + len(sitemaps) - 1)
    assert (public / FAVICON).is_file()
