"""What a published edition shows, kept in the ledger: the case study as it was published.

An edition's text (title, lede, sections, companies, themes) is stored with it when it is
first rendered, as the artefact ``case.json`` (and its companies alone as ``companies.json``,
so that the archive index and company pages of thousands of editions cost one small query,
not thousands of full texts parsed). Feeds and archive are rebuilt from these snapshots,
never from the corpus folder: deleting, renaming or editing a published file changes nothing
readers see until the operator runs ``syndicate republish SLUG``.

Editions published before snapshots were kept have none: it is taken from the corpus the first
time it is needed (and stored, so once), or, when the file is gone too, the edition keeps what
the ledger has (title, URL, date) and a warning says so.
"""

from __future__ import annotations

import marshal
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .corpus import CaseStudy, Corpus, Section, Source
from .digest import sha256_hex
from .errors import SyndicateError
from .ledger import Edition
from .modules import module_source

if TYPE_CHECKING:
    import logging

    from .ledger import LedgerPort

SNAPSHOT_ARTEFACT = "case.json"
COMPANIES_ARTEFACT = "companies.json"
#: The sha256 of the corpus file a snapshot was taken from (:attr:`CaseStudy.file_digest`):
#: while the file's bytes are these, its text is the snapshot's, and checking a published
#: edition for drift reads neither the file nor the snapshot (``status`` at 5,000 editions).
SOURCE_FILE_ARTEFACT = "case.file-sha256"
SNAPSHOT_FORMAT = 1
#: What readers see of a case study; a change to any of these is a change to republish.
SHOWN_FIELDS = ("title", "lede", "sections", "companies", "themes")


# --------------------------------------------------------------------------- serialising


def snapshot_json(case: CaseStudy) -> str:
    """The snapshot of ``case`` as JSON text; deterministic (same case, same bytes), and the
    text kept exactly (``ensure_ascii=False``: NBSP, ’ and … are stored as they are)."""
    data: dict[str, Any] = {
        "format": SNAPSHOT_FORMAT,
        "slug": case.slug,
        "title": case.title,
        "lede": case.lede,
        "sections": [
            {"heading": section.heading, "paragraphs": list(section.paragraphs)}
            for section in case.sections
        ],
        "companies": list(case.companies),
        "themes": list(case.themes),
        "source": (
            None if case.source is None
            else {"page": case.source.page, "position": case.source.position}
        ),
        "content_hash": case.content_hash,  # the front matter's (hash of the text as imported)
    }
    # No hash of the text in here: the ledger keeps the sha256 of this JSON (deterministic),
    # which is what `published_drift` compares, and hashing the text again would double the
    # cost of checking a 10,000-file corpus.
    import json  # here and below, not at the top: `status` reads drift without json

    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def case_from_snapshot(raw: str) -> CaseStudy:
    """The case study a snapshot holds (``position`` 0 and no ``path``: it is no file)."""
    import json

    data = json.loads(raw)
    if data.get("format") != SNAPSHOT_FORMAT:
        raise SyndicateError(f"unknown snapshot format {data.get('format')!r} in the ledger")
    source = data.get("source")
    return CaseStudy(
        slug=data["slug"],
        title=data["title"],
        lede=data["lede"],
        sections=tuple(
            Section(section["heading"], tuple(section["paragraphs"]))
            for section in data["sections"]
        ),
        position=0,
        companies=tuple(data["companies"]),
        themes=tuple(data["themes"]),
        source=None if source is None else Source(source["page"], source["position"]),
        content_hash=data["content_hash"],
    )


def companies_json(case: CaseStudy) -> str:
    import json

    return json.dumps(list(case.companies), ensure_ascii=False)


def snapshot_artefacts(case: CaseStudy) -> dict[str, str]:
    """The artefacts that keep ``case`` as published: ``{name: text}``; with the digest of
    the file it was read from, when there is one (:data:`SOURCE_FILE_ARTEFACT`)."""
    artefacts = {SNAPSHOT_ARTEFACT: snapshot_json(case), COMPANIES_ARTEFACT: companies_json(case)}
    # Read after the text: a body read from bytes other than the front matter's has none.
    digest = case.file_digest
    if digest:
        artefacts[SOURCE_FILE_ARTEFACT] = digest
    return artefacts


def changed_fields(published: CaseStudy, current: CaseStudy) -> tuple[str, ...]:
    """The fields readers would see differently (in :data:`SHOWN_FIELDS` order)."""
    return tuple(f for f in SHOWN_FIELDS if getattr(published, f) != getattr(current, f))


