"""A stateless web tier: two ``syndicate serve`` processes over one PostgreSQL ledger
(real subprocesses, a real cluster, a real SMTP server on 127.0.0.1), sending by
``syndicate worker`` processes. An unsubscribe posted to one instance is honoured by
the next edition whichever worker sends it; a subscribe on one instance and its
confirmation on the other make an active subscriber; the subscribe form's limits are
counted across both. The timeouts are "did not hang" bounds.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from _smtp_support import SECRET, Received, Recorder, seed_corpus, smtp_channel, smtp_server
from _web_support import free_port
from conftest import ROOT, Project
from test_worker import HANG, _cli

from syndicate.ledger import open_ledger
from syndicate.web.formguard import form_token

pytestmark = pytest.mark.slow


def _serve(project: Project, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SYNDICATE_SECRET": SECRET, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("SYNDICATE_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "syndicate", "--config", str(project.config_path), "serve",
         "--port", str(port), "--threads", "2"],
        env=env, cwd=project.root, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    deadline = time.monotonic() + HANG
    while True:
        try:
            requests.get(f"http://127.0.0.1:{port}/subscribe", timeout=2)
            return proc
        except requests.ConnectionError:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)


def _on(url: str, port: int) -> str:
    """The same path on the instance listening on ``port`` (as a balancer would pick)."""
    return re.sub(r"^http://127\.0\.0\.1:\d+/", f"http://127.0.0.1:{port}/", url)


def _edition(project: Project, tmp_path: Path, number: int) -> None:
    """``publish-next`` hands edition ``number`` to the workers."""
    publisher = _cli(project, tmp_path, "publish-next")
    out, err = publisher.communicate(timeout=HANG)
    assert publisher.returncode == 0, err.decode()
    assert out.decode().startswith(f"handed: published edition #{number}"), out.decode()


def _send(project: Project, tmp_path: Path, tag: str) -> None:
    logs = [tmp_path / f"{tag}-worker{i}.log" for i in range(2)]
    procs = [_cli(project, tmp_path, "worker", "--once", log=log) for log in logs]
    for proc, log in zip(procs, logs, strict=True):
        assert proc.wait(HANG) == 0, log.read_text()


def _of(recorder: Recorder, number: int) -> list[Received]:
    return [m for m in recorder.messages if m.message_id.startswith(f"<edition-{number}.")]


def _wait_for_mail(recorder: Recorder, to: str) -> Received:
    deadline = time.monotonic() + HANG
    while True:
        for message in recorder.messages:
            if message.rcpt == to:
                return message
        assert time.monotonic() < deadline, f"no mail to {to}"
        time.sleep(0.1)


@pytest.fixture
def two_instances(project: Project, pg_url: str, tmp_path: Path
                  ) -> Iterator[tuple[Recorder, int, int]]:
    recorder = Recorder()
    a, b = free_port(), free_port()
    with smtp_server(recorder) as (_server, port):
        seed_corpus(project)
        project.write_config(
            site={"base_url": f"http://127.0.0.1:{a}/"}, storage={"database": pg_url},
            publish={"email_content": "summary"},
            delivery={"senders": "workers", "batch": 5, "lease": 4, "poll": 1},
            subscribe={"limit_per_ip": "100/hour", "limit_per_mailbox": "2/hour"},
            channels=[smtp_channel(port, concurrency=2, timeout=10.0)])
        procs = [_serve(project, a, tmp_path / "serve-a.log"),
                 _serve(project, b, tmp_path / "serve-b.log")]
        try:
            yield recorder, a, b
        finally:
            for proc in procs:
                proc.terminate()
            codes = [proc.wait(30) for proc in procs]
        assert codes == [0, 0], [(tmp_path / f"serve-{x}.log").read_text() for x in "ab"]


def test_an_unsubscribe_on_either_instance_is_honoured_by_the_next_edition(
        project: Project, pg_url: str, tmp_path: Path,
        two_instances: tuple[Recorder, int, int]) -> None:
    recorder, a, b = two_instances
    addresses = [f"abonne{i:02d}@exemple.fr" for i in range(20)]
    with open_ledger(pg_url) as ledger:
        ledger.add_subscribers(addresses)
    _edition(project, tmp_path, 1)
    _send(project, tmp_path, "first")
    first = {m.rcpt: m for m in _of(recorder, 1)}
    assert sorted(first) == addresses
    early, late = addresses[3], addresses[7]
    links = {who: first[who].parse()["List-Unsubscribe"] for who in (early, late)}
    urls = {who: re.search(r"<(http[^>]+/unsubscribe/[^>]+)>", link).group(1)  # type: ignore[union-attr]
            for who, link in links.items()}
    # One before the next edition is published (on A), one after it was handed to the
    # workers and before any sends (on B): both must be left out.
    one_click = {"List-Unsubscribe": "One-Click"}
    assert requests.post(_on(urls[early], a), data=one_click, timeout=10).status_code == 200
    _edition(project, tmp_path, 2)
    assert requests.post(_on(urls[late], b), data=one_click, timeout=10).status_code == 200
    _send(project, tmp_path, "second")
    second = sorted(m.rcpt for m in _of(recorder, 2))
    assert second == [x for x in addresses if x not in (early, late)]
    with open_ledger(pg_url) as ledger:
        assert ledger.get_subscriber(early).status == "unsubscribed"  # type: ignore[union-attr]
        assert ledger.get_subscriber(late).status == "unsubscribed"  # type: ignore[union-attr]


def test_subscribe_on_one_instance_confirm_on_the_other_limits_shared(
        project: Project, pg_url: str, tmp_path: Path,
        two_instances: tuple[Recorder, int, int]) -> None:
    recorder, a, b = two_instances
    secret = SECRET.encode()

    def subscribe(port: int, address: str) -> None:
        issued = datetime.now(UTC).timestamp() - 10  # a form served 10 s ago: a person
        response = requests.post(f"http://127.0.0.1:{port}/subscribe", timeout=10,
                                 data={"email": address,
                                       "form_token": form_token(secret, issued)})
        assert response.status_code == 200, response.text

    subscribe(a, "nouvelle@exemple.fr")
    mail = _wait_for_mail(recorder, "nouvelle@exemple.fr")  # sent by A's or B's sender
    text = mail.parse().get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    (link,) = re.findall(r"http://\S+/confirm/\S+", text)
    assert requests.post(_on(link, b), timeout=10).status_code == 200
    with open_ledger(pg_url) as ledger:
        assert ledger.get_subscriber("nouvelle@exemple.fr").status == "active"  # type: ignore[union-attr]
    # limit_per_mailbox = 2/hour over both instances: A, B, A, B -> the last two refused
    # (each instance alone would have seen only two).
    for port in (a, b, a, b):
        subscribe(port, "limitee@exemple.fr")
    logs = (tmp_path / "serve-a.log").read_text() + (tmp_path / "serve-b.log").read_text()
    assert len(re.findall(r"subscribe: limit per \S+ reached", logs)) == 2, logs
