"""The feeds: RSS 2.0 (``feed.xml``) and Atom 1.0 (``atom.xml``) with feedgen, JSON Feed 1.1
(``feed.json``) with the stdlib.

Everything here is pure over :class:`EditionView` records and the config, and deterministic:
the feed-level "updated" date is the newest edition's date, never "now", so the same history
gives byte-identical files (golden tests, and no needless change for HTTP caches).

feedgen 1.0.0 has three bugs that would produce wrong feeds; each workaround is marked
``feedgen bug N`` below and checked against feedgen's raw output by ``tests/test_feeds.py``:

1. The RSS channel ``<link>`` is the href of the *last* feed-level ``link()`` added, whatever its
   rel, so adding the self link last would make the channel link point at the feed itself.
2. Atom entry links lose their ``rel`` and ``type`` attributes (``atom_entry`` reads them from
   the new XML element instead of the link data).
3. ``content(type='CDATA')`` writes ``<content type="CDATA">`` in Atom, which is not an Atom
   content type (text, html, xhtml or a media type), so readers do not render it as HTML.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import markupsafe
from feedgen.entry import FeedEntry
from feedgen.ext.base import BaseEntryExtension
from feedgen.feed import FeedGenerator

from ..config import Config
from ..errors import RenderError
from ..fs import write_atomic_bytes
from ..typography import french
from .model import EditionView
from .templates import render_template
from .urls import FEED_FILES, feed_url

ITEM_TEMPLATE = "feed_item.html.j2"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
GENERATOR = "syndicate"
# An empty feed (nothing published yet) still needs an "updated" date; a fixed one keeps
# the output deterministic.
EMPTY_FEED_DATE = datetime(1970, 1, 1, tzinfo=UTC)

_MEDIA_TYPES = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
}


# --------------------------------------------------------------------------- item HTML


def render_item_html(view: EditionView, config: Config) -> str:
    """The full HTML of one edition as feed readers show it (the ``feed_item.html.j2``
    template, from the one environment of :mod:`syndicate.render.templates`).

    Every piece of corpus text is HTML-escaped by the template's autoescape.
    """
    html = render_template(
        config, ITEM_TEMPLATE,
        view=view,
        case=view.case,
        related=view.related,
        companies=view.companies,
        site=config.site,
    )
    return html.strip()


def _link_only_html(view: EditionView) -> str:
    """The item of an edition whose text the ledger lacks (see ``EditionView.text_missing``):
    a link to its archive page, which is still there."""
    return (f'<p><a href="{markupsafe.escape(view.url)}">'
            f'{markupsafe.escape(french(view.title))}</a></p>')


# --------------------------------------------------------------------------- RSS and Atom


class _AtomLinkAttributes(BaseEntryExtension):
    """feedgen bug 2: put back the attributes feedgen drops from Atom entry links.

    Registered on each entry (Atom only) through feedgen's own extension hook, which runs
    right after the entry element is built, so no re-parsing of the output is needed.
    """

    def __init__(self) -> None:
        self.links: list[dict[str, str]] = []

    def extend_atom(self, entry: Any) -> Any:
        wanted = {link["href"]: link for link in self.links}
        for element in entry.findall("link"):
            data = wanted.get(element.get("href"), {})
            for key in ("rel", "type", "hreflang", "title", "length"):
                if data.get(key):
                    element.set(key, data[key])
        return entry


def _entry_links(entry: FeedEntry, links: list[dict[str, str]]) -> None:
    entry.link(links)
    entry.register_extension("syndicate_links", _AtomLinkAttributes, atom=True, rss=False)
    entry.syndicate_links.links = links


def _categories(view: EditionView, base_url: str) -> list[dict[str, str]]:
    """Themes, then companies (scheme: the companies' pages, so readers can tell them apart)."""
    cats = [{"term": theme} for theme in view.case.themes]
    cats += [
        {"term": company, "scheme": f"{base_url}entreprises/"} for company in view.case.companies
    ]
    return cats


def _summary_html(view: EditionView) -> str:
    return str(markupsafe.escape(french(view.case.lede)))


def _feed_date(views: Sequence[EditionView]) -> datetime:
    return max((view.published_at for view in views), default=EMPTY_FEED_DATE)


def _generator(
    views: Sequence[EditionView], config: Config, html: Mapping[str, str]
) -> FeedGenerator:
    site = config.site
    base = site.base_url
    fg = FeedGenerator()
    fg.id(base)
    fg.title(site.title)
    fg.description(site.description)  # RSS <description>, Atom <subtitle>
    fg.language(site.language)  # RSS <language>, Atom xml:lang
    fg.author(name=site.author, email=site.email)
    fg.generator(GENERATOR)
    updated = _feed_date(views)
    fg.updated(updated)  # Atom <updated> and RSS <lastBuildDate>
    fg.pubDate(updated)
    for view in views:
        # feedgen quirk: add_entry() prepends by default, which would reverse the order;
        # views come newest first and must stay so.
        entry = fg.add_entry(order="append")
        entry.guid(view.url, permalink=True)  # also the Atom <id>
        entry.title(french(view.title))  # French no-break spaces, as on every page
        _entry_links(entry, [{"href": view.url, "rel": "alternate", "type": "text/html"}])
        # feedgen bug 3: type='html' (not 'CDATA'): Atom gets <content type="html"> with the
        # HTML escaped, and RSS <content:encoded> gets the same escaped HTML (no CDATA
        # section), which the content module allows and every reader decodes.
        entry.content(html[view.url], type="html")
        # The summary is the lede, HTML-escaped and typed html: RSS <description> is HTML by
        # convention, so a lede mentioning `<b>` must be escaped there; Atom says so explicitly.
        entry.summary(_summary_html(view), type="html")  # Atom <summary>, RSS <description>
        entry.author(name=site.author, email=site.email)
        entry.published(view.published_at)  # Atom <published>, RSS <pubDate>
        entry.updated(view.published_at)  # never "now": deterministic output
        entry.category(_categories(view, base))
    return fg


def _set_feed_links(fg: FeedGenerator, kind: str, base_url: str) -> None:
    # feedgen bug 1: the RSS channel <link> is the *last* link added, so the self link goes
    # first and the site (alternate) link last.
    fg.link(
        [
            {"href": feed_url(base_url, kind), "rel": "self", "type": _MEDIA_TYPES[kind]},
            {"href": base_url, "rel": "alternate", "type": "text/html"},
        ],
        replace=True,
    )


# --------------------------------------------------------------------------- JSON Feed


def _json_feed(views: Sequence[EditionView], config: Config, html: Mapping[str, str]) -> bytes:
    site = config.site
    authors = [{"name": site.author, "url": f"mailto:{site.email}"}]
    items = []
    for view in views:
        items.append({
            "id": view.url,
            "url": view.url,
            "title": french(view.title),
            "content_html": html[view.url],
            "summary": french(view.case.lede),
            "date_published": view.published_at.isoformat(),
            "tags": [*view.case.themes, *view.case.companies],
            "language": site.language,
            "authors": authors,
        })
    feed = {
        "version": JSON_FEED_VERSION,
        "title": site.title,
        "home_page_url": site.base_url,
        "feed_url": feed_url(site.base_url, "json"),
        "description": site.description,
        "language": site.language,
        "authors": authors,
        "items": items,
    }
    # Not indented: json's C encoder only runs without indent (3x faster on 20 full items).
    return (json.dumps(feed, ensure_ascii=False) + "\n").encode("utf-8")


# --------------------------------------------------------------------------- public API


def render_feeds(views: Sequence[EditionView], config: Config) -> dict[str, bytes]:
    """``{"feed.xml": RSS, "atom.xml": Atom, "feed.json": JSON Feed}`` for the first
    ``config.publish.feed_size`` editions of ``views``, which come newest first (the
    pipeline's ``job.history``); their order is kept."""
    views = list(views[: config.publish.feed_size])
    for view in views:
        if view.published_at.tzinfo is None:
            raise RenderError(f"edition {view.slug}: publication date has no time zone")
    html = {view.url: _link_only_html(view) if view.text_missing
            else render_item_html(view, config) for view in views}
    base = config.site.base_url
    fg = _generator(views, config, html)
    _set_feed_links(fg, "rss", base)
    rss = fg.rss_str(pretty=True, encoding="UTF-8")
    _set_feed_links(fg, "atom", base)
    atom = fg.atom_str(pretty=True, encoding="UTF-8")
    return {
        FEED_FILES["rss"]: rss,
        FEED_FILES["atom"]: atom,
        FEED_FILES["json"]: _json_feed(views, config, html),
    }


def write_feeds(public_dir: Path, files: Mapping[str, bytes]) -> list[Path]:
    """Write each file atomically (temp file + ``os.replace``): a reader (web server, feed
    reader) sees the old file or the new one, never half of one."""
    written = []
    for name, data in files.items():
        path = public_dir / name
        write_atomic_bytes(path, data)
        written.append(path)
    return written


__all__ = ["ITEM_TEMPLATE", "render_feeds", "render_item_html", "write_feeds"]
