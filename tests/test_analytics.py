"""``[analytics]``: counted links and the open pixel, end to end.

A real ledger (SQLite file), a real waitress server on 127.0.0.1 (``_web_support.Site``),
the outbox channel writing the messages to a Maildir, parsed back with the stdlib: the
links are rewritten only when enabled, a click counts once, HEAD / scanners / clicks right
after the send do not, forged tokens and links not in the edition get a 404 (no redirect
anywhere), no subscriber is named anywhere unless ``per_subscriber``; feeds untouched.
"""

from __future__ import annotations

import email
import mailbox
import re
import sqlite3
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

import pytest
import requests
from _web_support import SECRET, Site, site_factory
from test_admin import HASH, sign_in

from syndicate.ledger import OPEN_LINK
from syndicate.pipeline import publish
from syndicate.render.links import TRACKED_LINKS_ARTEFACT, links_from_json
from syndicate.tokens import (
    CLICK,
    TrackToken,
    link_digest,
    make_track_token,
    verify_track_token,
)
from syndicate.web import create_app
from syndicate.web.clicks import is_scanner, verdict

if TYPE_CHECKING:
    from conftest import Clock, Project

BROWSER = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
           "(KHTML, like Gecko) Version/17.0 Safari/605.1.15")
READERS = ("alice@exemple.fr", "bob@exemple.fr")


@pytest.fixture
def make_site(project: Project, clock: Clock, monkeypatch: pytest.MonkeyPatch
              ) -> Iterator[Any]:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET.decode())  # the outbox signs with it
    factory = site_factory(project)
    make = next(factory)

    def made(admin: dict[str, Any] | None = None, **analytics: Any) -> Site:
        site: Site = make(now=clock, analytics=analytics or None, admin=admin)
        for address in READERS:
            site.ledger.add_subscriber(address)
        return site

    yield made
    next(factory, None)


def _messages(site: Site) -> dict[str, EmailMessage]:
    box = mailbox.Maildir(site.project.var / "outbox", factory=None, create=True)
    out = {}
    for raw in box:
        message = email.message_from_bytes(raw.as_bytes(), policy=policy.default)
        out[str(message["To"])] = message  # type: ignore[assignment]
    return out


def _parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def _links(site: Site, body: str, kind: str = "r") -> list[str]:
    return sorted(set(re.findall(re.escape(site.base) + kind + r"/[A-Za-z0-9_\-.]+", body)))


def _get(url: str, agent: str = BROWSER, method: str = "GET") -> requests.Response:
    return requests.request(method, url, headers={"User-Agent": agent},
                            allow_redirects=False, timeout=5)


def _counts(site: Site, edition_id: int) -> dict[int, int]:
    return site.ledger.hit_counts([edition_id]).get(edition_id, {})


def _published(site: Site, clock: Clock) -> tuple[int, dict[str, EmailMessage]]:
    result = publish(site.config, now=clock)
    assert result.complete, result.summary()
    return result.edition.id, _messages(site)


# --------------------------------------------------------------------------- pure decisions


def test_scanner_agents_and_the_time_window(clock: Clock) -> None:
    for agent in ("Barracuda Sentinel (EE)", "Proofpoint URL Defense", "Mimecast-Scanner/1.0",
                  "Mozilla/5.0 (compatible; BingPreview/1.0b)", "curl/8.5.0",
                  "python-requests/2.32", "Mozilla/5.0 (compatible; Google Web Preview)",
                  "", None):
        assert is_scanner(agent), agent
    assert not is_scanner(BROWSER)
    now = clock()
    assert verdict("HEAD", BROWSER, sent=None, now=now, window=30) == "head"
    assert verdict("GET", "curl/8", sent=None, now=now, window=30) == "scanner"
    assert verdict("GET", BROWSER, sent=now, now=clock.advance(seconds=29),
                   window=30) == "too-soon"
    assert verdict("GET", BROWSER, sent=now, now=clock.advance(seconds=1), window=30) == "count"


# --------------------------------------------------------------------------- off: nothing changes


