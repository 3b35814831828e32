"""Loading the corpus (through its index when there is a cache folder) and the queue."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any

from ..errors import CorpusError
from ._case import _UNLOADED, CaseStudy, _cross_file_problems, corpus_files, load_file
from ._index import _Table


class _Cases:
    """``Corpus.cases`` of a corpus loaded through its index: ``_UNLOADED`` until read, then
    the index's records (a listing reads the columns and never builds them). As
    :class:`_Body`, a data descriptor as a dataclass field without a default."""

    def __get__(self, instance: Corpus | None, owner: type | None = None) -> Any:
        if instance is None:
            raise AttributeError("cases")
        value = instance.__dict__["cases"]
        if value is _UNLOADED:
            table = instance._table
            assert table is not None
            value = instance.__dict__["cases"] = table.in_order()
        return value

    def __set__(self, instance: Corpus, value: Any) -> None:
        instance.__dict__["cases"] = value


@dataclass(frozen=True)
class Corpus:
    """The loaded corpus, ordered by queue position."""

    directory: Path
    # Built on first access when the corpus came through its index (see _Cases).
    cases: tuple[CaseStudy, ...] = _Cases()  # type: ignore[assignment]
    # The corpus index it was loaded through, if it was: its columns answer :meth:`values`
    # without a record.
    _table: _Table | None = field(default=None, compare=False, repr=False)

    def __iter__(self) -> Iterator[CaseStudy]:
        return iter(self.cases)

    def __len__(self) -> int:
        return len(self._table.order) if self._table is not None else len(self.cases)

    def get(self, slug: str) -> CaseStudy | None:
        if self._table is not None:  # found in the slugs column: no other record built
            return self._table.record(slug)
        return next((case for case in self.cases if case.slug == slug), None)

    def by_slug(self) -> dict[str, CaseStudy]:
        return {case.slug: case for case in self.cases}

    def keep_index(self) -> None:
        """Write the corpus index now if the load could not: on a new site its cache
        folder's parent (the ledger's folder) is made by opening the ledger, after the load
        (the first ``publish-next`` at 10,000 case studies would otherwise leave the next
        command to read every file again)."""
        if self._table is not None and self._table.token is None:
            self._table.save()

    def drafts(self) -> int:
        """How many case studies are drafts (``status: draft``): counted in the corpus
        index's column when the corpus came through it."""
        if self._table is not None:
            return self._table.column("statuses").count("draft")  # None: a file's problems
        return sum(1 for case in self.cases if case.is_draft)

    def file_digests(self, slugs: Iterable[str]) -> dict[str, str | None]:
        """``{slug: file_digest}`` of those of ``slugs`` in the corpus (the digests of the
        files they were read from): from the corpus index's column when the corpus came
        through it (no record built), else from the records."""
        if self._table is not None:
            return dict(self._table.file_digests(slugs))
        by_slug = {case.slug: case for case in self.cases}
        return {slug: by_slug[slug].file_digest for slug in slugs if slug in by_slug}

    def values(self, *names: str) -> list[tuple[Any, ...]]:
        """The attributes ``names`` (fields, ``words``, ``section_count``, ``text_digest``,
        ``file_digest``) of every case study, in queue order: read from the corpus index's
        columns when the corpus came through it (no record built), else from the records."""
        if self._table is not None:
            return self._table.values(names)
        return [tuple(getattr(case, name) for name in names) for case in self.cases]

    def kept(self, name: str, version: bytes | None, make: Callable[[], bytes]
             ) -> bytes:
        """``make()``: an output computed from the corpus alone (``corpus list --json``),
        kept beside the corpus index under ``name`` and given again from there, without
        calling ``make``, while the index holds the very columns it was made from (the
        index unchanged since) and ``version`` (what else ``make`` depends on: its code) is
        the same. Without an index, or ``version`` None: ``make()``."""
        if self._table is None:
            return make()
        return self._table.kept(name, version, make)


