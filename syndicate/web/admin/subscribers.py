"""Subscribers (``/admin/subscribers``): search by address or name, filter by status,
keyset pages newest first, add and remove (POST with the CSRF token), CSV import (a
multipart upload of at most :data:`MAX_CSV` bytes, the line report of ``syndicate
subscribers import``: :func:`syndicate.app.import_subscriber_csv`), CSV export.

Pages are :meth:`~syndicate.ledger.SubscriberStore.search_subscribers` keyset pages
(``?before=<last id shown>``): the cost of a page does not grow with its depth. The
export streams :meth:`~syndicate.ledger.SubscriberStore.iter_subscribers` with the
columns of ``syndicate subscribers export``, cells safe from spreadsheet formulas.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator

from flask import Blueprint, Response, g, redirect, request, stream_with_context, url_for

from ...app import import_subscriber_csv
from ...csv_cells import CsvImportError, decode_csv, neutralize
from ...errors import InvalidAddress, SubscriberExists
from ...ledger import SUBSCRIBER_STATUSES
from .base import HEADERS, Console, PageSpec

log = logging.getLogger("syndicate.web.admin")

PAGE_SIZE = 50
#: The largest CSV the import takes, in bytes (about 40,000 subscribers).
MAX_CSV = 2 * 1024 * 1024
EXPORT_COLUMNS = ("email", "name", "status", "source", "created_at", "updated_at")
STATUS_LABELS = {"active": "actif", "pending": "en attente", "unsubscribed": "désinscrit",
                 "bounced": "rebond", "complained": "plainte"}
#: What a redirect after a POST may announce (codes, never free text in the URL).
MESSAGES = {
    "added": "Abonné ajouté\u00a0: {email}.",
    "exists": "{email} est déjà dans la liste\u00a0: rien n’a changé.",
    "invalid": "Adresse invalide\u00a0: {email}.",
    "removed": "Abonné supprimé\u00a0: {email}.",
    "absent": "{email} n’est pas dans la liste.",
}


def _filters() -> tuple[str, str | None]:
    query = (request.args.get("q") or "").strip()[:200]
    status = request.args.get("status") or None
    return query, status if status in SUBSCRIBER_STATUSES else None


def register(bp: Blueprint, console: Console) -> None:
    ledger = console.ledger

    @bp.route("/subscribers", methods=["GET"])
    def subscribers() -> Response:
        return listing()

    def listing(report: list[str] | None = None, code: int = 200) -> Response:
        query, status = _filters()
        before = request.args.get("before", type=int)
        page = ledger.search_subscribers(query, status, before_id=before, limit=PAGE_SIZE + 1)
        more = len(page) > PAGE_SIZE
        page = page[:PAGE_SIZE]
        next_url = (url_for("admin.subscribers", q=query or None, status=status,
                            before=page[-1].id) if more else None)
        done = request.args.get("done")
        message = (MESSAGES[done].format(email=(request.args.get("email") or "")[:254])
                   if done in MESSAGES else "")
        counts = ledger.subscriber_counts()
        return console.render(
            "subscribers.html.j2", title="Abonnés", code=code, subscribers=page, report=report,
            import_url=url_for("admin.import_subscribers"), max_csv=MAX_CSV // 1024, query=query,
            status=status, statuses=STATUS_LABELS, counts=counts, next_url=next_url,
            first_url=url_for("admin.subscribers", q=query or None, status=status)
            if before else None,
            message=message, export_url=url_for("admin.export_subscribers", status=status),
            add_url=url_for("admin.add_subscriber"), remove_url=url_for("admin.remove_subscriber"))

    def back(done: str, email: str) -> Response:
        return redirect(url_for("admin.subscribers", done=done, email=email),  # type: ignore[return-value]
                        code=303)

    @bp.route("/subscribers/add", methods=["POST"])
    def add_subscriber() -> Response:
        email = (request.form.get("email") or "").strip()[:254]
        name = " ".join((request.form.get("name") or "").split())[:100] or None
        try:
            added = ledger.add_subscriber(email, name=name, status="active", source="admin")
        except InvalidAddress:
            return back("invalid", email)
        except SubscriberExists:
            return back("exists", email)
        log.info("admin %s added subscriber %s", g.admin_session.operator, added.email)
        return back("added", added.email)

    @bp.route("/subscribers/remove", methods=["POST"])
    def remove_subscriber() -> Response:
        email = (request.form.get("email") or "").strip()[:254]
        if not ledger.remove_subscriber(email):
            return back("absent", email)
        log.info("admin %s removed subscriber %s", g.admin_session.operator, email)
        return back("removed", email)

    @bp.route("/subscribers/import", methods=["POST"])
    def import_subscribers() -> Response:
        # The body cap of this route is MAX_CSV (web.app.UPLOADS), not the forms' 16 KiB.
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            return listing(["Choisissez un fichier CSV à importer."], 400)
        name = "".join(c for c in upload.filename if c.isprintable())[-100:]
        data = upload.stream.read(MAX_CSV + 1)
        if len(data) > MAX_CSV:
            return listing([f"{name}: fichier trop grand (plus de {MAX_CSV // 1024} Kio)."], 413)
        try:
            report = import_subscriber_csv(ledger, decode_csv(data, name), name)
        except CsvImportError as exc:
            return listing([str(exc), "Rien n’a été importé."], 400)
        log.info("admin %s imported %s: %s", g.admin_session.operator, name, report[0])
        return listing(report)

    @bp.route("/subscribers/export.csv", methods=["GET"])
    def export_subscribers() -> Response:
        _query, status = _filters()

        def rows() -> Iterator[str]:
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\r\n")
            writer.writerow(EXPORT_COLUMNS)
            for index, sub in enumerate(ledger.iter_subscribers(status)):
                writer.writerow([neutralize(sub.email), neutralize(sub.name or ""),
                                 sub.status, neutralize(sub.source),
                                 sub.created_at.isoformat(), sub.updated_at.isoformat()])
                if index % 1000 == 999:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
            yield buffer.getvalue()

        response = Response(stream_with_context(rows()), content_type="text/csv; charset=utf-8")
        response.headers.update(HEADERS)
        response.headers["Content-Disposition"] = (
            f'attachment; filename="abonnes-{status or "tous"}.csv"')
        return response


PAGE = PageSpec("Abonnés", "admin.subscribers", register)
