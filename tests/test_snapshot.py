"""A published edition outlives its source file: snapshots in the ledger, `republish`,
and the warnings of `corpus check` and `status` (real corpus files, a real SQLite ledger,
a real HTTP server for the webhook channel)."""

from __future__ import annotations

import hashlib
import json
import logging
import mailbox
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import feedparser
import pytest
from click.testing import CliRunner
from conftest import Clock, Project
from pytest_httpserver import HTTPServer

from syndicate import corpus as corpus_mod
from syndicate.cli import cli
from syndicate.config import Config
from syndicate.corpus import CaseStudy, Section, Source
from syndicate.corpus._case import _UNLOADED
from syndicate.ledger import Ledger, LedgerPort
from syndicate.pipeline import Publisher, PublishResult, publish
from syndicate.snapshots import (
    COMPANIES_ARTEFACT,
    SNAPSHOT_ARTEFACT,
    SOURCE_FILE_ARTEFACT,
    case_from_snapshot,
    changed_fields,
    published_drift,
    snapshot_artefacts,
    snapshot_json,
)
from syndicate.typography import french

FEEDS = ("feed.xml", "atom.xml")


def run(project: Project, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(project.config_path), *args])
    return result.exit_code, result.output


def feed_entries(project: Project) -> dict[str, list[tuple[str, str, str]]]:
    """``{file: [(id, title, content), ...]}`` of the three feeds, parsed back."""
    found = {}
    for name in FEEDS:
        parsed = feedparser.parse((project.public / name).read_bytes())
        assert parsed.bozo == 0, parsed.bozo_exception
        # An entry without text (no snapshot, no file) has only a description in RSS.
        found[name] = [(e.id, e.title, e.content[0].value if "content" in e else e.summary)
                       for e in parsed.entries]
    data = json.loads((project.public / "feed.json").read_text(encoding="utf-8"))
    found["feed.json"] = [(i["id"], i["title"], i["content_html"]) for i in data["items"]]
    return found


def outbox_count(project: Project) -> int:
    folder = project.var / "outbox"
    return len(mailbox.Maildir(folder, factory=None, create=False)) if folder.exists() else 0


def file_of(config_corpus: Path, slug: str) -> Path:
    case = corpus_mod.load(config_corpus).get(slug)
    assert case is not None and case.path is not None
    return case.path


@pytest.fixture
def http() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    server.expect_request("/hook", method="POST").respond_with_data("ok")
    yield server
    server.clear()
    server.stop()


# --------------------------------------------------------------------------- serialiser


def test_snapshot_keeps_the_text_byte_for_byte() -> None:
    case = CaseStudy(
        slug="texte-exact",
        title="Refuser 90\u00a0% des levées\u202f: l’indépendance…",
        lede="Chapô « cité »\u00a0! <b>balise</b> {{ 7*7 }} \u2028 ligne, émoji 🚀, \\ et \"",
        sections=(Section("Intertitre d’abord", ("Un paragraphe…", "Un autre\u00a0;")),
                  Section("Deux", ("Fin.",))),
        position=7,
        status="ready",
        companies=("Back Market", "Acme <i>SA</i>"),
        themes=("stratégie",),
        source=Source("000_x.txt", 3),
        content_hash="sha256:abc",
        path=Path("/nowhere/texte-exact.md"),
    )
    raw = snapshot_json(case)
    assert "\u00a0" in raw and "’" in raw and "…" in raw and "🚀" in raw  # not \\u-escaped
    back = case_from_snapshot(raw)
    assert back == corpus_mod.replace(case, position=0)  # position: a queue fact, not shown
    assert back.path is None
    assert changed_fields(case, back) == ()
    assert snapshot_json(back) == raw  # deterministic: same case, same bytes
    fixed = corpus_mod.replace(case, lede=case.lede + " corrigé", companies=("Back Market",))
    assert changed_fields(case, fixed) == ("lede", "companies")


# --------------------------------------------------------------------------- file gone


