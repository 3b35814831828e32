"""Golden output of a whole run (pelican-style): a fixed clock, two editions, compare files.

Every file the default channels write (feeds, archive pages, the outbox messages' headers
and parts) is compared with ``tests/golden/``. After an intended change of output, run
``SYNDICATE_REGENERATE_GOLDEN=1 python -m pytest tests/test_golden.py`` and review the diff.
"""

from __future__ import annotations

import email
import mailbox
import os
import shutil
from email import policy
from pathlib import Path

import pytest
from conftest import Clock, Project

from syndicate.pipeline import publish

GOLDEN = Path(__file__).parent / "golden"
HEADERS = (
    "From", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe",
    "List-Unsubscribe-Post", "Feedback-ID", "Content-Language", "MIME-Version",
)


def _outbox_files(maildir: Path) -> dict[str, str]:
    """Each message as readable text: chosen headers, then each part decoded (no boundaries)."""
    out = {}
    for key, raw in mailbox.Maildir(maildir, factory=None, create=False).items():
        message = email.message_from_bytes(raw.as_bytes(), policy=policy.default)
        lines = [f"{name}: {message[name]}" for name in HEADERS if message[name] is not None]
        for part in message.walk():
            if part.is_multipart():
                lines.append(f"-- {part.get_content_type()}")
                continue
            lines += [f"-- {part.get_content_type()}", part.get_content()]
        out[f"outbox/{message['Message-ID'].strip('<>')}.txt"] = "\n".join(lines)
        del key
    return out


def _run(project: Project, clock: Clock) -> dict[str, str]:
    config = project.config()
    publish(config, now=clock)
    clock.advance(days=7)
    publish(config, now=clock)
    files = {
        f"public/{path.relative_to(project.public)}": path.read_text(encoding="utf-8")
        for path in sorted(project.public.rglob("*"))
        if path.is_file()
    }
    files.update(_outbox_files(project.var / "outbox"))
    return files


def test_whole_run_matches_golden_output(
    project: Project, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET", "golden-test-secret")  # deterministic tokens
    files = _run(project, clock)
    assert any(name.startswith("outbox/") for name in files)
    if os.environ.get("SYNDICATE_REGENERATE_GOLDEN"):
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for name, text in files.items():
            target = GOLDEN / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    expected = {
        str(path.relative_to(GOLDEN)): path.read_text(encoding="utf-8")
        for path in sorted(GOLDEN.rglob("*"))
        if path.is_file()
    }
    assert sorted(files) == sorted(expected), "set of written files changed"
    for name, text in files.items():
        assert text == expected[name], f"{name} differs from tests/golden/{name}"
