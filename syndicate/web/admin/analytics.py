"""Analytics (``GET /admin/analytics``): the clicks of the last editions, per link, and the
opens when the open pixel is on, labelled unreliable. Read only; also gives the overview
its small "clicks per edition" block (:func:`edition_clicks`). What is counted and what
is not: docs/admin.md, "Analytics"."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Response, url_for

from ...ledger import OPEN_LINK, Edition, LedgerPort
from ...render.links import TRACKED_LINKS_ARTEFACT, links_from_json
from .base import Console, PageSpec

#: How many editions the page lists (newest first).
EDITIONS = 20


@dataclass(frozen=True)
class LinkCount:
    url: str
    clicks: int


@dataclass(frozen=True)
class EditionClicks:
    """An edition's counts: each counted link (in the email's order), the total, the opens."""

    edition: Edition
    links: tuple[LinkCount, ...]
    clicks: int
    opens: int


def edition_clicks(ledger: LedgerPort, editions: list[Edition]) -> list[EditionClicks]:
    """The counts of ``editions`` (two queries, whatever their number)."""
    ids = [e.id for e in editions]
    counts = ledger.hit_counts(ids)
    stored = ledger.artefacts_named(TRACKED_LINKS_ARTEFACT, ids)
    out = []
    for e in editions:
        hits = counts.get(e.id, {})
        links = tuple(LinkCount(url, hits.get(i, 0))
                      for i, url in enumerate(links_from_json(stored.get(e.id, ""))))
        out.append(EditionClicks(e, links, sum(c.clicks for c in links), hits.get(OPEN_LINK, 0)))
    return out


def register(bp: Blueprint, console: Console) -> None:
    @bp.route("/analytics", methods=["GET"])
    def analytics() -> Response:
        editions = console.ledger.editions(status=None, limit=EDITIONS)
        return console.render(
            "analytics.html.j2", title="Statistiques", settings=console.config.analytics,
            rows=edition_clicks(console.ledger, editions),
            overview_url=url_for("admin.overview"))


PAGE = PageSpec("Statistiques", "admin.analytics", register)
