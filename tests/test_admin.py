"""The operator console (/admin/): access rules, pages, the `admin passwd` command.

The app is the real one (create_app on a real SQLite ledger, the sample corpus), driven
through Flask's test client; the browser walk is tests/test_admin_browser.py.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner
from conftest import ROOT, Clock, Project
from flask import Flask
from flask.testing import FlaskClient

from syndicate.cli import cli
from syndicate.config import AdminConfig
from syndicate.errors import ConfigError
from syndicate.web import create_app
from syndicate.web.admin.auth import COOKIE, hash_password, verify_password
from syndicate.web.admin.charts import lines, nice_max, stacked_bars

SECRET = b"test-secret-0123456789abcdef"
PASSWORD = "correct horse battery staple"
HASH = hash_password(PASSWORD)
CHANNELS = [{"type": "feed"}, {"type": "archive"}, {"type": "outbox", "path": "../var/outbox"}]


def make_app(project: Project, clock: Clock, *, base: str = "http://127.0.0.1:8080/",
             admin: dict[str, Any] | None = None) -> Flask:
    sections: dict[str, Any] = {"admin": admin} if admin is not None else {}
    project.write_config(site={"base_url": base}, channels=CHANNELS, **sections)
    app = create_app(project.config(), secret=SECRET, now=clock)
    app.testing = True
    return app


@pytest.fixture
def app(project: Project, clock: Clock) -> Iterator[Flask]:
    app = make_app(project, clock, admin={"operators": {"alice": HASH},
                                          "login_limit_per_ip": "5/minute"})
    yield app
    app.extensions["syndicate.ledger"].close()


def login_token(client: FlaskClient) -> str:
    page = client.get("/admin/login").get_data(as_text=True)
    match = re.search(r'name="login_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def sign_in(client: FlaskClient, name: str = "alice", password: str = PASSWORD) -> Any:
    return client.post("/admin/login", data={"operator": name, "password": password,
                                             "login_token": login_token(client)})


def csrf_of(client: FlaskClient) -> str:
    page = client.get("/admin/").get_data(as_text=True)
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


# -- enabled only when configured -------------------------------------------------------


def test_the_console_is_absent_unless_operators_are_configured(project: Project,
                                                               clock: Clock) -> None:
    app = make_app(project, clock)
    (project.public / "admin").mkdir(parents=True)
    (project.public / "admin" / "index.html").write_text("archive file")
    client = app.test_client()
    for path in ("/admin/", "/admin/login", "/admin/subscribers", "/admin/index.html"):
        assert client.get(path).status_code == 404, path
    assert client.post("/admin/login").status_code == 405  # the public app is GET-only
    assert not [r for r in app.url_map.iter_rules() if r.rule.startswith("/admin")]


def test_config_takes_argon2_hashes_never_passwords(project: Project) -> None:
    project.write_config(admin={"operators": {"alice": "hunter2hunter2"}})
    with pytest.raises(ConfigError, match=r"admin\.operators.*argon2id hash"):
        project.config()
    project.write_config(admin={"operators": {"bad name": HASH}})
    with pytest.raises(ConfigError, match="operator name"):
        project.config()
    assert not AdminConfig().enabled
    assert AdminConfig(operators={"alice": HASH}).enabled


# -- the URL map: every route refuses the anonymous and the CSRF-less -------------------


def admin_rules(app: Flask) -> list[tuple[str, str]]:
    """(path, method) of every /admin/ route, its variables filled with a sample."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin/"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", "x", rule.rule)
        for method in sorted(rule.methods or ()):
            found.append((path, method))
    return found


