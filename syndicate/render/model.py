"""What renderers receive: an edition as readers will see it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, overload

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


class EditionFacts(NamedTuple):
    """What the archive's layout needs of an edition without its view (its pages, years,
    companies and sitemaps): a tuple, cheap to make thousands of times per publish."""

    slug: str
    number: int
    published_at: datetime  # in the site's timezone, as the view's
    companies: tuple[str, ...]
    text_missing: bool = False

    @classmethod
    def of(cls, view: EditionView) -> EditionFacts:
        return cls(view.slug, view.number, view.published_at, view.case.companies,
                   view.text_missing)


class ViewSequence(Sequence[EditionView]):
    """A read-only sequence of edition views made on demand: a subclass gives its length
    and the view at a position (:meth:`_at`); indexing (negative too), slicing (a tuple)
    and iteration are here."""

    def _at(self, index: int) -> EditionView:  # 0 <= index < len(self)
        raise NotImplementedError

    @overload
    def __getitem__(self, index: int) -> EditionView: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[EditionView, ...]: ...

    def __getitem__(self, index: int | slice) -> EditionView | tuple[EditionView, ...]:
        if isinstance(index, slice):
            return tuple(self._at(i) for i in range(*index.indices(len(self))))
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._at(index)

    def __iter__(self) -> Iterator[EditionView]:
        return (self._at(i) for i in range(len(self)))


class LazyHistory(ViewSequence):
    """A history (newest first) whose views are built on first access, from ``facts`` (one
    per edition, in the same order) and ``build(index)``.

    A publish at 5,000 editions rewrites a few pages (the index, one numbered page, the
    year's page, the feeds): it needs the views of the editions those list, and only the
    facts of the others (:class:`EditionFacts`). ``build`` must be pure (no I/O): channels
    read the history from their own threads; a view two threads build at once is built
    twice, equal, and the first one kept.
    """

    def __init__(self, facts: Sequence[EditionFacts],
                 build: Callable[[int], EditionView]) -> None:
        self.facts = facts
        self._build = build
        self._views: dict[int, EditionView] = {}
        self._lock = threading.Lock()

    @property
    def built(self) -> int:
        """How many views were built so far (the benchmark's and the tests' figure)."""
        return len(self._views)

    def __len__(self) -> int:
        return len(self.facts)

    def _at(self, index: int) -> EditionView:
        view = self._views.get(index)
        if view is None:
            built = self._build(index)
            with self._lock:  # one object per edition: pages compare views by identity
                view = self._views.setdefault(index, built)
        return view


def facts_of(history: Sequence[EditionView]) -> Sequence[EditionFacts]:
    """The facts of every edition of ``history``: a :class:`LazyHistory`'s own, else read
    from its views (a small history, a preview, a test)."""
    if isinstance(history, LazyHistory):
        return history.facts
    return [EditionFacts.of(view) for view in history]
