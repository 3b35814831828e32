"""The links of a rendered email, for click counting (``[analytics]``, docs/admin.md).

:func:`tracked_links` lists the links of an edition's email that clicks are counted on:
every ``http(s)`` link of the HTML part (``href``) and of the text part, in order of first
appearance, once each, except the unsubscribe and confirmation machinery (the
per-subscriber unsubscribe placeholder, and any link to ``<base_url>unsubscribe/``,
``confirm/`` or ``subscribe``). The list is stored with the edition (the artefact
``tracked-links.json``) when it is first rendered: a redirect only ever goes to one of
them. :func:`rewrite_links` replaces each by the URL a caller gives for its index;
the same email always gives the same list, so index ``i`` means the same link in the
stored list and in every message.

Pure string work on the rendered email (no MJML again): what the renderer wrote is
regular (``href="…"`` with HTML escaping; bare URLs on their own in the text part).
"""

from __future__ import annotations

import html as html_lib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import replace

from .email import RenderedEmail

TRACKED_LINKS_ARTEFACT = "tracked-links.json"
_HREF = re.compile(r'(\bhref=")([^"]*)(")', re.IGNORECASE)
_TEXT_URL = re.compile(r"https?://[^\s<>\"]+")
#: Paths under base_url that belong to the subscription machinery: never rewritten.
_MACHINERY = ("unsubscribe/", "confirm/", "subscribe", "r/", "o/")


def _trackable(url: str, email: RenderedEmail, base_url: str) -> bool:
    if not url.lower().startswith(("http://", "https://")):
        return False
    for placeholder in (email.unsubscribe_placeholder, email.name_placeholder):
        if placeholder and placeholder in url:
            return False
    return not (url.startswith(base_url) and url[len(base_url):].startswith(_MACHINERY))


def tracked_links(email: RenderedEmail, base_url: str) -> list[str]:
    """The links clicks are counted on, in order, once each (see the module doc)."""
    found: dict[str, None] = {}
    for match in _HREF.finditer(email.html):
        url = html_lib.unescape(match.group(2))
        if _trackable(url, email, base_url):
            found.setdefault(url, None)
    for match in _TEXT_URL.finditer(email.text):
        url = match.group(0)
        if _trackable(url, email, base_url):
            found.setdefault(url, None)
    return list(found)


def rewrite_links(email: RenderedEmail, links: Sequence[str],
                  url_for: Callable[[int], str]) -> RenderedEmail:
    """``email`` with each link of ``links`` replaced by ``url_for(index)`` in both parts
    (links not in the list, the unsubscribe placeholder among them, stay as they are)."""
    index = {url: i for i, url in enumerate(links)}
    made: dict[int, str] = {}

    def target(url: str) -> str | None:
        i = index.get(url)
        if i is None:
            return None
        if i not in made:
            made[i] = url_for(i)
        return made[i]

    def in_html(match: re.Match[str]) -> str:
        new = target(html_lib.unescape(match.group(2)))
        if new is None:
            return match.group(0)
        return f"{match.group(1)}{html_lib.escape(new, quote=True)}{match.group(3)}"

    def in_text(match: re.Match[str]) -> str:
        new = target(match.group(0))
        return match.group(0) if new is None else new

    return replace(email, html=_HREF.sub(in_html, email.html),
                   text=_TEXT_URL.sub(in_text, email.text))


def add_pixel(email: RenderedEmail, pixel_url: str) -> RenderedEmail:
    """``email`` with a 1x1 image loading ``pixel_url`` at the end of the HTML body."""
    tag = (f'<img src="{html_lib.escape(pixel_url, quote=True)}" width="1" height="1" '
           'alt="" style="display:block;border:0;width:1px;height:1px;">')
    body_end = email.html.lower().rfind("</body>")
    html = (email.html + tag if body_end < 0
            else email.html[:body_end] + tag + email.html[body_end:])
    return replace(email, html=html)


def links_json(links: Sequence[str]) -> str:
    """The stored form of an edition's tracked links (the artefact)."""
    return json.dumps({"format": 1, "links": list(links)}, ensure_ascii=False)


def links_from_json(raw: str) -> list[str]:
    """The tracked links of an edition's artefact (empty when unreadable)."""
    try:
        data = json.loads(raw)
        links = data["links"] if isinstance(data, dict) else None
    except (ValueError, KeyError):
        return []
    return [str(u) for u in links] if isinstance(links, list) else []


__all__ = ["TRACKED_LINKS_ARTEFACT", "add_pixel", "links_from_json", "links_json",
           "rewrite_links", "tracked_links"]