def test_every_admin_route_refuses_an_anonymous_request(app: Flask) -> None:
    app.extensions["syndicate.ledger"].add_subscriber("secret-reader@example.org")
    rules = admin_rules(app)
    paths = {path for path, _ in rules}
    assert {"/admin/", "/admin/subscribers", "/admin/subscribers/add", "/admin/logout",
            "/admin/subscribers/export.csv", "/admin/login"} <= paths
    client = app.test_client()
    checked = 0
    for path, method in rules:
        if path == "/admin/login":  # the way in; its POST is checked below
            continue
        response = client.open(path, method=method)
        checked += 1
        if method in ("GET", "HEAD"):
            assert response.status_code == 303, (method, path)
            assert response.headers["Location"].endswith("/admin/login")
        else:
            assert response.status_code in (401, 403), (method, path, response.status_code)
        assert b"secret-reader" not in response.data  # no subscriber data, whatever the answer
    assert checked >= 6
    # Methods no route declares (OPTIONS included) are refused too.
    assert client.options("/admin/").status_code == 405
    assert client.put("/admin/subscribers").status_code == 405


def test_every_state_changing_route_refuses_a_post_without_the_csrf_token(app: Flask) -> None:
    ledger = app.extensions["syndicate.ledger"]
    ledger.add_subscriber("keep@example.org")
    client = app.test_client()
    assert sign_in(client).status_code == 303
    token = csrf_of(client)
    changing = [(p, m) for p, m in admin_rules(app)
                if m not in ("GET", "HEAD") and p != "/admin/login"]
    assert ("/admin/subscribers/add", "POST") in changing
    for path, method in changing:
        for data in ({"email": "keep@example.org"}, {"email": "keep@example.org",
                                                     "csrf": token + "x"}):
            response = client.open(path, method=method, data=data)
            assert response.status_code == 403, (method, path, data)
    # A right token from another site is refused as well.
    response = client.post("/admin/subscribers/remove", data={
        "email": "keep@example.org", "csrf": token}, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert ledger.get_subscriber("keep@example.org") is not None
    assert client.get("/admin/").status_code == 200  # still signed in: logout was refused
    # The sign-in form refuses a post without its own token.
    response = client.post("/admin/login", data={"operator": "alice", "password": PASSWORD})
    assert response.status_code == 400 and COOKIE not in response.headers.get("Set-Cookie", "")
    # With the token, the same post works.
    response = client.post("/admin/subscribers/remove", data={
        "email": "keep@example.org", "csrf": token})
    assert response.status_code == 303 and ledger.get_subscriber("keep@example.org") is None


# -- sign-in, cookie, sign-out ----------------------------------------------------------


def test_sign_in_sets_a_strict_cookie_scoped_to_admin(project: Project, clock: Clock) -> None:
    app = make_app(project, clock, base="https://cas.example.org/lettre/",
                   admin={"operators": {"alice": HASH}})
    client = app.test_client()
    response = sign_in(client)
    assert response.status_code == 303 and response.headers["Location"].endswith("/admin/")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for attribute in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/admin/"):
        assert attribute in cookie.split("; "), cookie
    app.extensions["syndicate.ledger"].close()


def test_wrong_passwords_and_unknown_operators_are_refused(app: Flask) -> None:
    client = app.test_client()
    for name, password in (("alice", "wrong password!"), ("mallory", PASSWORD), ("", "")):
        response = sign_in(client, name, password)
        assert response.status_code == 401
        assert "Identifiant ou mot de passe incorrect" in response.get_data(as_text=True)
        assert "Set-Cookie" not in response.headers
    assert client.get("/admin/").status_code == 303


def test_sign_in_attempts_are_rate_limited_in_the_ledger(app: Flask, clock: Clock) -> None:
    client = app.test_client()
    for _ in range(5):
        assert sign_in(client, "alice", "wrong password!").status_code == 401
    response = sign_in(client)  # right password, but over the limit
    assert response.status_code == 429 and "Trop de tentatives" in response.get_data(True)
    assert app.extensions["syndicate.ledger"].limit_rows() >= 2  # per IP and per operator
    clock.advance(minutes=1, seconds=1)
    assert sign_in(client).status_code == 303


def test_sign_out_revokes_the_cookie_everywhere(app: Flask, clock: Clock,
                                                project: Project) -> None:
    client = app.test_client()
    cookie = sign_in(client).headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    assert client.get("/admin/subscribers").status_code == 200
    # Another instance with the same secret and ledger accepts the session...
    other = create_app(project.config(), secret=SECRET, now=clock).test_client()
    other.set_cookie(COOKIE, cookie, path="/admin/")
    assert other.get("/admin/subscribers").status_code == 200
    response = client.post("/admin/logout", data={"csrf": csrf_of(client)})
    assert response.status_code == 303 and response.headers["Location"].endswith("/admin/login")
    assert f"{COOKIE}=;" in response.headers["Set-Cookie"]
    # ...and refuses a copy of it once signed out.
    assert other.get("/admin/subscribers").status_code == 303
    thief = app.test_client()
    thief.set_cookie(COOKIE, cookie, path="/admin/")
    assert thief.get("/admin/").status_code == 303


def test_sessions_expire_and_end_when_the_password_changes(app: Flask, project: Project,
                                                            clock: Clock) -> None:
    client = app.test_client()
    sign_in(client)
    clock.advance(hours=11)
    assert client.get("/admin/").status_code == 200
    clock.advance(hours=1, seconds=1)  # session_lifetime: 12 h
    assert client.get("/admin/").status_code == 303
    sign_in(client)
    cookie = client.get_cookie(COOKIE, path="/admin/")
    assert cookie is not None
    new = make_app(project, clock, admin={"operators": {"alice": hash_password("new pass 1234")}})
    fresh = new.test_client()
    fresh.set_cookie(COOKIE, cookie.value, path="/admin/")
    assert fresh.get("/admin/").status_code == 303
    new.extensions["syndicate.ledger"].close()


def test_forged_cookies_are_refused(app: Flask) -> None:
    client = app.test_client()
    for value in ("", "x", "eyJvIjoiYWxpY2UifQ.forged.sig", "a" * 2000):
        client.set_cookie(COOKIE, value, path="/admin/")
        assert client.get("/admin/").status_code == 303


def test_pages_carry_the_console_headers(app: Flask) -> None:
    client = app.test_client()
    page = client.get("/admin/login")
    assert page.status_code == 200
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    assert '<html lang="fr">' in page.get_data(as_text=True)


# -- pages ------------------------------------------------------------------------------


def test_overview_shows_the_next_slots_editions_and_charts(app: Flask, clock: Clock,
                                                           project: Project) -> None:
    ledger = app.extensions["syndicate.ledger"]
    ledger.add_subscribers([f"reader{i}@example.org" for i in range(3)])
    edition = ledger.claim_edition(slot="2026-11-23T08:00", slug="une-etude", title="Une étude",
                                   url="https://cas.example.org/une-etude/")
    ledger.ensure_deliveries(edition.id, "smtp", ["a@x.fr", "b@x.fr"])
    first = next(iter(ledger.pending_deliveries(edition.id, "smtp")))
    ledger.mark_failed(first.id, 550, "no such user")
    feed = ledger.ensure_delivery(edition.id, "feed")
    ledger.mark_sent(feed.id)
    client = app.test_client()
    sign_in(client)
    page = client.get("/admin/").get_data(as_text=True)
    assert "Prochains créneaux" in page and "Dernières éditions" in page
    # The same slots and case studies as `syndicate schedule` at the same moment.
    rows = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+) <span class=\"meta\">\(([^)]+)\)", page)
    assert len(rows) == 8
    result = CliRunner().invoke(cli, ["--config", str(project.config_path), "schedule",
                                      "--json", "-n", "8", "--after", clock().isoformat()])
    assert result.exit_code == 0, result.output
    expected = json.loads(result.output)
    assert [(html.unescape(w), html.unescape(t), s) for w, t, s in rows] == [
        (row["local"], row["title"], row["slug"]) for row in expected]
    assert "Une étude" in page
    assert re.search(r"<td>smtp</td><td class=\"num\">0</td><td class=\"num\">1</td>"
                     r"<td class=\"num\">1</td>", page)
    assert page.count("<svg") == 2 and "<script" not in page
    assert "Envois par édition" in page and "Abonnés au fil du temps" in page