def test_off_by_default_no_link_is_rewritten(make_site: Any, clock: Clock) -> None:
    site = make_site()
    edition_id, messages = _published(site, clock)
    assert set(messages) >= set(READERS)
    for message in messages.values():
        text, html = _parts(message)
        assert "/r/" not in text and "/r/" not in html and "/o/" not in html
        assert site.base + "entreprises/" in text and site.base + "entreprises/" in html
    assert site.ledger.artefact(edition_id, TRACKED_LINKS_ARTEFACT) is None


# --------------------------------------------------------------------------- clicks


def test_links_rewritten_counted_once_scanners_and_head_not(make_site: Any,
                                                            clock: Clock) -> None:
    site = make_site(clicks=True, scanner_window="30s")
    edition_id, messages = _published(site, clock)
    stored = links_from_json(site.ledger.artefact(edition_id, TRACKED_LINKS_ARTEFACT) or "")
    assert stored and all(not u.startswith(site.base + "unsubscribe/") for u in stored)

    text, html = _parts(messages["alice@exemple.fr"])
    # Every outside link now goes through /r/ (HTML and text); the unsubscribe link is
    # left as it is, in both parts and in the header.
    for body in (text, html):
        assert site.base + "entreprises/" not in body
        assert site.base + "unsubscribe/" in body
        assert _links(site, body)
    assert "/r/" not in str(messages["alice@exemple.fr"]["List-Unsubscribe"])
    # Aggregate only: every reader gets the very same counted links (they name nobody).
    assert _links(site, text) == _links(site, _parts(messages["bob@exemple.fr"])[0])

    link = _links(site, text)[0]
    mark = verify_track_token(SECRET, CLICK, link.rsplit("/", 1)[1])
    assert mark.delivery_id is None and mark.edition_id == edition_id
    target = stored[mark.link]

    # Right after the send: a scanner opening everything; redirected, not counted.
    response = _get(link)
    assert response.status_code == 302 and response.headers["Location"] == target
    assert _counts(site, edition_id) == {}

    clock.advance(minutes=5)
    assert _get(link, method="HEAD").status_code == 302  # HEAD: redirected, not counted
    for agent in ("Mozilla/5.0 (compatible; Barracuda)", "python-requests/2.32.3", ""):
        assert _get(link, agent).headers["Location"] == target
    assert _counts(site, edition_id) == {}

    response = _get(link)
    assert response.status_code == 302 and response.headers["Location"] == target
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    assert _counts(site, edition_id) == {mark.link: 1}
    _get(link)
    assert _counts(site, edition_id) == {mark.link: 2}

    # Nothing names a subscriber: no per-delivery record, no subscriber status touched.
    with sqlite3.connect(site.config.database) as db:
        assert db.execute("SELECT COUNT(*) FROM delivery_hits").fetchone() == (0,)
    assert all(site.status(a) == "active" for a in READERS)

    # Feeds and archive pages are not rewritten.
    for path in site.project.public.rglob("*"):
        if path.is_file() and path.suffix in (".xml", ".json", ".html"):
            assert "/r/" not in path.read_text(encoding="utf-8"), path


def test_forged_tokens_and_links_not_in_the_edition_are_404(make_site: Any,
                                                             clock: Clock) -> None:
    site = make_site(clicks=True)
    edition_id, messages = _published(site, clock)
    clock.advance(minutes=5)
    text, _ = _parts(messages["alice@exemple.fr"])
    token = _links(site, text)[0].rsplit("/", 1)[1]
    payload, signature = token.split(".")
    stored = links_from_json(site.ledger.artefact(edition_id, TRACKED_LINKS_ARTEFACT) or "")
    sent = verify_track_token(SECRET, CLICK, token).sent
    elsewhere = "https://evil.example.net/"
    forged = [
        f"{payload}x.{signature}",  # altered payload
        f"{payload}.{signature[:-2]}AA",  # altered signature
        make_track_token(b"another-secret-0123456789", CLICK,
                         TrackToken(edition_id, 0, link_digest(stored[0]), sent)),
        # Genuinely signed, but for a URL that is not the edition's link at that index,
        # for an index past the list, for an edition that does not exist.
        make_track_token(SECRET, CLICK, TrackToken(edition_id, 0, link_digest(elsewhere),
                                                   sent)),
        make_track_token(SECRET, CLICK, TrackToken(edition_id, len(stored),
                                                   link_digest(elsewhere), sent)),
        make_track_token(SECRET, CLICK, TrackToken(edition_id + 99, 0,
                                                   link_digest(stored[0]), sent)),
        "garbage",
    ]
    for bad in forged:
        response = _get(site.url(f"/r/{bad}"))
        assert response.status_code == 404, bad
        assert "Location" not in response.headers
        assert "evil.example.net" not in response.text
    assert _counts(site, edition_id) == {}


