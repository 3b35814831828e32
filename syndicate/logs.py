"""Logging for long-running commands: one line per event, for people or for machines.

``text`` (the default on a terminal and in journald) reads::

    2026-11-24 08:00:01 INFO  published edition #3: la-decision (feed: 1 sent; ...)

``json`` gives one JSON object per line with ``time`` (ISO 8601, UTC offset),
``level``, ``logger``, ``message`` and every ``extra={...}`` field the code
attached (``event``, ``slot``, ``edition``, ``counts``...), so a log shipper can
filter on ``event`` without parsing sentences. Tracebacks go in ``exc_info``
(JSON) or are indented under their line (text) so one event stays one record.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

FORMATS = ("text", "json")

# Attributes every LogRecord has; anything else came from ``extra=``.
_STANDARD = set(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {
    "message", "asctime", "taskName",
}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in vars(record).items() if key not in _STANDARD}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC).astimezone()
        data: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(_extras(record))
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``2026-11-24 08:00:01 INFO  message``; continuation lines are indented."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-5s %(message)s", "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text.replace("\n", "\n    ")


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handlers installed here, so a second setup replaces them."""


def setup_logging(
    fmt: str = "text", *, level: int = logging.INFO, stream: IO[str] | None = None
) -> logging.Logger:
    """Send the ``syndicate`` loggers to ``stream`` (stderr) in ``fmt``; return the root one.

    APScheduler's own loggers go to the same place at WARNING (its INFO lines
    repeat what the daemon says better: "Added job", "Running job"...).
    """
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}")
    handler = _Handler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    for name, lvl in (("syndicate", level), ("apscheduler", logging.WARNING)):
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if isinstance(h, _Handler)]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(lvl)
        logger.propagate = False
    return logging.getLogger("syndicate")
