"""The wall clock every part defaults to: aware UTC ``datetime`` (a leaf, imports nothing).

Parts take an injectable ``now`` (tests pass a fake clock); this is the real one, shared
so that nothing imports another package's private helper to get it.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, as an aware datetime in UTC."""
    return datetime.now(UTC)


__all__ = ["utcnow"]
