"""Feeds: RSS 2.0, Atom 1.0 (feedgen) and JSON Feed 1.1, parsed back with feedparser/json.

The feedgen 1.0.0 bugs are first shown on feedgen's raw output (so the workaround is known to
be needed), then checked fixed in ours.
"""

from __future__ import annotations

import calendar
import errno
import html
import json
import logging
import re
import threading
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import feedparser
import pytest
from feedgen.feed import FeedGenerator
from lxml import etree

from syndicate.app import parse_config
from syndicate.config import Config
from syndicate.corpus import CaseStudy, Section
from syndicate.errors import RenderError
from syndicate.render.feeds import render_feeds, render_item_html, write_feeds
from syndicate.render.model import CompanyMention, EditionView, Link
from syndicate.render.urls import company_url, edition_url
from syndicate.typography import french

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "syndicate" / "examples" / "corpus"
BASE = "https://etudes.example.org/"
PARIS = ZoneInfo("Europe/Paris")
ATOM = "{http://www.w3.org/2005/Atom}"
NBSP = "\u00a0"
HOSTILE = "<script>alert(1)</script> {{ 7*7 }} & ]]>"


def make_config(tmp_path: Path, templates: Path | None = None, channels: list | None = None,
                public: Path | None = None, **publish: object) -> Config:
    data = {
        "site": {"title": "Études de cas", "base_url": BASE, "language": "fr"},
        "storage": {
            "public": str(public or tmp_path / "public"),
            "database": str(tmp_path / "syndicate.db"),
            "corpus": str(tmp_path / "corpus"),
            **({"templates": str(templates)} if templates else {}),
        },
        "publish": publish,
        "channels": channels or [],
    }
    return parse_config(data, tmp_path / "syndicate.toml")


def make_case(position: int, slug: str, title: str, *, companies=(), themes=(),
              lede: str | None = None, sections=None) -> CaseStudy:
    return CaseStudy(
        slug=slug,
        title=title,
        lede=lede or f"Chapô de « {title} » : l’essentiel en une phrase{NBSP}!",
        sections=sections or (
            Section("Le contexte", (
                f"{companies[0] if companies else 'L’entreprise'} affichait 12{NBSP}% de "
                "croissance et 3,5{NBSP}M€ de chiffre d’affaires.",
                "Deuxième paragraphe, avec une apostrophe typographique : c’est « voulu ».",
            )),
            Section("Ce qui a changé", ("Un seul paragraphe ici.",)),
        ),
        position=position,
        companies=tuple(companies),
        themes=tuple(themes),
    )


CASES = (
    make_case(1, "refuser-les-levees-de-fonds", "Refuser les levées de fonds",
              companies=["Luko", "Shine"], themes=["financement"]),
    make_case(2, "dire-oui-a-tous-les-partenariats", "Dire oui à tous les partenariats",
              companies=["Skello"], themes=["partenariats", "croissance"]),
    make_case(3, "assurer-autrement", "Assurer autrement : le pari de Luko",
              companies=["Luko"], themes=["assurance"]),
    make_case(4, "hostile", f"Titre {HOSTILE}",
              companies=[f"Société {HOSTILE}"], themes=[f"thème {HOSTILE}"],
              lede=f"Chapô {HOSTILE}",
              sections=(Section(f"Section {HOSTILE}", (f"Paragraphe {HOSTILE}", "Fin.")),)),
)
# Publication dates: winter (+01:00), summer (+02:00) and UTC, so offsets must be kept.
DATES = (
    datetime(2026, 1, 6, 8, 0, tzinfo=PARIS),
    datetime(2026, 7, 7, 8, 0, tzinfo=PARIS),
    datetime(2026, 9, 1, 6, 30, tzinfo=UTC),
    datetime(2026, 11, 24, 8, 0, tzinfo=PARIS),
)


def link(case: CaseStudy) -> Link:
    return Link(case.slug, case.title, edition_url(BASE, case.slug))


