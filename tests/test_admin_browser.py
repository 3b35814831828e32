"""The operator console in a real browser (Playwright driving Debian's chromium): sign in,
see the overview, search the subscribers, add one; reorder the queue, edit the schedule
and see the new slots, open a preview, send a test to a real SMTP server (aiosmtpd on
127.0.0.1), import a CSV; no horizontal scroll on a phone.

Screenshots at 375 and 1280 px go to ``$SYNDICATE_SCREENSHOTS`` or the test's tmp folder
(the path is printed). Playwright's wheel ships its driver; the browser is the system's
``/usr/bin/chromium`` (``executable_path``), so ``playwright install`` is never run.
Skips, saying why, where either is missing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _web_support import Site, site_factory
from conftest import Project

from syndicate.web.admin.auth import hash_password

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PASSWORD = "correct horse battery staple"
WIDTHS = (375, 1280)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright not installed (pip install -e .[test])")
    if CHROMIUM is None:
        pytest.skip("chromium not found on PATH (Debian package `chromium`, installed by .ci/run)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM,
                                              args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


@pytest.fixture
def make_site(project: Project) -> Iterator[Any]:
    yield from site_factory(project)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SYNDICATE_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {folder}")
    return folder


def seed(site: Site) -> None:
    ledger = site.ledger
    ledger.add_subscribers([(f"reader{i:03d}@example.org", f"Lecteur {i}") for i in range(80)])
    for n in range(1, 4):
        edition = ledger.claim_edition(slot=f"2026-11-{n:02d}T08:00", slug=f"cas-{n}",
                                       title=f"Une étude de cas numéro {n}",
                                       url=f"{site.base}cas-{n}/")
        ledger.ensure_deliveries(edition.id, "outbox", [f"reader{i:03d}@example.org"
                                                        for i in range(20 * n)])
        for index, row in enumerate(ledger.pending_deliveries(edition.id, "outbox")):
            if index % 7 == 3:
                ledger.mark_failed(row.id, 550, "no such user")
            elif index % 5:
                ledger.mark_sent(row.id)
        ledger.set_edition_status(edition.id, "done")


def no_horizontal_scroll(page: Any) -> bool:
    return bool(page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"))


def test_sign_in_overview_search_and_add(browser: Any, make_site: Any, shots: Path) -> None:
    site = make_site(admin={"operators": {"alice": hash_password(PASSWORD)}})
    seed(site)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    page = context.new_page()
    page.goto(site.url("/admin/"))
    assert page.url.endswith("/admin/login")  # anonymous: sent to the sign-in page
    page.screenshot(path=str(shots / "login-1280.png"), full_page=True)
    page.fill("#operator", "alice")
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    assert "Identifiant ou mot de passe incorrect" in page.inner_text("main")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/admin/")
    assert page.inner_text("h1") == "Vue d’ensemble"
    assert page.locator("svg.chart").count() == 2
    assert "Une étude de cas numéro 3" in page.inner_text("main")
    cookie, = [c for c in context.cookies() if c["name"] == "syndicate_admin"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/admin/"
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        assert no_horizontal_scroll(page), width
        page.screenshot(path=str(shots / f"overview-{width}.png"), full_page=True)

    page.click("nav.menu >> text=Abonnés")
    page.wait_for_url("**/admin/subscribers")
    page.fill("input[name=q]", "reader00")
    page.click("form[role=search] button[type=submit]")
    page.wait_for_url(lambda url: "q=reader00" in url)  # the search's answer, not the page before
    rows = page.locator("tbody tr")
    assert rows.count() == 10
    assert "reader009@example.org" in rows.first.inner_text()
    page.click("details.add summary")
    page.fill("#add-email", "nouvelle@example.org")
    page.fill("#add-name", "Nouvelle Lectrice")
    page.click("#add button[type=submit]")
    assert "Abonné ajouté\u00a0: nouvelle@example.org." in page.inner_text("[role=status]")
    assert site.status("nouvelle@example.org") == "active"
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        assert no_horizontal_scroll(page), width
        page.screenshot(path=str(shots / f"subscribers-{width}.png"), full_page=True)

    page.click("text=Se déconnecter")
    page.wait_for_url("**/admin/login")
    page.goto(site.url("/admin/subscribers"))
    assert page.url.endswith("/admin/login")
    context.close()
    assert sorted(p.name for p in shots.glob("*.png")) == [
        "login-1280.png", "overview-1280.png", "overview-375.png", "subscribers-1280.png",
        "subscribers-375.png"]


def sign_in(page: Any, site: Site) -> None:
    page.goto(site.url("/admin/login"))
    page.fill("#operator", "alice")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/admin/")


def shoot(page: Any, shots: Path, name: str) -> None:
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        assert no_horizontal_scroll(page), (name, width)
        # Two animation frames: the sandboxed frames (other processes) repaint after a
        # resize, else a full-page capture may show them blank.
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => "
                      "requestAnimationFrame(r)))")
        page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_queue_schedule_preview_test_send_and_csv_import(browser: Any, make_site: Any,
                                                         shots: Path, tmp_path: Path) -> None:
    from _smtp_support import smtp_channel, smtp_server

    with smtp_server() as (server, port):
        site = make_site(admin={"operators": {"alice": hash_password(PASSWORD)}},
                         channels=[{"type": "feed"}, {"type": "archive"}, smtp_channel(port)])
        seed(site)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
        page = context.new_page()
        sign_in(page, site)

        # The queue: move the first case study down; the files say so.
        page.click("nav.menu >> text=File d’attente")
        page.wait_for_url("**/admin/queue")
        rows = page.locator("table.queue tbody tr")
        first, second = rows.nth(0).get_attribute("id"), rows.nth(1).get_attribute("id")
        page.click(f"#{first} button[value=down]")
        page.wait_for_url("**/admin/queue?done=moved*")
        assert "Ordre enregistré" in page.inner_text("[role=status]")
        assert [rows.nth(0).get_attribute("id"), rows.nth(1).get_attribute("id")] == [
            second, first]
        shoot(page, shots, "queue")

        # The schedule: preview the next slots of an edit, then save it.
        page.click("nav.menu >> text=Calendrier")
        page.wait_for_url("**/admin/schedule")
        page.fill("#cron", "45 6 * * 5")
        page.click("button[value=preview]")
        slots = page.locator("#preview-slots li")
        slots.first.wait_for()  # the answer to the preview's POST (count() does not wait)
        assert slots.count() == 10 and "06:45" in slots.first.inner_text()
        assert "vendredi" in slots.first.inner_text()
        shoot(page, shots, "schedule")
        page.click("button[value=save]")
        page.wait_for_url("**/admin/schedule?done=saved")
        assert "06:45" in page.locator("#current-slots li").first.inner_text()
        assert 'cron = "45 6 * * 5"' in site.project.config_path.read_text(encoding="utf-8")

        # The preview: the email in two frames, its text part; then a test send.
        page.click("nav.menu >> text=Aperçu")
        page.wait_for_url("**/admin/preview")
        phone = page.frame_locator("iframe.phone")
        assert phone.locator("body").inner_text().strip()
        assert page.locator("iframe.phone").bounding_box()["width"] == 375
        assert page.locator("#text-part").inner_text().strip()
        page.locator("iframe.phone").screenshot(path=str(shots / "preview-phone-frame.png"))
        shoot(page, shots, "preview")
        page.fill("#test-email", "essai@example.org")
        page.click("form[action$='/preview/send'] button[type=submit]")
        page.wait_for_url("**/admin/preview?done=sent*")
        assert "Test envoyé à essai@example.org" in page.inner_text("[role=status]")
        assert [m.rcpt for m in server.messages] == ["essai@example.org"]

        # The editions: one edition's page with its failures.
        page.click("nav.menu >> text=Éditions")
        page.click("text=Une étude de cas numéro 3")
        assert "no such user" in page.inner_text("main")
        shoot(page, shots, "edition")

        # The CSV import with its line report.
        csv = tmp_path / "abonnes.csv"
        csv.write_text("email,name\nimport1@example.org,Un\nmauvaise adresse,Deux\n",
                       encoding="utf-8")
        page.click("nav.menu >> text=Abonnés")
        page.click("text=Importer un fichier CSV")
        page.set_input_files("#import-file", str(csv))
        page.click("#import button[type=submit]")
        report = page.inner_text("#import-report")
        assert "abonnes.csv: 1 added, 0 already present, 1 invalid" in report
        assert "abonnes.csv:3: mauvaise adresse" in report
        assert site.status("import1@example.org") == "active"
        shoot(page, shots, "import")
        context.close()


def test_the_public_subscribe_form_works_in_chromium(browser: Any, make_site: Any) -> None:
    """Our pages are no-referrer: Chromium then posts their forms with "Origin: null"."""
    site = make_site(subscribe={"form_min_age": 0})
    page = browser.new_page()
    page.goto(site.url("/subscribe?email=lectrice@example.org"))
    page.click("button[type=submit]")
    assert page.inner_text("h1") == "Vérifiez votre boîte aux lettres"
    assert site.status("lectrice@example.org") == "pending"
    page.close()