def check(
    directory: Path, *, cache_dir: Path | None = None
) -> tuple[list[CaseStudy], list[str]]:
    """Validate every file; return the readable case studies and all problems found.

    With ``cache_dir``, through the corpus index kept there (:class:`_Table`): a file whose
    size and mtime (or, if those moved, whose bytes) are unchanged is not parsed again, and
    its case study is a record of the index (filled from it on first use, its body read from
    the file on first access). The result is the same either way.
    """
    if not directory.is_dir():
        return [], [f"{directory}:1: corpus directory does not exist"]
    if cache_dir is not None:
        table, found = _Table.scan(directory, cache_dir)
        return table.by_name(), found
    cases: list[CaseStudy] = []
    problems: list[str] = []
    for path in corpus_files(directory):
        try:
            cases.append(load_file(path))
        except CorpusError as exc:
            problems.extend(exc.problems)
    problems.extend(_cross_file_problems(cases))
    return cases, problems


_QUEUE_ORDER = attrgetter("position", "slug")


def checked(directory: Path, *, cache_dir: Path | None = None) -> tuple[Corpus, list[str]]:
    """:func:`check`'s answer as a :class:`Corpus` of the readable case studies (in queue
    order) and every problem: through the corpus index, no record is built (``corpus
    check`` counts them and checks the published ones for drift by their file digests)."""
    if cache_dir is not None and directory.is_dir():
        table, problems = _Table.scan(directory, cache_dir)
        return Corpus(directory, _UNLOADED, table), problems
    cases, problems = check(directory)
    cases.sort(key=_QUEUE_ORDER)
    return Corpus(directory, tuple(cases)), problems


def load(directory: Path, *, cache_dir: Path | None = None) -> Corpus:
    """Load and validate the whole corpus; raise :class:`CorpusError` on any problem.
    ``cache_dir``: where the corpus index lives (see :func:`check`); through it, records
    are built on first use."""
    corpus, problems = checked(directory, cache_dir=cache_dir)
    if problems:
        raise CorpusError(problems)
    return corpus


def queue(cases: Iterable[CaseStudy], published: Iterable[str]) -> list[CaseStudy]:
    """Every case study still to publish (not published, not a draft), in queue order.

    Here rather than in :mod:`syndicate.pipeline` (which re-exports it) so that ``queue``,
    ``status`` and ``schedule`` do not import the renderers and channels to sort a list.
    Reads only the fields a record of the corpus index is born with."""
    taken = set(published)
    ready = [case for case in cases if not case.is_draft and case.slug not in taken]
    if isinstance(cases, Corpus) and cases._table is not None:
        return ready  # in queue order already: the index keeps that order
    return sorted(ready, key=_QUEUE_ORDER)


def queue_values(corpus: Corpus, published: Iterable[str], *names: str,
                 limit: int | None = None) -> list[tuple[Any, ...]]:
    """``[tuple(getattr(case, name) for name in names) for case in queue(corpus,
    published)[:limit]]``: the attributes ``names`` (as :meth:`Corpus.values`) of every case
    study still to publish (the first ``limit``), in queue order, read from the corpus
    index's columns when the corpus came through it (no record built: what ``queue``,
    ``status`` and ``schedule`` print)."""
    table = corpus._table
    if table is not None:
        return table.values(names, table.queue_rows(published)[:limit])
    return [tuple(getattr(case, name) for name in names)
            for case in queue(corpus, published)[:limit]]


def queue_head(corpus: Corpus, published: Iterable[str], *names: str, limit: int
               ) -> tuple[int, list[tuple[Any, ...]]]:
    """How many case studies are still to publish, and ``queue_values(corpus, published,
    *names, limit=limit)``, from one pass over the queue (``schedule``, ``status``)."""
    table = corpus._table
    if table is not None:
        return table.queue_head(published, names, limit)
    cases = queue(corpus, published)
    return len(cases), [tuple(getattr(case, name) for name in names) for case in cases[:limit]]