def make_history(cases=CASES, dates=DATES) -> tuple[EditionView, ...]:
    """Views as the pipeline builds them: newest first, links only to earlier editions."""
    views = []
    for number, (case, when) in enumerate(zip(cases, dates, strict=True), 1):
        earlier = cases[: number - 1]
        companies = tuple(
            CompanyMention(company, company_url(BASE, company),
                           tuple(link(c) for c in earlier if company in c.companies))
            for company in case.companies
        )
        views.append(EditionView(number, case, edition_url(BASE, case.slug), when,
                                 related=tuple(link(c) for c in earlier[-2:]),
                                 companies=companies))
    return tuple(reversed(views))


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@pytest.fixture(scope="module")
def history() -> tuple[EditionView, ...]:
    return make_history()


@pytest.fixture
def feeds(history, config) -> dict[str, bytes]:
    return render_feeds(history, config)


# --------------------------------------------------------------------------- helpers


def parse(data: bytes) -> feedparser.FeedParserDict:
    parsed = feedparser.parse(data)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return parsed


def entry_tuple(entry) -> tuple:
    """A feedparser entry reduced to what must agree across formats."""
    summary = entry.summary_detail
    text = html.unescape(entry.summary) if summary.type == "text/html" else entry.summary
    return (entry.title, entry.link, entry.id, calendar.timegm(entry.published_parsed),
            entry.content[0].value, text, [tag.term for tag in entry.tags])


def json_tuple(item: dict) -> tuple:
    when = datetime.fromisoformat(item["date_published"])
    assert when.tzinfo is not None
    return (item["title"], item["url"], item["id"], int(when.timestamp()),
            item["content_html"], item["summary"], item["tags"])


def expected_tuple(view: EditionView, config: Config) -> tuple:
    # Titles and summaries with French no-break spaces, like every rendered text.
    return (french(view.title), view.url, view.url, int(view.published_at.timestamp()),
            render_item_html(view, config), french(view.case.lede),
            [*view.case.themes, *view.case.companies])


def xml(data: bytes) -> etree._Element:
    return etree.fromstring(data)


# --------------------------------------------------------------------------- feedgen bugs


def raw_generator() -> FeedGenerator:
    fg = FeedGenerator()
    fg.id(BASE)
    fg.title("t")
    fg.description("d")
    fg.updated(DATES[0])
    return fg


def test_feedgen_bug_1_rss_channel_link_is_the_last_link_added(feeds):
    fg = raw_generator()
    fg.link(href=BASE, rel="alternate")
    fg.link(href=BASE + "feed.xml", rel="self")
    fg.add_entry().title("x")
    channel_link = xml(fg.rss_str()).findtext("channel/link")
    assert channel_link == BASE + "feed.xml"  # the bug: the channel points at itself

    rss = xml(feeds["feed.xml"])
    assert rss.findtext("channel/link") == BASE
    self_links = rss.findall(f"channel/{ATOM}link")
    assert [(ln.get("rel"), ln.get("href"), ln.get("type")) for ln in self_links] == [
        ("self", BASE + "feed.xml", "application/rss+xml")
    ]
    assert parse(feeds["feed.xml"]).feed.link == BASE


def test_feedgen_bug_2_atom_entry_links_lose_rel_and_type(feeds, history):
    fg = raw_generator()
    entry = fg.add_entry()
    entry.id(BASE + "a/")
    entry.title("a")
    entry.link(href=BASE + "a/", rel="alternate", type="text/html")
    raw = xml(fg.atom_str()).find(f"{ATOM}entry/{ATOM}link")
    assert raw.get("rel") is None and raw.get("type") is None  # the bug

    entries = xml(feeds["atom.xml"]).findall(f"{ATOM}entry")
    assert len(entries) == len(history)
    for element, view in zip(entries, history, strict=True):
        links = element.findall(f"{ATOM}link")
        assert [(ln.get("rel"), ln.get("type"), ln.get("href")) for ln in links] == [
            ("alternate", "text/html", view.url)
        ]
    for entry in parse(feeds["atom.xml"]).entries:
        assert [(ln.rel, ln.type) for ln in entry.links] == [("alternate", "text/html")]


