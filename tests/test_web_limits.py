"""Hardening of ``syndicate serve``, against a real waitress server and SQLite ledger.

- Only POST changes state: every method on every token route and on /subscribe.
- The subscribe form: limits per client IP (X-Forwarded-For with trusted proxies),
  per mailbox (``+tag`` and case folded), per recipient domain and in all, counted
  in the ledger (shared by servers, windows expire, rows pruned); cross-site posts
  and forms without a valid signed token refused; no typed name in the email.
- Errors: French pages and one log line (a corrupt ledger under a running server
  included); request bodies capped before waitress buffers them.
"""

from __future__ import annotations

import logging
import os
import select
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from _web_support import SECRET, Site, confirmation_link, site_factory

from syndicate.confirmations import confirm_token, unsubscribe_token
from syndicate.web.formguard import form_token

if TYPE_CHECKING:
    from conftest import Clock, Project

LOOSE = {"limit_per_ip": "1000/hour", "limit_per_mailbox": "1000/hour",
         "limit_per_domain": "1000/hour", "limit_global": "1000/hour"}


@pytest.fixture
def make_site(project: Project) -> Iterator[Any]:
    yield from site_factory(project)


def recipients(site: Site) -> list[str]:
    return sorted(str(m["To"]) for m in site.outbox())


# --------------------------------------------------------------------------- methods

METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH", "TRACE", "PROPFIND"]


@pytest.mark.parametrize("method", METHODS)
def test_only_post_changes_state(make_site: Any, method: str) -> None:
    """Scanners send HEAD, GET and OPTIONS to every link: nothing but POST may
    unsubscribe, confirm or subscribe; GET and HEAD show the page, the rest is 405."""
    site = make_site()
    site.ledger.add_subscriber("lecteur@example.org")
    site.ledger.add_subscriber("attente@example.org", status="pending")
    routes = {
        "/unsubscribe/" + unsubscribe_token("lecteur@example.org", SECRET): None,
        "/confirm/" + confirm_token("attente@example.org", SECRET, site.now(), 3600): None,
        "/subscribe": site.form("nouveau@example.org"),
    }
    for path, form in routes.items():
        response = requests.request(method, site.url(path), data=form, timeout=5,
                                    allow_redirects=False)
        if method in ("GET", "HEAD"):
            assert response.status_code == 200, (method, path)
            assert response.headers["Content-Type"] == "text/html; charset=utf-8"
            if method == "HEAD":
                assert response.content == b""
            else:
                assert "<form method=\"post\"" in response.text
        else:
            assert response.status_code == 405, (method, path, response.status_code)
            assert response.headers["Allow"] == "GET, HEAD, POST"
            assert '<html lang="fr">' in response.text
            assert "Méthode non autorisée" in response.text
    assert site.status("lecteur@example.org") == "active"
    assert site.status("attente@example.org") == "pending"
    assert site.status("nouveau@example.org") is None
    assert site.outbox() == []


def test_public_files_answer_get_and_head_only(make_site: Any) -> None:
    site = make_site()
    site.config.public_dir.mkdir(parents=True, exist_ok=True)
    (site.config.public_dir / "feed.xml").write_text("<rss/>", "utf-8")
    assert requests.head(site.url("/feed.xml"), timeout=5).status_code == 200
    for method in ("OPTIONS", "POST", "PUT", "DELETE"):
        response = requests.request(method, site.url("/feed.xml"), timeout=5)
        assert response.status_code == 405, method
        assert response.headers["Allow"] == "GET, HEAD"


# --------------------------------------------------------------------------- limits


def test_plus_address_flood_mails_one_confirmation(make_site: Any) -> None:
    """The reported attack: v+1@… v+100@… (any case) from one client gave 100 emails."""
    site = make_site(subscribe={**LOOSE, "limit_per_mailbox": "1 per 5 minutes"})
    pages = {site.subscribe(address).text for address in
             [f"v+{n}@example.org" for n in range(1, 31)] + ["V@EXAMPLE.ORG", "v@Example.org"]}
    assert len(pages) == 1 and "Vérifiez votre boîte aux lettres" in pages.pop()
    assert recipients(site) == ["v+1@example.org"]
    # Another mailbox on the same domain is not affected.
    site.subscribe("w@example.org")
    assert recipients(site) == ["v+1@example.org", "w@example.org"]


