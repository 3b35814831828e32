"""The ``outbox`` channel: each active subscriber's email written to a Maildir.

The messages are exactly what the ``smtp`` channel would send (same MIME, same
headers, personalised unsubscribe link), built the same way (:mod:`._mailing`),
so the outbox doubles as a preview of a real send: open the folder with any mail
client (``mutt -f var/outbox``) or read the files. With no active subscriber,
one sample copy goes to ``[publish] test_address``.

One delivery row per recipient, created before anything is written; rows already
'sent' are not written again on resume (a crash between writing a file and
recording it can leave one duplicate file, never a missing one).

Unsubscribe links are signed with ``SYNDICATE_SECRET`` when it is set. Without it
the outbox still works, signing with a local secret kept in the ledger (see
:func:`syndicate.tokens.outbox_secret`); it says so in the log, because
``syndicate serve`` and the smtp channel need the environment secret.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator

from ..config import ChannelSettings, Config
from ..errors import SyndicateError
from ..ledger import Subscriber
from ..tokens import outbox_secret
from ..transport.maildir import MaildirWriter
from ._base import DeliveryJob, DeliveryReport, is_transient
from ._mailing import MailChannelSettings, Mailing, MailSender, Progress, check_address


class OutboxSettings(MailChannelSettings):
    """``type = "outbox"``: the email for each active subscriber, written to a Maildir."""

    path: Path = Field(
        Path("../var/outbox"),
        description="Maildir folder the messages are written to (created if missing; "
        "relative to the config file). Messages land in its new/ subfolder.",
    )
    from_address: str = Field(
        "",
        alias="from",
        description="Sender, an address optionally with a display name; empty: "
        "'[site] title <[site] email>'. Use the smtp channel's `from` to preview a real send.",
    )

    @field_validator("path", mode="before")
    @classmethod
    def _path(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("a non-empty path")
            return Path(value)
        return value

    @field_validator("from_address")
    @classmethod
    def _from(cls, value: str) -> str:
        if value:
            check_address(value, display_name=True)
        return value


def outbox_folder(settings: OutboxSettings, resolve: Callable[[Path], Path]) -> Path:
    """The Maildir of an outbox channel; ``resolve``: ``Config.resolve`` (relative
    paths are relative to the config file)."""
    return resolve(settings.path)


def outbox_sender(settings: OutboxSettings, site_title: str, site_email: str) -> MailSender:
    """Who an outbox channel's mail comes from: its ``from``, else the site's name and
    address. Also the sender of the confirmation emails when there is no smtp channel."""
    title = site_title.replace('"', "'")
    return settings.mail_sender(settings.from_address or f'"{title}" <{site_email}>')


class OutboxChannel:
    type_name: ClassVar[str] = "outbox"
    Settings: ClassVar[type[ChannelSettings]] = OutboxSettings

    def __init__(self, settings: OutboxSettings, config: Config) -> None:
        self.settings = settings
        self.config = config

    @property
    def folder(self) -> Path:
        return outbox_folder(self.settings, self.config.resolve)

    def sender(self) -> MailSender:
        return outbox_sender(self.settings, self.config.site.title, self.config.site.email)

    def deliver(self, job: DeliveryJob) -> DeliveryReport:
        name = self.settings.name
        book = job.book.run(name)
        mailing = Mailing(job, self.config, self.sender())
        try:
            mailing.start(secret=outbox_secret(job.book, logger=job.log))
        except (SyndicateError, ValueError) as exc:
            job.log.error("channel %s: %s", name, exc)
            return DeliveryReport(name, failed=1, detail=str(exc))
        book.create_for_subscribers()
        before = book.counts()
        empty = not sum(before.values())  # a row has one of the three statuses counted
        sample = self._sample_address(job, empty)
        if empty:
            # Nobody was subscribed when the edition went out: one sample copy, so the
            # operator sees what subscribers will get. On resume the row exists.
            book.row(sample)
        # Rows already written before this run count as skipped.
        already = before["sent"]
        try:
            box = MaildirWriter(self.folder).open()
        except OSError as exc:
            detail = f"cannot open the Maildir {self.folder}: {exc}"
            job.log.error("channel %s: %s", name, detail)
            return book.report(detail, skipped_before=already)
        detail = ""
        with Progress(f"{name} edition #{job.edition.number}", book.pending_count(),
                      job.log) as progress:
            for delivery in book.pending():
                if job.stop.is_set():
                    break
                if delivery.recipient == sample:
                    subscriber: Subscriber | None = _sample_subscriber(sample, job)
                else:
                    subscriber = book.recipient(delivery)  # records a skip if not active
                if subscriber is None:
                    progress.advance("skipped")
                    continue
                try:
                    key = box.add(mailing.message(subscriber, delivery_id=delivery.id))
                except OSError as exc:
                    detail = f"cannot write to the Maildir {self.folder}: {exc}"
                    if is_transient(exc):
                        book.retry_later(delivery, detail)
                    else:
                        book.failed(delivery, detail)
                    job.log.error("channel %s: %s", name, detail)
                    break  # a disk problem stops the channel; the rest stays pending
                book.sent(delivery, f"maildir new/{key}")
                progress.advance("sent")
        if not detail:
            detail = f"{book.tally.sent} message(s) written to {self.folder}"
        return book.report(detail, skipped_before=already)

    def _sample_address(self, job: DeliveryJob, empty: bool) -> str:
        """``test_address``, whose row is the sample copy unless it is an active subscriber
        (``empty``: the channel has no row for the edition)."""
        address = self.config.publish.test_address
        if empty:
            # No row at all: nobody was active when the rows were made, so neither was
            # test_address; no need to look it up (the lookup validates the address,
            # which loads email_validator: most of a first publish's mail cost).
            return address
        subscriber = job.book.subscriber(address)
        return address if subscriber is None or subscriber.status != "active" else ""


def _sample_subscriber(address: str, job: DeliveryJob) -> Subscriber:
    now = job.now()
    return Subscriber(id=0, email=address, name=None, status="active", source="sample",
                      created_at=now, updated_at=now)


__all__ = ["OutboxChannel", "OutboxSettings", "outbox_folder", "outbox_sender"]
