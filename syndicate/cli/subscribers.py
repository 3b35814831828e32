"""``syndicate subscribers ...``: add, import, list, remove and export subscribers.

The import reads the whole CSV before touching the ledger: a file that is not
a CSV with an ``email`` column (or not UTF-8, or malformed) imports nothing,
so an operator never ends up with half a file imported and no way to tell
which half. Valid rows of a readable file are imported even when other rows
are invalid; those are reported with their line numbers.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from ..app import App, import_subscriber_csv
from ..csv_cells import CsvImportError, CsvRow, decode_csv, neutralize, read_subscriber_csv
from ..errors import SubscriberExists
from ..ledger import SUBSCRIBER_STATUSES, LedgerPort, Subscriber
from ._group import AppContext, cli, pass_app

EXPORT_COLUMNS = ("email", "name", "status", "source", "created_at", "updated_at")


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CsvImportError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return decode_csv(data, str(path))


@cli.group("subscribers")
def subscribers_group() -> None:
    """The subscriber list: add, import, list, remove, export."""


@subscribers_group.command("add")
@click.argument("address")
@click.option("--name", default=None, help="Display name (used in the greeting and To:).")
@pass_app
def add_cmd(app: AppContext, address: str, name: str | None) -> None:
    """Add ADDRESS as an active subscriber."""
    with App(app.config).open_ledger() as ledger:
        try:
            subscriber = ledger.add_subscriber(address, name=name, status="active", source="cli")
        except SubscriberExists as exc:
            status = getattr(exc.subscriber, "status", "?")
            raise click.ClickException(f"{exc.email} is already a subscriber ({status})") from None
    click.echo(f"added {subscriber.email}")


@subscribers_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@pass_app
def import_cmd(app: AppContext, file: Path) -> None:
    """Import FILE.csv (a header row with an 'email' column, optional 'name').

    Reports how many were added, already present and invalid (with their line
    numbers). A file that is not such a CSV imports nothing and exits with 1.
    """
    text = _read_text(file)
    with App(app.config).open_ledger() as ledger:
        for line in import_subscriber_csv(ledger, text, str(file)):
            click.echo(line)


_STATUS_CHOICE = click.Choice([*SUBSCRIBER_STATUSES, "all"])


def _iter(ledger: LedgerPort, status: str) -> Iterator[Subscriber]:
    return ledger.iter_subscribers(None if status == "all" else status)


def _row(subscriber: Subscriber) -> dict[str, str | None]:
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "status": subscriber.status,
        "source": subscriber.source,
        "created_at": subscriber.created_at.isoformat(),
        "updated_at": subscriber.updated_at.isoformat(),
    }


@subscribers_group.command("list")
@click.option("--status", type=_STATUS_CHOICE, default="all", show_default=True,
              help="Only subscribers with this status.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_app
def list_cmd(app: AppContext, status: str, as_json: bool) -> None:
    """List subscribers in sign-up order (streamed: fine for 100,000 of them)."""
    out = sys.stdout
    with App(app.config).open_ledger() as ledger:
        if as_json:
            # Written item by item so a long list never sits in memory.
            out.write("[")
            count = 0
            for count, subscriber in enumerate(_iter(ledger, status), 1):
                out.write(("," if count > 1 else "") + "\n  "
                          + json.dumps(_row(subscriber), ensure_ascii=False))
            out.write("\n]\n" if count else "]\n")
            return
        total = 0
        for subscriber in _iter(ledger, status):
            total += 1
            name = f"  {subscriber.name}" if subscriber.name else ""
            out.write(f"{subscriber.email}  [{subscriber.status}]{name}\n")
        click.echo(f"{total} subscriber{'s' if total != 1 else ''}"
                   + ("" if status == "all" else f" ({status})"), err=True)


@subscribers_group.command("remove")
@click.argument("address")
@pass_app
def remove_cmd(app: AppContext, address: str) -> None:
    """Delete ADDRESS from the list (its past deliveries stay recorded).

    To stop sending while keeping the record, prefer the unsubscribe link.
    """
    with App(app.config).open_ledger() as ledger:
        if not ledger.remove_subscriber(address):
            raise click.ClickException(f"{address.strip()} is not a subscriber")
    click.echo(f"removed {address.strip()}")


@subscribers_group.command("export")
@click.option("--status", type=_STATUS_CHOICE, default="all", show_default=True,
              help="Only subscribers with this status.")
@pass_app
def export_cmd(app: AppContext, status: str) -> None:
    """Write the subscribers as CSV to stdout (re-importable: email,name,...).

    A cell that a spreadsheet would run as a formula (starting with = + - @, tab
    or CR) is written with a leading ' (OWASP); `subscribers import` removes it.
    """
    out = sys.stdout
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    with App(app.config).open_ledger() as ledger:
        for subscriber in _iter(ledger, status):
            row = _row(subscriber)
            writer.writerow([neutralize(row[column] or "") for column in EXPORT_COLUMNS])
    out.flush()


__all__ = ["CsvImportError", "CsvRow", "read_subscriber_csv", "subscribers_group"]


@subscribers_group.command("pending-confirmations")
@click.option("--all", "show_all", is_flag=True,
              help="Also the sent and failed ones (kept 30 days).")
@pass_app
def pending_confirmations_cmd(app: AppContext, show_all: bool) -> None:
    """The confirmation emails waiting in the outbox (oldest request first).

    The web form only records them; `syndicate serve` and `syndicate run` send
    them in the background. Shows each one's attempts, next attempt and last answer.
    """
    with App(app.config).open_ledger() as ledger:
        rows = ledger.confirmations(None if show_all else "pending")
    for row in rows:
        when = f"requested {row.requested_at:%Y-%m-%d %H:%M:%S}Z"
        state: str = row.status
        if row.status == "pending":
            due = f"{row.due_at:%Y-%m-%d %H:%M:%S}Z"
            state += f", being sent (lease until {due})" if row.claimed_by else f", next {due}"
        answer = f"  {row.response}" if row.response else ""
        click.echo(f"{row.email}  [{state}]  {when}  attempts {row.attempts}{answer}")
    click.echo(f"{len(rows)} confirmation email{'s' if len(rows) != 1 else ''}"
               + ("" if show_all else " pending"), err=True)
