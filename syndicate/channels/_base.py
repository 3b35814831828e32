"""The channel Protocol, the job a channel receives, and what file channels share.

A channel never sees the pipeline nor the whole ledger: it gets a :class:`DeliveryJob`
(what to send, and a :class:`~._bookkeeping.Bookkeeping` where to record it) and returns
a :class:`DeliveryReport`. The settings base class lives with the config
(:class:`syndicate.config.ChannelSettings`): the config validates channel entries
without importing any channel.
"""

from __future__ import annotations

import errno
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, Protocol

from ..clock import utcnow
from ..config import ChannelSettings, Config, deadline_field
from ..errors import RenderError
from ._bookkeeping import Bookkeeping, DeliveryReport

if TYPE_CHECKING:
    from ..ledger import Edition
    from ..render.email import RenderedEmail
    from ..render.model import EditionView

__all__ = [
    "Channel",
    "ChannelSettings",
    "DeliveryJob",
    "DeliveryReport",
    "StoppedWriting",
    "check_env_name",
    "deadline_field",
    "is_transient",
    "write_once",
]



def _as_is(view: EditionView) -> EditionView:
    return view


@dataclass(frozen=True)
class DeliveryJob:
    """Everything one channel needs to deliver one edition, and no more."""

    edition: Edition
    #: The edition as readers see it, and every done edition plus this one, newest
    #: first (light views: :attr:`expand` completes one for a page that needs it). A
    #: sequence, often lazy (``render.model.LazyHistory``): read only the views you need.
    view: EditionView
    history: Sequence[EditionView]
    #: The email, rendered once per edition (kept with it: a resume resends the same).
    email: RenderedEmail
    #: Where the channel records its deliveries (``book.run(name)``: its rows, its counts).
    book: Bookkeeping
    #: Set at the channel's deadline or on SIGTERM: stop at the next safe point,
    #: leaving what is not done pending.
    stop: threading.Event = field(default_factory=threading.Event)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("syndicate.channels"))
    now: Callable[[], datetime] = utcnow
    expand: Callable[[EditionView], EditionView] = _as_is
    #: :attr:`expand` for a batch of views, their texts read in one go and not kept (None:
    #: :attr:`expand` one by one); a channel rendering thousands of pages uses this.
    expand_many: Callable[[Sequence[EditionView]], Sequence[EditionView]] | None = None


class Channel(Protocol):
    """An outbound channel, found through the ``syndicate.channels`` entry points.

    ``type_name`` is the ``type`` of its ``[[channels]]`` entries (the entry point's
    name), ``Settings`` the model of their keys; the registry builds the channel as
    ``cls(settings, config)``. ``deliver`` must be idempotent per edition: the
    bookkeeping says what was already done, so a resumed edition sends only what is
    missing.
    """

    type_name: ClassVar[str]
    Settings: ClassVar[type[ChannelSettings]]
    settings: ChannelSettings

    def __init__(self, settings: ChannelSettings, config: Config) -> None: ...

    def deliver(self, job: DeliveryJob) -> DeliveryReport: ...


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_env_name(value: str, example: str) -> str:
    """Validate a ``*_env`` setting: it names an environment variable, it is not the secret."""
    if value and not _ENV_NAME.match(value):
        raise ValueError(f"the NAME of an environment variable, e.g. {example!r}")
    return value


# Write errors worth retrying on the next resume; anything else (permissions, read-only
# file system, missing mount) needs the operator.
_TRANSIENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EAGAIN, errno.EINTR, errno.EBUSY, errno.EIO}
)


def is_transient(exc: OSError) -> bool:
    """Whether a write error may pass by itself (retry on resume) or needs the operator."""
    return exc.errno in _TRANSIENT_ERRNOS


class StoppedWriting(Exception):
    """Raised by a ``write()`` of :func:`write_once` that saw ``job.stop`` between two files:
    what is written stays written, the row stays pending, a resume writes the rest."""


def write_once(job: DeliveryJob, name: str, what: str, where: str,
               write: Callable[[], str]) -> DeliveryReport:
    """Deliver a channel that writes files once per edition (``feed``, ``archive``).

    One row per edition (recipient ''): a row already 'sent' is not redone on resume, a
    'failed' one waits for ``retry-failed``. ``write()`` renders and writes, returning
    the detail to record; a broken template (:class:`RenderError`) is a permanent
    failure, a write error is permanent unless :func:`is_transient`, in which case the
    row stays pending for the next resume. ``name`` is the channel's, ``what`` names
    the files in messages, ``where`` the folder they go to.
    """
    book = job.book.run(name)
    delivery = book.row()
    done = book.settled(delivery, f"{what} already written")
    if done is not None:
        return done
    try:
        detail = write()
    except StoppedWriting as exc:
        book.retry_later(delivery, str(exc))
        # Info: whoever stopped it (the deadline, SIGTERM, a broken ledger) said so already.
        job.log.info("channel %s: %s", name, exc)
        return book.report(str(exc))
    except RenderError as exc:
        book.failed(delivery, str(exc))
        job.log.error("channel %s: %s", name, exc)
        return book.report(str(exc))
    except OSError as exc:
        message = f"cannot write the {what} in {where}: {exc}"
        if is_transient(exc):
            book.retry_later(delivery, message)
        else:
            book.failed(delivery, message)
        job.log.error("channel %s: %s", name, message)
        return book.report(message)
    book.sent(delivery, detail)
    return book.report(detail)