def test_feedgen_bug_3_cdata_content_type(feeds):
    fg = raw_generator()
    entry = fg.add_entry()
    entry.id(BASE + "a/")
    entry.title("a")
    entry.content("<p>x</p>", type="CDATA")
    content = xml(fg.atom_str()).find(f"{ATOM}entry/{ATOM}content")
    assert content.get("type") == "CDATA"  # the bug: not an Atom content type (text/html/xhtml)
    assert parse(fg.atom_str()).entries[0].content[0].type != "text/html"

    atom = xml(feeds["atom.xml"])
    for element in atom.findall(f"{ATOM}entry"):
        assert element.find(f"{ATOM}content").get("type") == "html"
        assert element.find(f"{ATOM}summary").get("type") == "html"
    assert b"CDATA" not in feeds["atom.xml"]
    # RSS content:encoded: the HTML is escaped text (no CDATA section), which parses back whole.
    assert b"<![CDATA[" not in feeds["feed.xml"]
    encoded = xml(feeds["feed.xml"]).findall(
        "channel/item/{http://purl.org/rss/1.0/modules/content/}encoded")
    assert len(encoded) == 4 and all(e.text.startswith("<p><strong>") for e in encoded)


# --------------------------------------------------------------------------- the three formats


def test_three_formats_parse_back_with_the_same_entries_in_order(feeds, history, config):
    rss, atom = parse(feeds["feed.xml"]), parse(feeds["atom.xml"])
    assert (rss.version, atom.version) == ("rss20", "atom10")
    document = json.loads(feeds["feed.json"])
    expected = [expected_tuple(view, config) for view in history]
    assert [entry_tuple(e) for e in rss.entries] == expected
    assert [entry_tuple(e) for e in atom.entries] == expected
    assert [json_tuple(item) for item in document["items"]] == expected
    # newest first, as the history came
    assert [e.id for e in rss.entries] == [edition_url(BASE, c.slug) for c in reversed(CASES)]


def test_guid_is_the_archive_url_as_a_permalink(feeds, history):
    guids = xml(feeds["feed.xml"]).findall("channel/item/guid")
    assert [(g.text, g.get("isPermaLink")) for g in guids] == [(v.url, "true") for v in history]
    ids = [e.findtext(f"{ATOM}id") for e in xml(feeds["atom.xml"]).findall(f"{ATOM}entry")]
    assert ids == [v.url for v in history]
    assert [i["id"] for i in json.loads(feeds["feed.json"])["items"]] == ids


def test_feed_level_metadata(feeds, history):
    newest = max(view.published_at for view in history)
    rss = parse(feeds["feed.xml"])
    assert rss.feed.title == "Études de cas"
    assert rss.feed.language == "fr"
    assert calendar.timegm(rss.feed.updated_parsed) == newest.timestamp()  # lastBuildDate
    atom = parse(feeds["atom.xml"])
    assert atom.feed.language == "fr"
    assert atom.feed.link == BASE
    assert {(ln.rel, ln.href, ln.type) for ln in atom.feed.links} == {
        ("self", BASE + "atom.xml", "application/atom+xml"),
        ("alternate", BASE, "text/html"),
    }
    assert calendar.timegm(atom.feed.updated_parsed) == newest.timestamp()
    assert xml(feeds["atom.xml"]).findtext(f"{ATOM}updated") == newest.isoformat()
    document = json.loads(feeds["feed.json"])
    assert document["language"] == "fr"
    assert document["home_page_url"] == BASE
    assert document["feed_url"] == BASE + "feed.json"


def test_dates_carry_their_time_zone(feeds, history):
    rss_dates = [e.findtext("pubDate") for e in xml(feeds["feed.xml"]).findall("channel/item")]
    # RFC 822 with a numeric zone; winter and summer Paris offsets and UTC are kept as given.
    assert rss_dates == [
        "Tue, 24 Nov 2026 08:00:00 +0100",
        "Tue, 01 Sep 2026 06:30:00 +0000",
        "Tue, 07 Jul 2026 08:00:00 +0200",
        "Tue, 06 Jan 2026 08:00:00 +0100",
    ]
    rfc3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)$")
    for entry in xml(feeds["atom.xml"]).findall(f"{ATOM}entry"):
        for name in ("published", "updated"):
            assert rfc3339.match(entry.findtext(f"{ATOM}{name}"))
    items = json.loads(feeds["feed.json"])["items"]
    assert [datetime.fromisoformat(i["date_published"]) for i in items] == [
        v.published_at for v in history
    ]
    assert all(rfc3339.match(i["date_published"]) for i in items)


