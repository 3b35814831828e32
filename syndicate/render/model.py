"""What renderers receive: an edition as readers will see it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..corpus import CaseStudy


@dataclass(frozen=True)
class Link:
    """A link to another (already published) case study; ``excerpt``: the first sentence
    of its lede (empty when its text is not known)."""

    slug: str
    title: str
    url: str
    excerpt: str = ""


@dataclass(frozen=True)
class CompanyMention:
    """A company cited by the edition, its page, and earlier editions that feature it."""

    company: str
    url: str
    earlier: tuple[Link, ...] = ()


@dataclass(frozen=True)
class EditionView:
    """One published (or previewed) edition.

    ``url`` is the canonical archive URL and also the feed GUID.
    ``published_at`` is timezone-aware. ``related`` and ``companies[*].earlier``
    only ever point to editions published before this one (no dead link, no spoiler).
    """

    number: int
    case: CaseStudy
    url: str
    published_at: datetime
    related: tuple[Link, ...] = ()
    companies: tuple[CompanyMention, ...] = ()
    # The ledger has no text of this edition (published before snapshots were kept, file
    # deleted since): it is listed by title, URL and date, and its page is never rewritten.
    text_missing: bool = False

    @property
    def slug(self) -> str:
        return self.case.slug

    @property
    def title(self) -> str:
        return self.case.title