def _digest(text: str) -> str:
    return sha256_hex(text.encode("utf-8"))  # as the ledger's artefacts.sha256


# --------------------------------------------------------------------------- reading


class LedgerTexts:
    """The published text of ``editions``, read from the ledger's snapshots (the
    :class:`~syndicate.views.PublishedTexts` a :class:`~syndicate.views.ViewBuilder` reads).

    An edition without a snapshot (published before they were kept) gets one from the
    corpus when its file is there: stored when ``backfill`` (once: logged once), else only
    used. One with neither is *lost*: :attr:`lost` lists it, and it is warned about once.
    ``override`` replaces the text of some slugs (``republish``: the corrected text).
    """

    def __init__(
        self,
        ledger: LedgerPort,
        corpus: Corpus,
        editions: Iterable[Edition],
        *,
        backfill: bool = True,
        logger: logging.Logger | None = None,
    ) -> None:
        self.ledger = ledger
        self.corpus = corpus.by_slug()
        self.directory = corpus.directory
        self.editions = {e.slug: e for e in editions}
        self.backfill = backfill
        if logger is None:  # logging imported here: `status` reads drift, never texts
            import logging

            logger = logging.getLogger("syndicate.snapshots")
        self.log = logger
        self._cases: dict[str, CaseStudy] = {}
        self._lost: dict[str, Edition] = {}

    @property
    def lost(self) -> tuple[Edition, ...]:
        """Editions seen so far with neither a snapshot nor a file, oldest first."""
        return tuple(sorted(self._lost.values(), key=lambda e: e.number))

    def case_of(self, edition: Edition) -> CaseStudy:
        """The text of ``edition`` (being published or resumed): its snapshot, else its file,
        stored now as its snapshot. Raises when there is neither."""
        self.editions.setdefault(edition.slug, edition)
        raw = self.ledger.artefact(edition.id, SNAPSHOT_ARTEFACT)
        if raw is not None:
            case = self._cases[edition.slug] = case_from_snapshot(raw)
            return case
        found = self.corpus.get(edition.slug)
        if found is None:
            raise SyndicateError(
                f"edition #{edition.number} ({edition.slug}) is unfinished but its case study "
                f"is no longer in {self.directory} and the ledger has no snapshot of it; "
                "restore the file to finish it"
            )
        # Kept before anything is rendered: a resume after a crash renders this very text.
        self.ledger.store_artefacts(edition.id, snapshot_artefacts(found))
        self._cases[edition.slug] = found
        return found

    def cases(self, slugs: Collection[str], *, keep: bool = True) -> dict[str, CaseStudy]:
        """``{slug: case study as published}`` for those of ``slugs`` whose text is known.

        Read in one query per chunk of ids and kept for the next call, unless ``keep=False``
        (a rebuild reading thousands of texts once each must not hold them all)."""
        found = {s: self._cases[s] for s in slugs if s in self._cases}
        wanted = [s for s in slugs if s in self.editions and s not in found]
        if wanted:
            ids = {self.editions[s].id: s for s in wanted}
            for edition_id, raw in self.ledger.artefacts_named(SNAPSHOT_ARTEFACT, ids).items():
                found[ids[edition_id]] = case_from_snapshot(raw)
            if keep:
                self._cases.update(found)
            self._from_corpus([s for s in wanted if s not in found])
            found.update((s, self._cases[s]) for s in wanted if s in self._cases)
        return {s: found[s] for s in slugs if s in found}

    def companies(self) -> dict[str, tuple[str, ...]]:
        """``{slug: companies}`` of every edition whose text is known: one query over the small
        ``companies.json`` artefacts, not the full texts."""
        import json

        slug_of = {e.id: s for s, e in self.editions.items()}
        found: dict[str, tuple[str, ...]] = {}
        raws = {slug_of[edition_id]: raw for edition_id, raw
                in self.ledger.artefacts_named(COMPANIES_ARTEFACT).items()
                if edition_id in slug_of}
        try:  # one parse for thousands of small lists, not one call each
            parsed = json.loads("[" + ",".join(raws.values()) + "]")
        except ValueError:
            parsed = None
        if not isinstance(parsed, list) or len(parsed) != len(raws):
            parsed = [json.loads(raw) for raw in raws.values()]  # as before: one by one
        for slug, names in zip(raws, parsed, strict=True):
            found[slug] = tuple(names)
        missing = [s for s in self.editions if s not in found]
        for slug, case in self.cases(missing).items():
            found[slug] = case.companies
        return found

    def _from_corpus(self, slugs: Sequence[str]) -> None:
        """Backfill the snapshots of ``slugs`` (no snapshot in the ledger) from the corpus."""
        filled = []
        for slug in slugs:
            case = self.corpus.get(slug)
            edition = self.editions[slug]
            if case is None:
                if slug not in self._lost:
                    self._lost[slug] = edition
                    self.log.warning(
                        "edition #%s (%s): no snapshot in the ledger and no file in %s: feeds "
                        "and archive show its title, URL and date only (restore the file to "
                        "bring its text back)", edition.number, slug, self.directory)
                continue
            self._cases[slug] = case
            if self.backfill:
                self.ledger.store_artefacts(edition.id, snapshot_artefacts(case))
                filled.append(edition)
        if filled:
            self.log.info(
                "kept the published text of %d edition(s) published before snapshots existed, "
                "taken from the corpus: %s", len(filled),
                ", ".join(f"#{e.number} {e.slug}" for e in filled[:5])
                + (", …" if len(filled) > 5 else ""))


