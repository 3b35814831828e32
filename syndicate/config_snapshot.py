"""The validated-config snapshot: what the light commands read, without pydantic.

``queue``, ``status``, ``schedule`` and ``corpus list``/``check`` read a handful of
settings (where the ledger, the corpus and its index are; the cron and its time zone).
Validating the whole file (:mod:`syndicate.config`: pydantic, 17 models, the channel
registry) costs more than the rest of such a command, so after a full validation the
settings they read are kept as a small file, the **snapshot**, and used as long as
the config file has the same bytes (docs/operations.md, "The validated-config
snapshot"). One source of truth: the snapshot is made from the validated
:class:`~syndicate.config.Config` (``snapshot_of``), never from the raw file, and the
paths derived from the settings (the ledger URL, the corpus folders) are computed by
:class:`ConfigPaths`, which ``Config`` inherits as well: the same code, on every run (so
they follow ``$XDG_CACHE_HOME``, ``$HOME`` and symlinks exactly as the full path does).

Where: ``$XDG_CACHE_HOME/syndicate/configs/`` (``~/.cache`` without it), one file per
config file (named by a hash of its resolved path), so it is found before the config is
parsed and a read-only config folder does not matter. A snapshot is used only when it
was written for these exact bytes (SHA-256) of the same resolved file, in the same
:data:`FORMAT`, by the same validation code (:func:`validator_stamp`); anything else
(an edit, a first run, an unreadable or foreign file) is a miss: the command validates
the file as always (same errors, word for word) and writes a new snapshot. A cache
never causes an error: a folder that cannot be written is logged (debug) and skipped.

Imports neither pydantic nor the config (``tests/test_light_commands.py`` checks it in a
subprocess); a layer of its own just above the leaves.
"""

from __future__ import annotations

import marshal
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from .digest import sha256_hex
from .errors import ConfigError


def _debug(message: str, *args: object) -> None:
    """A debug line (a snapshot missed or not written): logging is imported only then, as
    the light commands that read a snapshot log nothing otherwise."""
    import logging

    logging.getLogger("syndicate.config_snapshot").debug(message, *args)


#: Bumped whenever the snapshot's content or meaning changes: older files are misses.
#: 2: marshal instead of JSON (json costs the light commands 2 ms to import; marshal is
#: built in and only plain values are ever read from it — no code is run).
FORMAT = 2
#: The snapshot files' suffix (format 1's were ``.json``: pruned like the others).
SUFFIX = ".snapshot"
#: marshal's format belongs to the interpreter: another Python's snapshot is a miss.
_PYTHON = sys.implementation.cache_tag or sys.version
#: A snapshot not rewritten for this long is removed when another one is written (the
#: folder holds one small file per config file ever used; temporary ones accumulate).
PRUNE_AFTER = 30 * 86400
#: At most this many entries of the folder are looked at when pruning (a bounded loop).
PRUNE_SCAN = 2000

DEFAULT_CONFIG = Path("config/syndicate.toml")
CONFIG_ENV = "SYNDICATE_CONFIG"

_SQLITE_URL = "sqlite:///"


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The config file to use: ``--config``, else ``$SYNDICATE_CONFIG``, else the default."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else DEFAULT_CONFIG


class StorageSettings(Protocol):
    """What :class:`ConfigPaths` reads of ``[storage]`` (``StorageConfig`` or the snapshot's)."""

    @property
    def database(self) -> Path | str: ...  # a Path, or a URL kept as written

    @property
    def database_password_env(self) -> str | None: ...

    @property
    def corpus(self) -> Path: ...


class ScheduleSettings(Protocol):
    """What the slot listing reads of ``[schedule]`` (``ScheduleConfig`` or the snapshot's)."""

    @property
    def cron(self) -> str: ...

    @property
    def timezone(self) -> str: ...


