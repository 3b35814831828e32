"""Every public URL in one place, so feeds, emails, pages and the web app agree."""

from __future__ import annotations

from ..text import company_slug

FEED_FILES = {"rss": "feed.xml", "atom": "atom.xml", "json": "feed.json"}


def edition_url(base_url: str, slug: str) -> str:
    """Canonical URL of a case study: ``<base_url><slug>/`` (file ``public/<slug>/index.html``)."""
    return f"{base_url}{slug}/"


def company_url(base_url: str, company: str) -> str:
    """Page listing the editions featuring ``company``: ``public/entreprises/<slug>/index.html``."""
    return f"{base_url}entreprises/{company_slug(company)}/"


def archive_page_url(base_url: str, page: int) -> str:
    """A numbered page of the archive: ``<base_url>page/<n>/``; ``page/1/`` holds the oldest
    editions, so a page's address and content stay put as editions are added."""
    return f"{base_url}page/{page}/"


def year_url(base_url: str, year: int) -> str:
    """The editions of one year: ``<base_url><year>/`` (``public/<year>/index.html``)."""
    return f"{base_url}{year}/"


def asset_url(base_url: str, value: str) -> str:
    """A configured image (wordmark, favicon): an absolute URL as written; a path
    (``logo.svg``, ``/logo.svg``) under ``base_url``."""
    return value if value.startswith(("http://", "https://")) else base_url + value.lstrip("/")


def feed_url(base_url: str, kind: str) -> str:
    """URL of a feed file; ``kind`` is ``rss``, ``atom`` or ``json``."""
    return f"{base_url}{FEED_FILES[kind]}"


def unsubscribe_url(base_url: str, token: str) -> str:
    """One-click unsubscribe endpoint (``syndicate serve``), RFC 8058 POST target."""
    return f"{base_url}unsubscribe/{token}"


def click_url(base_url: str, token: str) -> str:
    """A counted link of an email (``[analytics] clicks``): ``syndicate serve`` redirects
    it to the edition's link the signed token names."""
    return f"{base_url}r/{token}"


def open_url(base_url: str, token: str) -> str:
    """The open pixel of an email (``[analytics] open_pixel``)."""
    return f"{base_url}o/{token}"
