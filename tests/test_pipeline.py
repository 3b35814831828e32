"""Publishing end to end on the embedded defaults: ledger, feeds, archive, outbox."""

from __future__ import annotations

import email
import json
import mailbox
import multiprocessing
import re
from email import policy
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner
from conftest import Clock, Project

from syndicate import corpus as corpus_mod
from syndicate.cli import cli
from syndicate.errors import NothingToPublish, SlotTaken
from syndicate.ledger import Ledger
from syndicate.pipeline import Publisher, publish, select_next


def outbox_messages(project: Project) -> list[email.message.EmailMessage]:
    box = mailbox.Maildir(project.var / "outbox", factory=None, create=False)
    return [email.message_from_bytes(msg.as_bytes(), policy=policy.default) for msg in box]


def test_select_next_is_lowest_unpublished_non_draft(project: Project) -> None:
    cases = list(corpus_mod.load(project.config().corpus_dir))
    first, second, third = cases[0], cases[1], cases[2]
    assert select_next(cases, []) == first
    assert select_next(cases, [first.slug]) == second
    drafted = [corpus_mod.replace(c, status="draft") if c == second else c for c in cases]
    assert select_next(drafted, [first.slug]) == third
    assert select_next(cases, [c.slug for c in cases]) is None


def test_two_editions_second_links_to_first(project: Project, clock: Clock) -> None:
    config = project.config()
    first = publish(config, now=clock)
    clock.advance(days=7)
    second = publish(config, now=clock)
    assert (first.edition.number, second.edition.number) == (1, 2)
    assert first.edition.slug != second.edition.slug
    assert all(report.ok for report in first.reports + second.reports), second.reports

    # Related links point only to the earlier, published edition.
    assert [link.url for link in first.view.related] == []
    assert [link.url for link in second.view.related] == [first.view.url]
    page = (project.public / second.view.slug / "index.html").read_text(encoding="utf-8")
    assert f'href="{first.view.url}"' in page

    # Feeds: both entries, newest first, parse cleanly.
    for name in ("feed.xml", "atom.xml"):
        parsed = feedparser.parse((project.public / name).read_bytes())
        assert parsed.bozo == 0, parsed.bozo_exception
        assert [entry.link for entry in parsed.entries] == [second.view.url, first.view.url]
    data = json.loads((project.public / "feed.json").read_text(encoding="utf-8"))
    assert [item["url"] for item in data["items"]] == [second.view.url, first.view.url]

    # Outbox: no subscriber yet, so one sample copy per edition to the test address.
    messages = outbox_messages(project)
    assert len(messages) == 2
    assert {m["To"] for m in messages} == {config.publish.test_address}
    assert {m["Subject"] for m in messages} == {first.view.title, second.view.title}
    for message in messages:
        assert message.get_content_type() == "multipart/alternative"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    with Ledger(config.database) as ledger:
        editions = ledger.editions()
        assert [e.slug for e in editions] == [second.view.slug, first.view.slug]
        assert all(e.status == "done" for e in editions)
        assert ledger.artefact(editions[0].id, "email.html")


def test_the_same_slot_publishes_once(project: Project, clock: Clock) -> None:
    config = project.config()
    result = publish(config, slot="cron:2026-11-24T08:00 Europe/Paris", now=clock)
    with pytest.raises(SlotTaken):
        publish(config, slot="cron:2026-11-24T08:00 Europe/Paris", now=clock)
    with Ledger(config.database) as ledger:
        assert [e.slug for e in ledger.editions()] == [result.view.slug]


def _publish_in_process(config_path: str, slot: str, queue: multiprocessing.Queue) -> None:
    from syndicate.app import load_config
    from syndicate.errors import LockedError
    from syndicate.errors import SlotTaken as Taken

    try:
        result = publish(load_config(config_path), slot=slot)
        queue.put(("published", result.view.slug))
    except Taken as exc:
        queue.put(("refused", exc.slot))
    except LockedError as exc:  # the other one is publishing right now
        queue.put(("refused", str(exc)))