class ConfigPaths:
    """The paths derived from the config file's location and its ``[storage]`` table.

    Inherited by :class:`~syndicate.config.Config` and :class:`ConfigSnapshot`: the one
    place these rules are written."""

    path: Path  # the config file, absolute
    storage: StorageSettings

    @property
    def folder(self) -> Path:
        return self.path.parent

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.folder / path).resolve()

    @property
    def ledger_url(self) -> str:
        """Where the ledger is, for ``syndicate.ledger.open_ledger``: a plain path resolved
        against the config's folder (as always), a ``sqlite:///relative`` URL likewise made
        ``sqlite:////absolute``, any other URL as written (its scheme is checked when the
        ledger is opened)."""
        value = self.storage.database
        if isinstance(value, Path):
            return str(self.resolve(value))
        if value[:len(_SQLITE_URL)].lower() == _SQLITE_URL:
            rest = value[len(_SQLITE_URL):]
            if rest and not rest.startswith("/") and "?" not in rest and rest != ":memory:":
                return f"{value[:len(_SQLITE_URL)]}{self.resolve(Path(rest))}"
        env = self.storage.database_password_env
        if env and value.split(":", 1)[0].lower() in ("postgresql", "postgres"):
            # The ledger reads the variable when it connects (syndicate.ledger._url).
            return f"{value}{'&' if '?' in value else '?'}password_env={env}"
        return value

    @property
    def database(self) -> Path:
        """The ledger's SQLite file (for tools and tests that read it directly); the
        application opens :attr:`ledger_url`. A ledger that is no file is a ConfigError."""
        value = self.storage.database
        if isinstance(value, Path):
            return self.resolve(value)
        url = self.ledger_url
        if url[:len(_SQLITE_URL)].lower() == _SQLITE_URL and url[len(_SQLITE_URL):]:
            return Path(url[len(_SQLITE_URL):])
        # The value is not echoed: a database URL may carry a password.
        raise ConfigError(self.path, [f"{self.path}: storage.database: not a SQLite file "
                                      "(a URL of another kind of ledger)"])

    @property
    def corpus_dir(self) -> Path:
        return self.resolve(self.storage.corpus)

    @property
    def corpus_cache_dir(self) -> Path:
        """Where the corpus index is kept: ``cache/`` beside a SQLite ledger (the ledger's
        cache folder, with the relatedness index), else ``$XDG_CACHE_HOME/syndicate``
        (``~/.cache`` without it). Nothing is written there unless its parent folder exists."""
        url = self.ledger_url  # a resolved path, or a URL (sqlite:////abs/file for SQLite)
        if isinstance(self.storage.database, Path):
            return Path(url).parent / "cache"
        if url[:len(_SQLITE_URL)].lower() == _SQLITE_URL and url[len(_SQLITE_URL):]:
            file = Path(url[len(_SQLITE_URL):].split("?", 1)[0])
            if file.is_absolute():
                return file.parent / "cache"
        return user_cache_dir()


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/syndicate`` (``~/.cache/syndicate`` without it)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "syndicate"


# This module is on every light command's path: the two sections are named tuples (defining
# a frozen dataclass compiles its methods, about a millisecond each at import on Python
# 3.11), and each record has a docstring (without one, @dataclass computes one with
# inspect.signature).
class StorageSnapshot(NamedTuple):
    """What the light commands read of ``[storage]``."""

    database: Path | str  # as validated: a Path, or a URL as written
    database_password_env: str | None
    corpus: Path


class ScheduleSnapshot(NamedTuple):
    """What ``schedule`` reads of ``[schedule]``."""

    cron: str
    timezone: str


@dataclass(frozen=True)
class ConfigSnapshot(ConfigPaths):
    """The settings of a validated config that the light commands read; its derived paths
    (:class:`ConfigPaths`) are computed as ``Config``'s are."""

    path: Path
    storage: StorageSnapshot
    schedule: ScheduleSnapshot

    def settings(self) -> dict[str, Any]:
        """The content of the snapshot file (plain values; the path is not part of it)."""
        database = self.storage.database
        return {
            "storage": {"database": str(database), "database_is_url": isinstance(database, str),
                        "database_password_env": self.storage.database_password_env,
                        "corpus": str(self.storage.corpus)},
            "schedule": {"cron": self.schedule.cron, "timezone": self.schedule.timezone},
        }

    @classmethod
    def from_settings(cls, path: Path, data: dict[str, Any]) -> ConfigSnapshot:
        """The inverse of :meth:`settings`; a malformed ``data`` raises KeyError,
        TypeError or ValueError."""
        storage, schedule = data["storage"], data["schedule"]
        database = storage["database"]
        password_env = storage["database_password_env"]
        values = (database, storage["corpus"], schedule["cron"], schedule["timezone"])
        if not all(isinstance(v, str) for v in values) or not (
                password_env is None or isinstance(password_env, str)):
            raise TypeError("a snapshot value of the wrong type")
        return cls(
            path=path,
            storage=StorageSnapshot(
                database=database if storage["database_is_url"] is True else Path(database),
                database_password_env=password_env, corpus=Path(storage["corpus"])),
            schedule=ScheduleSnapshot(cron=schedule["cron"], timezone=schedule["timezone"]),
        )


