"""``syndicate deliveries`` and ``syndicate retry-failed`` end to end (real CLI, real
ledger file, real SMTP server on 127.0.0.1)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _smtp_support import SECRET, Recorder, seed_corpus, smtp_channel, smtp_server
from click.testing import CliRunner
from conftest import Project

from syndicate.cli import cli
from syndicate.ledger import Ledger

PEOPLE = ["ana@exemple.fr", "bob@exemple.fr", "cyril@exemple.fr", "dora@exemple.fr",
          "eve@exemple.fr"]


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)


def run(project: Project, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(project.config_path), *args])


def setup(project: Project, port: int) -> None:
    seed_corpus(project)
    project.write_config(site={"base_url": "https://cas.example.org/"}, channels=[
        {"type": "feed"}, {"type": "archive"}, smtp_channel(port, max_attempts=2)])
    with Ledger(project.config().database) as ledger:
        ledger.add_subscribers(PEOPLE)


def test_deliveries_then_retry_failed(project: Project) -> None:
    recorder = Recorder(
        rcpt_rules={"bob@exemple.fr": ["550 5.1.1 no such user"],
                    "eve@exemple.fr": ["451 4.3.0 try again later"]},
        data_rules={"dora@exemple.fr": ["554 5.6.0 message refused"]},
    )
    with smtp_server(recorder) as (server, port):
        setup(project, port)
        published = run(project, "publish-next")
        # Two failed for good (dora, eve); bob's bounce is an outcome, not a failure.
        assert published.exit_code == 2, published.output
        first = published.stdout.splitlines()[0]
        assert first.startswith("failed: published edition #1: "), first
        assert "smtp: 2 sent, 2 failed, 1 bounced" in first
        assert first.endswith("; 2 failed: syndicate deliveries 1")
        assert sorted(server.by_rcpt()) == ["ana@exemple.fr", "cyril@exemple.fr"]

        shown = run(project, "deliveries", "1")
        assert shown.exit_code == 0, shown.output
        lines = shown.output.splitlines()
        assert lines[0].startswith("edition #1 ") and "delivering" not in lines[0]
        assert lines[1].split() == ["channel", "sent", "failed", "bounced", "skipped",
                                    "pending"]
        table = {line.split()[0]: line.split()[1:] for line in lines[2:5]}
        assert table == {"archive": ["1", "0", "0", "0", "0"],
                         "feed": ["1", "0", "0", "0", "0"],
                         "smtp": ["2", "2", "1", "0", "0"]}
        bounces = lines.index("  bounces:")
        assert lines[bounces + 1] == "    smtp  bob@exemple.fr  550 5.1.1 no such user  (1 attempt)"
        assert lines.index("  failures:") < bounces
        assert "    smtp  eve@exemple.fr  451 4.3.0 try again later  (2 attempts)" in lines
        assert "    smtp  dora@exemple.fr  554 5.6.0 message refused  (1 attempt)" in lines

        # The server gets better for eve and dora; bob bounced (550 5.1.1) for good, and
        # a bounce is not retried.
        recorder.rcpt_rules.clear()
        recorder.data_rules.clear()
        retried = run(project, "retry-failed", "#1")
        assert retried.exit_code == 0, retried.output
        assert retried.stdout.startswith("complete: resumed edition #1: ")
        assert "retried: 2 failed deliveries of edition #1 back to pending" in retried.output
        # Only the failed ones went out again: nobody got a second copy.
        copies = server.by_rcpt()
        assert sorted(copies) == ["ana@exemple.fr", "cyril@exemple.fr", "dora@exemple.fr",
                                  "eve@exemple.fr"]
        assert all(len(c) == 1 for c in copies.values())

        data = json.loads(run(project, "deliveries", "1", "--json").output)
        assert data["status"] == "done"
        smtp = next(c for c in data["channels"] if c["channel"] == "smtp")
        assert smtp == {"channel": "smtp", "sent": 4, "failed": 0, "bounced": 1, "skipped": 0,
                        "pending": 0}
        assert data["failures"] == []
        assert [(b["recipient"], b["code"]) for b in data["bounces"]] == [("bob@exemple.fr", 550)]

        again = run(project, "retry-failed")
        assert again.exit_code == 0
        assert again.output == "no failed deliveries\n"  # the bounce stays a bounce
        assert len(server.messages) == 4

    with Ledger(project.config().database) as ledger:
        assert ledger.get_subscriber("bob@exemple.fr").status == "bounced"


def test_retry_failed_that_fails_again_and_unknown_edition(project: Project) -> None:
    recorder = Recorder(rcpt_rules={"eve@exemple.fr": ["452 4.2.2 mailbox full"]})
    with smtp_server(recorder) as (server, port):
        setup(project, port)
        assert run(project, "publish-next").exit_code == 2
        retried = run(project, "retry-failed", "1", "--channel", "smtp")
        assert retried.exit_code == 2
        assert retried.stdout.startswith("failed: resumed edition #1: ")
        assert "eve@exemple.fr" not in server.by_rcpt()
        assert len(server.messages) == len(PEOPLE) - 1  # the others were not sent again
        tries = [a for a in server.attempts if a[0] == "eve@exemple.fr"]
        assert len(tries) == 4  # two attempts (max_attempts) at publish, two at the retry
        nothing = run(project, "retry-failed", "1", "--channel", "feed")
        assert nothing.exit_code == 0
        assert "no failed deliveries of edition #1 on channel feed" in nothing.output
    missing = run(project, "deliveries", "7")
    assert missing.exit_code == 1
    assert "no edition '7'" in missing.output
    by_slug = run(project, "deliveries")
    assert by_slug.exit_code == 0 and by_slug.output.startswith("edition #1 ")


def test_deliveries_before_anything_is_published(project: Project) -> None:
    setup(project, 25)
    shown = run(project, "deliveries")
    assert shown.exit_code == 0
    assert "no edition published yet" in shown.output
    assert run(project, "retry-failed").output.strip() == "no failed deliveries"


def test_retry_failed_refuses_while_another_publisher_runs(project: Project) -> None:
    recorder = Recorder(rcpt_rules={"eve@exemple.fr": ["550 5.7.1 refused"]})
    with smtp_server(recorder) as (server, port):
        setup(project, port)
        assert run(project, "publish-next").exit_code == 2
        with Ledger(project.config().database) as ledger, ledger.publisher_lock("run"):
            refused = run(project, "retry-failed")
            assert refused.exit_code == 1
            assert "locked by pid" in refused.output
            assert ledger.delivery_counts(1)["smtp"]["failed"] == 1  # nothing was reset
        assert len(server.messages) == len(PEOPLE) - 1
