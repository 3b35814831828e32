"""``publish-next``, ``resume``, ``queue``, ``status``, ``preview``: the publishing commands."""

from __future__ import annotations

import json
import logging
from typing import Any

import click

from ..corpus import load
from ..errors import NothingToPublish
from . import AppContext, cli, pass_app
from ._signals import graceful_stop


def _setup_logging(verbose: bool) -> None:
    from ..logs import setup_logging

    setup_logging(level=logging.INFO if verbose else logging.WARNING)


@cli.command("publish-next")
@click.option("--dry-run", is_flag=True, help="Render and report; record and write nothing.")
@click.option("-v", "--verbose", is_flag=True, help="Log each step.")
@pass_app
def publish_next(app: AppContext, dry_run: bool, verbose: bool) -> None:
    """Publish the next case study through every configured channel.

    Unfinished editions (a crash, a kill) are finished first.
    """
    from .. import pipeline

    _setup_logging(verbose)
    config = app.config
    if not dry_run:
        for problem in config.missing_secrets():
            raise click.ClickException(problem)
    with graceful_stop() as stop:  # SIGTERM / Ctrl-C: finish the messages in flight
        try:
            result = pipeline.publish(config, dry_run=dry_run, stop=stop.event)
        except NothingToPublish as exc:
            click.echo(str(exc))
            return
    click.echo(result.summary())
    if stop.signal is not None:
        raise click.exceptions.Exit(stop.exit_code)
    if not dry_run:
        click.echo(f"  {result.view.url}")
    if any(report.failed for report in result.reports):
        click.echo("some deliveries failed: see `syndicate deliveries`", err=True)
        raise click.exceptions.Exit(2)


@cli.command("resume")
@click.option("-v", "--verbose", is_flag=True, help="Log each step.")
@pass_app
def resume_cmd(app: AppContext, verbose: bool) -> None:
    """Finish unfinished editions only (nothing new is published)."""
    from .. import pipeline

    _setup_logging(verbose)
    with graceful_stop() as stop:  # SIGTERM / Ctrl-C: finish the messages in flight
        results = pipeline.resume(app.config, stop=stop.event)
    if not results:
        click.echo("nothing to resume")
    for result in results:
        click.echo(result.summary())
    if stop.signal is not None:
        raise click.exceptions.Exit(stop.exit_code)


@cli.command("queue")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_app
def queue_cmd(app: AppContext, as_json: bool) -> None:
    """List the case studies still to publish, in the order they will go out."""
    from .. import pipeline
    from ..ledger import Ledger

    config = app.config
    corpus = load(config.corpus_dir)
    with Ledger(config.database) as ledger:
        published = ledger.published_slugs()
    pending = pipeline.queue(corpus, published)
    if as_json:
        click.echo(
            json.dumps(
                [{"position": c.position, "slug": c.slug, "title": c.title} for c in pending],
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    if not pending:
        click.echo("the queue is empty: every case study is published or a draft")
    for rank, case in enumerate(pending, 1):
        click.echo(f"{rank:>3}. [{case.position}] {case.slug}  {case.title}")


@cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--limit", default=5, show_default=True, help="How many recent editions to show.")
@pass_app
def status_cmd(app: AppContext, as_json: bool, limit: int) -> None:
    """Last editions, what is next, totals; warnings about published files gone or changed."""
    from .. import pipeline
    from ..ledger import Ledger
    from ..snapshots import published_drift

    config = app.config
    corpus = load(config.corpus_dir)
    with Ledger(config.database) as ledger:
        editions = ledger.editions(status=None)
        published = {e.slug for e in editions}
        counts = {e.id: ledger.delivery_counts(e.id) for e in editions[:limit]}
        subscribers = ledger.count_subscribers("active")
        warnings = [d.message(config.corpus_dir)
                    for d in published_drift(ledger, corpus.by_slug())]
    pending = pipeline.queue(corpus, published)
    drafts = sum(1 for case in corpus if case.is_draft)
    data: dict[str, Any] = {
        "editions": [
            {
                "number": e.number,
                "slug": e.slug,
                "slot": e.slot,
                "status": e.status,
                "published_at": e.published_at.isoformat(),
                "deliveries": counts[e.id],
            }
            for e in editions[:limit]
        ],
        "next": pending[0].slug if pending else None,
        "totals": {
            "case_studies": len(corpus),
            "published": len(editions),
            "queued": len(pending),
            "drafts": drafts,
            "active_subscribers": subscribers,
        },
        "warnings": warnings,
    }
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    totals = data["totals"]
    click.echo(
        f"{totals['published']} published, {totals['queued']} queued, "
        f"{totals['drafts']} drafts, {totals['active_subscribers']} active subscribers"
    )
    click.echo(f"next: {data['next'] or '(queue empty)'}")
    for edition in data["editions"]:
        channels = ", ".join(
            f"{name} {c['sent']}/{c['sent'] + c['failed'] + c['pending']}"
            for name, c in edition["deliveries"].items()
        )
        flag = "" if edition["status"] == "done" else f" [{edition['status']}]"
        click.echo(
            f"  #{edition['number']} {edition['published_at'][:16]} {edition['slug']}"
            f"{flag}  {channels}"
        )
    for warning in warnings:
        click.echo(f"warning: {warning}")


@cli.command("preview")
@click.argument("slug", required=False)
@click.option("--out", "out_dir", default="preview", show_default=True,
              type=click.Path(file_okay=False), help="Folder to write the files into.")
@pass_app
def preview_cmd(app: AppContext, slug: str | None, out_dir: str) -> None:
    """Render a case study (default: the next one) without publishing it.

    Writes email.html, email.txt, email.eml (the full MIME message), the feed item
    (feed-item.xml, feed-item.atom.xml) and the archive page (index.html).
    """
    from pathlib import Path

    from .. import pipeline
    from ..corpus import write_atomic_bytes

    result = pipeline.preview(app.config, slug)
    folder = Path(out_dir)
    click.echo(f"preview of edition #{result.view.number}: {result.view.slug}")
    click.echo(f"  subject: {result.email.subject}")
    for name, data in result.files.items():
        write_atomic_bytes(folder / name, data)
        click.echo(f"  {folder / name}")
