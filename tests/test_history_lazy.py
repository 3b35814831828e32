"""A publish at a long history builds the views of the editions on the pages it writes, not
of every edition, and reads the editions once.

Real parts: a SQLite ledger of 300 done editions (claimed and snapshotted through the ledger
port), the pipeline's ``publish`` with the feed and archive channels into a real public folder.
Calls are counted, never timed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import Clock, Project

from syndicate.corpus import CaseStudy, Corpus, Section
from syndicate.ledger import SqliteLedger, open_ledger
from syndicate.pipeline import publish
from syndicate.snapshots import LedgerTexts
from syndicate.views import Links, ViewBuilder

COUNT = 300
START = datetime(2023, 8, 1, 6, 0, tzinfo=UTC)  # every 4 days: up to 2026-11, 4 years


def _case(i: int) -> CaseStudy:
    # 40 companies: each cited by a handful of editions (its page lists them all).
    return CaseStudy(
        slug=f"histoire-{i:03d}", title=f"Histoire numéro {i}",
        lede=f"Le cas {i} : une décision prise, racontée par l’entreprise.",
        sections=(Section("Le contexte", (f"Paragraphe du cas {i}.",)),),
        position=0, companies=(f"Entreprise {i % 40}",))


def _ledger(project: Project, count: int = COUNT, missing: int = 0) -> None:
    """``count`` done editions; the ``missing`` oldest without a snapshot (text lost)."""
    project.done_editions((_case(i) for i in range(1, count + 1)),
                          lambda i: START + timedelta(days=4 * (i - 1)), missing=missing)


@pytest.fixture
def site(project: Project) -> Project:
    project.write_config(publish={"archive_page_size": 50},
                         channels=[{"type": "feed"}, {"type": "archive"}])
    _ledger(project)
    return project


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The numbers of the editions whose view a ViewBuilder builds (light or full)."""
    numbers: list[int] = []
    light, full = ViewBuilder._light, ViewBuilder.view

    def count_light(self, number, *args, **kwargs):  # type: ignore[no-untyped-def]
        numbers.append(number)
        return light(self, number, *args, **kwargs)

    def count_full(self, number, *args, **kwargs):  # type: ignore[no-untyped-def]
        numbers.append(number)
        return full(self, number, *args, **kwargs)

    monkeypatch.setattr(ViewBuilder, "_light", count_light)
    monkeypatch.setattr(ViewBuilder, "view", count_full)
    yield numbers


def _written(public: Path, since: dict[str, int]) -> dict[str, str]:
    return {str(p.relative_to(public)): p.read_text(encoding="utf-8")
            for p in public.rglob("*") if p.is_file()
            and since.get(str(p.relative_to(public))) != p.stat().st_mtime_ns}


def test_a_publish_builds_views_only_for_the_editions_on_the_pages_it_writes(
    site: Project, clock: Clock, built: list[int]
) -> None:
    config = site.config()
    publish(config, now=clock)  # 301: every page missing, every view built
    assert len(set(built)) == COUNT + 1
    public = site.public
    before = {str(p.relative_to(public)): p.stat().st_mtime_ns
              for p in public.rglob("*") if p.is_file()}
    built.clear()
    clock.advance(days=4)
    time.sleep(0.01)  # distinct mtimes on coarse file systems
    result = publish(config, now=clock)  # 302: a dozen pages and the feeds
    assert result.complete
    written = _written(public, before)
    assert "index.html" in written and "feed.xml" in written
    with open_ledger(config.database) as ledger:
        number_of = {e.slug: e.number for e in ledger.editions()}
    base = re.escape(config.site.base_url)
    shown = {number_of[slug] for text in written.values()
             for slug in re.findall(base + r"([a-z0-9-]+)/", text) if slug in number_of}
    assert result.view.number in shown and 301 in shown  # itself, its neighbour
    # Only editions some written page or feed shows; a fraction of the history.
    assert set(built) <= shown, sorted(set(built) - shown)
    assert len(set(built)) < COUNT // 2


def test_a_publish_reads_the_editions_once(
    site: Project, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = site.config()
    publish(config, now=clock)
    calls: list[str | None] = []
    editions = SqliteLedger.editions

    def counted(self, status="done", limit=None):  # type: ignore[no-untyped-def]
        calls.append(status)
        return editions(self, status, limit)

    monkeypatch.setattr(SqliteLedger, "editions", counted)
    clock.advance(days=4)
    result = publish(config, now=clock)
    assert result.complete and result.edition is not None
    assert len(calls) == 1
    # The history it published from still holds the editions read before the claim.
    assert "histoire-300/" in (site.public / "index.html").read_text(encoding="utf-8")


def test_the_facts_of_a_lazy_history_are_those_of_its_views(project: Project) -> None:
    from syndicate.render.model import EditionFacts, LazyHistory

    project.write_config(channels=[{"type": "archive"}])
    _ledger(project, count=60, missing=5)
    config = project.config()
    corpus = Corpus(project.root / "empty", ())
    with open_ledger(config.database) as ledger:
        editions = ledger.editions()
        texts = LedgerTexts(ledger, corpus, editions, backfill=False)
        builder = ViewBuilder(config, corpus, editions, lambda slug: Links((), ()), texts)
        # A correction of edition 30: the current view is not the newest.
        old = next(e for e in editions if e.number == 30)
        current = builder.view(30, _case(30), old.published_at)
        history = builder.history(current)
        assert isinstance(history, LazyHistory)
        # Built so far: the current view and the full ones (they read the ledger).
        assert history.built == config.publish.feed_size
        views = list(history)
    assert len(history) == 60 and history.built == 60
    assert [v.number for v in views] == list(range(60, 0, -1))
    assert views[60 - 30] is current
    assert history[-1] is views[-1] and history[3:5] == (views[3], views[4])
    assert [EditionFacts.of(view) for view in views] == list(history.facts)
    assert [v.number for v in views if v.text_missing] == [5, 4, 3, 2, 1]
    assert all(v.case.title for v in views)