def test_subscribers_search_filter_pages_add_remove_and_export(app: Flask) -> None:
    ledger = app.extensions["syndicate.ledger"]
    ledger.add_subscribers([(f"reader{i:03d}@example.org", f"Lecteur {i}") for i in range(120)])
    ledger.set_subscriber_status("reader007@example.org", "unsubscribed")
    ledger.add_subscriber("=cmd@example.org", name="=HYPERLINK(1)")
    client = app.test_client()
    sign_in(client)
    page = client.get("/admin/subscribers").get_data(as_text=True)
    shown = re.findall(r"<tr><td>([^<]+@example\.org)</td>", page)
    assert len(shown) == 50
    assert shown[:2] == ["=cmd@example.org", "reader119@example.org"]
    link = re.search(r'<a class="next" href="([^"]+)"', page)
    assert link is not None
    next_url = html.unescape(link.group(1))
    page2 = client.get(next_url).get_data(as_text=True)
    shown2 = re.findall(r"<tr><td>([^<]+@example\.org)</td>", page2)
    assert shown2[0] == "reader070@example.org" and len(shown2) == 50
    assert not set(shown) & set(shown2)
    found = client.get("/admin/subscribers?q=READER00").get_data(as_text=True)
    assert len(re.findall(r"<tr><td>reader00\d@example\.org</td>", found)) == 10
    filtered = client.get("/admin/subscribers?status=unsubscribed").get_data(as_text=True)
    assert re.findall(r"<tr><td>([^<]+)</td>", filtered) == ["reader007@example.org"]
    assert "désinscrit (1)" in filtered
    # Add (POST + CSRF), then the message names the address, escaped.
    token = csrf_of(client)
    response = client.post("/admin/subscribers/add", data={
        "csrf": token, "email": "Nouvelle@Example.org", "name": " Anne  <b>Marie</b> "})
    assert response.status_code == 303
    added = ledger.get_subscriber("nouvelle@example.org")
    assert added is not None and added.status == "active" and added.source == "admin"
    assert added.name == "Anne <b>Marie</b>"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Abonné ajouté" in page and "Anne &lt;b&gt;Marie&lt;/b&gt;" in page
    again = client.post("/admin/subscribers/add", data={"csrf": token,
                                                        "email": "nouvelle@example.org"})
    assert "déjà dans la liste" in client.get(again.headers["Location"]).get_data(True)
    bad = client.post("/admin/subscribers/add", data={"csrf": token, "email": "pas une adresse"})
    assert "Adresse invalide" in client.get(bad.headers["Location"]).get_data(True)
    gone = client.post("/admin/subscribers/remove", data={"csrf": token,
                                                          "email": "reader001@example.org"})
    assert "Abonné supprimé" in client.get(gone.headers["Location"]).get_data(True)
    assert ledger.get_subscriber("reader001@example.org") is None
    # Export: every subscriber of the status asked, cells safe from formulas.
    export = client.get("/admin/subscribers/export.csv")
    assert export.headers["Content-Type"].startswith("text/csv")
    lines_ = export.get_data(as_text=True).splitlines()
    assert lines_[0] == "email,name,status,source,created_at,updated_at"
    assert len(lines_) == 1 + ledger.count_subscribers()
    assert any(line.startswith("'=cmd@example.org,'=HYPERLINK(1)") for line in lines_)
    only = client.get("/admin/subscribers/export.csv?status=unsubscribed").get_data(True)
    assert only.splitlines()[1].startswith("reader007@example.org,")


