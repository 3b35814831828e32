"""The console's working pages (/admin/queue, /schedule, /preview, /editions, the CSV
import of /subscribers) on the real app: a real SQLite ledger, the sample corpus in a
folder of its own, a real SMTP server (aiosmtpd on 127.0.0.1) for the test send, the
daemon's own reload for the schedule. Access rules: tests/test_admin.py walks every
route these pages add."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _smtp_support import smtp_channel, smtp_server
from click.testing import CliRunner
from conftest import Clock, Project
from flask import Flask
from flask.testing import FlaskClient
from test_admin import CHANNELS, HASH, SECRET, make_app, sign_in

from syndicate import corpus as corpus_mod
from syndicate.cli import cli
from syndicate.config import Config
from syndicate.daemon import Daemon
from syndicate.pipeline import queue as pending_queue
from syndicate.schedule import describe, next_slots, zone
from syndicate.web import create_app

ADMIN = {"operators": {"alice": HASH}}


@pytest.fixture
def app(project: Project, clock: Clock) -> Iterator[Flask]:
    app = make_app(project, clock, admin=ADMIN)
    yield app
    app.extensions["syndicate.ledger"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert sign_in(client).status_code == 303
    return client


def token(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def field(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, name
    return html.unescape(found.group(1))


def queue_order(page: str) -> list[str]:
    return re.findall(r'<tr id="q-([a-z0-9-]+)"', page)


def cli_queue(config: Config, published: set[str]) -> list[str]:
    return [c.slug for c in pending_queue(corpus_mod.load(config.corpus_dir), published)]


# -- queue -------------------------------------------------------------------------------


def test_queue_lists_reorders_and_marks_drafts_in_the_files(app: Flask, client: FlaskClient,
                                                            project: Project) -> None:
    config = project.config()
    ledger = app.extensions["syndicate.ledger"]
    first = cli_queue(config, set())
    ledger.claim_edition(slot="2026-11-17T08:00", slug=first[0], title="t", url="u")
    published_file = config.corpus_dir / f"{first[0]}.md"
    published_bytes = published_file.read_bytes()
    page = client.get("/admin/queue").get_data(as_text=True)
    order = queue_order(page)
    assert order == first[1:]  # unpublished, in the order `syndicate queue` prints
    csrf, stamp = token(page), field(page, "stamp")
    # Down: the first and second swap positions; their files keep everything else.
    a, b = order[0], order[1]
    a_file = config.corpus_dir / f"{a}.md"
    before = a_file.read_text(encoding="utf-8")
    response = client.post("/admin/queue", data={"csrf": csrf, "stamp": stamp, "slug": a,
                                                  "action": "down"})
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Ordre enregistré" in page
    assert queue_order(page)[:2] == [b, a]
    assert cli_queue(project.config(), {first[0]}) == queue_order(page)
    after = a_file.read_text(encoding="utf-8")
    changed = [(x, y) for x, y in zip(before.split("\n"), after.split("\n"), strict=True)
               if x != y]
    assert len(changed) == 1 and changed[0][1].startswith("position: ")  # one line rewritten
    assert published_file.read_bytes() == published_bytes  # the published file untouched
    # Place the last at rank 1.
    stamp = field(page, "stamp")
    last = queue_order(page)[-1]
    client.post("/admin/queue", data={"csrf": csrf, "stamp": stamp, "slug": last,
                                      "action": "place", "rank": "1"})
    page = client.get("/admin/queue").get_data(as_text=True)
    assert queue_order(page)[0] == last
    assert cli_queue(project.config(), {first[0]})[0] == last
    # Draft: still listed, no longer in `syndicate queue`; ready again puts it back.
    stamp = field(page, "stamp")
    client.post("/admin/queue", data={"csrf": csrf, "stamp": stamp, "slug": last,
                                      "action": "draft"})
    assert last not in cli_queue(project.config(), {first[0]})
    assert corpus_mod.load_file(config.corpus_dir / f"{last}.md").status == "draft"
    page = client.get("/admin/queue").get_data(as_text=True)
    assert 'id="q-' + last + '" class="draft"' in page
    client.post("/admin/queue", data={"csrf": csrf, "stamp": field(page, "stamp"),
                                      "slug": last, "action": "ready"})
    assert cli_queue(project.config(), {first[0]})[0] == last
    result = CliRunner().invoke(cli, ["--config", str(project.config_path), "corpus", "check"])
    assert result.exit_code == 0, result.output


def test_queue_refuses_a_stale_page_and_what_corpus_check_refuses(
        app: Flask, client: FlaskClient, project: Project) -> None:
    folder = project.config().corpus_dir
    page = client.get("/admin/queue").get_data(as_text=True)
    csrf, stamp, order = token(page), field(page, "stamp"), queue_order(page)
    snapshot = {p.name: p.read_bytes() for p in folder.glob("*.md")}
    # Someone edits a file after the page was loaded: the move is refused, nothing written.
    other = folder / f"{order[-1]}.md"
    other.write_text(other.read_text(encoding="utf-8") + "\nUn paragraphe ajouté.\n",
                     encoding="utf-8")
    snapshot[other.name] = other.read_bytes()
    response = client.post("/admin/queue", data={"csrf": csrf, "stamp": stamp,
                                                  "slug": order[0], "action": "down"})
    assert response.status_code == 409
    text = html.unescape(response.get_data(as_text=True))
    assert "Le corpus a changé sur le disque depuis l’affichage de cette page" in text
    assert "rien n’a été écrit" in text
    assert {p.name: p.read_bytes() for p in folder.glob("*.md")} == snapshot
    # A corpus `corpus check` refuses (two files with one position) is not written to.
    broken = folder / f"{order[1]}.md"
    position = corpus_mod.load_file(folder / f"{order[2]}.md").position
    broken.write_text(re.sub(r"(?m)^position: \d+", f"position: {position}",
                             broken.read_text(encoding="utf-8")), encoding="utf-8")
    snapshot[broken.name] = broken.read_bytes()
    page = client.get("/admin/queue").get_data(as_text=True)
    assert "duplicate position" in page and "tout est publié" not in page
    response = client.post("/admin/queue", data={"csrf": csrf,
                                                  "stamp": corpus_mod.corpus_stamp(folder),
                                                  "slug": order[0], "action": "down"})
    assert response.status_code == 409 and "duplicate position" in response.get_data(True)
    assert {p.name: p.read_bytes() for p in folder.glob("*.md")} == snapshot


def test_edit_queue_validates_each_rewritten_file_like_corpus_check(project: Project) -> None:
    folder = project.config().corpus_dir
    cases = list(corpus_mod.load(folder))
    stamp = corpus_mod.corpus_stamp(folder)
    with pytest.raises(corpus_mod.CorpusError, match="'status' must be one of"):
        corpus_mod.edit_queue(folder, {cases[0].slug: (cases[0].position, "later")}, stamp)
    with pytest.raises(corpus_mod.CorpusError, match="duplicate position"):
        corpus_mod.edit_queue(folder, {cases[0].slug: (cases[1].position, "ready")}, stamp)
    assert corpus_mod.corpus_stamp(folder) == stamp  # nothing written
    # A file without a status line gets one; comments on the lines are kept.
    path = cases[0].path
    assert path is not None
    path.write_text(path.read_text(encoding="utf-8").replace("status: ready\n", "").replace(
        f"position: {cases[0].position}\n", f"position: {cases[0].position}  # mine\n"),
        encoding="utf-8")
    stamp = corpus_mod.corpus_stamp(folder)
    positions = corpus_mod.renumber(cases[:2], [cases[1].slug, cases[0].slug])
    changes = {s: (p, "draft" if s == cases[0].slug else "ready") for s, p in positions.items()}
    written = corpus_mod.edit_queue(folder, changes, stamp)
    assert sorted(written) == sorted(c.path for c in cases[:2])
    text = path.read_text(encoding="utf-8")
    assert f"position: {cases[1].position}  # mine\n" in text and "status: draft\n" in text
    assert corpus_mod.check(folder)[1] == []


# -- schedule ----------------------------------------------------------------------------


def commented(project: Project) -> str:
    """The test config with comments, as an operator's file has them."""
    path = project.config_path
    text = "# Mon fichier, mes commentaires.\n" + path.read_text(encoding="utf-8").replace(
        "[schedule]\n", "[schedule]\n# le rythme de la lettre\n")
    path.write_text(text, encoding="utf-8")
    return text


