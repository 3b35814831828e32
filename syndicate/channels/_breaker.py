"""The circuit breaker: an edition whose bounces or complaints run high stops sending.

While an edition is being sent, bounces and complaints reported later (by mail or by a
provider: ``delivery_events``) are counted against the edition's messages sent. Above
``[bounces] pause_bounce_rate`` or ``pause_complaint_rate``, once at least
``pause_min_sent`` messages are sent (1 bounce in 3 proves nothing), the edition is
*paused*: the smtp channel, in the publisher or in ``syndicate worker``, takes no new row
of it (what is in flight finishes and is recorded; the rest stays pending, nothing is
lost). ``status`` and ``deliveries`` show it. Only the operator resumes it
(``syndicate edition resume``), after looking.

The state is one ledger meta key per edition (both backends have it, no migration):
``{"paused": "<why>", "base": {...}}``. Resuming records the counts at that moment as
the *base*: from then on the rates are judged on what happened since (the same evidence
does not pause it again at once; a list still bouncing does, after another sample).
:func:`verdict` is the pure decision; the rest reads and writes the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # its thresholds only: `status` reads a pause without pydantic
    import logging

    from ..config import BouncesConfig

#: Rows a channel takes between two looks at the edition's rates (each look is two
#: aggregate queries over the edition's rows): bounds the overshoot and the cost.
CHECK_EVERY = 50


class BreakerStore(Protocol):
    def get_meta(self, key: str, default: str | None = None) -> str | None: ...

    def set_meta(self, key: str, value: str | None) -> None: ...

    def delivery_event_counts(self, edition_id: int) -> dict[str, int]: ...


@dataclass(frozen=True)
class BreakerState:
    """``paused``: why the edition is paused ("" if not); ``base``: the counts when the
    operator last resumed it (empty: never paused)."""

    paused: str = ""
    base: dict[str, int] = field(default_factory=dict)


def key(edition_id: int) -> str:
    return f"edition-breaker:{edition_id}"


def state(store: BreakerStore, edition_id: int) -> BreakerState:
    raw = store.get_meta(key(edition_id))
    if not raw:
        return BreakerState()  # most editions: never paused (status reads five of them)
    import json

    try:
        data = json.loads(raw)
        return BreakerState(str(data.get("paused", "")),
                            {str(k): int(v) for k, v in dict(data.get("base", {})).items()})
    except (ValueError, TypeError, AttributeError):  # a hand-edited key: paused, say why
        return BreakerState(f"unreadable breaker state {raw[:60]!r}")


def _save(store: BreakerStore, edition_id: int, value: BreakerState) -> None:
    import json

    store.set_meta(key(edition_id), json.dumps({"paused": value.paused, "base": value.base},
                                               sort_keys=True))


def verdict(counts: dict[str, int], base: dict[str, int], settings: BouncesConfig
            ) -> str | None:
    """Why sending must pause, or None: rates since ``base`` against the thresholds."""
    sent = counts.get("sent", 0) - base.get("sent", 0)
    if sent < settings.pause_min_sent:
        return None
    bounced = counts.get("bounced", 0) - base.get("bounced", 0)
    complaints = counts.get("complaint", 0) - base.get("complaint", 0)
    if bounced / sent > settings.pause_bounce_rate:
        return (f"bounce rate {100 * bounced / sent:.1f}% ({bounced} of {sent} sent) above "
                f"pause_bounce_rate {100 * settings.pause_bounce_rate:g}%")
    if complaints / sent > settings.pause_complaint_rate:
        return (f"complaint rate {100 * complaints / sent:.2f}% ({complaints} of {sent} sent) "
                f"above pause_complaint_rate {100 * settings.pause_complaint_rate:g}%")
    return None


def check(store: BreakerStore, edition_id: int, number: int, settings: BouncesConfig,
          log: logging.Logger) -> str:
    """Why the edition is paused ("" if it may send): paused earlier, or tripping now (one
    error line, and the pause is stored)."""
    current = state(store, edition_id)
    if current.paused:
        return current.paused
    why = verdict(store.delivery_event_counts(edition_id), current.base, settings)
    if why is None:
        return ""
    _save(store, edition_id, BreakerState(why, current.base))
    log.error("edition #%s paused: %s; its unsent messages stay pending until "
              "`syndicate edition resume` (docs/deliverability.md, circuit breaker)",
              number, why)
    return why


def edition_rates(counts: dict[str, int]) -> dict[str, float | int]:
    """Bounce and complaint counts and rates (per cent of the messages sent) of an
    edition, from :meth:`~syndicate.ledger.DeliveryEvents.delivery_event_counts` (what
    ``status`` and ``deliveries`` show; :func:`verdict` judges the same counts)."""
    sent = counts.get("sent", 0)
    bounced, complaints = counts.get("bounced", 0), counts.get("complaint", 0)
    return {
        "sent": sent, "bounced": bounced, "hard": counts.get("hard", 0),
        "soft": counts.get("soft", 0), "complaints": complaints,
        "bounce_rate": round(100 * bounced / sent, 2) if sent else 0.0,
        "complaint_rate": round(100 * complaints / sent, 3) if sent else 0.0,
    }


def pause_reason(store: BreakerStore, edition_id: int) -> str:
    """Why the edition is paused, or "" (no rate computed: for status displays)."""
    return state(store, edition_id).paused


def resume_paused(store: BreakerStore, edition_id: int) -> str:
    """Lift the pause; return why it was paused ("" if it was not). The rates are judged
    from now on against the counts of this moment."""
    current = state(store, edition_id)
    if not current.paused:
        return ""
    _save(store, edition_id, BreakerState("", store.delivery_event_counts(edition_id)))
    return current.paused


__all__ = ["CHECK_EVERY", "BreakerState", "BreakerStore", "check", "edition_rates", "key",
           "pause_reason", "resume_paused", "state", "verdict"]