@pytest.mark.parametrize(("settings", "addresses", "mailed"), [
    # Per client IP (the defaults: 5 an hour): distinct mailboxes and domains.
    ({}, [f"a{n}@d{n}.example" for n in range(7)], 5),
    # Per recipient domain.
    ({**LOOSE, "limit_per_domain": "3/hour"},
     [f"a{n}@example.org" for n in range(5)] + ["b@autre.example"], 4),
    # In all.
    ({**LOOSE, "limit_global": "4/hour"}, [f"a{n}@d{n}.example" for n in range(6)], 4),
], ids=["per-ip", "per-domain", "global"])
def test_limits(make_site: Any, caplog: pytest.LogCaptureFixture, settings: dict[str, str],
                addresses: list[str], mailed: int) -> None:
    site = make_site(subscribe=settings)
    with caplog.at_level(logging.INFO, logger="syndicate.web"):
        pages = [site.subscribe(address) for address in addresses]
    assert {p.status_code for p in pages} == {200}
    assert len({p.text for p in pages}) == 1  # limited or not: the same page
    assert len(site.outbox()) == mailed
    refusals = [r for r in caplog.records if "limit per" in r.getMessage()]
    assert len(refusals) == len(addresses) - mailed
    for record in refusals:  # the address is redacted in the log
        assert not any(address in record.getMessage() for address in addresses)


def test_limits_are_shared_by_servers_on_one_ledger(make_site: Any) -> None:
    """Two servers (as two `serve` processes would) count in the same ledger."""
    first = make_site()
    second = make_site()
    assert first.config.database == second.config.database
    first.subscribe("partage@example.org")
    second.subscribe("partage@example.org")
    second.subscribe("Partage+2@example.org")
    assert recipients(first) == ["partage@example.org"]


def test_windows_expire_and_old_counters_are_pruned(make_site: Any, clock: Clock) -> None:
    site = make_site(now=clock)
    site.subscribe("retour@example.org")
    site.subscribe("retour@example.org")
    assert len(site.outbox()) == 1
    clock.advance(minutes=6)
    site.subscribe("retour@example.org")
    assert len(site.outbox()) == 2
    for n in range(3):
        site.subscribe(f"autre{n}@d{n}.example")
    before = site.ledger.limit_rows()
    clock.advance(days=2)  # every window is over
    site.subscribe("dernier@example.org")
    after = site.ledger.limit_rows()
    assert before > after
    # What is left is the last request's counters: one per limit item at most.
    assert after <= 6


def test_client_ip_from_trusted_proxies(make_site: Any) -> None:
    """With one trusted proxy the client is the last X-Forwarded-For entry (what the
    proxy saw); entries a client writes itself before it change nothing."""
    site = make_site(subscribe={**LOOSE, "limit_per_ip": "2/hour", "trusted_proxies": 1})

    def post(address: str, forwarded: str) -> None:
        requests.post(site.url("/subscribe"), data=site.form(address),
                      headers={"X-Forwarded-For": forwarded}, timeout=5)

    post("a@example.org", "203.0.113.7")
    post("b@example.org", "198.51.100.1, 203.0.113.7")
    post("c@example.org", "198.51.100.2, 203.0.113.7")  # third from 203.0.113.7: refused
    post("d@example.org", "203.0.113.8")
    assert recipients(site) == ["a@example.org", "b@example.org", "d@example.org"]


def test_forwarded_for_is_ignored_without_trusted_proxies(make_site: Any) -> None:
    site = make_site(subscribe={**LOOSE, "limit_per_ip": "2/hour"})
    for n in range(3):
        requests.post(site.url("/subscribe"), data=site.form(f"x{n}@example.org"),
                      headers={"X-Forwarded-For": f"203.0.113.{n}"}, timeout=5)
    assert len(site.outbox()) == 2


# --------------------------------------------------------------------------- bots, cross-site


def test_cross_site_posts_are_refused(make_site: Any) -> None:
    site = make_site(subscribe=LOOSE)
    origin = site.base.rstrip("/")
    for n, headers in enumerate([
        {"Origin": "https://attaquant.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": origin, "Sec-Fetch-Site": "cross-site"},
    ]):
        response = requests.post(site.url("/subscribe"), data=site.form(f"r{n}@example.org"),
                                 headers=headers, timeout=5)
        assert response.status_code == 403, headers
        assert "Demande refusée" in response.text and '<html lang="fr">' in response.text
    assert site.outbox() == []
    # Our own page, a browser that says nothing, curl: accepted.
    # (Chromium posts our own no-referrer pages' forms with "Origin: null".)
    for n, headers in enumerate([{"Origin": origin, "Sec-Fetch-Site": "same-origin"},
                                 {"Sec-Fetch-Site": "same-origin"}, {},
                                 {"Origin": "null", "Sec-Fetch-Site": "same-origin"}]):
        response = requests.post(site.url("/subscribe"), data=site.form(f"ok{n}@example.org"),
                                 headers=headers, timeout=5)
        assert response.status_code == 200, headers
    assert len(site.outbox()) == 4
    # RFC 8058: mail providers post the unsubscribe URL from anywhere.
    site.ledger.add_subscriber("fin@example.org")
    response = requests.post(
        site.url("/unsubscribe/" + unsubscribe_token("fin@example.org", SECRET)),
        data={"List-Unsubscribe": "One-Click"},
        headers={"Origin": "https://mail.example", "Sec-Fetch-Site": "cross-site"}, timeout=5)
    assert response.status_code == 200 and site.status("fin@example.org") == "unsubscribed"


