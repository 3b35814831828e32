"""``syndicate deliveries`` and ``syndicate retry-failed``: operating the sends.

``deliveries [EDITION]`` shows, per channel, how many deliveries were sent,
failed, bounced (no such address: the subscriber is now 'bounced'), skipped (the
subscriber was no longer active) and are still pending, then the failures with
the server's answer. ``retry-failed [EDITION]`` puts the
failed rows (not the bounced or skipped ones: outcomes, not failures) back to
pending and finishes the edition through the pipeline's resume path, so exactly
those are sent again, nothing else. Its exit status is that of ``resume``.

EDITION is an edition number (``3`` or ``#3``) or a case study slug; without
it, ``deliveries`` shows the recent editions and ``retry-failed`` retries
every edition.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import click

from ..app import App
from ..bounces import edition_rates
from ..channels import pause_reason, resume_paused
from ..errors import SyndicateError
from ..ledger import BOUNCED, SKIPPED, Delivery, Edition, LedgerPort
from ._group import AppContext, cli, pass_app
from ._signals import graceful_stop
from .publish import _setup_logging, ledger_write_errors, report, stopped_early


def find_edition(ledger: LedgerPort, ref: str) -> Edition:
    """The edition named by ``ref``: its number (``3``, ``#3``) or its slug."""
    text = ref.strip().removeprefix("#")
    if text.isdigit():
        number = int(text)
        for edition in ledger.editions(status=None):
            if edition.number == number:
                return edition
    else:
        found = ledger.get_edition(text)
        if found is not None:
            return found
    raise SyndicateError(f"no edition {ref!r} (give its number, e.g. 3, or its slug; "
                         "see `syndicate status`)")


@dataclass(frozen=True)
class ChannelCounts:
    channel: str
    sent: int
    failed: int
    bounced: int
    skipped: int
    pending: int


def is_skip(delivery: Delivery) -> bool:
    return delivery.response.startswith(SKIPPED)


def is_bounce(delivery: Delivery) -> bool:
    return delivery.response.startswith(BOUNCED)


def channel_counts(ledger: LedgerPort, edition: Edition,
                   failures: list[Delivery]) -> list[ChannelCounts]:
    """Per-channel counts; 'failed' rows that are bounces or skips are counted apart."""
    skipped: dict[str, int] = {}
    bounced: dict[str, int] = {}
    for delivery in failures:
        if is_skip(delivery):
            skipped[delivery.channel] = skipped.get(delivery.channel, 0) + 1
        elif is_bounce(delivery):
            bounced[delivery.channel] = bounced.get(delivery.channel, 0) + 1
    return [
        ChannelCounts(channel, counts["sent"],
                      counts["failed"] - skipped.get(channel, 0) - bounced.get(channel, 0),
                      bounced.get(channel, 0), skipped.get(channel, 0), counts["pending"])
        for channel, counts in ledger.delivery_counts(edition.id).items()
    ]


def _row(d: Delivery) -> dict[str, object]:
    return {"channel": d.channel, "recipient": d.recipient, "code": d.code,
            "response": d.response.removeprefix(BOUNCED).strip() if is_bounce(d)
            else d.response, "attempts": d.attempts, "updated_at": d.updated_at.isoformat()}


def _edition_data(ledger: LedgerPort, edition: Edition) -> dict[str, object]:
    failures = ledger.failed_deliveries(edition.id)
    return {
        "number": edition.number,
        "slug": edition.slug,
        "status": edition.status,
        "published_at": edition.published_at.isoformat(),
        "channels": [vars(c) for c in channel_counts(ledger, edition, failures)],
        "failures": [_row(d) for d in failures if not is_skip(d) and not is_bounce(d)],
        "bounces": [_row(d) for d in failures if is_bounce(d)],
        # Reported after the send, by mail or a provider (syndicate.bounces).
        "later": edition_rates(ledger.delivery_event_counts(edition.id)),
        # The circuit breaker: why its sending is paused ("" if it is not).
        "paused": pause_reason(ledger, edition.id),
    }


def _print_edition(data: dict[str, object], limit: int) -> None:
    flag = "" if data["status"] == "done" else f", {data['status']}"
    click.echo(f"edition #{data['number']} {data['slug']} "
               f"({str(data['published_at'])[:16].replace('T', ' ')}{flag})")
    channels = data["channels"]
    assert isinstance(channels, list)
    if not channels:
        click.echo("  no deliveries recorded")
        return
    width = max(len("channel"), *(len(c["channel"]) for c in channels))
    columns = ("sent", "failed", "bounced", "skipped", "pending")
    click.echo(f"  {'channel':<{width}}" + "".join(f"  {name:>7}" for name in columns))
    for c in channels:
        click.echo(f"  {c['channel']:<{width}}" + "".join(f"  {c[name]:>7}" for name in columns))
    if data["paused"]:
        click.echo(f"  PAUSED: {data['paused']}; after looking: "
                   f"syndicate edition resume {data['slug']}")
    later = data["later"]
    assert isinstance(later, dict)
    if later["bounced"] or later["complaints"]:
        click.echo(f"  reported later: {later['bounced']} bounced ({later['bounce_rate']}%: "
                   f"{later['hard']} hard, {later['soft']} soft), {later['complaints']} "
                   f"complaint(s) ({later['complaint_rate']}%) of {later['sent']} sent")
    for key in ("failures", "bounces"):
        rows = data[key]
        assert isinstance(rows, list)
        if not rows:
            continue
        click.echo(f"  {key}:")
        for f in rows[:limit]:
            who = f["recipient"] or "(whole channel)"
            code = f"{f['code']} " if f["code"] is not None else ""
            tries = f"{f['attempts']} attempt{'s' if f['attempts'] != 1 else ''}"
            click.echo(f"    {f['channel']}  {who}  {code}{f['response']}  ({tries})")
        if len(rows) > limit:
            click.echo(f"    … and {len(rows) - limit} more (--limit, or --json)")


@cli.command("deliveries")
@click.argument("edition", required=False)
@click.option("--recent", default=5, show_default=True,
              help="Without EDITION: how many recent editions to show.")
@click.option("--limit", default=50, show_default=True,
              help="Failures listed per edition (all of them with --json).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def deliveries_cmd(app: AppContext, edition: str | None, recent: int, limit: int,
                   as_json: bool) -> None:
    """Per-channel counts (sent, failed, bounced, skipped, pending) and the failures."""
    with App(app.config).open_ledger() as ledger:
        if edition is not None:
            editions = [find_edition(ledger, edition)]
        else:
            editions = ledger.editions(status=None, limit=recent)
        data = [_edition_data(ledger, e) for e in editions]
    if as_json:
        click.echo(json.dumps(data if edition is None else data[0], ensure_ascii=False,
                              indent=2))
        return
    if not data:
        click.echo("no edition published yet")
    for index, item in enumerate(data):
        if index:
            click.echo()
        _print_edition(item, limit)


@cli.command("retry-failed")
@click.argument("edition", required=False)
@click.option("--channel", default=None, help="Only the failures of this channel (its name).")
@click.option("-v", "--verbose", is_flag=True, help="Log each step.")
@pass_app
def retry_failed_cmd(app: AppContext, edition: str | None, channel: str | None,
                     verbose: bool) -> None:
    """Send the failed deliveries again (of EDITION, or of every edition).

    The failed rows go back to pending and the edition is finished like a resumed
    one: only those are sent; everything already sent stays sent. Bounces and skips
    are outcomes, not failures: left alone. Exit status: 0 complete, 2 some still
    fail, 75 incomplete (will be resumed).
    """
    from .. import pipeline  # the publishing stack: only to resend

    _setup_logging(verbose)
    config = app.config
    for problem in config.missing_secrets():
        raise click.ClickException(problem)
    # The publisher lock for the reset and the resend: a running `syndicate run`
    # (or another retry) must not be delivering the same edition meanwhile.
    with (ledger_write_errors(), App(config).open_ledger() as ledger,
          ledger.publisher_lock("syndicate retry-failed")):
        target = find_edition(ledger, edition) if edition is not None else None
        reset = ledger.reset_failed(target.id if target else None, channel)
        where = f" of edition #{target.number}" if target else ""
        if not reset:
            click.echo(f"no failed deliveries{where}"
                       + (f" on channel {channel}" if channel else ""))
            return
        with graceful_stop() as stop:
            results = pipeline.resume(config, stop=stop.event, lock=False,  # held above
                                      ledger=ledger)
    # The outcome first (cron reads the first line), then what was retried.
    status = max(stopped_early(config, stop.signal, results), report(results))
    click.echo(f"retried: {reset} failed deliver{'y' if reset == 1 else 'ies'}{where} back "
               "to pending")
    if status:
        raise click.exceptions.Exit(status)


@cli.group("edition")
def edition_group() -> None:
    """One edition's sending: resume it after the circuit breaker paused it."""


@edition_group.command("resume")
@click.argument("edition")
@click.option("--no-send", is_flag=True,
              help="Only lift the pause; the next `resume`, `run` or worker sends the rest.")
@click.option("-v", "--verbose", is_flag=True, help="Log each step.")
@pass_app
def edition_resume_cmd(app: AppContext, edition: str, no_send: bool, verbose: bool) -> None:
    """Lift the pause the circuit breaker put on EDITION (its number or slug) and finish
    sending it. From now on its rates are judged on what is reported after this moment.

    Exit status: 0 complete, 2 some deliveries failed, 75 incomplete (will be resumed).
    """
    from .. import pipeline  # the publishing stack: only to send

    _setup_logging(verbose)
    config = app.config
    if not no_send:
        for problem in config.missing_secrets():
            raise click.ClickException(problem)
    # The publisher lock, as retry-failed: a running `syndicate run` must not be
    # delivering the edition meanwhile.
    with (ledger_write_errors(), App(config).open_ledger() as ledger,
          ledger.publisher_lock("syndicate edition resume")):
        target = find_edition(ledger, edition)
        why = resume_paused(ledger, target.id)
        if not why:
            click.echo(f"edition #{target.number} {target.slug} is not paused")
            return
        click.echo(f"edition #{target.number} {target.slug} resumed (it was paused: {why})")
        if no_send or target.status == "done":
            return
        with graceful_stop() as stop:
            results = pipeline.resume(config, stop=stop.event, lock=False,  # held above
                                      ledger=ledger)
    status = max(stopped_early(config, stop.signal, results), report(results))
    if status:
        raise click.exceptions.Exit(status)