# -- charts -----------------------------------------------------------------------------


def test_nice_max_rounds_up_to_one_two_or_five() -> None:
    assert [nice_max(v) for v in (0, 1, 2, 3, 7, 10, 11, 99, 101, 240, 100000)] == [
        1, 1, 2, 5, 10, 10, 20, 100, 200, 500, 100000]


def test_stacked_bars_scale_escape_and_check_lengths() -> None:
    svg = str(stacked_bars("Envois <1>", ["n°1", "n°2"], [("ok", [10, 0]), ("ko", [10, 5])],
                           width=244, height=136))
    assert svg.startswith('<svg class="chart" viewBox="0 0 244 136"')
    assert "<title>Envois &lt;1&gt;</title>" in svg and "<1>" not in svg
    # top = 20; plot height 100: 10 -> 50 px; the second series stacks on the first.
    assert re.search(r'<rect class="c0" x="[\d.]+" y="60.0" width="[\d.]+" height="50.0">', svg)
    assert re.search(r'<rect class="c1" x="[\d.]+" y="10.0" width="[\d.]+" height="50.0">', svg)
    assert svg.count("<rect") == 3  # a zero draws nothing
    assert 'class="legend"' in svg and "ko" in svg
    with pytest.raises(ValueError, match="1 values for 2 labels"):
        stacked_bars("x", ["a", "b"], [("s", [1])])