def test_categories_are_themes_and_companies(feeds, history):
    items = xml(feeds["feed.xml"]).findall("channel/item")
    first = [(c.text, c.get("domain")) for c in items[1].findall("category")]
    view = history[1]
    assert first == [(t, None) for t in view.case.themes] + [
        (c, BASE + "entreprises/") for c in view.case.companies
    ]
    for entry, view in zip(parse(feeds["atom.xml"]).entries, history, strict=True):
        assert [t.term for t in entry.tags] == [*view.case.themes, *view.case.companies]


def test_feed_size_keeps_the_newest_editions(history, tmp_path):
    config = make_config(tmp_path, feed_size=2)
    feeds = render_feeds(history, config)
    wanted = [v.url for v in history[:2]]
    assert [e.id for e in parse(feeds["feed.xml"]).entries] == wanted
    assert [e.id for e in parse(feeds["atom.xml"]).entries] == wanted
    assert [i["id"] for i in json.loads(feeds["feed.json"])["items"]] == wanted


def test_output_is_deterministic(history, config):
    assert render_feeds(history, config) == render_feeds(history, config)


def test_empty_history_gives_valid_empty_feeds(config):
    feeds = render_feeds((), config)
    assert parse(feeds["feed.xml"]).entries == []
    assert parse(feeds["atom.xml"]).entries == []
    assert json.loads(feeds["feed.json"])["items"] == []
    assert feeds == render_feeds((), config)


def test_naive_publication_date_is_refused(history, config):
    naive = EditionView(9, CASES[0], edition_url(BASE, "x"), datetime(2026, 1, 1, 8, 0))
    with pytest.raises(RenderError, match="time zone"):
        render_feeds((naive, *history), config)


def test_the_repository_corpus_renders_and_parses_back(tmp_path):
    """The real corpus (``corpus/``), French typography and all, through all three formats."""
    from syndicate.corpus import load

    if not any(CORPUS.glob("*.md")):
        pytest.skip("corpus/ is empty")
    cases = load(CORPUS).cases[:25]
    start = datetime(2026, 1, 6, 8, 0, tzinfo=PARIS)
    dates = tuple(start + timedelta(weeks=i) for i in range(len(cases)))
    history = make_history(cases, dates)
    config = make_config(tmp_path)
    feeds = render_feeds(history, config)
    kept = history[: config.publish.feed_size]
    expected = [expected_tuple(view, config) for view in kept]
    assert [entry_tuple(e) for e in parse(feeds["feed.xml"]).entries] == expected
    assert [entry_tuple(e) for e in parse(feeds["atom.xml"]).entries] == expected
    assert [json_tuple(i) for i in json.loads(feeds["feed.json"])["items"]] == expected


# --------------------------------------------------------------------------- JSON Feed 1.1

_TOP_KEYS = {"version", "title", "home_page_url", "feed_url", "description", "user_comment",
             "next_url", "icon", "favicon", "authors", "language", "expired", "hubs", "items"}
_ITEM_KEYS = {"id", "url", "external_url", "title", "content_html", "content_text", "summary",
              "image", "banner_image", "date_published", "date_modified", "authors", "tags",
              "language", "attachments"}