@pytest.mark.parametrize("how", ["deleted", "renamed"])
def test_published_edition_outlives_its_file(project: Project, clock: Clock, how: str) -> None:
    config = project.config()
    first = publish(config, now=clock)
    clock.advance(days=7)
    second = publish(config, now=clock)
    path = file_of(config.corpus_dir, first.view.slug)
    if how == "deleted":
        path.unlink()
    else:  # e.g. an editor's backup, no longer a corpus file
        path.rename(path.with_name(path.name + ".bak"))
    page = project.public / first.view.slug / "index.html"
    published_page = page.read_text(encoding="utf-8")
    page.unlink()  # a missing page is rewritten: from the ledger, since the file is gone
    clock.advance(days=7)
    third = publish(config, now=clock)
    assert all(report.ok for report in third.reports), third.reports

    urls = [third.view.url, second.view.url, first.view.url]
    for name, entries in feed_entries(project).items():
        assert [entry[0] for entry in entries] == urls, name
        assert entries[2][1] == french(first.view.title)  # with French spaces, as rendered
        assert first.view.case.sections[0].heading.split()[0] in entries[2][2]
    index = (project.public / "index.html").read_text(encoding="utf-8")
    assert all(f'href="{url}"' in index for url in urls)
    assert page.read_text(encoding="utf-8") == published_page
    for company in first.view.companies:
        company_page = project.public / "entreprises" / company.url.rstrip("/").rsplit("/")[-1]
        assert first.view.url in (company_page / "index.html").read_text(encoding="utf-8")
    # The third edition's links to the first (if any) keep its title.
    linked = {link.slug: link.title for link in third.view.related}
    assert linked.get(first.view.slug, first.view.title) == first.view.title

    code, output = run(project, "corpus", "check")
    assert code == 0, output
    assert f"warning: edition #1 ({first.view.slug}): no file in" in output
    code, output = run(project, "status")
    assert code == 0 and f"warning: edition #1 ({first.view.slug})" in output
    code, output = run(project, "status", "--json")
    (warning,) = json.loads(output)["warnings"]
    assert "deleted or renamed" in warning


# --------------------------------------------------------------------------- typo fix


def test_an_edit_changes_nothing_until_republish_which_sends_nothing(
    project: Project, clock: Clock, http: HTTPServer
) -> None:
    project.write_config(
        site={"base_url": "https://cas.example.org/"},
        channels=[{"type": "feed"}, {"type": "archive"},
                  {"type": "outbox", "path": "../var/outbox"},
                  {"type": "webhook", "url": http.url_for("/hook"), "timeout": 5.0}],
    )
    config = project.config()
    first = publish(config, now=clock)
    clock.advance(days=7)
    publish(config, now=clock)
    slug = first.view.slug
    case = corpus_mod.load(config.corpus_dir).get(slug)
    assert case is not None
    fixed_lede = case.lede + " Coquille corrigée\u00a0: « déjà » !"
    fixed_title = case.title + " (corrigé)"
    corpus_mod.save(corpus_mod.replace(case, lede=fixed_lede, title=fixed_title),
                    config.corpus_dir)

    # The next publication shows the edition as published, not as edited.
    clock.advance(days=7)
    third = publish(config, now=clock)
    page = project.public / slug / "index.html"
    # Rendered text carries French no-break spaces (syndicate.typography): compare with them.
    assert french(fixed_lede) not in page.read_text(encoding="utf-8")
    for entries in feed_entries(project).values():
        assert entries[2][1] == french(first.view.title)
        assert french(fixed_lede) not in entries[2][2]

    code, output = run(project, "corpus", "check")
    assert code == 0, output
    assert "changed since publication (title, lede)" in output
    assert f"syndicate republish {slug}" in output
    code, output = run(project, "status", "--json")
    assert [w for w in json.loads(output)["warnings"] if f"republish {slug}" in w]

    requests, messages = len(http.log), outbox_count(project)
    with Ledger(config.database) as ledger:
        deliveries = ledger._one("SELECT COUNT(*) FROM deliveries")
        before = ledger.get_edition(slug)
    assert requests == 3 and messages == 3

    snapshot = {p: p.read_bytes() for p in project.public.rglob("*") if p.is_file()}
    code, output = run(project, "republish", slug, "--dry-run")
    assert code == 0, output
    assert f"[dry run] would republish edition #1 ({slug}): title, lede" in output
    assert f"would rewrite {page}" in output
    assert {p: p.read_bytes() for p in project.public.rglob("*") if p.is_file()} == snapshot

    code, output = run(project, "republish", slug)
    assert code == 0, output
    assert f"republished edition #1 ({slug}): title, lede" in output
    assert f"rewrote {page}" in output and f"rewrote {project.public / 'feed.xml'}" in output
    assert french(fixed_lede) in page.read_text(encoding="utf-8")
    for name, entries in feed_entries(project).items():
        assert entries[2][0] == first.view.url, name  # same GUID / id
        assert entries[2][1] == french(fixed_title), name
        assert "Coquille corrigée" in entries[2][2], name
        assert entries[0][0] == third.view.url
    index = (project.public / "index.html").read_text(encoding="utf-8")
    assert french(fixed_title).replace("'", "&#39;") in index

    # Nothing sent, nothing recorded as a delivery; the edition keeps its facts.
    assert len(http.log) == requests and outbox_count(project) == messages
    with Ledger(config.database) as ledger:
        assert ledger._one("SELECT COUNT(*) FROM deliveries") == deliveries
        after = ledger.get_edition(slug)
    assert after is not None and before is not None
    assert (after.number, after.url, after.published_at, after.slot) == (
        before.number, before.url, before.published_at, before.slot)
    assert after.title == fixed_title

    for command in (("corpus", "check"), ("status",)):
        code, output = run(project, *command)
        assert code == 0 and "warning" not in output, output
    code, output = run(project, "republish", slug)
    assert code == 0 and "nothing to republish" in output


