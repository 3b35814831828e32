"""SpamAssassin's view of a real outbox message (Debian's ``spamassassin``, local rules only).

A whole ``publish`` writes the message to the Maildir outbox; ``spamassassin -L -t`` scores
it with its local rules (no network tests). The hidden preheader used to trip
HTML_FONT_LOW_CONTRAST (+0.7: ``mj-preview``'s text in the background colour); no rule
may score above zero now. Skips with the reason when SpamAssassin is not installed
(``.ci/run`` installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from conftest import Clock, Project

from syndicate.pipeline import publish

pytestmark = pytest.mark.slow

_RULE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s", re.MULTILINE)


def _score(raw: bytes) -> tuple[float, dict[str, float]]:
    tool = shutil.which("spamassassin")
    if tool is None:
        pytest.skip("spamassassin not installed (apt-get install -y spamassassin)")
    result = subprocess.run([tool, "-L", "-t"], input=raw, capture_output=True,
                            timeout=120, check=False)
    report = result.stdout.decode("utf-8", "replace")
    total = re.search(r"Content analysis details:\s+\((-?[\d.]+) points", report)
    assert total, report[-2000:]
    details = report.split("Content analysis details:", 1)[1]
    return float(total.group(1)), {name: float(pts) for pts, name in _RULE.findall(details)}


def test_an_outbox_message_scores_zero(project: Project, clock: Clock) -> None:
    publish(project.config(), now=clock)
    messages = sorted((project.var / "outbox" / "new").iterdir())
    assert messages
    total, rules = _score(messages[0].read_bytes())
    print(f"SpamAssassin: {total} points, rules {rules}")
    assert "HTML_FONT_LOW_CONTRAST" not in rules
    assert all(points <= 0 for points in rules.values()), rules
    assert total <= 0
