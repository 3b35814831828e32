"""Provider event webhooks: ``POST /hooks/ses``, ``/hooks/postmark``, ``/hooks/mailgun``,
``/hooks/sendgrid`` (docs/deliverability.md#provider-webhooks).

Each route is disabled (404) until its ``[webhooks]`` keys are set, answers every
method but POST with 405, and checks the request with
:mod:`syndicate.bounces.providers` before reading anything into the ledger: a request
that is not genuine (bad signature, stale timestamp, wrong password, a certificate
URL on another host, a topic not allowed) gets a 4xx and one log line, and changes
nothing. A genuine one is attributed and recorded through
:func:`syndicate.bounces.record_event` (idempotent by event id, so a provider's
retries count once) and answered 200 at once.

The one provider round-trip inside a request is the SNS signing certificate, fetched
over https from a host matching ``ses_cert_host`` and then kept in memory. The
confirmation of an SNS subscription (a GET of its SubscribeURL) runs in a thread of
its own, after the 200.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, abort, g, request
from werkzeug.exceptions import MethodNotAllowed

from ..bounces import BouncePolicy, record_event
from ..bounces.providers import (
    ProviderEvent,
    Rejected,
    attribute_event,
    basic_auth_ok,
    mailgun_check,
    mailgun_events,
    postmark_events,
    sendgrid_check,
    sendgrid_events,
    sendgrid_key,
    ses_events,
    sns_message,
    sns_url_ok,
    verify_sns,
)
from ..config import Config
from ..errors import ConfigError, LedgerError
from ..ledger import LedgerPort

log = logging.getLogger("syndicate.web.hooks")

PROVIDERS = ("ses", "postmark", "mailgun", "sendgrid")
#: The endpoints of the hook routes (their body limit is ``[webhooks] max_body``).
ENDPOINTS = frozenset(f"hook_{name}" for name in PROVIDERS)
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_FETCH_LIMIT = 64 * 1024  # a signing certificate is a few KB
_FETCH_TIMEOUT = 5.0
_CACHE_SIZE = 32


def https_get(url: str, context: ssl.SSLContext, limit: int = _FETCH_LIMIT) -> bytes:
    """The body of a GET of ``url`` (https, no redirect followed, at most ``limit``
    bytes); raises ``OSError`` on any failure."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection = http.client.HTTPSConnection(parts.hostname or "", parts.port or 443,
                                             timeout=_FETCH_TIMEOUT, context=context)
    try:
        connection.request("GET", path, headers={"User-Agent": "syndicate-webhooks"})
        response = connection.getresponse()
        body = response.read(limit + 1)
        if response.status != 200:
            raise OSError(f"HTTP {response.status}")
        if len(body) > limit:
            raise OSError(f"answer larger than {limit} bytes")
        return body
    except (http.client.HTTPException, ssl.SSLError) as exc:
        raise OSError(str(exc)) from None
    finally:
        connection.close()