def test_schedule_preview_then_save_keeps_comments_and_the_daemon_reloads(
        app: Flask, client: FlaskClient, project: Project, clock: Clock) -> None:
    original = commented(project)
    daemon = Daemon(project.config(), now=clock)
    assert daemon.check_config() is None
    page = client.get("/admin/schedule").get_data(as_text=True)
    assert field(page, "cron") == "0 8 * * 2"
    form = {"csrf": token(page), "stamp": field(page, "stamp"), "cron": "30 7 * * 1,4",
            "timezone": "America/New_York", "misfire_grace": "2h", "catch_up": "none"}
    # Preview: the next 10 slots of the edit, nothing written.
    preview = client.post("/admin/schedule", data={**form, "action": "preview"})
    assert preview.status_code == 200
    shown = re.findall(r"<li>([^<]+)</li>", preview.get_data(as_text=True).split(
        'id="preview-slots"')[1].split("</ol>")[0])
    assert len(shown) == 10
    assert project.config_path.read_text(encoding="utf-8") == original
    # Save: comments kept, `config check` passes, the daemon's reload takes it.
    saved = client.post("/admin/schedule", data={**form, "action": "save"})
    assert saved.status_code == 303
    text = project.config_path.read_text(encoding="utf-8")
    assert text.startswith("# Mon fichier, mes commentaires.\n")
    assert "[schedule]\n# le rythme de la lettre\n" in text
    assert 'cron = "30 7 * * 1,4"' in text and 'catch_up = "none"' in text
    result = CliRunner().invoke(cli, ["--config", str(project.config_path), "config", "check"])
    assert result.exit_code == 0, result.output
    # The slots previewed are those of the saved file (as `syndicate schedule` lists them).
    tz = zone("America/New_York")
    assert [html.unescape(s) for s in shown] == [
        describe(slot, tz) for slot in next_slots(project.config(), clock(), 10)]
    assert daemon.check_config() is True
    assert daemon.config.schedule.cron == "30 7 * * 1,4"
    assert daemon.config.schedule.misfire_grace == 7200
    assert daemon.config.schedule.catch_up == "none"
    assert daemon.next_slot() is not None
    page = client.get(saved.headers["Location"]).get_data(as_text=True)
    assert "Calendrier enregistré" in page and "30 7 * * 1,4" in page