# --------------------------------------------------------------------------- drift


DriftKind = Literal["gone", "lost", "changed"]


@dataclass(frozen=True)
class Drift:
    """A published edition whose corpus file no longer matches what readers see."""

    edition: Edition
    kind: DriftKind  # gone: file gone (snapshot kept); lost: file and snapshot gone
    fields: tuple[str, ...] = ()  # changed: the fields that differ
    path: Path | None = None  # changed: the file

    def message(self, directory: Path) -> str:
        e = self.edition
        head = f"edition #{e.number} ({e.slug})"
        if self.kind == "gone":
            return (f"{head}: no file in {directory} has this slug any more (deleted or renamed); "
                    "readers still see the text kept in the ledger (restore the file to edit it)")
        if self.kind == "lost":
            return (f"{head}: no file in {directory} and no snapshot in the ledger (published "
                    "before snapshots were kept): feeds and archive show its title only; "
                    "restore the file")
        return (f"{head}: {self.path or directory} changed since publication "
                f"({', '.join(self.fields)}); readers still see the published text: run "
                f"`syndicate republish {e.slug}` to publish the correction")


#: ``(id, number, slug)`` of an edition (:meth:`~syndicate.ledger.LedgerPort.edition_keys`).
EditionKey = tuple[int, int, str]
#: Above this many drifted editions, their records are read with every other edition's in
#: one query rather than one query each (a deleted corpus folder drifts them all).
_ONE_BY_ONE = 64


def _source_digests(corpus: Corpus | Mapping[str, CaseStudy], slugs: Collection[str]
                    ) -> tuple[dict[str, str | None], Callable[[str], CaseStudy]]:
    """``{slug: the sha256 its source artefact has if its file still has the bytes the
    snapshot was taken from}`` of the published ``slugs`` still in ``corpus`` (None: a file
    without a digest), and how to get the case study of one.

    From a :class:`Corpus`, no record is built (a record only for a slug asked for, its file
    changed), and the map is kept beside the corpus index (:meth:`Corpus.kept`) per set of
    slugs: ``status`` checks the same published files on every run, and 5,000 digests
    looked up and hashed again each time cost more than reading them back."""
    if isinstance(corpus, Corpus):
        wanted = sorted(set(slugs))

        def make() -> bytes:
            return marshal.dumps({slug: _digest(digest) if digest else None
                                  for slug, digest in corpus.file_digests(wanted).items()})

        def case_of(slug: str) -> CaseStudy:
            case = corpus.get(slug)  # one record from the index, not all of them
            assert case is not None  # a slug of the map: in the corpus
            return case

        source = module_source(__file__)  # the code that made a kept map (None: not kept)
        version = None if source is None else source + b"\0" + "\n".join(wanted).encode()
        found: dict[str, str | None] = marshal.loads(corpus.kept("drift.sources", version,
                                                                 make))
        return found, case_of
    cases = {slug: case for slug in slugs if (case := corpus.get(slug)) is not None}
    return ({slug: _digest(case.file_digest) if case.file_digest else None
             for slug, case in cases.items()}, corpus.__getitem__)


