"""The schedule (``/admin/schedule``): edit ``[schedule]`` cron, time zone, grace and
catch-up; "Prévisualiser" shows the next 10 slots of the edit without saving.

An edit is checked exactly as ``syndicate config check`` checks a file
(:func:`syndicate.app.config_problems` on the edited TOML, written to a temporary file
beside the config so relative paths resolve the same), and written with tomlkit, so
the file keeps its comments and layout, atomically. Problems the file already had
(a secret missing from this process's environment...) are shown but do not block an
edit that adds none. A file changed on disk since the page was loaded is not
overwritten (its version stamp travels in the form). The running ``syndicate run``
sees the new file through its hot reload (the file is polled every second).
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import tomlkit
from flask import Blueprint, Response, g, redirect, request, url_for

from ...app import config_problems, load_config
from ...config import Config
from ...errors import ConfigError
from ...fs import write_atomic
from ...schedule import describe, next_slots, zone
from .base import Console, PageSpec

log = logging.getLogger("syndicate.web.admin")

SLOTS = 10
FIELDS = ("cron", "timezone", "misfire_grace", "catch_up")


@dataclass(frozen=True)
class Check:
    """An edited config, checked: the problems it adds, those the file already had, and
    (when it loads) its next slots."""

    text: str
    problems: list[str]
    known: list[str]
    slots: list[str]


def file_stamp(path: Path) -> str:
    st = path.stat()
    return f"{st.st_mtime_ns}-{st.st_size}"


def edited(source: str, values: dict[str, str]) -> str:
    """The config text ``source`` with ``[schedule]`` set to ``values`` (tomlkit: every
    comment and every other key kept as written)."""
    doc = tomlkit.parse(source)
    table = doc.get("schedule")
    if table is None:
        table = tomlkit.table()
        doc["schedule"] = table
    for key in FIELDS:
        value = values[key]
        table[key] = int(value) if key == "misfire_grace" and value.isdigit() else value
    return tomlkit.dumps(doc)


def check_text(path: Path, text: str, now: datetime) -> Check:
    """``config check`` of ``text`` as if it were the file at ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".check")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        config, problems = config_problems(Path(tmp))
    finally:
        Path(tmp).unlink(missing_ok=True)
    problems = [p.replace(tmp, str(path)) for p in problems]
    _old, known = config_problems(path)
    slots = _slots(config, now) if config is not None else []
    return Check(text, [p for p in problems if p not in known] if config else problems,
                 known, slots)


def _slots(config: Config, now: datetime) -> list[str]:
    tz = zone(config.schedule.timezone)
    return [describe(slot, tz) for slot in next_slots(config, now, SLOTS)]


def register(bp: Blueprint, console: Console) -> None:
    path = console.config.path

    def current() -> Config:
        try:
            return load_config(path)
        except ConfigError:
            return console.config

    def show(values: dict[str, str], *, check: Check | None = None, message: str = "",
             stamp: str | None = None, code: int = 200, stale: bool = False) -> Response:
        config = current()
        return console.render(
            "schedule.html.j2", title="Calendrier", code=code, values=values, check=check,
            message=message, stale=stale, stamp=stamp or file_stamp(path), path=str(path),
            current=_slots(config, console.now()), schedule=config.schedule,
            action=url_for("admin.edit_schedule"))

    def values_of(config: Config) -> dict[str, str]:
        s = config.schedule
        return {"cron": s.cron, "timezone": s.timezone,
                "misfire_grace": _duration(path, s.misfire_grace), "catch_up": s.catch_up}

    @bp.route("/schedule", methods=["GET"])
    def schedule() -> Response:
        saved = request.args.get("done") == "saved"
        return show(values_of(current()),
                    message="Calendrier enregistré\u00a0: le démon le relit dans la seconde."
                    if saved else "")

    @bp.route("/schedule", methods=["POST"], endpoint="edit_schedule")
    def edit_schedule() -> Response:
        values = {key: " ".join((request.form.get(key) or "").split())[:200] for key in FIELDS}
        stamp = request.form.get("stamp") or ""
        if file_stamp(path) != stamp:
            return show(values_of(current()), code=409, stale=True)
        source = path.read_text(encoding="utf-8")
        check = check_text(path, edited(source, values), console.now())
        if request.form.get("action") != "save" or check.problems:
            return show(values, check=check, stamp=stamp, code=400 if check.problems else 200)
        if file_stamp(path) != stamp:  # changed while we checked
            return show(values_of(current()), code=409, stale=True)
        write_atomic(path, check.text, mode=path.stat().st_mode & 0o777)
        log.info("admin %s: schedule saved (cron %r, %s, grace %s, catch-up %s)",
                 g.admin_session.operator, *(values[key] for key in FIELDS))
        return redirect(url_for("admin.schedule", done="saved"), code=303)  # type: ignore[return-value]


def _duration(path: Path, seconds: float) -> str:
    """The grace as the file writes it when it can be read, else in seconds."""
    try:
        doc = tomlkit.parse(path.read_text(encoding="utf-8"))
        raw = doc.get("schedule", {}).get("misfire_grace")
        if raw is not None:
            return str(raw)
    except (OSError, ValueError):
        pass
    return str(int(seconds))


PAGE = PageSpec("Calendrier", "admin.schedule", register)