def test_json_feed_follows_the_1_1_spec(feeds, history):
    document = json.loads(feeds["feed.json"].decode("utf-8"))
    # Required: version (the 1.1 URL), title, items. Other keys must be spec keys
    # (or extensions, which start with "_").
    assert document["version"] == "https://jsonfeed.org/version/1.1"
    assert isinstance(document["title"], str) and document["title"]
    assert isinstance(document["items"], list)
    assert set(document) - _TOP_KEYS <= {k for k in document if k.startswith("_")}
    for author in document["authors"]:
        assert set(author) <= {"name", "url", "avatar"} and author["name"]
    for item, view in zip(document["items"], history, strict=True):
        assert set(item) <= _ITEM_KEYS
        assert isinstance(item["id"], str) and item["id"] == view.url
        assert isinstance(item["content_html"], str) or isinstance(item["content_text"], str)
        assert item["language"] == "fr"
        assert all(isinstance(tag, str) for tag in item["tags"])
        assert item["summary"] == french(view.case.lede)  # plain text, per the spec
    # French typography is kept as is (no \\u escapes, no entity for the NBSP).
    assert "Études de cas".encode() in feeds["feed.json"]
    assert f"12{NBSP}%".encode() in feeds["feed.json"]


# --------------------------------------------------------------------------- item HTML


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def test_item_html_has_a_heading_per_section_and_a_paragraph_per_paragraph(history, config):
    view = history[1]  # third edition: related links and a company seen earlier
    page = _Tags()
    page.feed(render_item_html(view, config))
    sections = view.case.sections
    paragraphs = 1 + sum(len(s.paragraphs) for s in sections)
    assert page.tags.count("p") == paragraphs
    # one h2 per section, plus "À lire aussi" and the companies block
    assert page.tags.count("h2") == len(sections) + 2
    text = "".join(page.text)
    for section in sections:
        assert french(section.heading) in text
        for paragraph in section.paragraphs:
            assert french(paragraph) in text
    out = render_item_html(view, config)
    for related in view.related:
        title = html.escape(french(related.title), quote=False)
        assert f'<a href="{related.url}">{title}</a>' in out
    assert f"Luko</a> apparaît aussi dans{NBSP}: " in out
    assert f'<a href="{edition_url(BASE, "refuser-les-levees-de-fonds")}">' in out


def test_item_html_without_related_or_companies(config):
    view = make_history()[-1]  # the first edition has nothing earlier to link to
    view = EditionView(view.number, view.case, view.url, view.published_at)
    out = render_item_html(view, config)
    assert "À lire aussi" not in out and "entreprises" not in out


def test_hostile_corpus_text_is_escaped_everywhere(feeds, history, config):
    view = history[0]
    assert view.slug == "hostile"
    item = render_item_html(view, config)
    assert "<script>" not in item and "&lt;script&gt;alert(1)&lt;/script&gt;" in item
    assert "{{ 7*7 }}" in item and "49" not in item
    assert "&amp; ]]&gt;" in item
    # Raw JSON (nobody sanitises it for us): the escaped HTML is what readers get.
    first = json.loads(feeds["feed.json"])["items"][0]
    assert first["content_html"] == item
    assert first["title"] == french(view.title) and first["summary"] == french(view.case.lede)
    assert f"thème {HOSTILE}" in first["tags"]
    for name in ("feed.xml", "atom.xml"):
        entry = parse(feeds[name]).entries[0]
        assert entry.title == french(view.title)  # text as written, with French spaces
        assert entry.content[0].value == item
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in entry.content[0].value
        assert html.unescape(entry.summary) == french(view.case.lede)
        assert [t.term for t in entry.tags] == [f"thème {HOSTILE}", f"Société {HOSTILE}"]


def test_operators_can_edit_the_item_template(history, tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "feed_item.html.j2").write_text(
        "<p>{{ case.title }} — {{ view.number }}</p>\n", encoding="utf-8")
    config = make_config(tmp_path, templates=templates)
    feeds = render_feeds(history[1:2], config)
    assert parse(feeds["atom.xml"]).entries[0].content[0].value == (
        f"<p>{history[1].title} — 3</p>")
    (templates / "feed_item.html.j2").write_text("{{ nope.nothing }}", encoding="utf-8")
    with pytest.raises(RenderError, match=r"feed_item\.html\.j2"):
        render_item_html(history[1], config)
    (templates / "feed_item.html.j2").unlink()  # falls back to the shipped template
    assert render_item_html(history[1], config) == render_item_html(
        history[1], make_config(tmp_path))


