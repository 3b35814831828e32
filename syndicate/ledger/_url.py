"""Where a ledger is: a plain file path or a URL, parsed in one place.

Accepted (SQLAlchemy's spelling, so that operators can copy a URL between tools):

- a plain path, ``var/syndicate.db`` or ``/srv/news/syndicate.db``: a SQLite file;
- ``sqlite:///var/syndicate.db``: a SQLite file, relative path (three slashes);
- ``sqlite:////srv/news/syndicate.db``: a SQLite file, absolute path (four slashes);
- ``postgresql://user@host:port/database`` (or ``postgres://``): a PostgreSQL database
  (:mod:`._postgres`). No password in it, as a rule: it comes from the environment
  variable named by ``?password_env=NAME`` (which ``[storage] database_password_env``
  adds, see ``Config.ledger_url``), else from libpq's ``PGPASSWORD`` / ``~/.pgpass``.
  Other query parameters are libpq's own (``sslmode=require``…) and passed on.

A relative path is used as given (relative to the working directory, like SQLAlchemy);
the configuration resolves the paths of its file against its folder before they get
here (see ``Config.ledger_url``). Anything else is refused with one line naming the
scheme: a ledger URL in the wrong place must not silently become a file called
``mysql:``. Passwords never appear in the messages.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import LedgerURLError

#: The schemes :func:`~syndicate.ledger.open_ledger` knows ("or a file path" besides).
SCHEMES: tuple[str, ...] = ("sqlite", "postgresql")
#: Spellings accepted for PostgreSQL (libpq takes both).
POSTGRES_SCHEMES: tuple[str, ...] = ("postgresql", "postgres")
#: The query parameter naming the environment variable that holds the password.
PASSWORD_ENV = "password_env"

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


class LedgerLocation(NamedTuple):  # a named tuple: every light command parses a location
    """A parsed ledger location: its ``scheme`` (``"sqlite"`` for a plain path too), the
    database file for the file-backed schemes, and ``shown``, the text for messages.
    For PostgreSQL: ``conninfo``, the URL libpq gets (without ``password_env``), and
    ``password_env``, the variable holding the password (None: libpq's own sources)."""

    scheme: str
    path: Path | None
    shown: str
    conninfo: str | None = None
    password_env: str | None = None


def shown_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for error messages and logs)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    return url.replace(f":{password}@", ":***@", 1)


def is_url(value: str) -> bool:
    """Whether ``value`` is written as a URL (``scheme://…``) rather than a path."""
    return _SCHEME.match(value) is not None


def parse_ledger_url(location: str | os.PathLike[str]) -> LedgerLocation:
    """Parse a ledger path or URL; raise :class:`~syndicate.errors.LedgerURLError` (one
    line, starting ``ledger URL '…':``) for anything :func:`open_ledger` cannot open."""
    if not isinstance(location, str):
        path = Path(location)
        return LedgerLocation("sqlite", path, str(path))
    shown = shown_url(location)
    if not location.strip():
        raise LedgerURLError(location, "empty (expected a file path or sqlite:///path)")
    match = _SCHEME.match(location)
    if match is None:
        return LedgerLocation("sqlite", Path(location), location)
    scheme = match.group(1).lower()
    if scheme in POSTGRES_SCHEMES:
        return _postgres_location(location, shown)
    if scheme not in SCHEMES:
        raise LedgerURLError(
            shown, f"unsupported scheme {scheme!r} (supported: {', '.join(SCHEMES)}, "
            "or a file path)")
    rest = location[match.end():]
    # sqlite://<host>/<path>: SQLite has no host, so the path starts right after "//",
    # and "sqlite:///a" is "a" (relative), "sqlite:////a" is "/a" (absolute).
    if rest and not rest.startswith("/"):
        raise LedgerURLError(
            shown, "a SQLite URL has no host (expected sqlite:///relative/path or "
            "sqlite:////absolute/path)")
    name = rest[1:] if rest else ""
    if "?" in name or "#" in name:
        raise LedgerURLError(shown, "query parameters are not supported (the ledger sets "
                             "its own SQLite options)")
    if not name or name == ":memory:" or name.startswith("file:"):
        raise LedgerURLError(
            shown, "expected a database file (sqlite:///relative/path or "
            "sqlite:////absolute/path): the ledger is shared by processes, so it is a file")
    return LedgerLocation("sqlite", Path(name), shown)


def _postgres_location(location: str, shown: str) -> LedgerLocation:
    """``postgresql://user[:password]@host[:port]/database[?params]``, checked enough to
    refuse in one line what libpq would refuse later with a less clear message."""
    try:
        parts = urlsplit(location)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise LedgerURLError(shown, f"not a valid PostgreSQL URL ({exc})") from None
    database = parts.path.lstrip("/")
    if not database or "/" in database:
        raise LedgerURLError(shown, "expected postgresql://user@host:port/database "
                             "(the database name is missing)")
    params = parse_qsl(parts.query, keep_blank_values=True)
    password_env = None
    for key, value in params:
        if key == PASSWORD_ENV:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
                raise LedgerURLError(shown, f"{PASSWORD_ENV}={value!r} is not an environment "
                                     "variable name")
            password_env = value
    rest = urlencode([(k, v) for k, v in params if k != PASSWORD_ENV])
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, rest, parts.fragment))
    return LedgerLocation("postgresql", None, shown, conninfo, password_env)


def display_postgres(location: LedgerLocation) -> str:
    """``postgresql://user@host:port/db`` for messages: no password, no parameters."""
    parts = urlsplit(location.conninfo or "")
    user = f"{parts.username}@" if parts.username else ""
    host = parts.hostname or "localhost"
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    return f"postgresql://{user}{host}{port}{parts.path}"


__all__ = ["PASSWORD_ENV", "POSTGRES_SCHEMES", "SCHEMES", "LedgerLocation", "display_postgres",
           "is_url", "parse_ledger_url", "shown_url"]
