"""``syndicate serve``: the real Flask app on waitress, on 127.0.0.1, spoken to with requests.

Covers the archive and feeds (validators, 304, types, no traversal), RFC 8058 one-click
unsubscribe (POST flips, GET never does, forged tokens change nothing), double opt-in
through the outbox Maildir, and the start-up refusal without ``SYNDICATE_SECRET``.
The SMTP end-to-end flow (publish, read List-Unsubscribe, POST it, publish again) is
at the end.
"""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from _web_support import SECRET, Site, confirmation_link, free_port, site_factory
from click.testing import CliRunner

from syndicate.cli import cli
from syndicate.confirmations import unsubscribe_token

if TYPE_CHECKING:
    from .conftest import Clock, Project

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def make_site(project: Project) -> Iterator[Any]:
    yield from site_factory(project)


@pytest.fixture
def site(make_site: Any) -> Site:
    return make_site()


def raw_get(site: Site, path: str) -> tuple[int, bytes]:
    """A request with the path sent exactly as written (requests would normalise '..')."""
    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# --------------------------------------------------------------------------- archive and feeds


def write_public(site: Site) -> Path:
    public = site.config.public_dir
    (public / "un-cas").mkdir(parents=True)
    (public / "index.html").write_text("<!doctype html><title>Accueil</title>", "utf-8")
    (public / "un-cas" / "index.html").write_text("<p>L’étude\u00a0!</p>", "utf-8")
    (public / "feed.xml").write_text("<rss version=\"2.0\"></rss>", "utf-8")
    (public / "atom.xml").write_text("<feed xmlns=\"http://www.w3.org/2005/Atom\"/>", "utf-8")
    (public / "feed.json").write_text("{\"version\": \"https://jsonfeed.org/version/1.1\"}",
                                      "utf-8")
    (public / ".secret").write_text("hidden-7f3a", "utf-8")
    return public


