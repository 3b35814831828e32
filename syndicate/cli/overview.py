"""``queue`` and ``status``: what is still to publish, and how the last editions went.

Read-only, and run often (by operators, by monitoring): apart from the publishing commands
so that they import only what they read — the validated-config snapshot, the corpus index
and the ledger — never the pipeline, the channels' senders, logging setup or signal
handling (``tests/test_light_commands.py`` checks the modules they import). ``json`` is
imported only for ``--json``.
"""

from __future__ import annotations

from typing import Any

import click

from ..app import LightApp
from ..corpus import Corpus, load, queue_head, queue_values
from ..modules import module_source
from ._group import AppContext, cli, pass_app, short_lived


def _dumps(data: object) -> str:
    import json

    return json.dumps(data, ensure_ascii=False, indent=2)


def _listing(corpus: Corpus, published: set[str], as_json: bool) -> bytes:
    """The queue as ``queue`` prints it (with a final newline)."""
    # Read from the corpus index's columns: no case study record is built for a listing.
    pending = queue_values(corpus, published, "position", "slug", "title")
    if as_json:
        text = _dumps([{"position": position, "slug": slug, "title": title}
                       for position, slug, title in pending])
    elif not pending:
        text = "the queue is empty: every case study is published or a draft"
    else:  # a list, not a generator: join builds one anyway, and the comprehension is
        # twice as fast per line (10,000 lines)
        text = "\n".join([f"{rank:>3}. [{position}] {slug}  {title}"
                          for rank, (position, slug, title) in enumerate(pending, 1)])
    return (text + "\n").encode()


def _listing_version(published: set[str]) -> bytes | None:
    """What a kept listing depends on besides the corpus: this module's code and the slugs
    published (None: the source cannot be read, nothing is kept)."""
    source = module_source(__file__)
    return None if source is None else source + b"\0" + "\n".join(sorted(published)).encode()


@cli.command("queue")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_app
@short_lived()
def queue_cmd(app: AppContext, as_json: bool) -> None:
    """List the case studies still to publish, in the order they will go out."""
    settings = app.settings  # the validated-config snapshot: no pydantic, no channels
    corpus = load(settings.corpus_dir, cache_dir=settings.corpus_cache_dir)
    with LightApp(settings).open_ledger() as ledger:
        published = ledger.published_slugs()
    corpus.keep_index()  # the ledger's folder exists now (a new site)
    # Made once per state of the corpus index and set of published slugs, and kept beside
    # the index: at 10,000 case studies, reading the columns and formatting the lines cost
    # as much as the rest of the command. One write: 10,000 click.echo calls cost more.
    listing = corpus.kept("queue.json" if as_json else "queue.txt",
                          _listing_version(published),
                          lambda: _listing(corpus, published, as_json))
    click.echo(listing, nl=False)


@cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--limit", default=5, show_default=True, help="How many recent editions to show.")
@pass_app
@short_lived()
def status_cmd(app: AppContext, as_json: bool, limit: int) -> None:
    """Last editions, what is next, totals; warnings about published files gone or changed."""
    from ..channels import edition_rates, pause_reason  # the breaker's (channels: lazy)
    from ..snapshots import published_drift

    settings = app.settings  # the validated-config snapshot: no pydantic, no channels
    corpus = load(settings.corpus_dir, cache_dir=settings.corpus_cache_dir)
    with LightApp(settings).open_ledger() as ledger:
        # Every edition's (id, number, slug), records for the --limit newest only: at
        # 5,000 editions, building 5,000 records cost more than the rest of the command.
        keys = ledger.edition_keys()
        published = {slug for _, _, slug in keys}
        latest = (ledger.editions(status=None, limit=limit) if limit >= 0
                  else ledger.editions(status=None)[:limit])  # SQL has no negative LIMIT
        counts = {e.id: ledger.delivery_counts(e.id) for e in latest}
        later = {e.id: edition_rates(ledger.delivery_event_counts(e.id)) for e in latest}
        paused = {e.id: pause_reason(ledger, e.id) for e in latest}
        subscribers = ledger.count_subscribers("active")
        warnings = [d.message(settings.corpus_dir)
                    for d in published_drift(ledger, corpus, editions=keys)]
    queued, head = queue_head(corpus, published, "slug", limit=1)
    drafts = corpus.drafts()
    data: dict[str, Any] = {
        "editions": [
            {
                "number": e.number,
                "slug": e.slug,
                "slot": e.slot,
                "status": e.status,
                "published_at": e.published_at.isoformat(),
                "deliveries": counts[e.id],
                "bounces": later[e.id],
                "paused": paused[e.id],
            }
            for e in latest
        ],
        "next": head[0][0] if head else None,
        "totals": {
            "case_studies": len(corpus),
            "published": len(keys),
            "queued": queued,
            "drafts": drafts,
            "active_subscribers": subscribers,
        },
        "warnings": warnings,
    }
    if as_json:
        click.echo(_dumps(data))
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
        if edition["paused"]:
            flag += " [PAUSED: " + edition["paused"] + "]"
        b = edition["bounces"]
        reported = (f"  bounces {b['bounced']} ({b['bounce_rate']}%), complaints "
                    f"{b['complaints']} ({b['complaint_rate']}%)"
                    if b["bounced"] or b["complaints"] else "")
        click.echo(
            f"  #{edition['number']} {edition['published_at'][:16]} {edition['slug']}"
            f"{flag}  {channels}{reported}"
        )
    for warning in warnings:
        click.echo(f"warning: {warning}")
