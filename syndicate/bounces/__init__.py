"""Bounces (DSN, RFC 3464) and complaints (ARF, RFC 5965) that arrive after the send.

- :mod:`.parse`: bytes -> :class:`Report` (pure; stdlib email parser + flufl.bounce);
- :mod:`.attribute`: which delivery a report is about (VERP token checked by
  signature; fallback the quoted Message-ID and the failed recipient);
- :mod:`.events`: :func:`record_event`, **the one entry point** every source calls
  with a frozen :class:`~syndicate.ledger.DeliveryEvent` (the mailbox here; provider
  webhooks too), and the policy (hard, soft within a window, complaint);
- :mod:`.mailbox`: one message -> its outcome, the :class:`Source` protocol and the
  Maildir source; :mod:`.imap` the IMAP source; :mod:`.poller` picks the configured
  one (``syndicate bounces fetch``, polled by ``run``).
- :mod:`.providers`: provider event webhooks, the pure part (SNS, Mailgun and SendGrid
  signatures, Postmark basic auth, payloads -> events, attribution); the routes are
  :mod:`syndicate.web.hooks`.

A layer above the ledger and the config (it reads the ledger port), below the
commands; nothing here sends mail.
"""

from __future__ import annotations

from ..ledger import DeliveryEvent
from .attribute import Attribution, attribute
from .events import BouncePolicy, EventOutcome, decide, edition_rates, record_event
from .mailbox import (
    PROCESSED,
    UNPARSED,
    MaildirSource,
    Source,
    SourceLost,
    Summary,
    policy_of,
    process_maildir,
    process_message,
    process_source,
)
from .parse import Failure, Report, parse_report

__all__ = [
    "PROCESSED", "UNPARSED", "Attribution", "BouncePolicy", "DeliveryEvent", "EventOutcome",
    "Failure", "MaildirSource", "Report", "Source", "SourceLost", "Summary", "attribute",
    "decide", "edition_rates", "parse_report", "policy_of", "process_maildir",
    "process_message", "process_source", "record_event",
]