# --------------------------------------------------------------------------- the file


def snapshot_file(config_file: Path) -> Path:
    """Where the snapshot of ``config_file`` is kept (one file per resolved path)."""
    name = sha256_hex(os.fsencode(config_file.resolve()))[:32]
    return user_cache_dir() / "configs" / f"{name}{SUFFIX}"


def validator_stamp() -> list[int]:
    """Size and mtime of the modules that validate a config: a snapshot written by other
    validation code (an upgrade, an edited checkout) is a miss."""
    here = Path(__file__).parent
    stamp: list[int] = []
    for name in ("config.py", "cron.py"):
        try:
            info = (here / name).stat()
        except OSError:
            stamp += [-1, -1]
        else:
            stamp += [info.st_size, info.st_mtime_ns]
    return stamp


def _header(config_file: Path, raw: bytes) -> dict[str, Any]:
    return {"format": FORMAT, "python": _PYTHON, "config": str(config_file.resolve()),
            "sha256": sha256_hex(raw), "validator": validator_stamp()}


def load_snapshot(config_file: Path, raw: bytes) -> ConfigSnapshot | None:
    """The snapshot written after validating exactly ``raw`` (the bytes of
    ``config_file`` now), or None: then validate the file and :func:`save_snapshot`."""
    try:
        where = snapshot_file(config_file)
        data = marshal.loads(where.read_bytes())
        header = _header(config_file, raw)
        if not isinstance(data, dict) or any(data.get(k) != v for k, v in header.items()):
            _debug("config snapshot %s: not for these bytes of %s", where, config_file)
            return None
        return ConfigSnapshot.from_settings(config_file.absolute(), data["settings"])
    except FileNotFoundError:
        return None
    except (OSError, RuntimeError, ValueError, KeyError, TypeError, EOFError) as exc:
        # RuntimeError: no home folder to find ~/.cache in. A cache never fails a command.
        _debug("config snapshot of %s unreadable, validating the file: %s", config_file, exc)
        return None


def save_snapshot(config_file: Path, raw: bytes, snapshot: ConfigSnapshot) -> None:
    """Keep ``snapshot``, made by validating ``raw``, for the next runs: only if the file
    still has those bytes (an edit during the validation is a miss next time, not a stale
    hit); nothing but a debug line if the folder cannot be written."""
    try:
        if config_file.read_bytes() != raw:
            return
        where = snapshot_file(config_file)
        from .fs import write_atomic_bytes  # tempfile: only on a miss

        data = {**_header(config_file, raw), "settings": snapshot.settings()}
        write_atomic_bytes(where, marshal.dumps(data), mode=0o600)
        _prune(where.parent, keep=where)
    except (OSError, RuntimeError, ValueError) as exc:
        _debug("config snapshot of %s not written: %s", config_file, exc)


def _prune(folder: Path, keep: Path) -> None:
    """Remove the snapshots nobody rewrote for :data:`PRUNE_AFTER` seconds."""
    horizon = time.time() - PRUNE_AFTER
    with os.scandir(folder) as entries:
        for count, entry in enumerate(entries):
            if count >= PRUNE_SCAN:
                break
            if not entry.name.endswith((SUFFIX, ".json")) or entry.path == str(keep):
                continue
            try:
                if entry.stat().st_mtime < horizon:
                    os.unlink(entry.path)
            except OSError:
                continue  # another process pruned it, or it is not ours to remove


__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG",
    "FORMAT",
    "SUFFIX",
    "ConfigPaths",
    "ConfigSnapshot",
    "ScheduleSettings",
    "ScheduleSnapshot",
    "StorageSettings",
    "StorageSnapshot",
    "config_path",
    "load_snapshot",
    "save_snapshot",
    "snapshot_file",
    "user_cache_dir",
    "validator_stamp",
]
