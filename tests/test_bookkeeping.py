"""One delivery bookkeeping for every channel: rows before the send, marks after, the
same states and retry rules, and the report's counts from one place."""

from __future__ import annotations

import threading
from pathlib import Path

from syndicate.channels import Bookkeeping
from syndicate.ledger import BOUNCED, SKIPPED, Ledger


def _book(tmp_path: Path) -> tuple[Ledger, Bookkeeping]:
    ledger = Ledger(tmp_path / "syndicate.db")
    edition = ledger.claim_edition(slot="test:1", slug="cas", title="Cas",
                                   url="https://cas.example.org/cas/")
    return ledger, Bookkeeping(ledger, edition)


def test_marks_states_and_retry_rules(tmp_path: Path) -> None:
    ledger, book = _book(tmp_path)
    with ledger:
        for email in ("a@example.org", "b@example.org", "c@example.org", "d@example.org"):
            ledger.add_subscriber(email)
        run = book.run("smtp")
        assert run.create_for_subscribers() == 4
        ledger.add_subscriber("late@example.org")  # after the edition went out
        assert run.create_for_subscribers() == 4  # rows are made once
        ledger.set_subscriber_status("d@example.org", "unsubscribed")
        rows = {row.recipient: row for row in run.pending()}
        run.sent(rows["a@example.org"], "250 ok", 250)
        run.retry_later(rows["b@example.org"], "421 busy", 421)
        run.bounced(rows["c@example.org"], "c@example.org", 550, "550 no such user")
        assert run.recipient(rows["d@example.org"]) is None  # recorded as skipped
        report = run.report("done")
        assert (report.sent, report.failed, report.skipped, report.bounced, report.pending) == (
            1, 0, 1, 1, 1)
        assert ledger.get_subscriber("c@example.org").status == "bounced"
        failed = {row.recipient: row.response for row in ledger.failed_deliveries()}
        assert failed["c@example.org"].startswith(BOUNCED)
        assert failed["d@example.org"].startswith(SKIPPED)
        assert ledger.reset_failed() == 0  # outcomes are not failures: retry-failed skips them

        # A second pass counts only what it marks.
        again = book.run("smtp")
        (row,) = list(again.pending())
        again.failed(row, "554 refused", 554)
        assert (again.report().sent, again.report().failed, again.report().pending) == (0, 1, 0)
        assert ledger.reset_failed(channel="smtp") == 1  # retry-failed: pending again
        assert book.pending_count("smtp") == 1


def test_single_row_channels_settle_once(tmp_path: Path) -> None:
    ledger, book = _book(tmp_path)
    with ledger:
        run = book.run("feed")
        row = run.row()
        assert run.settled(row, "feeds already written") is None
        run.sent(row, "feed.xml")
        again = book.run("feed")
        done = again.settled(again.row(), "feeds already written")
        assert done is not None and (done.skipped, done.detail) == (1, "feeds already written")
        hook = book.run("hook")
        hook.failed(hook.row(), "HTTP 410")
        late = book.run("hook").settled(book.run("hook").row(), "already sent")
        assert late is not None and (late.failed, late.detail) == (1, "failed earlier: HTTP 410")


def test_counts_are_exact_across_threads(tmp_path: Path) -> None:
    ledger, book = _book(tmp_path)
    with ledger:
        ledger.ensure_deliveries(book.edition.id, "smtp",
                                 (f"p{i}@example.org" for i in range(200)))
        run = book.run("smtp")
        rows = iter(run.pending())
        lock = threading.Lock()
        seen: list[str] = []
        run.on_mark = seen.append

        def work() -> None:
            while True:
                with lock:
                    row = next(rows, None)
                if row is None:
                    return
                run.sent(row, "250 ok")

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        report = run.report()
        assert (report.sent, report.pending) == (200, 0) and len(seen) == 200
