"""Queue edits from the console: positions and statuses rewritten in place."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from ..digest import sha256
from ..errors import CorpusChanged, CorpusError
from ..fs import write_atomic
from ._case import _FRONT, CaseStudy, _cross_file_problems, _parse, _Problems, corpus_files
from ._load import check


def next_position(corpus_dir: Path) -> int:
    """The queue position after the last one in use (new imports go to the end)."""
    cases, _problems = check(corpus_dir)
    return max((case.position for case in cases), default=0) + 1


# --------------------------------------------------------------------------- queue edits
# The console's queue page (syndicate.web.admin.queue) reorders and marks drafts
# through these: only the ``position:`` and ``status:`` lines of the front matter are
# rewritten (the rest of the file, comments included, is kept byte for byte), every
# rewritten file is validated as ``corpus check`` validates it before anything is
# written, and each is written atomically.


def corpus_stamp(directory: Path) -> str:
    """A version stamp of the whole corpus folder: every file's name, mtime (ns) and size.
    Any edit, new or removed file changes it."""
    digest = sha256()
    for path in corpus_files(directory):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        digest.update(f"{path.name}\0{st.st_mtime_ns}\0{st.st_size}\n".encode())
    return digest.hexdigest()[:32]


def renumber(queue: Sequence[CaseStudy], order: Sequence[str]) -> dict[str, int]:
    """The positions of ``queue``'s case studies once in ``order`` (their slugs, every one
    once): the positions they hold now, sorted, handed out in the new order, so no
    published case study's position is taken and no file outside the queue changes."""
    if sorted(order) != sorted(case.slug for case in queue):
        raise ValueError("order must list the queue's slugs, each once")
    positions = sorted(case.position for case in queue)
    return dict(zip(order, positions, strict=True))


_FRONT_KEY = r"^({key}:[ \t]*)([^#\n]*?)([ \t]+#[^\n]*)?$"


def _set_front(text: str, key: str, value: str) -> str:
    """``text`` with the top-level front-matter ``key`` set to ``value`` (its trailing
    comment kept), or the key added at the end of the front matter."""
    lines = text.split("\n")
    start = 1 if lines and lines[0].lstrip("\ufeff").rstrip() == _FRONT else None
    if start is None:
        return text
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() == _FRONT), None)
    if end is None:
        return text
    pattern = re.compile(_FRONT_KEY.format(key=re.escape(key)))
    for index in range(start, end):
        match = pattern.match(lines[index])
        if match:
            lines[index] = f"{match.group(1) or key + ': '}{value}{match.group(3) or ''}"
            return "\n".join(lines)
    lines.insert(end, f"{key}: {value}")
    return "\n".join(lines)


def edit_queue(directory: Path, changes: Mapping[str, tuple[int, str]], stamp: str) -> list[Path]:
    """Set ``(position, status)`` of the case studies named by slug; return the files
    rewritten (only those whose values change).

    ``stamp`` is :func:`corpus_stamp` when the operator looked: if the folder changed
    since, :class:`~syndicate.errors.CorpusChanged` is raised and nothing is written.
    The corpus must pass ``corpus check`` before and after the edit (same validation:
    each rewritten file parsed, positions and slugs unique), else
    :class:`~syndicate.errors.CorpusError` with the problems, and nothing is written.
    """
    if corpus_stamp(directory) != stamp:
        raise CorpusChanged([f"{directory}: the corpus changed on disk since the page was "
                             "loaded; nothing was written"])
    cases, problems = check(directory)
    if problems:
        raise CorpusError(problems)
    by_slug = {case.slug: case for case in cases}
    unknown = sorted(set(changes) - set(by_slug))
    if unknown:
        raise CorpusChanged([f"{directory}: no case study {slug!r}" for slug in unknown])
    rewritten: dict[Path, str] = {}
    for slug, (position, status) in changes.items():
        case = by_slug[slug]
        if (case.position, case.status) == (position, status) or case.path is None:
            continue
        text = case.path.read_text(encoding="utf-8")
        text = _set_front(_set_front(text, "position", str(position)), "status", status)
        found = _Problems(case.path)
        parsed = _parse(case.path, text.encode("utf-8"), found)
        if parsed is None or found.items:
            problems.extend(found.items)
            continue
        by_slug[slug] = replace(parsed, path=case.path)
        rewritten[case.path] = text
    problems.extend(_cross_file_problems(list(by_slug.values())))
    if problems:
        raise CorpusError(problems)
    if corpus_stamp(directory) != stamp:  # changed while we read: still nothing written
        raise CorpusChanged([f"{directory}: the corpus changed on disk during the edit; "
                             "nothing was written"])
    for path, text in rewritten.items():
        write_atomic(path, text)
    return list(rewritten)