class CertificateCache:
    """SNS signing certificates by URL, fetched once (a bounded map: SNS rotates its
    certificates rarely). A URL that could not be fetched is not tried again for
    ``retry_after`` seconds, so forged messages naming made-up paths on an SNS host
    cannot make every request a round-trip."""

    def __init__(self, context: ssl.SSLContext, retry_after: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.context = context
        self.retry_after = retry_after
        self._clock = clock
        self._lock = threading.Lock()
        self._pem: dict[str, bytes] = {}
        self._failed: dict[str, tuple[float, str]] = {}

    def get(self, url: str) -> bytes:
        with self._lock:
            found = self._pem.get(url)
            failed = self._failed.get(url)
        if found is not None:
            return found
        if failed is not None and self._clock() - failed[0] < self.retry_after:
            raise Rejected(f"SNS signing certificate not fetched: {failed[1]} (cached)")
        try:
            pem = https_get(url, self.context)
        except OSError as exc:
            with self._lock:
                if len(self._failed) >= _CACHE_SIZE:
                    self._failed.pop(next(iter(self._failed)))
                self._failed[url] = (self._clock(), str(exc))
            raise Rejected(f"SNS signing certificate not fetched: {exc}") from None
        with self._lock:
            if len(self._pem) >= _CACHE_SIZE:
                self._pem.pop(next(iter(self._pem)))
            self._pem[url] = pem
        return pem


def _env_secret(config: Config, key: str, var: str) -> str:
    value = os.environ.get(var, "")
    if not value:
        raise ConfigError(config.path, [
            f"{config.path}: webhooks.{key} = {var!r}: the environment variable {var} is "
            "not set (the secret is read from it, never the file)"])
    return value


def install_hooks(app: Flask, config: Config, ledger: LedgerPort, secret: bytes,
                  now: Callable[[], datetime]) -> None:
    """Add the four hook routes to ``app`` (disabled ones answer 404)."""
    hooks = config.webhooks
    policy = BouncePolicy(config.bounces.soft_limit,
                          timedelta(seconds=config.bounces.soft_window))
    context = ssl.create_default_context(
        cafile=str(config.resolve(Path(hooks.ses_ca_bundle)))
        if hooks.ses_ca_bundle else None)
    certificates = CertificateCache(context)
    app.extensions["syndicate.hooks.certificates"] = certificates
    postmark_password = (_env_secret(config, "postmark_password_env",
                                     hooks.postmark_password_env)
                         if hooks.postmark_user else "")
    mailgun_key = (_env_secret(config, "mailgun_signing_key_env",
                               hooks.mailgun_signing_key_env).encode()
                   if hooks.mailgun_signing_key_env else b"")
    try:
        sendgrid = sendgrid_key(hooks.sendgrid_public_key) if hooks.sendgrid_public_key else None
    except ValueError as exc:
        raise ConfigError(config.path, [f"{config.path}: webhooks.sendgrid_public_key: "
                                        f"{exc}"]) from None
    enabled = {"ses": bool(hooks.ses_topics), "postmark": bool(hooks.postmark_user),
               "mailgun": bool(mailgun_key), "sendgrid": sendgrid is not None}

    def record(events: list[ProviderEvent], source: str) -> Response:
        recorded = 0
        for event in events:
            found = attribute_event(event, ledger, secret, config.bounces, source)
            if found.forged:
                # The provider is authenticated, but the token is not ours: change nothing.
                log.warning("%s: %s for %s: nothing recorded", source, found.problem,
                            _redact(event.recipient))
                continue
            if not found.events:
                log.info("%s: %s event for %s not attributed (%s)", source, event.kind,
                         _redact(event.recipient), found.problem)
                continue
            for delivery_event in found.events:
                try:
                    outcome = record_event(ledger, delivery_event, policy, now=now())
                except LedgerError as exc:
                    log.warning("%s: %s", source, exc)
                    continue
                recorded += outcome.new
                if outcome.new:
                    log.info("%s: %s %s for %s%s", source, delivery_event.kind,
                             delivery_event.status or "", _redact(outcome.recipient),
                             f" -> {outcome.status}" if outcome.status else "")
        return Response(f"ok: {recorded} recorded\n", 200,
                        content_type="text/plain; charset=utf-8")

    def guard(name: str) -> bytes:
        """405 but for POST, 404 when disabled; the body (within max_body)."""
        if request.method != "POST":
            raise MethodNotAllowed(valid_methods=["POST"])
        if not enabled[name]:
            abort(404)
        return request.get_data(cache=False)

    def refuse(exc: Rejected) -> Response:
        g.error_detail = f"{request.path.rsplit('/', 1)[-1]}: {exc}"
        if exc.status == 401:
            response = Response("unauthorized\n", 401, content_type="text/plain")
            response.headers["WWW-Authenticate"] = 'Basic realm="syndicate webhooks"'
            return response
        abort(exc.status)

    @app.route("/hooks/ses", methods=_ALL_METHODS, endpoint="hook_ses")
    def hook_ses() -> Response:
        body = guard("ses")
        try:
            message = sns_message(body)
            if message["TopicArn"] not in hooks.ses_topics:
                raise Rejected(f"topic {message['TopicArn'][:200]!r} is not in ses_topics")
            if not sns_url_ok(message["SigningCertURL"], hooks.ses_cert_host):
                raise Rejected("SigningCertURL not https on a host matching ses_cert_host: "
                               f"{message['SigningCertURL'][:200]!r}")
            verify_sns(message, certificates.get(message["SigningCertURL"]))
            kind = message["Type"]
            if kind == "Notification":
                return record(ses_events(message), "ses")
            url = str(message.get("SubscribeURL") or "")
            if kind == "SubscriptionConfirmation":
                if not sns_url_ok(url, hooks.ses_cert_host):
                    raise Rejected(f"SubscribeURL not on an SNS host: {url[:200]!r}")
                _confirm_later(url, context, message["TopicArn"])
            else:
                log.info("ses: unsubscribed from %s", message["TopicArn"])
            return Response("ok\n", 200, content_type="text/plain")
        except Rejected as exc:
            return refuse(exc)

    @app.route("/hooks/postmark", methods=_ALL_METHODS, endpoint="hook_postmark")
    def hook_postmark() -> Response:
        body = guard("postmark")
        try:
            if not basic_auth_ok(request.headers.get("Authorization"), hooks.postmark_user,
                                 postmark_password):
                raise Rejected("wrong basic auth", 401)
            return record(postmark_events(body), "postmark")
        except Rejected as exc:
            return refuse(exc)

    @app.route("/hooks/mailgun", methods=_ALL_METHODS, endpoint="hook_mailgun")
    def hook_mailgun() -> Response:
        body = guard("mailgun")
        try:
            payload = _object(body)
            token = mailgun_check(payload, mailgun_key, now().timestamp(), hooks.max_age)
            # A token is good once (across serve processes: the ledger's counters); kept
            # twice as long as a timestamp stays fresh, so a replay is stale by then.
            key = "webhook/mailgun/" + hashlib.sha256(token.encode()).hexdigest()[:32]
            if ledger.limit_incr(key, 2 * hooks.max_age) > 1:
                raise Rejected("replayed Mailgun token")
            try:
                return record(mailgun_events(payload), "mailgun")
            except Exception:
                ledger.limit_clear(key)  # not processed: the provider's retry must pass
                raise
        except Rejected as exc:
            return refuse(exc)

    @app.route("/hooks/sendgrid", methods=_ALL_METHODS, endpoint="hook_sendgrid")
    def hook_sendgrid() -> Response:
        body = guard("sendgrid")
        assert sendgrid is not None  # guard() answered 404 otherwise
        try:
            sendgrid_check(sendgrid,
                           request.headers.get("X-Twilio-Email-Event-Webhook-Signature"),
                           request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp"),
                           body, now().timestamp(), hooks.max_age)
            return record(sendgrid_events(body), "sendgrid")
        except Rejected as exc:
            return refuse(exc)


def _object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Rejected("body is not JSON", 400) from None
    if not isinstance(payload, dict):
        raise Rejected("body is not a JSON object", 400)
    return payload


def _confirm_later(url: str, context: ssl.SSLContext, topic: str) -> None:
    """GET ``url`` (an SNS SubscribeURL) in a thread: the answer to SNS is not delayed."""

    def confirm() -> None:
        try:
            https_get(url, context)
        except OSError as exc:
            log.warning("ses: subscription to %s not confirmed: %s", topic, exc)
            return
        log.info("ses: subscription to %s confirmed", topic)

    threading.Thread(target=confirm, name="sns-confirm", daemon=True).start()


def _redact(address: str) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}"