def test_form_token_is_required_and_timed(make_site: Any, clock: Clock) -> None:
    site = make_site(now=clock, subscribe=LOOSE)
    served = clock().timestamp()

    def post(address: str, token: str | None) -> requests.Response:
        data = {"email": address} if token is None else {"email": address, "form_token": token}
        return requests.post(site.url("/subscribe"), data=data, timeout=5)

    refused = [
        post("a@example.org", None),
        post("b@example.org", form_token(SECRET, served)),  # posted at once: a bot
        post("c@example.org", form_token(SECRET, served - 3 * 3600)),  # left open 3 h
        post("d@example.org", form_token(b"another-secret-0123456", served - 10)),
        post("e@example.org", form_token(SECRET, served - 10)[:-2] + "xx"),
    ]
    for response in refused:
        assert response.status_code == 400
        assert "Le formulaire a expiré" in response.text
        assert 'name="form_token" value="' in response.text  # a fresh one: just resend
    assert 'value="e@example.org"' in refused[-1].text
    assert site.outbox() == [] and site.status("a@example.org") is None

    # A person: opens the form, types for a few seconds, sends it.
    page = requests.get(site.url("/subscribe"), timeout=5)
    token = page.text.split('name="form_token" value="', 1)[1].split('"', 1)[0]
    clock.advance(seconds=5)
    assert post("f@example.org", token).status_code == 200
    assert recipients(site) == ["f@example.org"]


def test_confirmation_email_carries_no_typed_name(make_site: Any) -> None:
    site = make_site()
    bait = "Gagnez 1000 € sur http://arnaque.example"
    site.subscribe("cible@example.org", name=bait)
    (message,) = site.outbox()
    assert str(message["To"]) == "cible@example.org"
    raw = message.as_string()
    assert "arnaque" not in raw and "Gagnez" not in raw
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert text.startswith("Bonjour,")
    # Kept for after the confirmation.
    requests.post(confirmation_link(message), timeout=5)
    subscriber = site.ledger.get_subscriber("cible@example.org")
    assert subscriber is not None and subscriber.status == "active"
    assert subscriber.name == bait


# --------------------------------------------------------------------------- errors