def test_concurrent_processes_cannot_double_publish_a_slot(project: Project) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    slot = "cron:2026-12-01T08:00 Europe/Paris"
    procs = [
        ctx.Process(target=_publish_in_process, args=(str(project.config_path), slot, queue))
        for _ in range(2)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    outcomes = sorted(queue.get(timeout=5) for _ in procs)
    assert [kind for kind, _ in outcomes] == ["published", "refused"]
    with Ledger(project.config().database) as ledger:
        assert len(ledger.editions()) == 1


def test_queue_runs_out_cleanly(project: Project, clock: Clock) -> None:
    config = project.config()
    total = len(corpus_mod.load(config.corpus_dir))
    for _ in range(total):
        publish(config, now=clock)
        clock.advance(days=1)
    with pytest.raises(NothingToPublish):
        publish(config, now=clock)
    result = CliRunner().invoke(cli, ["--config", str(project.config_path), "publish-next"])
    assert result.exit_code == 0, result.output
    assert "nothing to publish" in result.output
    with Ledger(config.database) as ledger:
        slugs = [e.slug for e in ledger.editions()]
    assert len(slugs) == len(set(slugs)) == total


def test_dry_run_records_and_writes_nothing(project: Project) -> None:
    result = CliRunner().invoke(
        cli, ["--config", str(project.config_path), "publish-next", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "[dry run] would publish edition #1" in result.output
    assert not project.public.exists()
    assert not (project.var / "outbox").exists()
    with Ledger(project.config().database) as ledger:
        assert ledger.editions() == []


def test_a_failing_channel_does_not_block_the_others(project: Project, clock: Clock) -> None:
    # The archive cannot write: its public folder is a file. Feed and outbox still deliver.
    project.write_config(
        site={"base_url": "https://cas.example.org/"},
        channels=[
            {"type": "archive"},
            {"type": "outbox", "path": "../var/outbox"},
        ],
        storage={"public": "../blocked"},
    )
    (project.root / "blocked").write_text("not a folder")
    result = publish(project.config(), now=clock)
    by_name = {r.channel: r for r in result.reports}
    assert by_name["archive"].failed == 1
    assert by_name["outbox"].sent == 1
    with Ledger(project.config().database) as ledger:
        counts = ledger.delivery_counts(result.edition.id)
        assert counts["archive"]["failed"] == 1
        assert counts["outbox"]["sent"] == 1


def test_hostile_corpus_text_is_escaped_everywhere(project: Project, clock: Clock) -> None:
    config = project.config()
    first = corpus_mod.load(config.corpus_dir).cases[0]
    hostile = corpus_mod.replace(
        first,
        title="Titre <script>alert('t')</script> {{ 7*7 }}",
        lede="Chapô <b>gras</b> & {{ config }} {% raw %} ]]>",
    )
    corpus_mod.save(hostile, config.corpus_dir)
    result = publish(config, now=clock)
    page = (project.public / result.view.slug / "index.html").read_text(encoding="utf-8")
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert" in page
    assert "{{ 7*7 }}" in page  # shown as written, never evaluated
    (message,) = outbox_messages(project)
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "<b>gras</b>" not in html and "&lt;b&gt;gras&lt;/b&gt;" in html
    assert "{{ config }}" in text and "<b>gras</b>" in text  # plain text shows it as written
    parsed = feedparser.parse((project.public / "atom.xml").read_bytes())
    assert parsed.bozo == 0
    assert parsed.entries[0].title == hostile.title


def test_status_and_queue_commands(project: Project) -> None:
    runner = CliRunner()
    args = ["--config", str(project.config_path)]
    assert runner.invoke(cli, [*args, "publish-next"]).exit_code == 0
    status = runner.invoke(cli, [*args, "status", "--json"])
    assert status.exit_code == 0, status.output
    data = json.loads(status.output)
    assert data["totals"]["published"] == 1
    queue = runner.invoke(cli, [*args, "queue", "--json"])
    slugs = [row["slug"] for row in json.loads(queue.output)]
    assert data["next"] == slugs[0]
    assert data["editions"][0]["slug"] not in slugs


def test_the_first_publish_of_a_new_site_keeps_the_corpus_index(project: Project) -> None:
    """The index is kept beside the ledger, whose folder a new site's first publish makes
    after loading the corpus: it is written then, not left to the next command (which, at
    10,000 case studies, would read every file again)."""
    assert not project.var.exists()
    result = CliRunner().invoke(cli, ["--config", str(project.config_path), "publish-next"])
    assert result.exit_code == 0, result.output
    (index,) = project.var.glob("cache/corpus-*.idx")
    written = index.stat().st_mtime_ns, index.read_bytes()
    assert CliRunner().invoke(cli, ["--config", str(project.config_path), "queue"]).exit_code == 0
    assert (index.stat().st_mtime_ns, index.read_bytes()) == written  # read, not rebuilt


def test_kept_queue_listings_follow_every_publish_and_edit(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``queue`` keeps its listing, ``status`` and ``schedule`` the head of the queue, beside
    the corpus index (issue 13): read again while nothing changed, made again after a
    publish (the published slugs) and after an edit (the index's columns)."""
    from syndicate.cli import overview

    runner = CliRunner()
    args = ["--config", str(project.config_path)]

    def output(*command: str) -> str:
        result = runner.invoke(cli, [*args, *command])
        assert result.exit_code == 0, result.output
        return result.output

    def head() -> tuple[str, str, str]:
        status = json.loads(output("status", "--json"))
        assert status["warnings"] == []  # the published files' kept digests follow too
        slot = json.loads(output("schedule", "-n", "1", "--json"))[0]
        return status["next"], slot["slug"], slot["title"]

    output("queue")  # a new site: opening the ledger makes the folder the index is kept in
    lines = output("queue").splitlines()
    listed = json.loads(output("queue", "--json"))
    assert head() == (listed[0]["slug"], listed[0]["slug"], listed[0]["title"])
    kept = {p.name.rsplit(".idx.", 1)[1] for p in project.root.rglob("corpus-*.idx.*")}
    assert {"queue.txt", "queue.json", "queue.slug", "queue.slug.title"} <= kept
    made = overview._listing
    monkeypatch.setattr(overview, "_listing", lambda *a: pytest.fail("made again"))
    assert output("queue").splitlines() == lines  # read, not made
    monkeypatch.setattr(overview, "_listing", made)

    assert runner.invoke(cli, [*args, "publish-next"]).exit_code == 0
    after = output("queue").splitlines()
    assert len(after) == len(lines) - 1 and listed[0]["slug"] not in "\n".join(after)
    assert json.loads(output("queue", "--json")) == listed[1:]
    assert head() == (listed[1]["slug"], listed[1]["slug"], listed[1]["title"])

    # An edit in place of the next case study's title: every listing says the new one.
    path = project.root / "corpus" / f"{listed[1]['slug']}.md"
    text = path.read_text(encoding="utf-8")
    title = listed[1]["title"]
    path.write_text(text.replace(f"title: {title}", "title: Un titre tout neuf", 1)
                    if f"title: {title}" in text else
                    text.replace(title, "Un titre tout neuf", 1), encoding="utf-8")
    assert "Un titre tout neuf" in output("queue").splitlines()[0]
    assert json.loads(output("queue", "--json"))[0]["title"] == "Un titre tout neuf"
    assert head() == (listed[1]["slug"], listed[1]["slug"], "Un titre tout neuf")


def test_resume_finishes_an_edition_claimed_but_not_delivered(
    project: Project, clock: Clock
) -> None:
    config = project.config()
    # Simulate a crash right after the claim: the edition exists, nothing was delivered.
    with Ledger(config.database, now=clock) as ledger:
        case = corpus_mod.load(config.corpus_dir).cases[0]
        ledger.claim_edition(
            slot="manual:crash",
            slug=case.slug,
            title=case.title,
            url=f"{config.site.base_url}{case.slug}/",
        )
    results = Publisher(config, now=clock).resume()
    assert [r.view.slug for r in results] == [case.slug]
    assert (project.public / case.slug / "index.html").exists()
    assert len(outbox_messages(project)) == 1
    # Resuming again sends nothing more.
    assert Publisher(config, now=clock).resume() == []
    assert len(outbox_messages(project)) == 1


def test_publish_finishes_unfinished_before_anything_new(project: Project, clock: Clock) -> None:
    config = project.config()
    cases = corpus_mod.load(config.corpus_dir).cases
    with Ledger(config.database, now=clock) as ledger:
        ledger.claim_edition(
            slot="manual:crash",
            slug=cases[0].slug,
            title=cases[0].title,
            url=f"{config.site.base_url}{cases[0].slug}/",
        )
    result = publish(config, now=clock)
    assert result.view.slug == cases[1].slug
    with Ledger(config.database) as ledger:
        assert [e.status for e in ledger.editions(status=None)] == ["done", "done"]
    assert len(outbox_messages(project)) == 2


def test_preview_writes_files_without_publishing(project: Project, tmp_path: Path) -> None:
    out = tmp_path / "preview"
    result = CliRunner().invoke(
        cli, ["--config", str(project.config_path), "preview", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    for name in ("email.html", "email.txt", "email.eml", "feed-item.xml", "index.html"):
        assert (out / name).stat().st_size > 0, name
        assert str(out / name) in result.output
    message = email.message_from_bytes((out / "email.eml").read_bytes(), policy=policy.default)
    assert message.get_content_type() == "multipart/alternative"
    with Ledger(project.config().database) as ledger:
        assert ledger.editions() == []


def test_old_editions_are_light_but_rebuilt_pages_are_complete(
    project: Project, clock: Clock
) -> None:
    # Older editions beyond the feed size skip relatedness (cost at thousands of editions),
    # yet a page rebuilt for them still carries its related links.
    project.write_config(site={"base_url": "https://cas.example.org/"}, publish={"feed_size": 1})
    config = project.config()
    first = publish(config, now=clock)
    clock.advance(days=7)
    second = publish(config, now=clock)
    page = project.public / second.view.slug / "index.html"
    complete = page.read_text(encoding="utf-8")
    assert f'href="{first.view.url}"' in complete
    page.unlink()
    clock.advance(days=7)
    third = publish(config, now=clock)
    # The same page, plus the "next" link to the third edition.
    rebuilt = page.read_text(encoding="utf-8")
    assert _without_pager(rebuilt) == _without_pager(complete)
    assert f'rel="next" href="{third.view.url}"' in rebuilt


def test_company_mentions_name_the_newest_earlier_editions_only(
    project: Project, clock: Clock
) -> None:
    config = project.config()
    cases = corpus_mod.load(config.corpus_dir).cases
    for old in config.corpus_dir.glob("*.md"):
        old.unlink()
    for position, case in enumerate(cases[:5], 1):  # five case studies, all citing Shine
        corpus_mod.save(
            corpus_mod.replace(case, position=position, companies=("Shine",), path=None),
            config.corpus_dir,
        )
    results = []
    for _ in range(5):
        results.append(publish(config, now=clock))
        clock.advance(days=7)
    (shine,) = results[-1].view.companies
    assert shine.company == "Shine"
    newest_first = [r.view.slug for r in reversed(results[:-1])]
    assert [link.slug for link in shine.earlier] == newest_first[:3]
    company_page = (project.public / "entreprises" / "shine" / "index.html").read_text("utf-8")
    assert all(r.view.url in company_page for r in results)  # the company page lists all


def test_links_are_fixed_when_an_edition_is_published(project: Project, clock: Clock) -> None:
    config = project.config()
    first = publish(config, now=clock)
    clock.advance(days=7)
    second = publish(config, now=clock)
    assert [link.slug for link in second.view.related] == [first.view.slug]
    # Edit the corpus so that relatedness would now differ, and rebuild the page.
    case = corpus_mod.load(config.corpus_dir).get(second.view.slug)
    corpus_mod.save(corpus_mod.replace(case, companies=()), config.corpus_dir)
    page = project.public / second.view.slug / "index.html"
    before = page.read_text(encoding="utf-8")
    page.unlink()
    clock.advance(days=7)
    publish(config, now=clock)
    after = page.read_text(encoding="utf-8")
    assert f'href="{first.view.url}"' in after
    # The page as published, links included (only the new "next" link added).
    assert _without_pager(after) == _without_pager(before)


def _without_pager(html: str) -> str:
    """A page without its previous/next links (they change when the next edition is out)."""
    return re.sub(r'<nav class="pager".*?</nav>', "", html, flags=re.S)
