"""The ``webhook`` channel: one POST per edition per endpoint.

Four formats share one sending loop:

- ``json``: a documented payload (``docs/webhooks.md``) signed per the Standard
  Webhooks spec (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``);
- ``slack``: an incoming-webhook message in Block Kit;
- ``discord``: a webhook message with one embed, within Discord's limits;
- ``mastodon``: a public status (``POST /api/v1/statuses``) with a bearer token.

Delivery is recorded by the job's bookkeeping as one row per (edition, endpoint) with
recipient ''.
Retries happen in-process with exponential backoff on 5xx, 408, 429 (honouring
``Retry-After``), timeouts and connection errors; any other 4xx or a redirect is
permanent. A row already 'sent' is never re-sent; a crash between the POST and
the ledger write can re-send once, with the same ``webhook-id`` / ``Idempotency-Key``
so receivers can drop the duplicate.

The payload builders are pure functions in :mod:`._webhook_payloads`; the
identifiers, signing and retry policy here are pure too: only :class:`WebhookChannel`
does I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, ClassVar, Literal

import requests
from pydantic import Field, field_validator, model_validator

from ..config import ChannelSettings, Config, Duration, deadline_field
from ..transport import backoff_delay
from ._base import DeliveryJob, DeliveryReport, check_env_name
from ._webhook_payloads import (  # re-exported: the payloads were defined here before
    DISCORD_TOTAL,
    EVENT_TYPE,
    MASTODON_LIMIT,
    MASTODON_URL_WEIGHT,
    PAYLOADS,
    discord_payload,
    json_payload,
    mastodon_payload,
    mastodon_status,
    slack_payload,
    truncate,
)

if TYPE_CHECKING:
    from ..ledger import Delivery
    from ..render.model import EditionView
    from ._bookkeeping import DeliveryRun

__all__ = [
    "DISCORD_TOTAL",
    "EVENT_TYPE",
    "EXCERPT",
    "MASTODON_LIMIT",
    "MASTODON_URL_WEIGHT",
    "MIN_SECRET_BYTES",
    "PAYLOADS",
    "SECRET_PREFIX",
    "Format",
    "Outbound",
    "Outcome",
    "Verdict",
    "WebhookChannel",
    "WebhookSettings",
    "build_outbound",
    "classify",
    "decode_secret",
    "discord_payload",
    "idempotency_key",
    "json_payload",
    "mastodon_payload",
    "mastodon_status",
    "message_id",
    "parse_retry_after",
    "retry_delay",
    "sign",
    "slack_payload",
    "truncate",
]

Format = Literal["json", "slack", "discord", "mastodon"]
SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24  # Standard Webhooks: "at least 24 bytes (192 bits)"
EXCERPT = 300  # characters of a response kept in the ledger
_SPACES = re.compile(r"[ \t\r\n\f\v]+")


class WebhookSettings(ChannelSettings):
    """``type = "webhook"``: one endpoint (repeat the entry for several)."""

    url: str = Field(
        description="Endpoint URL: your receiver (json), the Slack or Discord incoming-webhook "
        "URL, or the Mastodon instance (e.g. 'https://mastodon.social'; "
        "/api/v1/statuses is added).",
    )
    format: Format = Field(
        "json",
        description="'json' (signed Standard Webhooks payload, see docs/webhooks.md), "
        "'slack' (Block Kit), 'discord' (embed) or 'mastodon' (status).",
    )
    secret_env: str = Field(
        "",
        description="json only: name of the environment variable holding the signing secret "
        "('whsec_' + base64 of at least 24 random bytes). Empty: requests are not signed.",
    )
    token_env: str = Field(
        "",
        description="mastodon only (required): name of the environment variable holding the "
        "access token (scope write:statuses).",
    )
    timeout: float = Field(
        10.0, gt=0, le=300, description="Seconds to wait for the connection and for the answer."
    )
    max_attempts: int = Field(
        5, ge=1, le=20, description="Attempts before the delivery is recorded as failed."
    )
    backoff: float = Field(
        2.0,
        ge=0,
        le=3600,
        description="Seconds before the first retry; doubled at each further retry.",
    )
    max_delay: float = Field(
        300.0,
        ge=0,
        le=86400,
        description="Longest wait between two attempts (caps the backoff and Retry-After).",
    )
    deadline: Duration = deadline_field(300)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+(/\S*)?$", value):
            raise ValueError("an absolute http(s) URL such as 'https://example.org/hook'")
        return value

    @field_validator("secret_env", "token_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        return check_env_name(value, "WEBHOOK_SECRET")

    @model_validator(mode="after")
    def _format_keys(self) -> WebhookSettings:
        if self.format == "mastodon" and not self.token_env:
            raise ValueError("format 'mastodon' needs token_env (the variable holding the token)")
        if self.token_env and self.format != "mastodon":
            raise ValueError("token_env is only used with format 'mastodon'")
        if self.secret_env and self.format != "json":
            raise ValueError(
                "secret_env is only used with format 'json' (Slack and Discord URLs carry "
                "their own secret)"
            )
        return self

    def secret_env_vars(self) -> dict[str, str]:
        found = {"secret_env": self.secret_env, "token_env": self.token_env}
        return {key: var for key, var in found.items() if var}


# --------------------------------------------------------------------------- identifiers


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()


def message_id(config: Config, view: EditionView, endpoint: str) -> str:
    """``webhook-id``: stable per (site, edition, endpoint) so every retry, and a
    resume after a crash, carries the same id (the receiver's idempotency key)."""
    return "msg_" + _digest(config.site.base_url, view.number, view.slug, endpoint)[:32]


def idempotency_key(config: Config, view: EditionView, endpoint: str) -> str:
    """Mastodon ``Idempotency-Key``: the same status is never posted twice."""
    return "syndicate-" + _digest("mastodon", config.site.base_url, view.number, view.slug,
                                  endpoint)[:40]


# --------------------------------------------------------------------------- signing


def decode_secret(value: str) -> bytes:
    """The key bytes of a Standard Webhooks secret (``whsec_`` + base64)."""
    raw = value.strip().removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64 (expected 'whsec_' followed by base64)") from None
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"too short: {len(key)} bytes, at least {MIN_SECRET_BYTES} required")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` (Standard Webhooks)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


# --------------------------------------------------------------------------- retry policy

Verdict = Literal["sent", "retry", "permanent"]


def classify(status: int) -> Verdict:
    """2xx sent; 408, 429 and 5xx worth retrying; any other code (3xx, 4xx) permanent.

    Redirects are not followed (Standard Webhooks: update the URL instead).
    """
    if 200 <= status < 300:
        return "sent"
    if status in (408, 429) or status >= 500:
        return "retry"
    return "permanent"


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def retry_delay(attempt: int, settings: WebhookSettings, retry_after: float | None) -> float:
    """Wait before attempt ``attempt + 1``: the server's Retry-After if given, else
    ``backoff * 2**(attempt-1)``; capped by ``max_delay`` (the transport's
    :func:`~syndicate.transport.backoff_delay`, shared by every retrying sender)."""
    return backoff_delay(attempt, settings.backoff, settings.max_delay, retry_after)


# --------------------------------------------------------------------------- sending


@dataclass(frozen=True)
class Outbound:
    """What to POST (minus the per-attempt signature headers)."""

    url: str
    body: bytes
    headers: Mapping[str, str]
    msg_id: str
    key: bytes | None = None  # Standard Webhooks signing key (json format)


@dataclass
class Outcome:
    status: Literal["sent", "failed", "stopped"]
    attempts: int = 0
    code: int | None = None
    response: str = ""
    history: list[str] = field(default_factory=list)


def _excerpt(text: str) -> str:
    # ASCII whitespace only: str.split() would also eat the NBSP of French typography.
    return truncate(_SPACES.sub(" ", text), EXCERPT)


def build_outbound(
    settings: WebhookSettings, config: Config, view: EditionView, environ: Mapping[str, str]
) -> Outbound:
    """The request for ``view``; raises ValueError naming the problem with a secret."""
    body = json.dumps(PAYLOADS[settings.format](view, config), ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")
    msg_id = message_id(config, view, settings.name)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": f"syndicate (+{config.site.base_url})",
    }
    url = settings.url
    key = None
    if settings.format == "json":
        headers["webhook-id"] = msg_id
        if settings.secret_env:
            secret = environ.get(settings.secret_env, "")
            if not secret:
                raise ValueError(f"environment variable {settings.secret_env} is not set "
                                 "(secret_env: the signing secret)")
            try:
                key = decode_secret(secret)
            except ValueError as exc:
                raise ValueError(f"{settings.secret_env}: signing secret {exc}") from None
    elif settings.format == "mastodon":
        token = environ.get(settings.token_env, "")
        if not token:
            raise ValueError(f"environment variable {settings.token_env} is not set "
                             "(token_env: the Mastodon access token)")
        headers["Authorization"] = f"Bearer {token.strip()}"
        headers["Idempotency-Key"] = idempotency_key(config, view, settings.name)
        url = settings.url.rstrip("/") + "/api/v1/statuses"
    return Outbound(url=url, body=body, headers=headers, msg_id=msg_id, key=key)


class WebhookChannel:
    type_name: ClassVar[str] = "webhook"
    Settings: ClassVar[type[ChannelSettings]] = WebhookSettings

    def __init__(self, settings: WebhookSettings, config: Config) -> None:
        self.settings = settings
        self.config = config

    def deliver(self, job: DeliveryJob) -> DeliveryReport:
        name = self.settings.name
        book = job.book.run(name)
        delivery = book.row()
        # Finished earlier: 'sent' is not re-sent, 'failed' waits for `retry-failed`.
        done = book.settled(delivery, "already sent")
        if done is not None:
            return done
        if job.stop.is_set():
            return book.report("stopped before sending")
        try:
            outbound = build_outbound(self.settings, self.config, job.view, os.environ)
        except ValueError as exc:
            book.failed(delivery, str(exc))
            return book.report(str(exc))
        with requests.Session() as session:
            outcome = self._post(session, outbound, job, book, delivery)
        if outcome.status == "sent":
            book.sent(delivery, outcome.response, outcome.code)
            job.log.info("webhook %s: sent edition #%s (%s, %d attempt(s))", name,
                         job.edition.number, outcome.code, outcome.attempts)
            return book.report(f"HTTP {outcome.code}")
        if outcome.status == "stopped":
            return book.report("stopped between attempts")
        book.failed(delivery, outcome.response, outcome.code)
        job.log.warning("webhook %s: edition #%s failed after %d attempt(s): %s", name,
                        job.edition.number, outcome.attempts, outcome.response)
        return book.report(outcome.response)

    def _post(self, session: requests.Session, out: Outbound, job: DeliveryJob,
              book: DeliveryRun, delivery: Delivery) -> Outcome:

        settings = self.settings
        outcome = Outcome("failed")
        for attempt in range(1, settings.max_attempts + 1):
            outcome.attempts = attempt
            headers = dict(out.headers)
            if out.key is not None or "webhook-id" in headers:
                # The attempt's timestamp (not the event's): receivers reject stale ones.
                timestamp = int(job.now().timestamp())
                headers["webhook-timestamp"] = str(timestamp)
                if out.key is not None:
                    headers["webhook-signature"] = sign(out.key, out.msg_id, timestamp, out.body)
            retry_after: float | None = None
            try:
                response = session.post(out.url, data=out.body, headers=headers,
                                        timeout=settings.timeout, allow_redirects=False,
                                        stream=True)
            except requests.Timeout:
                outcome.code, outcome.response = None, f"timeout after {settings.timeout:g}s"
                verdict: Verdict = "retry"
            except requests.ConnectionError as exc:
                outcome.code, outcome.response = None, _excerpt(f"connection error: {exc}")
                verdict = "retry"
            except requests.RequestException as exc:
                outcome.code, outcome.response = None, _excerpt(f"request error: {exc}")
                verdict = "permanent"
            else:
                with response:
                    text = _read_excerpt(response)
                outcome.code = response.status_code
                verdict = classify(response.status_code)
                outcome.response = text or response.reason or ""
                if 300 <= response.status_code < 400:
                    where = response.headers.get("Location", "?")
                    outcome.response = f"redirect to {where} (update the url; not followed)"
                if response.status_code in (429, 503):
                    retry_after = parse_retry_after(response.headers.get("Retry-After"),
                                                    job.now())
            outcome.history.append(f"{attempt}: {outcome.code or '-'} {outcome.response}")
            if verdict == "sent":
                outcome.status = "sent"
                return outcome
            if verdict == "permanent" or attempt == settings.max_attempts:
                break
            # Record the temporary failure now: a crash mid-retry still leaves a trace.
            book.retry_later(delivery, outcome.response, outcome.code)
            delay = retry_delay(attempt, settings, retry_after)
            job.log.info("webhook %s: attempt %d failed (%s %s), retrying in %.1fs",
                         settings.name, attempt, outcome.code or "-", outcome.response, delay)
            if job.stop.wait(delay):
                outcome.status = "stopped"
                return outcome
        outcome.status = "failed"
        return outcome


def _read_excerpt(response: requests.Response, limit: int = 4096) -> str:
    """The first bytes of the answer only: a hostile endpoint cannot make us read 1 GB."""
    try:
        raw = response.raw.read(limit, decode_content=True) if response.raw else b""
    except Exception:  # a broken body does not change the verdict of the status code
        return ""
    encoding = response.encoding or "utf-8"
    return _excerpt(raw.decode(encoding, errors="replace"))