@pytest.mark.slow
def test_a_running_daemon_reloads_the_schedule_saved_in_the_console(
        app: Flask, client: FlaskClient, project: Project, tmp_path: Path) -> None:
    from test_daemon import start_daemon, stop, wait_for

    commented(project)
    log = tmp_path / "daemon.log"
    proc = start_daemon(project, log)
    try:
        wait_for(log, proc, lambda e: e.get("event") == "scheduled", 30)
        page = client.get("/admin/schedule").get_data(as_text=True)
        saved = client.post("/admin/schedule", data={
            "csrf": token(page), "stamp": field(page, "stamp"), "cron": "10 9 * * 3",
            "timezone": "Europe/Paris", "misfire_grace": "6h", "catch_up": "latest",
            "action": "save"})
        assert saved.status_code == 303
        reloaded = wait_for(log, proc, lambda e: e.get("event") == "config_reloaded", 15)
        assert "'10 9 * * 3'" in reloaded["message"]
        assert reloaded["slot"].startswith("cron:") and reloaded["slot"].endswith(
            "T09:10 Europe/Paris")
    finally:
        assert stop(proc) == 0


def test_schedule_refuses_what_config_check_refuses_and_stale_pages(
        app: Flask, client: FlaskClient, project: Project) -> None:
    original = commented(project)
    page = client.get("/admin/schedule").get_data(as_text=True)
    form = {"csrf": token(page), "stamp": field(page, "stamp"), "cron": "0 8 * * 9",
            "timezone": "Europe/Pariss", "misfire_grace": "6h", "catch_up": "latest",
            "action": "save"}
    refused = client.post("/admin/schedule", data=form)
    assert refused.status_code == 400
    body = html.unescape(refused.get_data(as_text=True))
    assert "Refusé par «\u00a0config check\u00a0»" in body
    assert "schedule.timezone" in body and "schedule.cron" in body
    assert str(project.config_path) in body and ".check" not in body  # the file's own name
    assert project.config_path.read_text(encoding="utf-8") == original
    # The file changed since the page was loaded: a valid edit is not written either.
    project.config_path.write_text(original + "\n# edited elsewhere\n", encoding="utf-8")
    stale = client.post("/admin/schedule", data={**form, "cron": "0 9 * * 2",
                                                 "timezone": "Europe/Paris"})
    assert stale.status_code == 409 and "a changé sur le disque" in stale.get_data(True)
    assert project.config_path.read_text(encoding="utf-8").endswith("# edited elsewhere\n")