@pytest.mark.parametrize(("path", "ctype"), [
    ("/", "text/html; charset=utf-8"),
    ("/un-cas/", "text/html; charset=utf-8"),
    ("/feed.xml", "application/rss+xml"),
    ("/atom.xml", "application/atom+xml"),
    ("/feed.json", "application/feed+json"),
])
def test_public_files_types_and_validators(site: Site, path: str, ctype: str) -> None:
    public = write_public(site)
    response = requests.get(site.url(path), timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(ctype)
    etag = response.headers["ETag"]
    last_modified = response.headers["Last-Modified"]
    assert etag and last_modified
    assert "Set-Cookie" not in response.headers

    again = requests.get(site.url(path), headers={"If-None-Match": etag}, timeout=5)
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == etag
    since = requests.get(site.url(path), headers={"If-Modified-Since": last_modified}, timeout=5)
    assert since.status_code == 304

    # Rewritten in place, same size, mtime put back: a new ETag anyway, and a 200.
    name = {"/": "index.html", "/un-cas/": "un-cas/index.html"}.get(path, path.lstrip("/"))
    target = public / name
    stat = target.stat()
    target.write_bytes(target.read_bytes()[::-1])
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert target.stat().st_size == stat.st_size
    changed = requests.get(site.url(path), headers={"If-None-Match": etag}, timeout=5)
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_no_directory_traversal_or_hidden_files(site: Site) -> None:
    write_public(site)
    (site.project.root / "var").mkdir(exist_ok=True)
    for path in ("/../config/syndicate.toml", "/%2e%2e/config/syndicate.toml",
                 "/un-cas/../../config/syndicate.toml", "/..%2fconfig/syndicate.toml",
                 "/.secret", "/%2esecret", "//etc/passwd", "/un-cas/%2e%2e/%2e%2e/var"):
        status, body = raw_get(site, path)
        assert status in (400, 404), (path, status)
        assert b"[[channels]]" not in body and b"hidden-7f3a" not in body, path


def test_folder_without_slash_redirects_and_missing_is_404(site: Site) -> None:
    write_public(site)
    response = requests.get(site.url("/un-cas"), allow_redirects=False, timeout=5)
    assert response.status_code == 301
    assert response.headers["Location"].endswith("/un-cas/")
    assert requests.get(site.url("/nulle-part/"), timeout=5).status_code == 404


# --------------------------------------------------------------------------- unsubscribe


def test_one_click_unsubscribe(site: Site) -> None:
    site.ledger.add_subscriber("Marie@Example.org", name="Marie")
    url = site.url("/unsubscribe/" + unsubscribe_token("Marie@example.org", SECRET))

    # A GET (a link scanner, a preview) shows a button and changes nothing.
    page = requests.get(url, timeout=5)
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert re.search(r'<form method="post" action="/unsubscribe/[^"]+"', page.text)
    assert "Confirmer la désinscription" in page.text
    assert site.status("marie@example.org") == "active"

    # RFC 8058: POST List-Unsubscribe=One-Click; no redirect, no cookie.
    response = requests.post(url, data={"List-Unsubscribe": "One-Click"},
                             allow_redirects=False, timeout=5)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert "Désinscription enregistrée" in response.text
    assert site.status("marie@example.org") == "unsubscribed"

    # Idempotent, multipart too.
    again = requests.post(url, files={"List-Unsubscribe": (None, "One-Click")}, timeout=5)
    assert again.status_code == 200
    assert site.status("marie@example.org") == "unsubscribed"


def test_browser_button_gets_a_page(site: Site) -> None:
    site.ledger.add_subscriber("paul@example.org")
    url = site.url("/unsubscribe/" + unsubscribe_token("paul@example.org", SECRET))
    response = requests.post(url, data={"List-Unsubscribe": "One-Click"},
                             headers={"Accept": "text/html,*/*;q=0.8"}, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<h1>Désinscription enregistrée</h1>" in response.text
    assert site.status("paul@example.org") == "unsubscribed"


def flip(token: str, index: int) -> str:
    char = token[index]
    return token[:index] + ("B" if char != "B" else "C") + token[index + 1:]


def test_forged_or_altered_tokens_change_nothing(site: Site) -> None:
    site.ledger.add_subscriber("victime@example.org")
    good = unsubscribe_token("victime@example.org", SECRET)
    payload = good.split(".")[0]
    forged = [
        flip(good, 3),  # payload altered
        flip(good, len(good) - 3),  # signature altered
        unsubscribe_token("victime@example.org", b"another-secret-456789"),
        payload + ".",
        payload,
        "n-importe-quoi",
    ]
    # Another purpose: a confirmation token is no unsubscribe token.
    from syndicate.confirmations import confirm_token

    forged.append(confirm_token("victime@example.org", SECRET, datetime.now(UTC), 3600))
    for token in forged:
        url = site.url("/unsubscribe/" + token)
        post = requests.post(url, data={"List-Unsubscribe": "One-Click"}, timeout=5)
        assert 400 <= post.status_code < 500, token
        assert requests.get(url, timeout=5).status_code in (400, 403, 404)
    assert site.status("victime@example.org") == "active"


def test_unknown_or_bounced_address_is_left_alone(site: Site) -> None:
    site.ledger.add_subscriber("parti@example.org", status="bounced")
    for address in ("parti@example.org", "inconnu@example.org"):
        url = site.url("/unsubscribe/" + unsubscribe_token(address, SECRET))
        assert requests.post(url, data={"List-Unsubscribe": "One-Click"},
                             timeout=5).status_code == 200
    assert site.status("parti@example.org") == "bounced"
    assert site.status("inconnu@example.org") is None


# --------------------------------------------------------------------------- subscribe


def test_subscribe_double_opt_in(site: Site) -> None:
    form = requests.get(site.url("/subscribe"), timeout=5)
    assert form.status_code == 200 and 'name="email"' in form.text
    assert '<html lang="fr">' in form.text

    response = site.subscribe("Lea@Example.org", name="Léa")
    assert response.status_code == 200
    assert "Vérifiez votre boîte aux lettres" in response.text
    assert site.status("lea@example.org") == "pending"

    (message,) = site.outbox()
    assert message["To"].endswith("Lea@example.org>") or "Lea@example.org" in message["To"]
    assert "Confirmez votre inscription" in message["Subject"]
    assert message.get_content_type() == "multipart/alternative"
    link = confirmation_link(message)
    assert link.startswith(site.base + "confirm/")

    # GET shows a button and confirms nothing (scanners).
    page = requests.get(link, timeout=5)
    assert page.status_code == 200 and "Confirmer mon inscription" in page.text
    assert site.status("lea@example.org") == "pending"

    done = requests.post(link, timeout=5)
    assert done.status_code == 200 and "Inscription confirmée" in done.text
    assert site.status("lea@example.org") == "active"
    assert site.ledger.get_subscriber("lea@example.org").name == "Léa"  # type: ignore[union-attr]

    # An altered confirmation link changes nothing.
    site.ledger.set_subscriber_status("lea@example.org", "unsubscribed")
    token = link.rsplit("/", 1)[1]
    assert requests.post(site.url("/confirm/" + flip(token, 4)), timeout=5).status_code == 400
    assert site.status("lea@example.org") == "unsubscribed"


def test_same_answer_whatever_the_address(site: Site) -> None:
    site.ledger.add_subscriber("deja@example.org")
    site.ledger.add_subscriber("parti@example.org", status="unsubscribed")
    pages = [
        site.subscribe(address)
        for address in ("deja@example.org", "nouveau@example.org", "parti@example.org")
    ]
    assert {p.status_code for p in pages} == {200}
    assert pages[0].text == pages[1].text == pages[2].text
    # The active one got nothing; the others must confirm; the unsubscribed one
    # stays unsubscribed until then.
    assert sorted(m["To"] for m in site.outbox()) == ["nouveau@example.org",
                                                      "parti@example.org"]
    assert site.status("deja@example.org") == "active"
    assert site.status("parti@example.org") == "unsubscribed"
    (message,) = [m for m in site.outbox() if m["To"] == "parti@example.org"]
    requests.post(confirmation_link(message), timeout=5)
    assert site.status("parti@example.org") == "active"


def test_invalid_address_and_resend_throttle(site: Site) -> None:
    bad = site.subscribe("pas-une-adresse")
    assert bad.status_code == 400 and "n’est pas valide" in bad.text
    assert 'value="pas-une-adresse"' in bad.text
    for _ in range(3):
        site.subscribe("x@example.org")
    assert len(site.outbox()) == 1  # one email, not three: the form cannot flood an inbox
    trap = site.subscribe("bot@example.org", website="http://spam")
    assert trap.status_code == 200 and site.status("bot@example.org") is None


def test_confirmation_link_expires(make_site: Any, clock: Clock) -> None:
    site = make_site(now=clock)
    site.subscribe("tard@example.org")
    link = confirmation_link(site.outbox()[0])
    clock.advance(hours=49)
    expired = requests.post(link, timeout=5)
    assert expired.status_code == 410 and "Lien expiré" in expired.text
    assert site.status("tard@example.org") == "pending"


# --------------------------------------------------------------------------- the command


def test_serve_refuses_to_start_without_the_secret(project: Project,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNDICATE_SECRET", raising=False)
    result = CliRunner().invoke(cli, ["--config", str(project.config_path), "serve",
                                      "--port", str(free_port())])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "SYNDICATE_SECRET" in lines[0], result.output


@pytest.mark.slow
def test_serve_command_end_to_end(project: Project) -> None:
    """`syndicate serve` in a subprocess: it answers, then stops cleanly on SIGTERM."""
    port = free_port()
    project.write_config(site={"base_url": f"http://127.0.0.1:{port}/"})
    (project.public).mkdir(parents=True, exist_ok=True)
    (project.public / "feed.xml").write_text("<rss version=\"2.0\"></rss>", "utf-8")
    env = {**os.environ, "SYNDICATE_SECRET": SECRET.decode(), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "syndicate", "--config", str(project.config_path), "serve"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/feed.xml", timeout=1)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("application/rss+xml")
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


# --------------------------------------------------------------------------- end to end, SMTP


def two_case_studies(project: Project) -> None:
    from syndicate.corpus import CaseStudy, Section, save

    for old in (project.root / "corpus").glob("*.md"):  # a small corpus of our own
        old.unlink()
    for position, (slug, title) in enumerate(
        [("refuser-les-levees-de-fonds", "Refuser les levées de fonds"),
         ("recruter-sans-diplome", "Recruter sans regarder les diplômes")], start=1):
        save(CaseStudy(
            slug=slug, title=title, position=position, companies=("Cozy Cloud",),
            lede=f"{title}\u00a0: ce que « Cozy Cloud » en a appris.",
            sections=(Section("Le choix", ("Un paragraphe, 10\u00a0% d’effort.",)),),
        ), project.root / "corpus")


def unsubscribe_link(message: EmailMessage) -> str:
    header = " ".join(str(message["List-Unsubscribe"]).split())
    (link,) = re.findall(r"<(https?://[^>]+)>", header)
    return link


@pytest.mark.slow
def test_unsubscribe_end_to_end_over_smtp(make_site: Any, project: Project,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Subscribe over HTTP (confirmation by real SMTP), publish to a real SMTP server,
    POST the List-Unsubscribe URL of a received message, publish again: that address
    gets nothing more; unsubscribed, bounced and pending addresses never get anything."""
    from _smtp_support import smtp_channel, smtp_server

    from syndicate.pipeline import publish

    monkeypatch.setenv("SYNDICATE_SECRET", SECRET.decode())
    two_case_studies(project)
    with smtp_server() as (server, port):
        site = make_site(channels=[smtp_channel(port)])
        site.ledger.add_subscriber("alice@exemple.fr", name="Alice")
        site.ledger.add_subscriber("bob@exemple.fr")
        site.ledger.add_subscriber("parti@exemple.fr", status="unsubscribed")
        site.ledger.add_subscriber("rebond@exemple.fr", status="bounced")
        site.ledger.add_subscriber("attente@exemple.fr", status="pending")

        # Carol subscribes with the form; the confirmation comes through the smtp channel.
        site.subscribe("carol@exemple.fr")
        site.send_confirmations()
        (confirmation,) = server.messages
        assert confirmation.rcpt == "carol@exemple.fr"
        assert b"\r\n" in confirmation.data and b"\n" not in confirmation.data.replace(
            b"\r\n", b"")
        link = confirmation_link(confirmation.parse())
        assert link.startswith(site.base + "confirm/")
        assert requests.post(link, timeout=5).status_code == 200
        assert site.status("carol@exemple.fr") == "active"
        server.messages.clear()

        first = publish(site.config)
        assert first.complete, first.summary()
        received = server.by_rcpt()
        assert sorted(received) == ["alice@exemple.fr", "bob@exemple.fr", "carol@exemple.fr"]

        message = received["alice@exemple.fr"][0].parse()
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        url = unsubscribe_link(message)
        assert url.startswith(site.base + "unsubscribe/")
        # What a mail provider sends (RFC 8058 section 3.2).
        response = requests.post(url, data="List-Unsubscribe=One-Click", allow_redirects=False,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"},
                                 timeout=5)
        assert response.status_code == 200
        assert site.status("alice@exemple.fr") == "unsubscribed"

        server.messages.clear()
        second = publish(site.config)
        assert second.edition.number == 2 and second.complete
        assert sorted(server.by_rcpt()) == ["bob@exemple.fr", "carol@exemple.fr"]
