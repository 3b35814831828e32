"""The edition record (a frozen dataclass), defined when first used.

Apart from :mod:`._records` for the reason :mod:`._mail_records` gives: ``queue`` and
``schedule`` read the published slugs and never build an edition. The ledger's modules
reach it as ``_records.Edition``, the others as ``syndicate.ledger.Edition``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ._statuses import EditionStatus


@dataclass(frozen=True)
class Edition:
    """One published (or being published) case study.

    ``published_at`` is the edition's date of record, fixed at claim time so the
    email, the archive page and the feeds, rendered now or on a resume days
    later, all show the same date. ``status`` says whether delivery finished;
    ``done_at`` is when it did (None before).
    """

    id: int
    number: int
    slot: str
    slug: str
    title: str
    url: str
    status: EditionStatus
    claimed_at: datetime
    published_at: datetime
    done_at: datetime | None = None


__all__ = ["Edition"]
