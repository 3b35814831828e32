"""The web app on a real waitress server on 127.0.0.1, for test_web*.py.

:class:`Site` writes a project config whose ``base_url`` is the server, starts
``make_server`` in a thread on a real SQLite ledger and an outbox Maildir, and
posts the subscribe form as a person would (with a form token served 10 s ago).
Each test module makes its ``make_site`` fixture with :func:`site_factory`.
"""

from __future__ import annotations

import email
import mailbox
import re
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

import requests

from syndicate.ledger import Ledger
from syndicate.web import make_server, stop_server
from syndicate.web.formguard import form_token

if TYPE_CHECKING:
    from conftest import Project

SECRET = b"test-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Site:
    """A project configured with base_url = this server, and the server running."""

    def __init__(self, project: Project, *, now: Any = None,
                 channels: list[dict[str, Any]] | None = None,
                 subscribe: dict[str, Any] | None = None, base_path: str = "",
                 admin: dict[str, Any] | None = None,
                 analytics: dict[str, Any] | None = None,
                 sections: dict[str, Any] | None = None) -> None:
        self.project = project
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/{base_path}"
        self.now = now or (lambda: datetime.now(UTC))
        sections = {**({"subscribe": subscribe} if subscribe else {}), **(sections or {})}
        if admin:
            sections["admin"] = admin
        if analytics:
            sections["analytics"] = analytics
        project.write_config(
            site={"base_url": self.base},
            channels=channels or [{"type": "feed"}, {"type": "archive"},
                                  {"type": "outbox", "path": "../var/outbox"}],
            **sections,
        )
        self.config = project.config()
        self.ledger = Ledger(self.config.database)
        kwargs = {"now": now} if now else {}
        self.server = make_server(self.config, secret=SECRET, port=self.port, threads=2,
                                  asyncore_loop_timeout=0.05, **kwargs)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return self.base + path.lstrip("/")

    def form(self, email: str, **fields: str) -> dict[str, str]:
        """What the subscribe form posts, with a token served 10 s ago (a person)."""
        issued = self.now().timestamp() - 10
        return {"email": email, "form_token": form_token(SECRET, issued), **fields}

    def subscribe(self, email: str, **fields: str) -> requests.Response:
        return requests.post(self.url("/subscribe"), data=self.form(email, **fields), timeout=5)

    def status(self, address: str) -> str | None:
        sub = self.ledger.get_subscriber(address)
        return sub.status if sub else None

    def send_confirmations(self) -> int:
        """What the background sender of `serve` does, done now: the app only records."""
        from syndicate.confirmations import ConfirmationSender

        clock = {"now": self.now} if self.now else {}
        return ConfirmationSender(self.config, SECRET, ledger=self.ledger, **clock).run_once()

    def outbox(self) -> list[EmailMessage]:
        self.send_confirmations()
        box = mailbox.Maildir(self.project.var / "outbox", factory=None, create=True)
        return [email.message_from_bytes(m.as_bytes(), policy=policy.default)  # type: ignore[misc]
                for m in box]

    def close(self) -> None:
        stop_server(self.server)
        self.thread.join(5)
        assert not self.thread.is_alive()
        self.ledger.close()


def site_factory(project: Project) -> Iterator[Any]:
    """The body of the ``make_site`` fixture of the test modules: a factory of
    running sites, all closed at the end."""
    made: list[Site] = []

    def factory(**kwargs: Any) -> Site:
        site = Site(project, **kwargs)
        made.append(site)
        return site

    yield factory
    for site in made:
        site.close()


def confirmation_link(message: EmailMessage) -> str:
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    (link,) = re.findall(r"http://\S+/confirm/\S+", text)
    return link
