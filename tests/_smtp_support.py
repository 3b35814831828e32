"""A real SMTP server on 127.0.0.1 for the tests (aiosmtpd in a thread).

:class:`Recorder` keeps every accepted message (envelope, raw bytes, the
connection it came on) and can be told, per recipient, how to answer each
attempt: ``"250"`` (accept), any ``"4xx ..."`` / ``"5xx ..."`` reply, or
``"drop"`` (close the connection without answering), at RCPT or at DATA.
The last rule of a list repeats.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt: str
    data: bytes
    connection: int  # one number per SMTP connection, in order of arrival
    at: float

    def parse(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]

    @property
    def message_id(self) -> str:
        """The Message-ID header (read without parsing the whole message)."""
        found = re.search(rb"^Message-ID: *(\S+)", self.data, re.M | re.I)
        return found.group(1).decode() if found else ""


@dataclass
class Recorder:
    """aiosmtpd handler: records messages, answers per the rules, optionally slowly."""

    rcpt_rules: dict[str, list[str]] = field(default_factory=dict)
    data_rules: dict[str, list[str]] = field(default_factory=dict)
    delay: float = 0.0  # seconds of sleep before accepting each message
    messages: list[Received] = field(default_factory=list)
    # Every RCPT / DATA seen: (recipient, stage, answer given, connection number).
    attempts: list[tuple[str, str, str, int]] = field(default_factory=list)
    # Every DATA received, accepted or not: (recipient, Message-ID, connection number).
    data_seen: list[tuple[str, str, int]] = field(default_factory=list)
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _conn(self, session: Any) -> int:
        number = getattr(session, "test_number", None)
        if number is None:
            with self.lock:
                self.connections += 1
                number = session.test_number = self.connections
        return number

    def _answer(self, rules: dict[str, list[str]], address: str, stage: str, conn: int) -> str:
        with self.lock:
            queue = rules.get(address.lower())
            answer = "250" if not queue else (queue.pop(0) if len(queue) > 1 else queue[0])
            self.attempts.append((address.lower(), stage, answer, conn))
        return answer

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        conn = self._conn(session)
        answer = self._answer(self.rcpt_rules, address, "rcpt", conn)
        if answer == "drop":
            server.transport.close()
            return "421 dropped"
        if answer != "250":
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        conn = self._conn(session)
        rcpt = envelope.rcpt_tos[0]
        found = re.search(rb"^Message-ID: *(\S+)", envelope.original_content, re.M | re.I)
        with self.lock:
            self.data_seen.append((rcpt.lower(), found.group(1).decode() if found else "", conn))
        answer = self._answer(self.data_rules, rcpt, "data", conn)
        if answer == "drop":
            server.transport.close()
            return "421 dropped"
        if answer != "250":
            return answer
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            self.messages.append(Received(envelope.mail_from, rcpt, envelope.original_content,
                                          conn, time.monotonic()))
        return f"250 2.0.0 Ok: queued as TEST{len(self.messages)}"

    def by_rcpt(self) -> dict[str, list[Received]]:
        found: dict[str, list[Received]] = {}
        for message in self.messages:
            found.setdefault(message.rcpt.lower(), []).append(message)
        return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Authenticator:
    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user.encode(), password.encode()
        self.seen: list[tuple[bytes, bytes]] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str,
                 auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            self.seen.append((auth_data.login, auth_data.password))
            if (auth_data.login, auth_data.password) == (self.user, self.password):
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


@contextmanager
def smtp_server(handler: Recorder | None = None, **kwargs: Any) -> Iterator[tuple[Recorder, int]]:
    """Run aiosmtpd on 127.0.0.1:<free port>; yields (recorder, port)."""
    handler = handler or Recorder()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 / localhost and its key (PEM files) in ``folder``."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def server_tls_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert_file), str(key_file))
    return context


# --------------------------------------------------------------------------- a project

SECRET = "test-secret-0123456789abcdef"
FROM = "Études de cas <lettre@cas.example.org>"


def seed_corpus(project: Any) -> None:
    """Case studies in the project's corpus (the repository's, else the seed page's)."""
    from _render_support import seed_cases

    from syndicate import corpus as corpus_mod

    folder = project.root / "corpus"
    if not any(folder.glob("*.md")):
        for case in seed_cases():
            corpus_mod.save(case, folder)


def smtp_channel(port: int, **settings: Any) -> dict[str, Any]:
    """A ``[[channels]]`` entry for the test server (no TLS, fast retries)."""
    return {"type": "smtp", "host": "127.0.0.1", "port": port, "security": "none",
            "from": FROM, "concurrency": 2, "backoff": 0.02, "max_delay": 0.1,
            "timeout": 5.0, **settings}
