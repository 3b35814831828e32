"""Editions as readers see them: :class:`EditionView` records built from the text each
edition was published with (:class:`PublishedTexts`: the ledger's snapshots, see
:mod:`syndicate.snapshots`), the ledger and relatedness.

The history (feeds, archive index, company pages, link titles) comes from what was
published, never from the corpus folder: deleting or editing a published file changes nothing
readers see. Relatedness for a new edition can only rank the case studies of the corpus.

An edition links only to editions published before it (their archive page exists: no
dead link, no spoiler). Its links are computed once, when it is published, and stored
with it (:class:`Links`), so the email, the archive page and the feeds agree, and old
editions cost no relatedness query.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from .config import Config
from .corpus import CaseStudy, Corpus
from .ledger import Edition
from .related import RelatednessIndex, kept_fingerprint, load_or_build
from .render.archive import INDEX_EXCERPTS
from .render.model import CompanyMention, EditionFacts, EditionView, LazyHistory, Link
from .render.urls import company_url, edition_url
from .text import one_line_excerpt


@dataclass(frozen=True)
class Published:
    """Minimal facts about a published edition needed to build views."""

    number: int
    slug: str
    published_at: datetime
    title: str = ""  # as recorded in the ledger ("" : take the corpus's)


class PublishedRecord(Protocol):
    """What :class:`ViewBuilder` reads of a published edition: a :class:`Published`, or the
    ledger's :class:`~syndicate.ledger.Edition` as it is (a publish at 5,000 editions does not
    copy each into a :class:`Published`)."""

    @property
    def number(self) -> int: ...

    @property
    def slug(self) -> str: ...

    @property
    def published_at(self) -> datetime: ...

    @property
    def title(self) -> str: ...


class PublishedTexts(Protocol):
    """The text each published edition was published with (its snapshot)."""

    def cases(self, slugs: Collection[str], *, keep: bool = True) -> Mapping[str, CaseStudy]:
        """``{slug: full case study}`` for those of ``slugs`` whose text is known;
        ``keep=False``: read for one use, not kept in memory (a rebuild of thousands)."""
        ...

    def companies(self) -> Mapping[str, tuple[str, ...]]:
        """``{slug: companies}`` of every published edition whose text is known (cheap: the
        archive index and company pages need no more of old editions)."""
        ...


class CorpusTexts:
    """:class:`PublishedTexts` read from the corpus (a preview, a dry run, a benchmark):
    right only as long as no published file was edited or deleted."""

    def __init__(self, corpus: Corpus) -> None:
        self.by_slug = corpus.by_slug()

    def cases(self, slugs: Collection[str], *, keep: bool = True) -> dict[str, CaseStudy]:
        return {slug: self.by_slug[slug] for slug in slugs if slug in self.by_slug}

    def companies(self) -> dict[str, tuple[str, ...]]:
        return {slug: case.companies for slug, case in self.by_slug.items()}


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
    (None if none): they are used instead of computing relatedness again. ``texts`` gives the
    text of published editions (default: the corpus's, :class:`CorpusTexts`).
    """

    def __init__(
        self,
        config: Config,
        corpus: Corpus,
        published: Sequence[PublishedRecord],
        stored: Callable[[str], Links | None] | None = None,
        texts: PublishedTexts | None = None,
        *,
        cache_dir: Path | None = None,
    ) -> None:
        self.config = config
        self.corpus = corpus
        self.by_slug = corpus.by_slug()
        self.cache_dir = cache_dir
        self.tz = ZoneInfo(config.schedule.timezone)
        self.published = sorted(published, key=lambda p: p.number)
        self.number_of = {p.slug: p.number for p in self.published}
        self.title_of = {p.slug: p.title for p in self.published if p.title}
        self.stored = stored
        self.texts: PublishedTexts = texts if texts is not None else CorpusTexts(corpus)

    @cached_property
    def index(self) -> RelatednessIndex:
        """The relatedness index, read (or fitted) on first use: a builder whose views all
        have stored links (a rebuild of old pages) never reads it. Fitting is the expensive
        part; a cron-started process reuses the index cached where the ledger says
        (``LedgerPort.cache_dir``: beside a SQLite file), a long-running daemon the one in
        memory. No folder: memory only. Its key is the corpus's fingerprint as kept beside
        the corpus index (:func:`~syndicate.related.kept_fingerprint`)."""
        return load_or_build(self.corpus.cases, self.cache_dir,
                             fingerprint=kept_fingerprint(self.corpus))

    def _linkable(self, slug: str) -> bool:
        # A published edition keeps its page (and its title in the ledger) even when its
        # file is gone; an unpublished case study is linked only while it is in the corpus.
        return slug in self.title_of or slug in self.by_slug

    def _link(self, slug: str) -> Link:
        title = self.title_of.get(slug) or self.by_slug[slug].title
        case = self.by_slug.get(slug)
        return Link(slug=slug, title=title, url=edition_url(self.config.site.base_url, slug),
                    excerpt=one_line_excerpt(case.lede) if case is not None else "")

    def links(self, number: int, case: CaseStudy) -> Links:
        """Related case studies and company mentions among editions published before ``number``."""
        earlier = [p.slug for p in self.published if p.number < number and p.slug in self.by_slug]
        if case.slug not in self.index:  # its file is gone: nothing to rank it by
            return Links((), tuple((company, ()) for company in case.companies))
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
        known = self._linkable
        return EditionView(
            number=number,
            case=case,
            url=edition_url(base, case.slug),
            published_at=published_at.astimezone(self.tz),
            related=tuple(self._link(slug) for slug in links.related if known(slug)),
            companies=tuple(
                CompanyMention(
                    company=company,
                    url=company_url(base, company),
                    earlier=tuple(self._link(slug) for slug in slugs if known(slug)),
                )
                for company, slugs in links.companies
            ),
        )

    def history(
        self, current: EditionView | None = None, *, full: int | None = None
    ) -> LazyHistory:
        """Every published edition (plus ``current``), newest first, with the text it was
        published with (``texts``), whether or not its file is still in the corpus.

        Only the newest ``full`` views (default: the feed size) get their related links and
        company mentions; older ones are *light* (``related == ()``), because the archive
        index and company pages list them by title only, and a publication with thousands of
        editions must not query relatedness thousands of times per edition. Beyond the newest
        ``max(full, INDEX_EXCERPTS)`` (the index shows their lede), a light view's case study
        has only its title and companies: no full text is read. :meth:`expand` completes a
        light view when a page needs it. An edition whose text is unknown (no snapshot, no
        file) keeps its title, URL and date (``text_missing``).

        The history is lazy (:class:`LazyHistory`): the full views are built here (they read
        the ledger), the light ones only when a page or feed asks for them, from what was
        read here (no I/O: channels read the history from their own threads). A publish at
        5,000 editions builds the views of the few pages it rewrites, and only the facts
        (:class:`EditionFacts`: slug, number, date, companies) of the others.
        """
        full = self.config.publish.feed_size if full is None else full
        others = sorted(
            (p for p in self.published if current is None or p.slug != current.slug),
            key=lambda p: p.number,
            reverse=True,
        )
        shift = current is not None
        texts = max(full, INDEX_EXCERPTS) - shift
        cases = self.texts.cases([p.slug for p in others[:texts]])
        companies = self.texts.companies() if len(others) > texts else {}
        tz = self.tz
        # Newest first, ``current`` in its place (a correction is not the newest): one fact
        # per edition, and what its view is made of (its rank among ``others`` decides it).
        facts: list[EditionFacts] = []
        made: list[tuple[PublishedRecord, CaseStudy | None, bool] | None] = []
        ready: dict[int, EditionView] = {}

        def place(view: EditionView) -> None:
            ready[len(facts)] = view
            facts.append(EditionFacts.of(view))
            made.append(None)

        placed = current is None
        for rank, p in enumerate(others):
            if not placed and current is not None and current.number > p.number:
                place(current)
                placed = True
            case = cases.get(p.slug)
            missing = False
            if case is not None:
                names = case.companies
            elif rank >= texts and p.slug in companies:
                names = companies[p.slug]
            else:
                names, missing = (), True
            if case is not None and rank + shift < full:  # full views read stored links
                ready[len(facts)] = self.view(p.number, case, p.published_at)
            facts.append(EditionFacts(p.slug, p.number, p.published_at.astimezone(tz),
                                      names, missing))
            made.append((p, case, missing))
        if not placed and current is not None:
            place(current)

        def build(index: int) -> EditionView:
            view = ready.get(index)
            if view is not None:
                return view
            entry = made[index]
            assert entry is not None  # ``current`` is in ``ready``
            p, case, missing = entry
            if case is not None:
                return self._light(p.number, case, p.published_at)
            card = self._card(p, facts[index].companies)
            return self._light(p.number, card, p.published_at, text_missing=missing)

        history = LazyHistory(facts, build)
        for index in ready:  # built already: the history holds them as they are
            history[index]
        return history

    def _card(self, published: PublishedRecord, companies: tuple[str, ...]) -> CaseStudy:
        """A case study with only what the index and company pages show of an old edition."""
        title = published.title or published.slug
        return CaseStudy(slug=published.slug, title=title, lede="", sections=(), position=0,
                         companies=companies)

    def _light(
        self, number: int, case: CaseStudy, published_at: datetime, *, text_missing: bool = False
    ) -> EditionView:
        base = self.config.site.base_url
        return EditionView(
            number=number,
            case=case,
            url=edition_url(base, case.slug),
            published_at=published_at.astimezone(self.tz),
            companies=tuple(
                CompanyMention(company=c, url=company_url(base, c)) for c in case.companies
            ),
            text_missing=text_missing,
        )

    def expand(self, view: EditionView) -> EditionView:
        """The complete view (full text, related links, company mentions) of a light one."""
        if view.text_missing:
            return view
        case = self.texts.cases([view.slug]).get(view.slug, view.case)
        return self.view(view.number, case, view.published_at)

    def expand_many(self, views: Sequence[EditionView]) -> list[EditionView]:
        """:meth:`expand` for a batch, their texts read in one go and not kept: a rebuild of
        thousands of pages holds one batch of full texts at a time."""
        wanted = [view.slug for view in views if not view.text_missing]
        cases = self.texts.cases(wanted, keep=False) if wanted else {}
        return [view if view.text_missing else
                self.view(view.number, cases.get(view.slug, view.case), view.published_at)
                for view in views]


def published_of(editions: Iterable[Edition]) -> list[Published]:
    return [Published(e.number, e.slug, e.published_at, e.title) for e in editions]