def corrupt(database: Path) -> None:
    """Garbage over the ledger file and its WAL and shared-memory files, in place."""
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        if path.exists():
            size = max(path.stat().st_size, 4096)
            with path.open("r+b") as handle:
                handle.write(b"corrupt!" * (size // 8))


def test_corrupt_ledger_gives_a_french_page_and_one_log_line(
        make_site: Any, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNDICATE_DEBUG", raising=False)
    site = make_site()
    site.ledger.add_subscriber("lecteur@example.org")
    corrupt(site.config.database)
    with caplog.at_level(logging.INFO):
        responses = [
            site.subscribe("nouveau@example.org"),
            requests.post(site.url("/unsubscribe/"
                                   + unsubscribe_token("lecteur@example.org", SECRET)),
                          data={"List-Unsubscribe": "One-Click"}, timeout=5),
        ]
    for response in responses:
        assert response.status_code == 500
        assert '<html lang="fr">' in response.text
        assert "momentanément indisponible" in response.text
        assert "Traceback" not in response.text and "Internal Server Error" not in response.text
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.name for r in records] == ["syndicate.web", "syndicate.web"], records
    for record in records:
        assert record.exc_info is None and "\n" not in record.getMessage()
        assert record.getMessage().startswith("500 POST /")
        assert "not a database" in record.getMessage()
    # The token is not in the log (it holds the address).
    assert "/unsubscribe/<token>" in records[1].getMessage()


def test_error_pages_are_french(make_site: Any) -> None:
    site = make_site(base_path="lettre/")
    for url, status in [(site.url("/nulle-part"), 404),
                        (f"http://127.0.0.1:{site.port}/ailleurs", 404),
                        (site.url("/unsubscribe/abc"), 400)]:
        response = requests.get(url, timeout=5)
        assert response.status_code == status, url
        assert '<html lang="fr">' in response.text, url
        assert "Not Found" not in response.text


# --------------------------------------------------------------------------- body size


def raw_request(site: Site, head: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", site.port), timeout=5)
    sock.sendall(head.encode("ascii"))
    return sock


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    status = int(data.split(b" ", 2)[1]) if data else 0
    return status, data


def test_a_20_mb_body_is_refused_before_it_is_read(make_site: Any) -> None:
    site = make_site()
    site.ledger.add_subscriber("lecteur@example.org")
    path = "/unsubscribe/" + unsubscribe_token("lecteur@example.org", SECRET)
    sock = raw_request(site, f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "Content-Type: application/x-www-form-urlencoded\r\n"
                             f"Content-Length: {20 * 1024 * 1024}\r\n\r\n")
    with sock:
        # The answer comes on the headers alone: not one byte of the body is awaited.
        status, data = read_response(sock)
    assert status == 413
    assert b'<html lang="fr">' in data and b"trop volumineuse" in data
    assert site.status("lecteur@example.org") == "active"


def test_a_chunked_body_is_cut_at_the_cap(make_site: Any) -> None:
    site = make_site()
    site.ledger.add_subscriber("lecteur@example.org")
    path = "/unsubscribe/" + unsubscribe_token("lecteur@example.org", SECRET)
    sock = raw_request(site, f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n")
    piece = b"2000\r\n" + b"x" * 0x2000 + b"\r\n"
    sent = 0
    with sock:
        for _ in range(20 * 1024 * 1024 // 0x2000):  # up to 20 MB
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable:
                break
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 0x2000
        status, data = read_response(sock)
    assert status == 413 and b"trop volumineuse" in data
    assert sent < 1024 * 1024, sent  # refused after the cap, far from 20 MB
    assert site.status("lecteur@example.org") == "active"


@pytest.mark.parametrize(("size", "status"), [(1024, 200), (17 * 1024, 413)])
def test_body_cap_on_forms(make_site: Any, size: int, status: int) -> None:
    site = make_site(subscribe=LOOSE)
    response = requests.post(site.url("/subscribe"),
                             data={**site.form("taille@example.org"), "pad": "x" * size},
                             timeout=5)
    assert response.status_code == status
    assert len(site.outbox()) == (1 if status == 200 else 0)


def test_debug_adds_the_traceback(make_site: Any, caplog: pytest.LogCaptureFixture,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNDICATE_DEBUG", "1")
    assert os.environ["SYNDICATE_DEBUG"] == "1"
    site = make_site()
    corrupt(site.config.database)
    with caplog.at_level(logging.INFO):
        assert site.subscribe("x@example.org").status_code == 500
    assert any(r.exc_info for r in caplog.records if r.name == "syndicate.web")


def test_limits_are_checked_in_the_config(project: Project) -> None:
    from syndicate.app import load_config
    from syndicate.errors import ConfigError

    project.write_config(subscribe={"limit_per_ip": "beaucoup", "trusted_proxies": -1})
    with pytest.raises(ConfigError) as raised:
        load_config(project.config_path)
    lines = raised.value.problems
    assert any(line.endswith("subscribe.limit_per_ip = 'beaucoup': expected rate limits such "
                             "as '5/hour', '1 per 5 minutes' or '5/hour;20/day' (several "
                             "separated by ';')") for line in lines), lines
    assert any("subscribe.trusted_proxies = -1" in line for line in lines), lines


def test_counters_lose_no_increment_between_processes(tmp_path: Path) -> None:
    """The counters are shared state: two processes counting the same key at once."""
    import subprocess
    import sys

    from syndicate.ledger import Ledger

    database = tmp_path / "ledger.db"
    Ledger(database).close()  # created and migrated once
    script = ("import sys\nfrom syndicate.ledger import Ledger\n"
              "ledger = Ledger(sys.argv[1])\n"
              "for _ in range(200):\n    ledger.limit_incr('k', 3600)\n")
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [root, *filter(None, [os.environ.get("PYTHONPATH")])])}
    workers = [subprocess.Popen([sys.executable, "-c", script, str(database)], env=env)
               for _ in range(2)]
    assert [w.wait(60) for w in workers] == [0, 0]
    with Ledger(database) as ledger:
        assert ledger.limit_get("k") == 400
