"""What counts as a reader's click or open (``[analytics]``; docs/admin.md, "Analytics").

Pure decisions, no I/O: the routes of :mod:`.app` ask :func:`verdict` whether a hit on a
counted link (or on the open pixel) is a reader's. Not counted:

- a ``HEAD`` request (link checkers and mail scanners ask for headers only);
- a hit within ``[analytics] scanner_window`` of the send (security gateways fetch
  every link as the message arrives, before anybody could have read it);
- a known scanner, link previewer or HTTP library (:data:`SCANNER_AGENTS`), and a
  request without a ``User-Agent`` at all.

The redirect is the same whatever the verdict: a person behind a scanner still arrives.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

#: User-Agent patterns of mail security scanners, link previewers and HTTP libraries
#: (case-insensitive). Small on purpose: the time window catches unnamed scanners.
SCANNER_AGENTS: tuple[tuple[str, str], ...] = (
    ("Barracuda", r"barracuda"),
    ("Proofpoint", r"proofpoint|\bppops\b"),
    ("Mimecast", r"mimecast"),
    ("Microsoft Safe Links / Office preview", r"safe ?links|bingpreview|ms-office|"
                                              r"microsoft office|microsoft-webdav"),
    ("Cisco IronPort / Sophos / Symantec / Trend Micro",
     r"ironport|sophos|symantec|trendmicro|trend micro|forcepoint|fortiguard"),
    ("Google link preview and crawlers", r"google web preview|google-safety|googlebot|"
                                         r"google-inspectiontool|google-pagerenderer"),
    ("chat link previews", r"slackbot|facebookexternalhit|twitterbot|whatsapp|telegrambot|"
                           r"discordbot|skypeuripreview|linkedinbot"),
    ("HTTP libraries and tools", r"^curl/|\bwget/|python-requests|python-urllib|aiohttp|"
                                 r"python-httpx|go-http-client|libwww-perl|okhttp|"
                                 r"apache-httpclient|\bjava/"),
    ("bots", r"\bbot\b|spider|crawler|headlesschrome"),
)
_SCANNER = re.compile("|".join(f"(?:{p})" for _, p in SCANNER_AGENTS), re.IGNORECASE)

Verdict = Literal["count", "head", "scanner", "too-soon"]


def is_scanner(user_agent: str | None) -> bool:
    """Whether ``user_agent`` is a known scanner, previewer or library (or missing)."""
    agent = (user_agent or "").strip()
    return not agent or _SCANNER.search(agent) is not None


def verdict(method: str, user_agent: str | None, *, sent: datetime | None, now: datetime,
            window: float) -> Verdict:
    """``"count"`` for a reader's hit, else why not (see the module doc). ``sent``: when
    the message was made (None: unknown, no window applies)."""
    if method != "GET":
        return "head"
    if is_scanner(user_agent):
        return "scanner"
    if sent is not None and window > 0 and (now - sent).total_seconds() < window:
        return "too-soon"
    return "count"


__all__ = ["SCANNER_AGENTS", "Verdict", "is_scanner", "verdict"]
