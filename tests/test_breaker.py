"""The circuit breaker (issue 11): bounces reported while an edition is being sent pause
its sending above ``[bounces] pause_bounce_rate`` / ``pause_complaint_rate`` (once
``pause_min_sent`` messages are sent); only ``syndicate edition resume`` lifts it.

End to end: a real SMTP server (aiosmtpd on 127.0.0.1) whose handler, after its 12th
message, delivers DSNs for the first recipients into the bounce Maildir and has them
processed (as ``run``'s poller does) while the send goes on; the publisher's smtp
channel pauses, ``status`` / ``deliveries`` / ``resume`` show and keep the pause, and
``syndicate edition resume`` (a real subprocess) sends the rest: every subscriber gets
exactly one message, nothing is lost. ``syndicate worker`` skips a paused edition."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _smtp_support import Recorder, seed_corpus, smtp_channel, smtp_server
from conftest import Clock, Project
from test_bounces import DOMAIN, SECRET, dsn, maildir

from syndicate.bounces import process_maildir
from syndicate.channels._breaker import pause_reason, verdict
from syndicate.config import BouncesConfig
from syndicate.ledger import Ledger
from syndicate.pipeline import publish, resume

PEOPLE = [f"lecteur{n:02d}@exemple.fr" for n in range(60)]
BOUNCING = PEOPLE[:6]  # 6 hard bounces: 10 % of the edition, above 5 %


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)


def cli(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(project.config_path), *args],
        capture_output=True, text=True, timeout=180,
        env={**os.environ, "SYNDICATE_SECRET": SECRET})


class BouncingServer(Recorder):
    """Accepts every message; on the ``after``-th, the first recipients' DSNs arrive in
    the bounce Maildir and are processed at once (a bounce pass during the send)."""

    def __init__(self, project: Project, after: int) -> None:
        super().__init__()
        self.project, self.after, self.fired = project, after, False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        if len(self.messages) >= self.after and not self.fired:
            self.fired = True
            senders = {m.rcpt: m.mail_from for m in self.messages}
            box = maildir(self.project)
            for n, who in enumerate(BOUNCING):
                box.add(dsn(senders[who], who, report_id=f"<b{n}@mx.test>"))
            config = self.project.config()
            with Ledger(config.database) as ledger:
                summary = process_maildir(ledger, config.bounces, Path(box._path),
                                          SECRET.encode())
            assert summary.counts["hard"] == len(BOUNCING), summary.line()
        return answer


def setup(project: Project, port: int, **more: Any) -> Any:
    seed_corpus(project)
    project.write_config(
        site={"base_url": "https://cas.example.org/"},
        channels=[smtp_channel(port, concurrency=1)],
        bounces={"domain": DOMAIN, "maildir": "../mail/bounces", "pause_min_sent": 10},
        **more)
    config = project.config()
    with Ledger(config.database) as ledger:
        for address in PEOPLE:
            ledger.add_subscriber(address)
    return config


def test_verdict_needs_a_sample_and_judges_since_the_last_resume() -> None:
    settings = BouncesConfig.model_validate({})  # 5 %, 0.1 %, at least 100 sent
    assert verdict({"sent": 3, "bounced": 1}, {}, settings) is None  # 1 in 3: no sample
    assert verdict({"sent": 100, "bounced": 5}, {}, settings) is None  # 5 %: not above
    why = verdict({"sent": 100, "bounced": 6}, {}, settings)
    assert why is not None and why.startswith("bounce rate 6.0% (6 of 100 sent)")
    why = verdict({"sent": 1000, "complaint": 2}, {}, settings)
    assert why is not None and "complaint rate 0.20%" in why
    # Resumed at 100 sent / 6 bounced: judged on what came after.
    base = {"sent": 100, "bounced": 6}
    assert verdict({"sent": 150, "bounced": 6}, base, settings) is None
    assert verdict({"sent": 200, "bounced": 7}, base, settings) is None
    assert verdict({"sent": 200, "bounced": 12}, base, settings) is not None


def test_bounces_during_the_send_pause_it_and_edition_resume_finishes_it(
        project: Project, clock: Clock) -> None:
    handler = BouncingServer(project, after=12)
    with smtp_server(handler) as (server, port):
        config = setup(project, port)
        result = publish(config, now=clock)
    assert handler.fired
    assert not result.complete
    first = [m.rcpt for m in server.messages]
    # The breaker looks every 50 rows: it trips at the 50th, none taken after it.
    assert len(first) == 50, len(first)
    (report,) = [r for r in result.reports if r.channel == "smtp"]
    assert report.pending == 10 and report.detail.startswith("paused: bounce rate"), report
    edition = result.edition
    with Ledger(config.database) as ledger:
        why = pause_reason(ledger, edition.id)
        assert why.startswith("bounce rate 12.0% (6 of 50 sent)"), why
        assert ledger.get_edition(edition.id).status == "delivering"  # type: ignore[union-attr]
    # status and deliveries say so; `syndicate resume` keeps it paused (sends nothing).
    status = cli(project, "status")
    assert "[PAUSED: bounce rate 12.0%" in status.stdout, status.stdout + status.stderr
    shown = cli(project, "deliveries", str(edition.number))
    assert (f"PAUSED: {why}; after looking: syndicate edition resume {edition.slug}"
            in shown.stdout), shown.stdout
    with smtp_server() as (idle, port):
        project.write_config(channels=[smtp_channel(port, concurrency=1)])
        again = resume(project.config(), now=clock)
    assert idle.messages == [] and not again[0].complete
    # The operator looks, then resumes: the rest goes out, each subscriber once.
    with smtp_server() as (rest, port):
        project.write_config(channels=[smtp_channel(port, concurrency=1)])
        done = cli(project, "edition", "resume", edition.slug)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"edition #{edition.number} {edition.slug} resumed (it was "
                                  "paused: bounce rate 12.0%"), done.stdout
    second = [m.rcpt for m in rest.messages]
    assert len(second) == 10
    assert sorted(first + second) == sorted(PEOPLE)  # nobody twice, nobody lost
    with Ledger(config.database) as ledger:
        assert pause_reason(ledger, edition.id) == ""
        assert ledger.get_edition(edition.id).status == "done"  # type: ignore[union-attr]
    assert cli(project, "edition", "resume", edition.slug).stdout.strip().endswith(
        "is not paused")


def test_a_worker_skips_a_paused_edition(project: Project, clock: Clock) -> None:
    handler = BouncingServer(project, after=12)
    with smtp_server(handler) as (server, port):
        config = setup(project, port, delivery={"senders": "workers", "batch": 5})
        result = publish(config, now=clock)  # hands the rows to the workers
        assert server.messages == []
        work = cli(project, "worker", "--once")
    assert work.returncode == 0, work.stderr
    assert handler.fired
    sent = len(server.messages)
    # Paused at the 50th row; the rest of its claimed batch is given back, and the
    # next pass skips the edition with one line instead of waiting for it.
    assert sent == 50, (sent, work.stderr)
    assert "edition #1 paused: bounce rate" in work.stderr
    assert work.stderr.count("is paused (bounce rate") == 1, work.stderr
    with Ledger(config.database) as ledger:
        counts = ledger.delivery_counts(result.edition.id)["smtp"]
    assert counts["pending"] == 10 and counts["sent"] == 50