# -- preview and test send ---------------------------------------------------------------


def test_preview_shows_the_next_edition_and_writes_nothing(app: Flask, client: FlaskClient,
                                                           project: Project) -> None:
    ledger = app.extensions["syndicate.ledger"]
    page = client.get("/admin/preview")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    nxt = cli_queue(project.config(), set())[0]
    case = corpus_mod.load(project.config().corpus_dir).get(nxt)
    assert case is not None
    assert text.count("<iframe") == 2 and 'width="375"' in text and 'width="600"' in text
    assert re.search(r"<iframe [^>]*sandbox srcdoc=\"&lt;!doctype html", text, re.I)
    assert "<script" not in text
    assert html.escape(case.title, quote=False) in text
    assert 'id="text-part"' in text and 'id="feed-item"' in text and "&lt;rss" in text
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert ledger.editions(status=None) == [] and ledger.count_subscribers() == 0
    # Without an smtp channel the test send is unavailable, and says why.
    assert "Aucun canal smtp activé" in text


def test_send_a_test_through_the_smtp_channel_rate_limited_and_unrecorded(
        project: Project, clock: Clock) -> None:
    with smtp_server() as (server, port):
        project.write_config(site={"base_url": "http://127.0.0.1:8080/"},
                             channels=[*CHANNELS, smtp_channel(port)], admin=ADMIN)
        app = create_app(project.config(), secret=SECRET, now=clock)
        ledger = app.extensions["syndicate.ledger"]
        try:
            client = app.test_client()
            sign_in(client)
            page = client.get("/admin/preview").get_data(as_text=True)
            csrf = token(page)
            response = client.post("/admin/preview/send", data={"csrf": csrf,
                                                                 "email": "Test@Example.org"})
            assert response.status_code == 303, response.get_data(True)
            shown = html.unescape(client.get(response.headers["Location"]).get_data(True))
            assert "Test envoyé à Test@example.org" in shown, response.headers["Location"]
            assert "250" in shown
            (message,) = server.messages
            assert message.rcpt == "Test@example.org"
            parsed = message.parse()
            assert parsed["To"] == "Test@example.org"
            nxt = cli_queue(project.config(), set())[0]
            case = corpus_mod.load(project.config().corpus_dir).get(nxt)
            assert case is not None and case.title.split()[0] in str(parsed["Subject"])
            assert ledger.count_subscribers() == 0 and ledger.editions(status=None) == []
            bad = client.post("/admin/preview/send", data={"csrf": csrf, "email": "nope"})
            assert "Adresse invalide" in client.get(bad.headers["Location"]).get_data(True)
            for _ in range(4):
                client.post("/admin/preview/send", data={"csrf": csrf, "email": "t@example.org"})
            assert len(server.messages) == 5
            limited = client.post("/admin/preview/send", data={"csrf": csrf,
                                                               "email": "t@example.org"})
            assert "Trop d’envois de test" in html.unescape(
                client.get(limited.headers["Location"]).get_data(True))
            assert len(server.messages) == 5
            clock.advance(minutes=11)
            client.post("/admin/preview/send", data={"csrf": csrf, "email": "t@example.org"})
            assert len(server.messages) == 6
        finally:
            ledger.close()