def published_drift(
    ledger: LedgerPort, corpus: Corpus | Mapping[str, CaseStudy], *,
    missing_is_gone: bool = True,
    editions: Sequence[Edition] | Sequence[EditionKey] | None = None,
) -> list[Drift]:
    """Published editions (finished or not) whose file is gone or changed, oldest first.

    ``corpus``: the loaded :class:`Corpus` (cheapest: the file digests are read from its
    index, no case study is built unless one differs), or ``{slug: case study}``.

    Cheap for an unchanged corpus: an edition whose snapshot was taken from the very bytes
    the file holds now (:data:`SOURCE_FILE_ARTEFACT`, compared with the corpus index's digest
    of the file) is unchanged without reading anything more; otherwise (the file's bytes
    changed, or an edition published before that digest was kept) the file's snapshot is
    serialised and its sha256 compared with the stored one's (one query, no stored text read);
    only a differing one is read and compared field by field (a change outside
    :data:`SHOWN_FIELDS`, e.g. ``source``, is none).
    An edition without a snapshot whose file is there is not reported (its snapshot will be
    taken from that file). ``missing_is_gone=False``: skip files that are missing (the caller
    cannot tell a deleted file from an unreadable one). ``editions``: every edition, if the
    caller has read them already, as records or as ``(id, number, slug)``
    (:meth:`~syndicate.ledger.LedgerPort.edition_keys`: ``status`` at 5,000 editions builds
    no record but those it reports); read with ``edition_keys`` when not given.
    """
    known: dict[int, Edition] = {}
    if editions is None:
        keys: list[EditionKey] = ledger.edition_keys()
    else:
        keys = []
        for item in editions:
            if isinstance(item, Edition):
                known[item.id] = item
                keys.append((item.id, item.number, item.slug))
            else:
                keys.append(item)
        keys.sort(key=lambda key: key[1])
    expected, case_of = _source_digests(corpus, [slug for _, _, slug in keys])
    # From the index on (name, edition_id, sha256): no artefact's content is read. The source
    # artefact's text is the file's digest: an edition whose file still has the bytes its
    # snapshot was taken from is unchanged (at a long history, nearly all of them), and only
    # the others need their snapshot's digest.
    sources = ledger.artefacts_named(SOURCE_FILE_ARTEFACT, digests=True)
    rest: list[EditionKey] = []
    for key in keys:  # 5,000 at a long history: the unchanged path is kept short
        source = sources.get(key[0])
        if source is None or source != expected.get(key[2]):
            rest.append(key)
    digests = (ledger.artefacts_named(SNAPSHOT_ARTEFACT, [key[0] for key in rest], digests=True)
               if rest else {})
    found: list[tuple[EditionKey, DriftKind, tuple[str, ...], Path | None]] = []
    for key in rest:
        edition_id, _, slug = key
        if slug not in expected:
            if missing_is_gone:
                found.append((key, "gone" if edition_id in digests else "lost", (), None))
            continue
        digest = digests.get(edition_id)
        if digest is None:
            continue  # no snapshot: one will be taken from the file as it is
        case = case_of(slug)
        if digest == _digest(snapshot_json(case)):
            continue
        raw = ledger.artefact(edition_id, SNAPSHOT_ARTEFACT)
        fields = changed_fields(case_from_snapshot(raw), case) if raw else SHOWN_FIELDS
        if fields:
            found.append((key, "changed", fields, case.path))
    records = _records(ledger, [key[0] for key, *_ in found if key[0] not in known], known)
    return [Drift(records[key[0]], kind, fields, path)
            for key, kind, fields, path in found if key[0] in records]


def _records(ledger: LedgerPort, ids: Sequence[int], known: dict[int, Edition]
             ) -> dict[int, Edition]:
    """``known`` with the records of ``ids`` added: one query each when few, else all."""
    if len(ids) > _ONE_BY_ONE:
        wanted = set(ids)
        known.update((e.id, e) for e in ledger.editions(status=None) if e.id in wanted)
    else:
        for edition_id in ids:
            edition = ledger.get_edition(edition_id)
            if edition is not None:
                known[edition_id] = edition
    return known


__all__ = [
    "COMPANIES_ARTEFACT", "SHOWN_FIELDS", "SNAPSHOT_ARTEFACT", "SOURCE_FILE_ARTEFACT", "Drift",
    "EditionKey", "LedgerTexts",
    "case_from_snapshot", "changed_fields", "companies_json", "published_drift",
    "snapshot_artefacts", "snapshot_json",
]
