"""The webhook payloads, one pure function per format: ``(view, config) -> JSON object``.

- ``json``: the documented payload (``docs/webhooks.md``, Standard Webhooks shape);
- ``slack``: an incoming-webhook message in Block Kit;
- ``discord``: a webhook message with one embed;
- ``mastodon``: a public status.

Each builder keeps within its platform's documented limits, cutting text at a
word and dropping whole links rather than cutting one.
:mod:`.webhook` serialises, signs and sends what these return.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Config
    from ..render.model import EditionView

EVENT_TYPE = "edition.published"
MASTODON_LIMIT = 500
MASTODON_URL_WEIGHT = 23  # Mastodon counts every link as 23 characters


# --------------------------------------------------------------------------- text helpers


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, at a word if one is near, with "…"."""
    text = text.strip()
    if len(text) <= limit:
        return text
    if limit <= 1:
        return "…"[:limit]
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,;:.–—-") + "…"


def _fit(text: str, limit: int, transform: Callable[[str], str]) -> str:
    """``transform(truncate(text, n))`` for the largest ``n`` whose result fits ``limit``."""
    size = limit
    while size > 0:
        out = transform(truncate(text, size))
        if len(out) <= limit:
            return out
        size -= max(1, len(out) - limit)
    return ""


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _utc_z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------- payloads


def json_payload(view: EditionView, config: Config) -> dict[str, Any]:
    """The documented ``json`` payload (Standard Webhooks shape: type, timestamp, data)."""
    return {
        "type": EVENT_TYPE,
        "timestamp": _utc_z(view.published_at),
        "data": {
            "number": view.number,
            "slug": view.slug,
            "title": view.title,
            "url": view.url,
            "summary": view.case.lede,
            "published_at": _iso(view.published_at),
            "companies": [
                {
                    "name": mention.company,
                    "url": mention.url,
                    "earlier": [
                        {"slug": link.slug, "title": link.title, "url": link.url}
                        for link in mention.earlier
                    ],
                }
                for mention in view.companies
            ],
            "related": [
                {"slug": link.slug, "title": link.title, "url": link.url} for link in view.related
            ],
            "themes": list(view.case.themes),
            "site": {
                "title": config.site.title,
                "url": config.site.base_url,
                "language": config.site.language,
            },
        },
    }


def _slack_escape(text: str) -> str:
    # Slack mrkdwn: only &, < and > are control characters; "|" splits <url|label>.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_link(url: str, label: str) -> str:
    return f"<{url}|{_slack_escape(label).replace('|', '¦')}>"


def slack_payload(view: EditionView, config: Config) -> dict[str, Any]:
    """Slack incoming webhook, Block Kit: header, lede, companies, buttons, related links.

    Limits (api.slack.com/reference/block-kit): header 150, section/context text 3000,
    button label 75, at most 50 blocks.
    """
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": truncate(view.title, 150),
                                    "emoji": False}},
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": _fit(view.case.lede, 3000, _slack_escape)}},
    ]
    if view.companies:
        links = ", ".join(_slack_link(m.url, m.company) for m in view.companies)
        label = "Entreprise" if len(view.companies) == 1 else "Entreprises"
        text = f"{label}\u00a0: {links}"
        if len(text) > 3000:
            text = f"{label}\u00a0: " + _slack_escape(", ".join(m.company for m in view.companies))
            text = truncate(text, 3000)
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": text}]})
    blocks.append({
        "type": "actions",
        "elements": [{
            "type": "button",
            "text": {"type": "plain_text", "text": "Lire l’étude de cas"},
            "url": view.url,
            "style": "primary",
            "action_id": "read",
        }],
    })
    if view.related:
        head = "*À lire aussi*\n"
        lines = _join_fitting([f"• {_slack_link(link.url, link.title)}" for link in view.related],
                              "\n", 3000 - len(head))
        if lines:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": head + lines}})
    fallback = f"{view.title} – {view.url}"
    return {"text": truncate(fallback, 3000), "blocks": blocks, "unfurl_links": False}


def _discord_escape(text: str) -> str:
    return re.sub(r"([\\*_~`|>\[\]()])", r"\\\1", text)


def _join_fitting(items: list[str], sep: str, limit: int) -> str:
    """Whole items only (a half link is broken), as many as fit ``limit``."""
    out: list[str] = []
    size = 0
    for item in items:
        extra = len(item) + (len(sep) if out else 0)
        if size + extra > limit:
            break
        out.append(item)
        size += extra
    return sep.join(out)


DISCORD_TOTAL = 6000


def discord_payload(view: EditionView, config: Config) -> dict[str, Any]:
    """Discord webhook with one embed; limits from discord.com/developers/docs:
    title 256, description 4096, field name 256 / value 1024, footer 2048, all ≤ 6000."""
    fields: list[dict[str, Any]] = []
    if view.companies:
        value = _join_fitting(
            [f"[{_discord_escape(m.company)}]({m.url})" for m in view.companies], ", ", 1024
        ) or truncate(", ".join(m.company for m in view.companies), 1024)
        name = "Entreprise" if len(view.companies) == 1 else "Entreprises"
        fields.append({"name": name, "value": value, "inline": False})
    if view.related:
        value = _join_fitting(
            [f"• [{_discord_escape(link.title)}]({link.url})" for link in view.related], "\n", 1024
        )
        if value:
            fields.append({"name": "À lire aussi", "value": value, "inline": False})
    title = truncate(view.title, 256)
    footer = truncate(f"{config.site.title} · n°\u00a0{view.number}", 2048)
    used = len(title) + len(footer) + sum(len(f["name"]) + len(f["value"]) for f in fields)
    room = min(4096, DISCORD_TOTAL - used)
    description = _fit(view.case.lede, room, _discord_escape) if room > 0 else ""
    embed: dict[str, Any] = {
        "title": title,
        "url": view.url,
        "description": description,
        "timestamp": _utc_z(view.published_at),
        "color": 0x8F3414,
        "footer": {"text": footer},
    }
    if fields:
        embed["fields"] = fields
    # No @everyone / role pings whatever the text says.
    return {"embeds": [embed], "allowed_mentions": {"parse": []}}


def mastodon_status(view: EditionView, config: Config) -> str:
    """Title, lede and link within 500 characters, counting the link as Mastodon does
    (23) or as its real length if longer, so both measures stay within the limit."""
    url_weight = max(len(view.url), MASTODON_URL_WEIGHT)
    title = truncate(view.title, 200)
    fixed = len(title) + 2 + 2 + url_weight
    room = MASTODON_LIMIT - fixed
    lede = truncate(view.case.lede, room) if room >= 40 else ""
    parts = [title, lede, view.url] if lede else [title, view.url]
    return "\n\n".join(parts)


def mastodon_payload(view: EditionView, config: Config) -> dict[str, Any]:
    return {
        "status": mastodon_status(view, config),
        "language": config.site.language,
        "visibility": "public",
    }


PAYLOADS: dict[str, Callable[[EditionView, Config], dict[str, Any]]] = {
    "json": json_payload,
    "slack": slack_payload,
    "discord": discord_payload,
    "mastodon": mastodon_payload,
}