# -- editions ----------------------------------------------------------------------------


def test_editions_list_page_retry_and_resume(project: Project, clock: Clock,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET", "s" * 32)
    with smtp_server() as (server, port):
        project.write_config(site={"base_url": "http://127.0.0.1:8080/"},
                             channels=[{"type": "feed"}, smtp_channel(port)], admin=ADMIN)
        app = create_app(project.config(), secret=SECRET, now=clock)
        ledger = app.extensions["syndicate.ledger"]
        try:
            run_editions(app, ledger, server, project)
        finally:
            ledger.close()


def run_editions(app: Flask, ledger: Any, server: Any, project: Project) -> None:
    ledger.add_subscribers([f"r{i:02d}@example.org" for i in range(60)])
    cases = cli_queue(project.config(), set())
    edition = ledger.claim_edition(slot="2026-11-17T08:00", slug=cases[0], title="Première",
                                   url="http://127.0.0.1:8080/p/")
    ledger.ensure_deliveries(edition.id, "smtp", [f"r{i:02d}@example.org" for i in range(60)])
    for index, row in enumerate(ledger.pending_deliveries(edition.id, "smtp")):
        if index < 55:
            ledger.mark_failed(row.id, 451, f"try later {index}")
        else:
            ledger.mark_sent(row.id)
    feed = ledger.ensure_delivery(edition.id, "feed")
    ledger.mark_sent(feed.id)
    ledger.set_edition_status(edition.id, "done")
    client = app.test_client()
    sign_in(client)
    listing = client.get("/admin/editions").get_data(as_text=True)
    assert "Première" in listing
    assert re.search(r"<td>smtp</td><td class=\"num\">5</td><td class=\"num\">55</td>"
                     r"<td class=\"num\">0</td>", listing)
    page = client.get("/admin/editions/1").get_data(as_text=True)
    assert page.count("try later") == 50  # one page of failures
    more = re.search(r'<a class="next" href="([^"]+)"', page)
    assert more is not None
    page2 = client.get(html.unescape(more.group(1))).get_data(as_text=True)
    assert page2.count("try later") == 5
    assert client.get("/admin/editions/99").status_code == 404
    assert client.get("/admin/editions/x").status_code == 404
    # Retry failed: as `syndicate retry-failed 1`: the 55 go out, nothing else.
    response = client.post("/admin/editions/1/retry", data={"csrf": token(page)})
    assert response.status_code == 303
    shown = html.unescape(client.get(response.headers["Location"]).get_data(True))
    assert "55 envoi(s) en échec remis en attente et renvoyés\u00a0: terminé." in shown
    assert len(server.messages) == 55
    assert ledger.delivery_counts(edition.id)["smtp"] == {"sent": 60, "failed": 0, "pending": 0}
    again = client.post("/admin/editions/1/retry", data={"csrf": token(page)})
    assert "Aucun envoi en échec" in client.get(again.headers["Location"]).get_data(True)
    # Resume: an unfinished edition is finished (as `syndicate resume`).
    second = ledger.claim_edition(slot="2026-11-24T08:00", slug=cases[1], title="Deuxième",
                                  url="http://127.0.0.1:8080/d/")
    ledger.ensure_deliveries(second.id, "smtp", ["r00@example.org", "r01@example.org"])
    page = client.get("/admin/editions/2").get_data(as_text=True)
    assert "Reprendre l’édition</button>" in page
    resumed = client.post("/admin/editions/2/resume", data={"csrf": token(page)})
    assert "Reprise terminée" in client.get(resumed.headers["Location"]).get_data(True)
    assert ledger.editions(status=None)[0].status == "done"
    assert len(server.messages) == 55 + 60  # the channel makes a row per active subscriber


# -- CSV import --------------------------------------------------------------------------


def test_csv_import_reports_each_line_like_the_cli(app: Flask, client: FlaskClient,
                                                   tmp_path: Path, project: Project) -> None:
    ledger = app.extensions["syndicate.ledger"]
    ledger.add_subscriber("deja@example.org")
    data = ("email;name\nune@example.org;Une\ndeja@example.org;\npas-une-adresse;X\n"
            "deux@example.org;'=Deux\n")
    page = client.get("/admin/subscribers").get_data(as_text=True)
    response = client.post("/admin/subscribers/import", data={
        "csrf": token(page), "file": (io_bytes(data), "liste.csv")},
        content_type="multipart/form-data")
    assert response.status_code == 200
    report = html.unescape(response.get_data(as_text=True).split('<pre class="report">')[1]
                           .split("</pre>")[0]).splitlines()
    csv = tmp_path / "liste.csv"
    csv.write_text(data, encoding="utf-8")
    ledger.remove_subscriber("une@example.org")
    ledger.remove_subscriber("deux@example.org")
    result = CliRunner().invoke(cli, ["--config", str(project.config_path), "subscribers",
                                      "import", str(csv)])
    assert result.exit_code == 0, result.output
    assert report == [line.replace(str(csv), "liste.csv") for line in result.output.splitlines()]
    assert report[0] == "liste.csv: 2 added, 1 already present, 1 invalid"
    assert report[1].startswith("  liste.csv:4: pas-une-adresse: ")
    assert ledger.get_subscriber("deux@example.org").name == "=Deux"  # type: ignore[union-attr]
    # Not a CSV: nothing imported, said so; too big: refused before reading.
    bad = client.post("/admin/subscribers/import", data={
        "csrf": token(page), "file": (io_bytes("nom\nx\n"), "x.csv")},
        content_type="multipart/form-data")
    assert bad.status_code == 400 and "no &#39;email&#39; column" in bad.get_data(True)
    big = client.post("/admin/subscribers/import", data={
        "csrf": token(page), "file": (io_bytes("email\n" + "a@example.org\n" * 200_000),
                                      "big.csv")}, content_type="multipart/form-data")
    assert big.status_code == 413
    # The public routes keep their 16 KiB cap.
    assert client.post("/subscribe", data={"email": "x" * 20_000}).status_code == 413


def io_bytes(text: str) -> Any:
    import io

    return io.BytesIO(text.encode("utf-8"))



def test_subscribers_page_shows_a_complained_subscriber(app: Flask, client: FlaskClient) -> None:
    ledger = app.extensions["syndicate.ledger"]
    ledger.add_subscriber("plaignant@example.org")
    ledger.set_subscriber_status("plaignant@example.org", "complained")
    page = client.get("/admin/subscribers")
    assert page.status_code == 200
    assert '<span class="pill">plainte</span>' in page.get_data(as_text=True)
    assert "plainte (1)" in client.get("/admin/subscribers?status=complained").get_data(True)
