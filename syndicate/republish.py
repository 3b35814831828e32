"""``syndicate republish SLUG``: publish the correction of an already published edition.

Editing a published case study's file changes nothing readers see (feeds and archive are
built from the text kept in the ledger, see :mod:`syndicate.snapshots`). When the operator
asks for it, the corrected text replaces the kept one and the files that show it are
rewritten: the edition's archive page, the index and the company pages it appears in, the
feeds. Nothing is sent (no email, no webhook, no delivery row): subscribers got the edition
once. The edition keeps its number, date, URL (the feeds' GUID) and links.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from .channels.archive import ArchiveSettings
from .channels.feed import FeedSettings
from .clock import utcnow
from .config import Config
from .corpus import CaseStudy, Corpus, load
from .errors import SyndicateError
from .fs import write_atomic_bytes
from .ledger import Edition, LedgerPort, LedgerSource, using_ledger
from .render.archive import render_archive
from .render.feeds import render_feeds
from .render.urls import FEED_FILES
from .snapshots import (
    SHOWN_FIELDS,
    SNAPSHOT_ARTEFACT,
    LedgerTexts,
    case_from_snapshot,
    changed_fields,
    snapshot_artefacts,
)
from .views import LINKS_ARTEFACT, Links, ViewBuilder, published_of

log = logging.getLogger("syndicate.republish")



@dataclass(frozen=True)
class RepublishResult:
    edition: Edition
    changed: tuple[str, ...]  # the fields readers will see differently
    rewritten: tuple[Path, ...]  # files whose content changed (would change, in a dry run)
    unchanged: tuple[Path, ...] = ()  # files rendered again, identical: left alone
    had_snapshot: bool = True  # False: published before snapshots were kept
    dry_run: bool = False

    def lines(self) -> list[str]:
        e = self.edition
        head = f"edition #{e.number} ({e.slug})"
        if not self.changed:
            return [f"{head}: its file shows what was published; nothing to republish"]
        what = ", ".join(self.changed) if self.had_snapshot else (
            "no text was kept for it (published before snapshots), so the file's is taken")
        verb = "[dry run] would republish" if self.dry_run else "republished"
        lines = [f"{verb} {head}: {what}"]
        write = "would rewrite" if self.dry_run else "rewrote"
        lines += [f"  {write} {path}" for path in self.rewritten]
        if self.unchanged:
            lines.append(f"  unchanged: {len(self.unchanged)} file(s) "
                         f"({', '.join(p.name for p in self.unchanged[:3])}"
                         f"{', …' if len(self.unchanged) > 3 else ''})")
        lines.append("  nothing sent: no email, no webhook; number, date, URL and links kept")
        return lines


def _refuse_unless_republishable(
    config: Config, edition: Edition | None, slug: str, case: CaseStudy | None
) -> Edition:
    if edition is None:
        raise SyndicateError(
            f"{slug!r} has no edition: republish only takes a published case study "
            "(an unpublished one goes out with `syndicate publish-next`)")
    if edition.status != "done":
        raise SyndicateError(
            f"edition #{edition.number} ({slug}) is unfinished ({edition.status}): "
            "finish it with `syndicate resume` first")
    if case is None:
        raise SyndicateError(
            f"edition #{edition.number} ({slug}): no file in {config.corpus_dir} has slug "
            f"{slug!r}; restore it to republish (readers still see the published text)")
    return edition


def republish(
    config: Config,
    slug: str,
    *,
    dry_run: bool = False,
    now: Callable[[], datetime] = utcnow,
    lock: bool = True,
    ledger: LedgerSource | None = None,
) -> RepublishResult:
    """Take the corpus file's current text for the published edition ``slug``.

    Holds the publisher lock (as ``publish-next`` does): a daemon cannot publish meanwhile.
    Files are written before the ledger records the new text, so an interrupted republish is
    simply run again. ``ledger``: an open ledger or a factory (``App.open_ledger``); by
    default the config's is opened.
    """
    corpus = load(config.corpus_dir, cache_dir=config.corpus_cache_dir)
    with using_ledger(ledger, config.ledger_url, now=now) as opened:
        if not lock:
            return _republish(config, opened, corpus.get(slug), slug, corpus, dry_run)
        with opened.publisher_lock("syndicate republish"):
            return _republish(config, opened, corpus.get(slug), slug, corpus, dry_run)


def _republish(
    config: Config, ledger: LedgerPort, case: CaseStudy | None, slug: str, corpus: Corpus,
    dry_run: bool,
) -> RepublishResult:
    edition = _refuse_unless_republishable(config, ledger.get_edition(slug), slug, case)
    assert case is not None
    raw = ledger.artefact(edition.id, SNAPSHOT_ARTEFACT)
    before = case_from_snapshot(raw) if raw is not None else None
    changed = changed_fields(before, case) if before is not None else SHOWN_FIELDS
    if before is not None and not changed:
        return RepublishResult(edition, (), (), dry_run=dry_run)

    done = ledger.editions(status="done")
    texts = LedgerTexts(ledger, corpus, done, backfill=not dry_run)
    ids = {e.slug: e.id for e in done}

    def stored(other: str) -> Links | None:
        found = ledger.artefact(ids[other], LINKS_ARTEFACT) if other in ids else None
        return Links.from_json(found) if found else None

    # Links to this edition (from the feeds' other entries) carry its corrected title.
    published = [replace(p, title=case.title) if p.slug == slug else p
                 for p in published_of(done)]
    builder = ViewBuilder(config, corpus, published, stored, texts, cache_dir=ledger.cache_dir())
    view = builder.view(edition.number, case, edition.published_at)  # its links, as stored
    history = builder.history(view)

    files: dict[Path, bytes] = {}  # rendered, then compared with the disk
    public = config.public_dir
    for settings in config.channels:
        if not settings.enabled:
            continue
        if isinstance(settings, FeedSettings):
            wanted = {FEED_FILES[kind] for kind in settings.formats}
            for name, data in render_feeds(history, config).items():
                if name in wanted:
                    files[public / name] = data
        elif isinstance(settings, ArchiveSettings):
            gone = () if before is None else tuple(
                c for c in before.companies if c not in case.companies)
            pages = render_archive(history, config, changed=view, expand=builder.expand,
                                   companies=gone)
            for page, text in pages.items():  # in writing order: the indexes last
                files[public / page] = text.encode("utf-8")

    def differs(path: Path) -> bool:
        try:
            return path.read_bytes() != files[path]
        except OSError:
            return True

    rewritten = tuple(path for path in files if differs(path))
    unchanged = tuple(path for path in files if path not in rewritten)
    if not dry_run:
        for path in rewritten:
            write_atomic_bytes(path, files[path])
        ledger.store_artefacts(edition.id, snapshot_artefacts(case), replace=True)
        if case.title != edition.title:
            ledger.set_edition_title(edition.id, case.title)
        log.info("republished edition #%s (%s): %s", edition.number, slug, ", ".join(changed))
    return RepublishResult(edition, changed, rewritten, unchanged, before is not None, dry_run)


__all__ = ["RepublishResult", "republish"]