def test_per_subscriber_records_the_delivery_and_measures_from_its_send(
        make_site: Any, clock: Clock) -> None:
    site = make_site(clicks=True, per_subscriber=True, open_pixel=True, scanner_window="30s")
    edition_id, messages = _published(site, clock)
    links = {}
    for address in READERS:
        text, html = _parts(messages[address])
        links[address] = _links(site, text)
        (pixel,) = _links(site, html, "o")
        links[address + "/o"] = [pixel]
    assert links["alice@exemple.fr"] != links["bob@exemple.fr"]  # per message, now
    alice = site.ledger.find_delivery(edition_id, "alice@exemple.fr")
    assert alice is not None
    mark = verify_track_token(SECRET, CLICK, links["alice@exemple.fr"][0].rsplit("/", 1)[1])
    assert mark.delivery_id == alice.id

    assert _get(links["alice@exemple.fr"][0]).status_code == 302  # within 30 s of her send
    assert _counts(site, edition_id) == {}
    clock.advance(minutes=1)
    assert _get(links["alice@exemple.fr"][0]).status_code == 302
    pixel = _get(links["alice@exemple.fr/o"][0])
    assert pixel.status_code == 200 and pixel.headers["Content-Type"] == "image/gif"
    assert _counts(site, edition_id) == {mark.link: 1, OPEN_LINK: 1}
    assert [link for link, _ in site.ledger.delivery_hits(alice.id)] == [mark.link, OPEN_LINK]


def test_the_open_pixel_only_when_enabled(make_site: Any, clock: Clock) -> None:
    site = make_site(clicks=True)
    _, messages = _published(site, clock)
    _, html = _parts(messages["alice@exemple.fr"])
    assert not _links(site, html, "o")


# --------------------------------------------------------------------------- the console


def test_the_console_shows_clicks_per_edition_and_per_link(make_site: Any,
                                                           clock: Clock) -> None:
    site = make_site(admin={"operators": {"alice": HASH}}, clicks=True, open_pixel=True)
    edition_id, messages = _published(site, clock)
    clock.advance(minutes=5)
    text, _ = _parts(messages["alice@exemple.fr"])
    link = _links(site, text)[0]
    mark = verify_track_token(SECRET, CLICK, link.rsplit("/", 1)[1])
    for _ in range(3):
        _get(link)
    target = links_from_json(site.ledger.artefact(edition_id, TRACKED_LINKS_ARTEFACT) or "")
    app = create_app(site.config, secret=SECRET, now=clock)
    app.testing = True
    try:
        client = app.test_client()
        sign_in(client)
        overview = client.get("/admin/").get_data(as_text=True)
        assert "Clics par édition" in overview and "peu fiable" in overview
        assert re.search(r'<td class="num">3</td>', overview)
        page = client.get("/admin/analytics")
        assert page.status_code == 200
        body = page.get_data(as_text=True)
        assert "Ouvertures" in body and "peu fiable" in body and "Apple Mail" in body
        row = re.search(re.escape(f'href="{target[mark.link]}"') + r'.*?<td class="num">(\d+)',
                        body)
        assert row and row.group(1) == "3"
    finally:
        app.extensions["syndicate.ledger"].close()
