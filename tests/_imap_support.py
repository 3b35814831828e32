"""A throwaway IMAP server for the tests: Debian's Dovecot on 127.0.0.1, IMAP over TLS.

:class:`Dovecot` writes a minimal configuration in a fresh temp folder (its own
``base_dir``, log, passwd-file with one mailbox user, a CA and a server certificate for
127.0.0.1 made with ``cryptography``) and starts ``dovecot -F`` in the foreground as a
child process, listening for IMAPS on a free port. Clients verify the server against
:attr:`Dovecot.ca_file`, as a real deployment verifies its provider's certificate.

Under root the mailbox belongs to an unprivileged user (``nobody``: Dovecot refuses to
access mail as root), and the temp folder is world-traversable so Dovecot's own
unprivileged login processes reach it. Where Dovecot is absent the tests that need it skip
with a visible reason, except under CI (``$CI`` set), where that is a failure.

:meth:`Dovecot.append` puts a message into a folder over IMAP (as a mail delivery
would); :meth:`Dovecot.kick` ends every open session of the user server-side (a dropped
connection mid-fetch); :meth:`Dovecot.folder` lists a folder's messages.
"""

from __future__ import annotations

import datetime as dt
import imaplib
import ipaddress
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

USER, PASSWORD = "bounces", "imap-s3cret"
UNPRIVILEGED = "nobody"


def find_dovecot() -> str | None:
    return shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None)


def unavailable_reason() -> str | None:
    if find_dovecot() is None:
        return "Dovecot not found (apt-get install dovecot-imapd; .ci/run installs it)"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 and localhost, valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "syndicate test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return ca_file, cert_file, key_file


class Dovecot:
    """One running Dovecot; :meth:`stop` ends it and removes everything."""

    def __init__(self, executable: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="syndicate-imap-"))
        os.chmod(self.root, 0o755)  # Dovecot's login processes run as dovenull
        self.port = _free_port()
        self.user, self.password = USER, PASSWORD
        self.ca_file, cert, key = _certificates(self.root)
        os.chmod(key, 0o600)
        home = self.root / "home"
        home.mkdir()
        if os.geteuid() == 0:
            owner = pwd.getpwnam(UNPRIVILEGED)
            uid, gid = owner.pw_uid, owner.pw_gid
            os.chown(home, uid, gid)
            users = ""
        else:  # an unprivileged developer: Dovecot runs every process as that user
            uid, gid = os.getuid(), os.getgid()
            me = pwd.getpwuid(uid).pw_name
            users = f"default_internal_user = {me}\ndefault_login_user = {me}\n"
        (self.root / "passwd").write_text(
            f"{USER}:{{PLAIN}}{PASSWORD}:{uid}:{gid}::{home}\n")
        os.chmod(self.root / "passwd", 0o644)
        (self.root / "run").mkdir()
        self.log = self.root / "dovecot.log"
        self.config = self.root / "dovecot.conf"
        self.config.write_text(f"""\
protocols = imap
listen = 127.0.0.1
base_dir = {self.root}/run
state_dir = {self.root}/run
log_path = {self.log}
{users}first_valid_uid = {min(uid, 500)}
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
auth_mechanisms = plain
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {self.root}/passwd
}}
userdb {{
  driver = passwd-file
  args = {self.root}/passwd
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.port}
  }}
}}
""")
        self._executable = executable
        self._process = subprocess.Popen(
            [executable, "-F", "-c", str(self.config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode() if self._process.stderr else ""
                log = self.log.read_text() if self.log.exists() else ""
                raise RuntimeError(f"dovecot exited ({self._process.returncode}): {err}{log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"dovecot did not listen on 127.0.0.1:{self.port} in 30 s")

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def connect(self) -> imaplib.IMAP4_SSL:
        imap = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=self.ssl_context(),
                                 timeout=30)
        imap.login(self.user, self.password)
        return imap

    def append(self, message: bytes, folder: str = "INBOX") -> None:
        """Deliver ``message`` into ``folder`` (created when missing)."""
        imap = self.connect()
        try:
            if folder != "INBOX":
                imap.create(folder)
            status, detail = imap.append(folder, None, None, message)
            assert status == "OK", detail
        finally:
            imap.logout()

    def folder(self, name: str = "INBOX") -> list[bytes]:
        """The messages of folder ``name`` (empty when it does not exist)."""
        imap = self.connect()
        try:
            status, _ = imap.select(name, readonly=True)
            if status != "OK":
                return []
            _, data = imap.search(None, "ALL")
            messages = []
            for number in data[0].split():
                _, parts = imap.fetch(number, "(BODY.PEEK[])")
                first = parts[0]
                assert isinstance(first, tuple)
                messages.append(first[1])
            return messages
        finally:
            imap.logout()

    def kick(self) -> None:
        """End every open IMAP session of the user (the server drops the connection)."""
        doveadm = shutil.which("doveadm") or "/usr/bin/doveadm"
        subprocess.run([doveadm, "-c", str(self.config), "kick", self.user],
                       capture_output=True, timeout=30)

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=20)
        if self._process.stderr:
            self._process.stderr.close()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[Dovecot]:
    """The session's Dovecot (one per xdist worker); skips, or fails under CI, without it."""
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the IMAP tests: {reason}")
        pytest.skip(reason)
    executable = find_dovecot()
    assert executable is not None
    server = Dovecot(executable)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def imap_server(dovecot_server: Dovecot) -> Dovecot:
    """The session's Dovecot with the user's mailbox emptied (every folder deleted)."""
    imap = dovecot_server.connect()
    try:
        _, listing = imap.list()
        for line in listing or []:
            if not isinstance(line, bytes):
                continue
            name = line.rsplit(b' "." ', 1)[-1].strip().strip(b'"').decode()
            if name.upper() == "INBOX":
                _, count = imap.select("INBOX")
                if count and count[0] not in (b"0", None):  # "1:*" of nothing is BAD
                    imap.store("1:*", "+FLAGS", "\\Deleted")
                    imap.expunge()
                imap.close()
            else:
                imap.delete(name)
    finally:
        imap.logout()
    return dovecot_server


__all__ = ["PASSWORD", "USER", "Dovecot", "dovecot_server", "imap_server",
           "unavailable_reason"]
