"""The queue (``/admin/queue``): the unpublished case studies in publishing order, drafts
included; move up or down, set a rank, mark draft or ready.

The same library as ``syndicate queue`` and ``corpus check``: the order is
:func:`syndicate.corpus.load` minus the published slugs; each change goes through
:func:`syndicate.corpus.edit_queue`, which rewrites only the ``position:`` and
``status:`` lines of the files concerned (atomically), refuses an edit that
``corpus check`` would refuse, and refuses everything if the corpus folder changed on
disk since the page was loaded (the page's :func:`~syndicate.corpus.corpus_stamp`
travels in each form). Positions are the ones the queue already holds, handed out in
the new order (:func:`~syndicate.corpus.renumber`): published files are never touched.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, g, redirect, request, url_for

from ...corpus import CaseStudy, corpus_stamp, edit_queue, load, renumber
from ...errors import CorpusChanged, CorpusError
from .base import Console, PageSpec

log = logging.getLogger("syndicate.web.admin")

MESSAGES = {
    "moved": "Ordre enregistré\u00a0: {slug}.",
    "draft": "{slug} est maintenant un brouillon (il ne sera pas publié).",
    "ready": "{slug} est prêt\u00a0: il reprend sa place dans la file.",
    "same": "Rien à changer pour {slug}.",
}


def unpublished(console: Console) -> list[CaseStudy]:
    """The case studies not yet published, drafts included, in queue order."""
    published = set(console.ledger.published_slugs())
    return [case for case in load(console.config.corpus_dir) if case.slug not in published]


def register(bp: Blueprint, console: Console) -> None:
    folder = console.config.corpus_dir

    def show(message: str = "", problems: list[str] | None = None, code: int = 200) -> Response:
        stamp = corpus_stamp(folder)
        try:
            cases = unpublished(console)
        except CorpusError as exc:
            cases, problems = [], [*(problems or []), *exc.problems]
        ranks = {}
        rank = 0
        for case in cases:
            if not case.is_draft:
                rank += 1
                ranks[case.slug] = rank
        return console.render(
            "queue.html.j2", title="File d’attente", code=code, cases=cases, ranks=ranks,
            stamp=stamp, message=message, problems=problems or [],
            action=url_for("admin.edit_queue"), folder=str(folder))

    @bp.route("/queue", methods=["GET"])
    def queue() -> Response:
        done = request.args.get("done")
        slug = (request.args.get("slug") or "")[:120]
        return show(MESSAGES[done].format(slug=slug) if done in MESSAGES else "")

    @bp.route("/queue", methods=["POST"], endpoint="edit_queue")
    def edit_queue_view() -> Response:
        slug = (request.form.get("slug") or "")[:120]
        action = request.form.get("action") or ""
        stamp = request.form.get("stamp") or ""
        try:
            cases = unpublished(console)
        except CorpusError as exc:
            return show(problems=exc.problems, code=409)
        order = [case.slug for case in cases]
        by_slug = {case.slug: case for case in cases}
        if slug not in by_slug:
            return show(problems=[f"{slug or '(rien)'} n’est pas dans la file (publié ou "
                                  "supprimé entre-temps)."], code=409)
        index = order.index(slug)
        changes: dict[str, tuple[int, str]]
        if action in ("draft", "ready"):
            changes = {slug: (by_slug[slug].position, action)}
            done = action
        else:
            if action == "up" and index > 0:
                order.insert(index - 1, order.pop(index))
            elif action == "down" and index < len(order) - 1:
                order.insert(index + 1, order.pop(index))
            elif action == "place":
                wanted = request.form.get("rank", type=int)
                if wanted is None or not 1 <= wanted <= len(order):
                    return show(problems=[f"Rang invalide\u00a0: donnez un nombre entre 1 et "
                                          f"{len(order)}."], code=400)
                order.insert(wanted - 1, order.pop(index))
            elif action not in ("up", "down"):
                return show(problems=["Action inconnue."], code=400)
            changes = {s: (p, by_slug[s].status) for s, p in renumber(cases, order).items()}
            done = "moved"
        try:
            written = edit_queue(folder, changes, stamp)
        except CorpusChanged:
            return show(problems=["Le corpus a changé sur le disque depuis l’affichage de "
                                  "cette page (un autre opérateur, un import ou une édition à "
                                  "la main)\u00a0: rien n’a été écrit. Voici la file à jour\u00a0;"
                                  " recommencez."], code=409)
        except CorpusError as exc:
            return show(problems=["Refusé\u00a0: le corpus ne passerait pas «\u00a0corpus "
                                  "check\u00a0». Rien n’a été écrit.", *exc.problems], code=409)
        log.info("admin %s: queue %s %s (%d file(s) rewritten)", g.admin_session.operator,
                 action, slug, len(written))
        return redirect(url_for("admin.queue", done=done if written else "same",  # type: ignore[return-value]
                                slug=slug), code=303)


PAGE = PageSpec("File d’attente", "admin.queue", register)