# --------------------------------------------------------------------------- atomic writes


def test_write_feeds_writes_every_file(feeds, tmp_path):
    public = tmp_path / "public"
    paths = write_feeds(public, feeds)
    assert sorted(p.name for p in paths) == ["atom.xml", "feed.json", "feed.xml"]
    for path in paths:
        assert path.read_bytes() == feeds[path.name]
        assert path.stat().st_mode & 0o777 == 0o644  # readable by the web server
    assert sorted(p.name for p in public.iterdir()) == ["atom.xml", "feed.json", "feed.xml"]


def test_rewrite_replaces_the_file_instead_of_writing_into_it(tmp_path):
    public = tmp_path / "public"
    old, new = b"<old/>" * 50_000, b"<new/>" * 60_000
    write_feeds(public, {"feed.xml": old})
    with open(public / "feed.xml", "rb") as reader:
        write_feeds(public, {"feed.xml": new})
        # An in-place rewrite would truncate what this open reader sees; a rename never does.
        assert reader.read() == old
    assert (public / "feed.xml").read_bytes() == new
    assert [p.name for p in public.iterdir()] == ["feed.xml"]  # no temp file left behind


def test_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path):
    public = tmp_path / "public"
    write_feeds(public, {"feed.xml": b"<complete/>"})
    with pytest.raises(TypeError):
        write_feeds(public, {"feed.xml": "not bytes"})  # type: ignore[dict-item]
    assert (public / "feed.xml").read_bytes() == b"<complete/>"
    assert [p.name for p in public.iterdir()] == ["feed.xml"]


def test_concurrent_readers_only_see_whole_files(tmp_path):
    public = tmp_path / "public"
    versions = [bytes([65 + i]) * 400_000 for i in range(4)]
    write_feeds(public, {"feed.json": versions[0]})
    done = threading.Event()
    seen: list[bytes] = []

    def reader() -> None:
        while not done.is_set() and len(seen) < 2000:
            seen.append((public / "feed.json").read_bytes())

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for round_ in range(40):
            write_feeds(public, {"feed.json": versions[round_ % 4]})
    finally:
        done.set()
        thread.join(timeout=10)
    assert seen and all(data in versions for data in seen)
    assert [p.name for p in public.iterdir()] == ["feed.json"]


# --------------------------------------------------------------------------- the feed channel


def make_job(config: Config, ledger, history=None):
    from syndicate.channels import Bookkeeping, DeliveryJob

    history = make_history() if history is None else history
    view = history[0]
    edition = ledger.claim_edition(slot=f"test:{view.slug}", slug=view.slug, title=view.title,
                                   url=view.url, published_at=view.published_at)
    # The feed channel never reads the email: no need to render one here.
    return DeliveryJob(edition, view, history, None,  # type: ignore[arg-type]
                       Bookkeeping(ledger, edition, now=lambda: DATES[-1]), threading.Event(),
                       logging.getLogger("test.feed"), lambda: DATES[-1])


@pytest.fixture
def ledger(tmp_path):
    from syndicate.ledger import Ledger

    with Ledger(tmp_path / "syndicate.db", now=lambda: DATES[-1]) as opened:
        yield opened


def feed_channel(config: Config):
    from syndicate.channels import build_channel

    (settings,) = config.channels
    return build_channel(settings, config)


def test_feed_channel_is_registered_and_configurable(tmp_path):
    from syndicate.channels import channel_types
    from syndicate.channels.feed import FeedChannel
    from syndicate.errors import ConfigError

    assert "feed" in channel_types()
    config = make_config(tmp_path, channels=[{"type": "feed"}])
    channel = feed_channel(config)
    assert isinstance(channel, FeedChannel)
    assert channel.settings.formats == ["rss", "atom", "json"]
    assert channel.settings.name == "feed"
    for bad in (["rss", "rdf"], [], ["rss", "rss"]):
        with pytest.raises(ConfigError, match="formats"):
            make_config(tmp_path, channels=[{"type": "feed", "formats": bad}])