def test_republish_refuses_with_one_line(project: Project, clock: Clock) -> None:
    config = project.config()
    first = publish(config, now=clock)
    unpublished = corpus_mod.load(config.corpus_dir).cases[-1].slug
    code, output = run(project, "republish", unpublished)
    assert code == 1 and output.count("\n") == 1
    assert f"error: {unpublished!r} has no edition" in output
    file_of(config.corpus_dir, first.view.slug).unlink()
    code, output = run(project, "republish", first.view.slug)
    assert code == 1 and output.count("\n") == 1
    assert "restore it to republish" in output


# --------------------------------------------------------------------------- old ledgers


def _forget_snapshots(database: Path) -> None:
    """The ledger as an older syndicate left it: no snapshot artefacts."""
    with sqlite3.connect(database) as conn:
        conn.execute("DELETE FROM artefacts WHERE name IN (?, ?)",
                     (SNAPSHOT_ARTEFACT, COMPANIES_ARTEFACT))
    conn.close()


def test_editions_published_before_snapshots(
    project: Project, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    config = project.config()
    first = publish(config, now=clock)
    clock.advance(days=7)
    second = publish(config, now=clock)
    _forget_snapshots(config.database)
    file_of(config.corpus_dir, second.view.slug).unlink()  # gone, and no snapshot either
    second_page = (project.public / second.view.slug / "index.html").read_bytes()

    code, output = run(project, "status")
    assert code == 0
    assert f"edition #2 ({second.view.slug}): no file in" in output
    assert "no snapshot in the ledger" in output

    caplog.set_level(logging.INFO, logger="syndicate")
    clock.advance(days=7)
    third = publish(config, now=clock)
    clock.advance(days=7)
    fourth = publish(config, now=clock)
    backfills = [r for r in caplog.records if "before snapshots existed" in r.getMessage()]
    assert len(backfills) == 1 and f"#1 {first.view.slug}" in backfills[0].getMessage()
    assert any(r.levelno == logging.WARNING and second.view.slug in r.getMessage()
               for r in caplog.records)
    with Ledger(config.database) as ledger:
        edition = ledger.get_edition(first.view.slug)
        assert edition is not None and ledger.artefact(edition.id, SNAPSHOT_ARTEFACT)

    urls = [fourth.view.url, third.view.url, second.view.url, first.view.url]
    for name, entries in feed_entries(project).items():
        assert [entry[0] for entry in entries] == urls, name
        assert entries[2][1] == french(second.view.title), name  # the ledger's title
        assert f'href="{second.view.url}"' in entries[2][2]  # and a link to its page
    index = (project.public / "index.html").read_text(encoding="utf-8")
    assert all(f'href="{url}"' in index for url in urls)
    assert (project.public / second.view.slug / "index.html").read_bytes() == second_page


# --------------------------------------------------------------------------- unfinished


def test_unfinished_edition_finishes_from_its_snapshot(
    project: Project, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = project.config()

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("killed while rendering")

    with monkeypatch.context() as patch:  # the first run dies after the claim
        patch.setattr("syndicate.pipeline.render_email", crash)
        with pytest.raises(RuntimeError):
            publish(config, now=clock)
    with Ledger(config.database) as ledger:
        (edition,) = ledger.unfinished_editions()
    path = file_of(config.corpus_dir, edition.slug)
    lede = corpus_mod.load_file(path).lede
    path.unlink()

    (result,) = Publisher(config, now=clock).resume()
    assert result.view.slug == edition.slug and result.complete
    page = (project.public / edition.slug / "index.html").read_text(encoding="utf-8")
    assert lede.split()[0] in page
    assert outbox_count(project) == 1
    with Ledger(config.database) as ledger:
        assert ledger.unfinished_editions() == []


def test_republish_rewrites_the_pages_of_companies_no_longer_cited(
    project: Project, clock: Clock
) -> None:
    config = project.config()
    cases = corpus_mod.load(config.corpus_dir).cases
    for old in config.corpus_dir.glob("*.md"):
        old.unlink()
    for position, case in enumerate(cases[:2], 1):  # two case studies citing Shine
        corpus_mod.save(corpus_mod.replace(case, position=position, path=None,
                                           companies=("Shine", f"Solo {position}")),
                        config.corpus_dir)
    first = publish(config, now=clock)
    clock.advance(days=7)
    second = publish(config, now=clock)
    shine = project.public / "entreprises" / "shine" / "index.html"
    assert first.view.url in shine.read_text(encoding="utf-8")
    case = corpus_mod.load(config.corpus_dir).get(first.view.slug)
    assert case is not None
    corpus_mod.save(corpus_mod.replace(case, companies=("Solo 1",)), config.corpus_dir)

    code, output = run(project, "republish", first.view.slug)
    assert code == 0, output
    assert "): companies" in output and f"rewrote {shine}" in output
    page = shine.read_text(encoding="utf-8")
    assert first.view.url not in page and second.view.url in page
    companies = (project.public / "entreprises" / "index.html").read_text(encoding="utf-8")
    assert "Solo 1" in companies
    data = json.loads((project.public / "feed.json").read_text(encoding="utf-8"))
    assert data["items"][1]["tags"][-1:] == ["Solo 1"]


def test_old_editions_listed_from_the_small_companies_artefact(
    project: Project, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Beyond the feed and the index excerpts, an edition's full text is not read: its title
    # (ledger) and companies (companies.json) are enough for the index and company pages.
    monkeypatch.setattr("syndicate.views.INDEX_EXCERPTS", 1)
    monkeypatch.setattr("syndicate.render.archive.INDEX_EXCERPTS", 1)
    project.write_config(site={"base_url": "https://cas.example.org/"}, publish={"feed_size": 1})
    config = project.config()
    results = []
    for _ in range(3):
        results.append(publish(config, now=clock))
        clock.advance(days=7)
    first = results[0].view
    _forget_snapshots(config.database)  # an old ledger: taken from the files once
    publish(config, now=clock)
    clock.advance(days=7)
    with Ledger(config.database) as ledger:
        assert len(ledger.artefacts_named(COMPANIES_ARTEFACT)) == 4
    file_of(config.corpus_dir, first.slug).unlink()
    page = project.public / first.slug / "index.html"
    published_page = page.read_text(encoding="utf-8")
    page.unlink()
    last = publish(config, now=clock)
    assert last.view.number == 5
    index = (project.public / "index.html").read_text(encoding="utf-8")
    assert f'href="{first.url}"' in index and first.title.split()[0] in index
    assert page.read_text(encoding="utf-8") == published_page  # expanded from its snapshot
    for company in first.companies:
        slug = company.url.rstrip("/").rsplit("/")[-1]
        text = (project.public / "entreprises" / slug / "index.html").read_text("utf-8")
        assert first.url in text


def _retitle(path: Path, folder: Path) -> None:
    case = corpus_mod.load_file(path)
    corpus_mod.save(corpus_mod.replace(case, title=case.title + " (corrigé)"), folder)


def weekly_editions(config: Config, clock: Clock, count: int) -> list[PublishResult]:
    """``count`` editions published a week apart."""
    editions = []
    for _ in range(count):
        editions.append(publish(config, now=clock))
        clock.advance(days=7)
    return editions


def test_drift_of_unchanged_files_is_checked_without_reading_them(
    project: Project, clock: Clock
) -> None:
    """Each snapshot keeps the digest of the file it was taken from: checking thousands of
    published editions compares digests from the corpus index, no file parsed (``status``)."""
    config = project.config()
    editions = weekly_editions(config, clock, 3)
    cache = config.corpus_cache_dir
    with Ledger(config.database) as ledger:
        kept = ledger.artefacts_named(SOURCE_FILE_ARTEFACT)
        for result in editions:
            path = file_of(config.corpus_dir, result.view.slug)
            assert kept[result.edition.id] == hashlib.sha256(path.read_bytes()).hexdigest()

        loaded = corpus_mod.load(config.corpus_dir, cache_dir=cache)
        cases = loaded.by_slug()
        assert published_drift(ledger, cases) == []
        # No body was read: the file digests came from the index.
        assert all(vars(case).get("lede", _UNLOADED) is _UNLOADED for case in cases.values())

        # An edit readers would see is found (the digest differs: compared in full) ...
        _retitle(file_of(config.corpus_dir, editions[0].view.slug), config.corpus_dir)
        # ... and one they would not (the queue position) is none, though the bytes changed.
        second = file_of(config.corpus_dir, editions[1].view.slug)
        second.write_text(re.sub(r"^position: \d+", "position: 9999",
                                 second.read_text(encoding="utf-8"), count=1, flags=re.M),
                          encoding="utf-8")
        cases = corpus_mod.load(config.corpus_dir, cache_dir=cache).by_slug()
        drifts = published_drift(ledger, cases)
    assert [(d.edition.slug, d.fields) for d in drifts] == [(editions[0].view.slug, ("title",))]


class _Spy:
    """A ledger that records which of its methods are called."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.ledger, name)

        def called(*args: object, **kwargs: object) -> Any:
            self.calls.append((name, args))
            return method(*args, **kwargs)
        return called

    def named(self, name: str) -> list[tuple[object, ...]]:
        return [args for called, args in self.calls if called == name]


def test_drift_from_the_loaded_corpus_and_edition_keys(
    project: Project, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``status`` at 5,000 editions: the file digests are asked of the loaded corpus (its
    index's column), the editions are ``(id, number, slug)`` keys; a case study is looked up
    only for an edition whose file's digest differs, and an edition record is read only for
    an edition reported."""
    config = project.config()
    editions = weekly_editions(config, clock, 4)
    cache = config.corpus_cache_dir
    with Ledger(config.database) as ledger:
        keys = ledger.edition_keys()
        assert [k[2] for k in keys] == [r.view.slug for r in editions]
        loaded = corpus_mod.load(config.corpus_dir, cache_dir=cache)

        def refused(*args: object) -> None:
            raise AssertionError("a case study looked up while every digest matches")
        with monkeypatch.context() as patch:
            for name in ("get", "by_slug", "__iter__"):
                patch.setattr(corpus_mod.Corpus, name, refused)
            spy = _Spy(ledger)
            assert published_drift(cast(LedgerPort, spy), loaded, editions=keys) == []
            assert published_drift(cast(LedgerPort, spy), loaded) == []  # keys read once
        assert spy.named("editions") == spy.named("get_edition") == []
        assert len(spy.named("edition_keys")) == 1
        # Checked again (the next `status`): the source digests are read back from beside
        # the corpus index, not looked up and hashed again.
        loaded = corpus_mod.load(config.corpus_dir, cache_dir=cache)
        with monkeypatch.context() as patch:
            patch.setattr(corpus_mod.Corpus, "file_digests", refused)
            assert published_drift(ledger, loaded, editions=keys) == []

        # One file changed (title), one gone: only these two records are read.
        _retitle(file_of(config.corpus_dir, editions[1].view.slug), config.corpus_dir)
        file_of(config.corpus_dir, editions[3].view.slug).unlink()
        loaded = corpus_mod.load(config.corpus_dir, cache_dir=cache)
        spy = _Spy(ledger)
        drifts = published_drift(cast(LedgerPort, spy), loaded, editions=keys)
        assert spy.named("editions") == []
        assert sorted(spy.named("get_edition")) == [(editions[1].edition.id,),
                                                    (editions[3].edition.id,)]
        expected = [(ledger.get_edition(editions[1].edition.id), "changed", ("title",)),
                    (ledger.get_edition(editions[3].edition.id), "gone", ())]
        assert [(d.edition, d.kind, d.fields) for d in drifts] == expected
        # The same from records ({slug: case study}, `corpus check`) or edition records.
        every = ledger.editions(status=None)
        assert published_drift(ledger, loaded.by_slug(), editions=every) == drifts
        assert published_drift(ledger, loaded) == drifts
        # Many reported: their records in one read of all, not one query each.
        monkeypatch.setattr("syndicate.snapshots._ONE_BY_ONE", 1)
        spy = _Spy(ledger)
        assert published_drift(cast(LedgerPort, spy), loaded, editions=keys) == drifts
        assert spy.named("get_edition") == [] and len(spy.named("editions")) == 1


def test_editions_without_the_file_digest_are_compared_in_full(
    project: Project, clock: Clock
) -> None:
    """Editions published before the digest was kept: their drift is still found."""
    config = project.config()
    result = publish(config, now=clock)
    with sqlite3.connect(config.database) as conn:
        conn.execute("DELETE FROM artefacts WHERE name = ?", (SOURCE_FILE_ARTEFACT,))
    path = file_of(config.corpus_dir, result.view.slug)
    with Ledger(config.database) as ledger:
        assert published_drift(ledger, corpus_mod.load(config.corpus_dir).by_slug()) == []
        _retitle(path, config.corpus_dir)
        drifts = published_drift(ledger, corpus_mod.load(config.corpus_dir).by_slug())
    assert [(d.edition.slug, d.fields) for d in drifts] == [(result.view.slug, ("title",))]


def test_a_record_whose_file_changed_before_its_body_was_read_has_no_file_digest(
    project: Project, tmp_path: Path
) -> None:
    """Front matter from the index, body from newer bytes: no digest, so no snapshot taken
    from it is ever trusted by its digest."""
    config = project.config()
    cache = tmp_path / "cache"
    cache.mkdir()
    corpus_mod.load(config.corpus_dir, cache_dir=cache)  # writes the index
    case = next(iter(corpus_mod.load(config.corpus_dir, cache_dir=cache)))  # its records
    assert case.path is not None
    before = case.file_digest
    assert before == hashlib.sha256(case.path.read_bytes()).hexdigest()
    case.path.write_text(case.path.read_text(encoding="utf-8") + "\nUn ajout.\n",
                         encoding="utf-8")
    assert case.lede  # read now, from the edited file
    assert case.file_digest is None
    assert SOURCE_FILE_ARTEFACT not in snapshot_artefacts(case)
    parsed = corpus_mod.load_file(case.path)
    assert parsed.file_digest == hashlib.sha256(case.path.read_bytes()).hexdigest()
    assert snapshot_artefacts(parsed)[SOURCE_FILE_ARTEFACT] == parsed.file_digest
