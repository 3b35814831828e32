"""Editions (``/admin/editions``): every edition with its deliveries per channel; an
edition's page (``/admin/editions/<n>``) with its failures and bounces, paginated; the
"retry failed" and "resume" buttons.

The same library calls as the CLI: counts as ``syndicate deliveries`` shows them
(the ledger's counts, the failed rows split into failures, bounces and skips); "retry
failed" is ``syndicate retry-failed N`` (:meth:`~syndicate.ledger.LedgerPort.reset_failed`
then :func:`syndicate.pipeline.resume`, under the publisher lock, so a running
``syndicate run`` holding it makes the console say so rather than send twice);
"resume" is ``syndicate resume``. Both run in the request and answer when the pass is
done (each channel within its deadline).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, abort, g, redirect, request, url_for

from ... import pipeline
from ...errors import LockedError, SyndicateError
from ...ledger import BOUNCED, SKIPPED, Delivery, Edition
from ...schedule import describe, zone
from .base import Console, PageSpec

log = logging.getLogger("syndicate.web.admin")

PAGE_SIZE = 50
OUTCOMES = {"complete": "terminé", "handed": "confié aux workers",
            "failed": "des envois ont échoué", "incomplete": "incomplet (sera repris)"}
STATUS_LABELS = {"done": "terminée", "claimed": "réservée", "delivering": "en cours d’envoi"}


@dataclass(frozen=True)
class Counts:
    channel: str
    sent: int
    failed: int
    bounced: int
    skipped: int
    pending: int


def split(failures: list[Delivery]) -> tuple[list[Delivery], list[Delivery], list[Delivery]]:
    """Failed rows as ``syndicate deliveries`` reads them: failures, bounces, skips."""
    bounces = [d for d in failures if d.response.startswith(BOUNCED)]
    skips = [d for d in failures if d.response.startswith(SKIPPED)]
    return ([d for d in failures if d not in bounces and d not in skips], bounces, skips)


def channel_counts(counts: dict[str, dict[str, int]], bounces: list[Delivery],
                   skips: list[Delivery]) -> list[Counts]:
    rows = []
    for channel, c in counts.items():
        b = sum(1 for d in bounces if d.channel == channel)
        s = sum(1 for d in skips if d.channel == channel)
        rows.append(Counts(channel, c["sent"], c["failed"] - b - s, b, s, c["pending"]))
    return rows


def register(bp: Blueprint, console: Console) -> None:
    ledger = console.ledger
    config = console.config
    running = threading.Lock()  # one console send at a time in this process

    def tz_describe(edition: Edition) -> str:
        return describe(edition.published_at, zone(config.schedule.timezone))

    def find(number: str) -> Edition:
        if not number.isdigit():
            abort(404)
        for edition in ledger.editions(status=None):
            if edition.number == int(number):
                return edition
        abort(404)

    @bp.route("/editions", methods=["GET"])
    def editions() -> Response:
        every = ledger.editions(status=None)
        page = max(1, request.args.get("page", 1, type=int))
        shown = every[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
        counts = ledger.delivery_counts_many(e.id for e in shown)
        rows = [(e, tz_describe(e), counts.get(e.id, {}), url_for("admin.edition", number=e.number))
                for e in shown]
        return console.render(
            "editions.html.j2", title="Éditions", rows=rows, statuses=STATUS_LABELS,
            prev_url=url_for("admin.editions", page=page - 1) if page > 1 else None,
            next_url=url_for("admin.editions", page=page + 1)
            if len(every) > page * PAGE_SIZE else None)

    @bp.route("/editions/<number>", methods=["GET"])
    def edition(number: str) -> Response:
        found = find(number)
        failures, bounces, skips = split(ledger.failed_deliveries(found.id))
        page = max(1, request.args.get("page", 1, type=int))
        listed = failures + bounces
        shown = listed[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
        done = request.args.get("done")
        message = ""
        outcome = request.args.get("outcome") or ""
        if done == "retried":
            message = (f"{request.args.get('n', type=int) or 0} envoi(s) en échec remis en "
                       f"attente et renvoyés\u00a0: {OUTCOMES.get(outcome, '?')}.")
        elif done == "resumed":
            message = f"Reprise terminée\u00a0: {OUTCOMES.get(outcome, 'rien à reprendre')}."
        elif done == "none":
            message = "Aucun envoi en échec à relancer."
        elif done in ("locked", "error"):
            message = (request.args.get("detail") or "")[:400]
        return console.render(
            "edition.html.j2", title=f"Édition n°\u00a0{found.number}", edition=found,
            published=tz_describe(found), statuses=STATUS_LABELS,
            counts=channel_counts(ledger.delivery_counts(found.id), bounces, skips),
            failures=shown, total=len(listed), bounced=BOUNCED, message=message,
            retry_url=url_for("admin.retry_failed", number=found.number),
            resume_url=url_for("admin.resume_edition", number=found.number),
            can_retry=bool(failures), can_resume=found.status != "done",
            prev_url=url_for("admin.edition", number=found.number, page=page - 1)
            if page > 1 else None,
            next_url=url_for("admin.edition", number=found.number, page=page + 1)
            if len(listed) > page * PAGE_SIZE else None)

    def back(found: Edition, done: str, **args: Any) -> Response:
        return redirect(url_for("admin.edition", number=found.number, done=done,  # type: ignore[return-value]
                                **args), code=303)

    def refused(found: Edition) -> Response | None:
        missing = config.missing_secrets()
        if missing:
            return back(found, "error", detail="; ".join(missing))
        if not running.acquire(blocking=False):
            return back(found, "locked", detail="Un envoi lancé depuis la console est déjà "
                                                 "en cours\u00a0: attendez qu’il finisse.")
        return None

    @bp.route("/editions/<number>/retry", methods=["POST"])
    def retry_failed(number: str) -> Response:
        found = find(number)
        answer = refused(found)
        if answer is not None:
            return answer
        operator = g.admin_session.operator
        try:
            with ledger.publisher_lock(f"syndicate console ({operator}): retry-failed"):
                reset = ledger.reset_failed(found.id, None)
                if not reset:
                    return back(found, "none")
                results = pipeline.resume(config, stop=threading.Event(), lock=False,
                                          ledger=ledger, now=console.now)
        except LockedError as exc:
            return back(found, "locked", detail=f"Relance impossible\u00a0: {exc}")
        except SyndicateError as exc:
            return back(found, "error", detail=f"Relance interrompue\u00a0: {exc}")
        finally:
            running.release()
        outcome = pipeline.worst(r.outcome for r in results) if results else "complete"
        log.info("admin %s: retried %d failed deliveries of edition #%s: %s", operator, reset,
                 found.number, outcome)
        return back(found, "retried", n=reset, outcome=outcome)

    @bp.route("/editions/<number>/resume", methods=["POST"])
    def resume_edition(number: str) -> Response:
        found = find(number)
        answer = refused(found)
        if answer is not None:
            return answer
        try:
            results = pipeline.resume(config, stop=threading.Event(), ledger=ledger,
                                      now=console.now)
        except LockedError as exc:
            return back(found, "locked", detail=f"Reprise impossible\u00a0: {exc}")
        except SyndicateError as exc:
            return back(found, "error", detail=f"Reprise interrompue\u00a0: {exc}")
        finally:
            running.release()
        outcome = pipeline.worst(r.outcome for r in results) if results else ""
        log.info("admin %s: resume: %s", g.admin_session.operator,
                 ", ".join(r.summary() for r in results) or "nothing to resume")
        return back(found, "resumed", outcome=outcome or None)


PAGE = PageSpec("Éditions", "admin.editions", register)