def test_lines_draw_one_polyline_per_series() -> None:
    svg = str(lines("Abonnés", ["2026-01-01", "2026-01-02", "2026-01-03"],
                    [("total", [0, 5, 10]), ("départs", [0, 0, 1])], width=252, height=136))
    assert svg.count("<polyline") == 2
    assert 'points="44.0,110.0 144.0,60.0 244.0,10.0"' in svg
    assert ">2026-01-01<" in svg and ">2026-01-03<" in svg and ">2026-01-02<" not in svg
    single = str(lines("x", ["d"], [("s", [3])]))
    assert "<circle" in single and "<polyline" not in single


# -- syndicate admin passwd -------------------------------------------------------------


def test_admin_passwd_prints_an_argon2id_hash_of_stdin() -> None:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "syndicate", "admin", "passwd"],
                          input=PASSWORD + "\n", capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    digest = proc.stdout.strip()
    assert digest.startswith("$argon2id$") and PASSWORD not in proc.stdout
    assert PasswordHasher().verify(digest, PASSWORD)
    assert verify_password({"alice": digest}, "alice", PASSWORD)
    assert not verify_password({"alice": digest}, "alice", PASSWORD + "!")
    assert not verify_password({"alice": digest}, "bob", PASSWORD)
    short = subprocess.run([sys.executable, "-m", "syndicate", "admin", "passwd"],
                           input="short\n", capture_output=True, text=True, env=env, timeout=60)
    assert short.returncode == 1 and "too short" in short.stderr and not short.stdout
    # No way to pass the password as an argument.
    argv = subprocess.run([sys.executable, "-m", "syndicate", "admin", "passwd", PASSWORD],
                          capture_output=True, text=True, env=env, timeout=60, input="")
    assert argv.returncode == 2 and not argv.stdout


def test_the_timeline_counts_back_from_today() -> None:
    from syndicate.web.admin.overview import subscribers_chart

    svg = str(subscribers_chart([("2026-01-01", 3, 0, 0), ("2026-01-02", 1, 1, 1)], 12))
    # 12 today; yesterday: 12 - (1 - 1 - 1) = 13.
    assert "abonnés (actifs et en attente)\u00a0: 12" in svg


def test_the_timeline_has_every_day_between_its_first_and_last() -> None:
    from syndicate.web.admin.overview import every_day

    assert every_day([]) == []
    assert every_day([("2026-02-27", 1, 0, 0), ("2026-03-02", 0, 1, 0)]) == [
        ("2026-02-27", 1, 0, 0), ("2026-02-28", 0, 0, 0), ("2026-03-01", 0, 0, 0),
        ("2026-03-02", 0, 1, 0)]
