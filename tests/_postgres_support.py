"""A throwaway PostgreSQL cluster for the tests: Debian's binaries, 127.0.0.1, a temp dir.

:class:`Cluster` runs ``initdb`` in a fresh temp folder and starts ``postgres`` on
127.0.0.1 with a free port and its socket in that folder; :meth:`Cluster.database`
creates an empty database (``CREATE DATABASE … TEMPLATE template0``) and returns its
URL; :meth:`Cluster.empty` hands each test the session's scratch database with the
ledger's schema dropped, which is cheaper. ``initdb`` refuses to run as
root, so under root the cluster belongs to an unprivileged user (``nobody``) and the
binaries run through ``runuser``. Durability settings are off (``fsync``,
``synchronous_commit``, ``full_page_writes``): the data is thrown away, and the tests
check the ledger's semantics, not PostgreSQL's crash safety.

Where the binaries are absent the tests that need them skip with a visible reason,
except under CI (``$CI`` set), where that is a failure: CI always runs them.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

#: The superuser of the test cluster (``initdb -U``); trust authentication on 127.0.0.1.
SUPERUSER = "postgres"
#: A role with a password (``md5``/``scram`` over TCP) for the password tests.
PASSWORD_ROLE, PASSWORD = "news", "s3cret-pw"
UNPRIVILEGED = "nobody"


def find_bindir() -> Path | None:
    """The newest Debian ``/usr/lib/postgresql/<major>/bin`` with initdb, or $PG_BINDIR."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def unavailable_reason() -> str | None:
    """Why the PostgreSQL tests cannot run here (None: they can)."""
    bindir = find_bindir()
    if bindir is None or not (bindir / "pg_ctl").exists():
        return ("PostgreSQL server binaries not found (apt-get install postgresql; "
                ".ci/run installs it)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'syndicate[postgresql]')"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """One running test cluster; :meth:`stop` removes everything."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="syndicate-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root: hand the folder to an unprivileged user
            user = pwd.getpwnam(UNPRIVILEGED)
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", UNPRIVILEGED, "--"]
        self._names = itertools.count(1)
        self._scratch: str | None = None
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust",
                  "--no-sync", "-E", "UTF8", "--locale=C.UTF-8")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root}"
                   " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
                   " -c max_connections=200")
        try:
            self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w",
                      "-t", "60", "-o", options, "start")
        except BaseException:
            self.stop()
            raise
        # One role that must give a password over TCP (the rest of the cluster trusts).
        hba = self.data / "pg_hba.conf"
        rule = f"host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n"
        hba.write_text(rule + hba.read_text())  # first match wins: ours before the defaults
        self.sql(f"CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{PASSWORD}'")
        self.sql("SELECT pg_reload_conf()")

    def _run(self, program: str, *args: str) -> None:
        exe = str(self.bindir / program) if (self.bindir / program).exists() else program
        result = subprocess.run([*self._as, exe, *args], capture_output=True, text=True,
                                timeout=120, cwd=self.root)
        if result.returncode != 0:
            log = self.root / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr}"
                               f"{result.stdout}{tail}")

    def url(self, database: str = "postgres", user: str = SUPERUSER) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type]

    def database(self, owner: str = SUPERUSER) -> str:
        """A new empty database (owned by ``owner``); its URL."""
        name = f"ledger_{os.getpid()}_{next(self._names)}"
        self.sql(f"CREATE DATABASE {name} OWNER {owner} TEMPLATE template0"
                 " STRATEGY FILE_COPY")
        return self.url(name)

    def empty(self) -> str:
        """The URL of this session's scratch database with no ledger in it: the
        ledger's schema is dropped (after ending any session a test left on it).
        Cheaper than a new database per test (~0.1 s against ~0.5 s on 2 busy cores)."""
        if self._scratch is None:
            self._scratch = self.database()
        name = self._scratch.rsplit("/", 1)[1]
        self.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                 f" WHERE datname = '{name}' AND pid != pg_backend_pid()")
        self.sql("DROP SCHEMA IF EXISTS syndicate CASCADE", database=name)
        return self._scratch

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every session is ended (clients see their
        connection die mid-statement), the server comes back on the same port with the
        same options (``postmaster.opts``) and data."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-m", "fast",
                  "-w", "-t", "60", "restart")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run([*self._as, str(self.bindir / "pg_ctl"), "-D", str(self.data),
                            "-m", "immediate", "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """The session's cluster (one per xdist worker); skips, or fails under CI, without it."""
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
        pytest.skip(reason)
    bindir = find_bindir()
    assert bindir is not None
    cluster = Cluster(bindir)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> str:
    """An empty database of the session's cluster (no ledger in it), as a ledger URL."""
    return pg_cluster.empty()


__all__ = [
    "PASSWORD",
    "PASSWORD_ROLE",
    "SUPERUSER",
    "Cluster",
    "find_bindir",
    "pg_cluster",
    "pg_url",
    "unavailable_reason",
]
