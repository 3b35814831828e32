"""Editions as readers see them: :class:`EditionView` records built from the corpus,
the ledger and relatedness.

An edition links only to editions published before it (their archive page exists: no
dead link, no spoiler). Its links are computed once, when it is published, and stored
with it (:class:`Links`), so the email, the archive page and the feeds agree, and old
editions cost no relatedness query.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from .config import Config
from .corpus import CaseStudy, Corpus
from .ledger import Edition
from .related import load_or_build
from .render.model import CompanyMention, EditionView, Link
from .render.urls import company_url, edition_url


@dataclass(frozen=True)
class Published:
    """Minimal facts about a published edition needed to build views."""

    number: int
    slug: str
    published_at: datetime


#: "Shine apparaît aussi dans ..." names at most this many earlier editions (newest
#: first); the company page lists them all. Without a cap, a company featured in hundreds
#: of editions would bloat every email that cites it.
MENTIONS_LIMIT = 3
LINKS_ARTEFACT = "links.json"


@dataclass(frozen=True)
class Links:
    """An edition's outgoing links, fixed when it is published (and stored with it), so the
    email, the archive page and the feeds agree, and old editions cost no relatedness query."""

    related: tuple[str, ...]
    companies: tuple[tuple[str, tuple[str, ...]], ...]  # (company, earlier slugs)

    def to_json(self) -> str:
        return json.dumps(
            {"related": list(self.related), "companies": [[c, list(s)] for c, s in self.companies]},
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, raw: str) -> Links:
        data = json.loads(raw)
        return cls(
            tuple(data["related"]), tuple((c, tuple(slugs)) for c, slugs in data["companies"])
        )


class ViewBuilder:
    """Builds :class:`EditionView` records; links only to editions published earlier.

    ``stored(slug)`` returns the :class:`Links` recorded when that edition was published
    (None if none): they are used instead of computing relatedness again.
    """

    def __init__(
        self,
        config: Config,
        corpus: Corpus,
        published: Sequence[Published],
        stored: Callable[[str], Links | None] | None = None,
    ) -> None:
        self.config = config
        self.corpus = corpus
        self.by_slug = corpus.by_slug()
        # Fitting relatedness is the expensive part; a cron-started process reuses the
        # index cached beside the ledger, a long-running daemon the one in memory.
        self.index = load_or_build(corpus.cases, config.database.parent / "cache")
        self.tz = ZoneInfo(config.schedule.timezone)
        self.published = sorted(published, key=lambda p: p.number)
        self.number_of = {p.slug: p.number for p in self.published}
        self.stored = stored

    def _link(self, slug: str) -> Link:
        case = self.by_slug[slug]
        return Link(slug=slug, title=case.title, url=edition_url(self.config.site.base_url, slug))

    def links(self, number: int, case: CaseStudy) -> Links:
        """Related case studies and company mentions among editions published before ``number``."""
        earlier = [p.slug for p in self.published if p.number < number and p.slug in self.by_slug]
        related = self.index.related(
            case.slug, candidates=earlier, k=self.config.publish.related_count
        )
        mentions = self.index.company_mentions(case.slug, candidates=earlier)
        newest_first = {
            company: tuple(sorted(slugs, key=lambda s: -self.number_of[s])[:MENTIONS_LIMIT])
            for company, slugs in mentions.items()  # one entry per company, however spelt
        }
        return Links(tuple(r.slug for r in related), tuple(newest_first.items()))

    def view(
        self, number: int, case: CaseStudy, published_at: datetime, links: Links | None = None
    ) -> EditionView:
        if links is None and self.stored is not None:
            links = self.stored(case.slug)
        if links is None:
            links = self.links(number, case)
        base = self.config.site.base_url
        known = self.by_slug  # a case study removed from the corpus since is not linked
        return EditionView(
            number=number,
            case=case,
            url=edition_url(base, case.slug),
            published_at=published_at.astimezone(self.tz),
            related=tuple(self._link(slug) for slug in links.related if slug in known),
            companies=tuple(
                CompanyMention(
                    company=company,
                    url=company_url(base, company),
                    earlier=tuple(self._link(slug) for slug in slugs if slug in known),
                )
                for company, slugs in links.companies
            ),
        )

    def history(
        self, current: EditionView | None = None, *, full: int | None = None
    ) -> tuple[EditionView, ...]:
        """Every published edition still in the corpus (plus ``current``), newest first.

        Only the newest ``full`` views (default: the feed size) get their related links and
        company mentions; older ones are *light* (``related == ()``), because the archive
        index and company pages list them by title only, and a publication with thousands of
        editions must not query relatedness thousands of times per edition. :meth:`expand`
        completes a light view when a page needs it.
        """
        full = self.config.publish.feed_size if full is None else full
        others = sorted(
            (p for p in self.published
             if p.slug in self.by_slug and (current is None or p.slug != current.slug)),
            key=lambda p: p.number,
            reverse=True,
        )
        views = [current] if current is not None else []
        for p in others:
            case = self.by_slug[p.slug]
            if len(views) < full:
                views.append(self.view(p.number, case, p.published_at))
            else:
                views.append(self._light(p.number, case, p.published_at))
        return tuple(sorted(views, key=lambda v: v.number, reverse=True))

    def _light(self, number: int, case: CaseStudy, published_at: datetime) -> EditionView:
        base = self.config.site.base_url
        return EditionView(
            number=number,
            case=case,
            url=edition_url(base, case.slug),
            published_at=published_at.astimezone(self.tz),
            companies=tuple(
                CompanyMention(company=c, url=company_url(base, c)) for c in case.companies
            ),
        )

    def expand(self, view: EditionView) -> EditionView:
        """The complete view (related links, company mentions) of a possibly light one."""
        return self.view(view.number, view.case, view.published_at)


def published_of(editions: Iterable[Edition]) -> list[Published]:
    return [Published(e.number, e.slug, e.published_at) for e in editions]
