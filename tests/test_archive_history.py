"""A long history in the archive: the index lists the newest editions, numbered pages and
year pages list them all, a publication rewrites a few small files whatever the history, and
the first publication into an empty public folder writes every page one at a time, with a
progress bar on a terminal only.

Real parts: a SQLite ledger of 120 done editions (claimed and snapshotted through the ledger
port), the pipeline's ``publish``, ``syndicate publish-next`` in a subprocess (with a pipe or a
pseudo-terminal as its stderr).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import Clock, Project

from syndicate.corpus import CaseStudy, Section
from syndicate.ledger import open_ledger
from syndicate.pipeline import publish
from syndicate.render.urls import edition_url
from syndicate.snapshots import snapshot_artefacts

ROOT = Path(__file__).resolve().parents[1]
PAGE = 50
OLD = 120  # editions in the ledger before the tests publish
START = datetime(2024, 7, 2, 6, 0, tzinfo=UTC)  # weekly: 2024, 2025 and 2026
POOL = ("Alan", "Qonto", "Back Market", "Doctolib", "Swile", "Spendesk", "Shine", "Lydia")
NS = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}


def _case(i: int) -> CaseStudy:
    return CaseStudy(
        slug=f"etude-{i:03d}", title=f"Étude de cas numéro {i}",
        lede=f"Le cas {i} : une décision prise, racontée par l’entreprise.",
        sections=(Section("Le contexte", (f"Paragraphe du cas {i}.",)),),
        position=0, companies=(POOL[i % len(POOL)], POOL[(i * 3 + 1) % len(POOL)]))


def _site(project: Project, page_size: int = PAGE, editions: int = OLD) -> Project:
    """``project`` with an archive-only config and a ledger of ``editions`` done editions."""
    project.write_config(publish={"archive_page_size": page_size},
                         channels=[{"type": "archive"}])
    project.done_editions((_case(i) for i in range(1, editions + 1)),
                          lambda i: START + timedelta(weeks=i - 1))
    return project


def _read(public: Path, path: str) -> str:
    return (public / path).read_text(encoding="utf-8")


def _listed(html: str) -> list[int]:
    """Edition numbers a list page shows, in order."""
    return [int(n) for n in re.findall(r'<span class="meta">N°\u00a0(\d+) ·', html)]


def _pager(html: str) -> tuple[str | None, str | None]:
    prev = re.search(r'<a class="prev"(?: rel="prev")? href="([^"]+)"', html)
    nxt = re.search(r'<a class="next" rel="next" href="([^"]+)"', html)
    return (prev.group(1) if prev else None, nxt.group(1) if nxt else None)


def _files(public: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(public)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in public.rglob("*") if p.is_file()}


@pytest.fixture
def site(project: Project) -> Project:
    return _site(project)


def test_index_numbered_and_year_pages_list_every_edition(site: Project, clock: Clock) -> None:
    config = site.config()
    result = publish(config, now=clock)  # edition 121, into an empty public folder
    assert result.complete and result.edition is not None and result.edition.number == 121
    public, base = site.public, config.site.base_url

    index = _read(public, "index.html")
    assert _listed(index) == list(range(121, 71, -1))  # the newest 50
    assert "Les 50 dernières éditions sur 121" in index
    # The older ones: the numbered page holding #71, the newest one not listed.
    assert _pager(index) == (f"{base}page/2/", None)

    pages = {n: _read(public, f"page/{n}/index.html") for n in (1, 2, 3)}
    assert not (public / "page" / "4").exists()
    assert _listed(pages[1]) == list(range(50, 0, -1))  # page 1: the oldest, for good
    assert _listed(pages[2]) == list(range(100, 50, -1))
    assert _listed(pages[3]) == list(range(121, 100, -1))
    assert "<h1>Éditions n°\u00a051 à 100</h1>" in pages[2]
    assert _pager(pages[1]) == (None, f"{base}page/2/")
    assert _pager(pages[2]) == (f"{base}page/1/", f"{base}page/3/")
    assert _pager(pages[3]) == (f"{base}page/2/", None)

    years = {}
    for year in (2024, 2025, 2026):
        html = _read(public, f"{year}/index.html")
        years[year] = _listed(html)
        assert f'href="{base}{year}/">{year} <span class="count">({len(years[year])})' in index
        assert f"<h1>Éditions de {year}</h1>" in html
    assert sorted(n for listed in years.values() for n in listed) == list(range(1, 122))
    assert years[2024][-1] == 1 and years[2026][0] == 121
    assert _pager(_read(public, "2024/index.html")) == (None, f"{base}2025/")
    assert _pager(_read(public, "2025/index.html")) == (f"{base}2024/", f"{base}2026/")
    assert _pager(_read(public, "2026/index.html")) == (f"{base}2025/", None)

    # The sitemap: an index of the pages' sitemap and one per year; every page, once.
    index_map = ET.fromstring(_read(public, "sitemap.xml"))
    assert index_map.tag == f"{{{NS['s']}}}sitemapindex"
    urls: list[str] = []
    for loc in index_map.iterfind("s:sitemap/s:loc", NS):
        part = ET.fromstring(_read(public, (loc.text or "").removeprefix(base)))
        urls += [u.text or "" for u in part.iterfind("s:url/s:loc", NS)]
    html_pages = sorted(p for p in _files(public) if p.endswith(".html"))
    assert sorted(u.removeprefix(base) + "index.html" for u in urls) == html_pages
    assert len(urls) == len(set(urls))

    # No dead internal link on any list page.
    for path in ["index.html", *(f"page/{n}/index.html" for n in pages),
                 *(f"{y}/index.html" for y in years)]:
        for href in re.findall(r'href="([^"]+)"', _read(public, path)):
            if href.startswith(base) and href.endswith("/"):
                assert (public / href.removeprefix(base) / "index.html").is_file(), (path, href)


def test_a_publish_rewrites_the_same_few_files_whatever_the_history(
    site: Project, clock: Clock
) -> None:
    from syndicate.render.archive import company_path

    config = site.config()
    first = publish(config, now=clock)  # 121: everything written
    before = _files(site.public)
    clock.advance(days=7)
    time.sleep(0.01)  # distinct mtimes on coarse file systems
    result = publish(config, now=clock)  # 122
    assert result.complete
    after = _files(site.public)
    changed = {path for path, stamp in after.items() if before.get(path) != stamp}
    new, year = result.view, result.view.published_at.year
    assert first.view.published_at.year == year
    expected = {
        f"{new.slug}/index.html",  # its page
        f"{first.view.slug}/index.html",  # the edition before it: its "next" link
        "index.html", "page/3/index.html", f"{year}/index.html",  # the lists showing it
        "entreprises/index.html", *(company_path(c) for c in new.case.companies),
        "sitemap.xml", "sitemap-pages.xml", f"sitemap-{year}.xml",
    }
    assert changed == expected
    # Bytes: the index lists 50 editions, not 122, and every other file is smaller.
    assert after["index.html"][1] < 2 * after["page/2/index.html"][1]
    assert all(after[p][1] <= after["index.html"][1] for p in changed)


def test_opening_a_numbered_page_gives_the_previous_one_its_link(
    project: Project, clock: Clock
) -> None:
    site = _site(project, page_size=40)  # 120 = 3 full pages: edition 121 opens page 4
    config = site.config()
    publish(config, now=clock)
    base = config.site.base_url
    assert _listed(_read(site.public, "page/4/index.html")) == [121]
    assert _pager(_read(site.public, "page/3/index.html")) == (f"{base}page/2/",
                                                              f"{base}page/4/")
    before = _files(site.public)
    clock.advance(days=7)
    publish(config, now=clock)  # 122: page 4 only; page 3 does not change any more
    after = _files(site.public)
    assert after["page/4/index.html"] != before["page/4/index.html"]
    assert after["page/3/index.html"] == before["page/3/index.html"]


def _publish_next(site: Project, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "syndicate", "--config", str(site.config_path), "publish-next"],
        env=env, cwd=site.root, text=True, timeout=300, check=False, **kwargs)


def test_first_publish_writes_every_missing_page_with_a_summary_line_off_a_terminal(
    site: Project
) -> None:
    done = _publish_next(site, capture_output=True)
    assert done.returncode == 0, done.stderr
    written = _files(site.public)
    editions = [p for p in written if re.fullmatch(r"etude-\d{3}/index.html", p)]
    assert len(editions) == OLD
    total = len(written)
    assert total > OLD + 3 + 3 + 5
    # Not a terminal: no bar, no control sequence; one summary line counting every page.
    assert f"archive: {total} of {total} pages written in " in done.stderr
    assert "\x1b[" not in done.stderr and "━" not in done.stderr

    # A second run writes a few pages: no summary line for it.
    again = _publish_next(site, capture_output=True)
    assert again.returncode == 0, again.stderr
    assert "pages written" not in again.stderr


def test_first_publish_on_a_terminal_shows_a_progress_bar(site: Project) -> None:
    import pty

    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "syndicate", "--config", str(site.config_path),
             "publish-next"],
            env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100", "TERM": "xterm"},
            cwd=site.root, stdout=subprocess.PIPE, stderr=follower, text=True)
        os.close(follower)
        chunks = []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process is gone
                break
            if not data:
                break
            chunks.append(data)
        assert proc.wait(timeout=60) == 0
        assert proc.stdout is not None and "complete:" in proc.stdout.read()
    finally:
        os.close(leader)
    shown = b"".join(chunks).decode("utf-8", "replace")
    assert "archive" in shown and "━" in shown
    assert re.search(r"\d+/\d+", shown)  # pages done / pages to write
    assert "pages written in" not in shown  # the bar, not the summary line


def test_rebuild_completes_old_editions_a_batch_at_a_time(tmp_path: Path) -> None:
    """The texts of old editions are read a batch at a time and not kept."""
    from _render_support import make_config

    from syndicate.corpus import Corpus
    from syndicate.render.archive import EXPAND_BATCH, iter_archive, plan_archive
    from syndicate.snapshots import LedgerTexts
    from syndicate.views import ViewBuilder, published_of

    config = make_config(tmp_path)
    count = 2 * EXPAND_BATCH + 30
    with open_ledger(config.database) as ledger:
        for i in range(1, count + 1):
            case = _case(i)
            edition = ledger.claim_edition(
                slot=f"old:{i}", slug=case.slug, title=case.title,
                url=edition_url(config.site.base_url, case.slug),
                published_at=START + timedelta(days=i))
            ledger.store_artefacts(edition.id, snapshot_artefacts(case))
            ledger.set_edition_status(edition.id, "done")
        editions = ledger.editions()
        corpus = Corpus(tmp_path / "corpus", ())
        texts = LedgerTexts(ledger, corpus, editions)
        builder = ViewBuilder(config, corpus, published_of(editions), texts=texts)
        history = builder.history()
        batches: list[int] = []

        def expand_many(views):  # type: ignore[no-untyped-def]
            batches.append(len(views))
            return builder.expand_many(views)

        plan = plan_archive(history, config)
        pages = iter_archive(plan, config, expand_many=expand_many)
        first_path, first_page = next(pages)  # lazy: one batch read so far
        assert batches == [EXPAND_BATCH]
        assert "Paragraphe du cas" in first_page
        rest = dict(pages)
    assert sum(batches) == count and max(batches) == EXPAND_BATCH
    assert len(rest) + 1 == len(plan)
    # Only the feed-size newest texts are kept in memory, not every one read.
    assert len(texts._cases) <= max(config.publish.feed_size, 20)
    assert all(f"Paragraphe du cas {i}." in rest.get(f"etude-{i:03d}/index.html", first_page)
               for i in range(1, count + 1))
    del first_path


def test_a_stopped_rebuild_leaves_the_row_pending_and_resumes_where_it_stopped(
    tmp_path: Path,
) -> None:
    import threading
    from dataclasses import replace

    from _render_support import make_config, make_history, make_job, seed_cases

    from syndicate.channels import build_channel
    from syndicate.channels.archive import ArchiveSettings
    from syndicate.ledger import Ledger

    config = make_config(tmp_path)
    history = make_history(seed_cases()[:6], config)
    channel = build_channel(ArchiveSettings.model_validate({"type": "archive"}), config)
    with Ledger(config.database) as ledger:
        job = make_job(config, ledger, history, 0)
        stopped = threading.Event()
        stopped.set()  # the deadline passed (or SIGTERM) before the first page
        report = channel.deliver(replace(job, stop=stopped))
        assert report.pending == 1 and report.sent == 0 and "stopped after 0 of" in report.detail
        assert not config.public_dir.exists() or not any(config.public_dir.rglob("*.html"))
        again = channel.deliver(job)  # the resume: every page, the row sent
        assert again.sent == 1
        assert (config.public_dir / "index.html").is_file()