def test_feed_channel_writes_the_feeds_and_records_one_delivery(tmp_path, ledger):
    config = make_config(tmp_path, channels=[{"type": "feed"}], feed_size=3)
    job = make_job(config, ledger)
    report = feed_channel(config).deliver(job)
    assert (report.sent, report.failed, report.pending) == (1, 0, 0)
    public = config.public_dir
    assert sorted(p.name for p in public.iterdir()) == ["atom.xml", "feed.json", "feed.xml"]
    expected = render_feeds(job.history[:3], config)
    for name, data in expected.items():
        assert (public / name).read_bytes() == data
    assert [e.id for e in parse((public / "feed.xml").read_bytes()).entries] == [
        v.url for v in job.history[:3]
    ]
    assert ledger.failed_deliveries() == []
    row = ledger.ensure_delivery(job.edition.id, "feed")
    assert (row.channel, row.recipient, row.status, row.attempts) == ("feed", "", "sent", 1)
    assert "3 entries" in row.response
    assert ledger.delivery_counts(job.edition.id) == {"feed": {"sent": 1, "failed": 0,
                                                               "pending": 0}}


def test_feed_channel_does_not_redo_a_sent_delivery_on_resume(tmp_path, ledger):
    config = make_config(tmp_path, channels=[{"type": "feed"}])
    job = make_job(config, ledger)
    channel = feed_channel(config)
    assert channel.deliver(job).sent == 1
    (config.public_dir / "feed.xml").write_bytes(b"sentinel")
    again = channel.deliver(job)
    assert (again.sent, again.skipped) == (0, 1)
    assert (config.public_dir / "feed.xml").read_bytes() == b"sentinel"
    assert ledger.ensure_delivery(job.edition.id, "feed").attempts == 1


def test_feed_channel_writes_only_the_configured_formats(tmp_path, ledger):
    config = make_config(tmp_path, channels=[{"type": "feed", "formats": ["atom"]}])
    assert feed_channel(config).deliver(make_job(config, ledger)).sent == 1
    assert [p.name for p in config.public_dir.iterdir()] == ["atom.xml"]


def test_feed_channel_broken_template_fails_permanently_and_keeps_old_files(tmp_path, ledger):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "feed_item.html.j2").write_text("{% if %}", encoding="utf-8")
    config = make_config(tmp_path, templates=templates, channels=[{"type": "feed"}])
    write_feeds(config.public_dir, {"feed.xml": b"<old/>"})
    job = make_job(config, ledger)
    report = feed_channel(config).deliver(job)
    assert (report.sent, report.failed) == (0, 1) and "feed_item.html.j2" in report.detail
    (row,) = ledger.failed_deliveries(job.edition.id)
    assert row.status == "failed" and "feed_item.html.j2" in row.response
    assert (config.public_dir / "feed.xml").read_bytes() == b"<old/>"
    # a failed row waits for retry-failed: delivering again does not rewrite anything
    assert feed_channel(config).deliver(job).failed == 1
    assert ledger.ensure_delivery(job.edition.id, "feed").attempts == 1


def test_feed_channel_unwritable_public_dir_is_recorded(tmp_path, ledger):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the public folder should be")
    config = make_config(tmp_path, channels=[{"type": "feed"}], public=blocker / "public")
    job = make_job(config, ledger)
    report = feed_channel(config).deliver(job)
    assert report.failed == 1 and "cannot write the feeds" in report.detail
    (row,) = ledger.failed_deliveries(job.edition.id)
    assert "cannot write the feeds" in row.response
    assert blocker.read_text() == "a file where the public folder should be"


@pytest.mark.parametrize(("error", "transient"), [
    (OSError(errno.ENOSPC, "No space left on device"), True),
    (OSError(errno.EAGAIN, "Resource temporarily unavailable"), True),
    (PermissionError(errno.EACCES, "Permission denied"), False),
    (OSError(errno.EROFS, "Read-only file system"), False),
    (FileExistsError(errno.EEXIST, "File exists"), False),
    (OSError("no errno at all"), False),
])
def test_only_passing_write_errors_are_retried(error, transient):
    from syndicate.channels._base import is_transient

    assert is_transient(error) is transient
