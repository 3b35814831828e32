"""``syndicate doctor``: a pre-flight deliverability report for the configured sender.

:func:`gather` fetches the facts (DNS through :mod:`.fetch`, the next edition's
message through :func:`syndicate.pipeline.preview`, the one-click test POST);
:func:`syndicate.doctor.rules.evaluate` judges them, one :class:`~.rules.Check` per
rule. docs/deliverability.md lists the rules, their sources and the fixes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..channels.smtp import SmtpSettings
from ..config import Config
from ..errors import SyndicateError
from ..render.urls import unsubscribe_url
from ..tokens import UNSUBSCRIBE, make_token, secret_from_env
from .fetch import (
    DnsClient,
    DnsSettings,
    dkim_fact,
    dmarc_txt,
    post_one_click,
    ptr_fact,
    spf_fact,
)
from .rules import Check, Endpoint, Facts, Sender, evaluate

#: The address of the test POST's token: ``.invalid`` (RFC 2606) names no subscriber,
#: so the endpoint answers as it would to a provider and changes nothing.
PROBE_ADDRESS = "doctor-probe@example.invalid"


@dataclass(frozen=True)
class Options:
    dns: DnsSettings = field(default_factory=DnsSettings)
    channel: str = ""  # the smtp channel's name; empty: the first enabled one
    skip_http: bool = False
    http_timeout: float = 10.0
    ptr: bool = True


def smtp_channel(config: Config, name: str = "") -> SmtpSettings | None:
    found = [c for c in config.channels if isinstance(c, SmtpSettings)]
    if name:
        for c in found:
            if c.name == name:
                return c
        raise SyndicateError(f"no smtp channel named {name!r} in {config.path} "
                             f"(smtp channels: {', '.join(c.name for c in found) or 'none'})")
    enabled = [c for c in found if c.enabled]
    candidates = enabled or found
    return candidates[0] if candidates else None


def gather(config: Config, options: Options) -> Facts:
    base_url = config.site.base_url
    message, message_error = _message(config)
    endpoint = _endpoint(base_url, options)
    settings = smtp_channel(config, options.channel)
    if settings is None:
        return Facts(base_url, message, message_error, endpoint)
    sender = Sender(settings.name, settings.from_address, settings.host,
                    settings.dkim_selector, settings.dkim_domain)
    client = DnsClient(options.dns)
    bounces = config.bounces
    if bounces.domain:  # VERP: the envelope sender, so the SPF domain, is the bounce domain
        spf = spf_fact(client, f"{bounces.local_part}@{bounces.domain}", bounces.domain,
                       settings.host)
    else:
        spf = spf_fact(client, _bare(settings.from_address), sender.domain, settings.host)
    dkim = (dkim_fact(client, settings.dkim_selector, settings.dkim_domain,
                      config.resolve(Path(settings.dkim_key_file)))
            if settings.dkim_key_file else None)
    dmarc = dmarc_txt(client, sender.domain)
    ptr = tuple(ptr_fact(client, ip) for ip in spf.relay_ips[:4]) if options.ptr else ()
    return Facts(base_url, message, message_error, endpoint, sender, spf, dkim, dmarc, ptr)


def diagnose(config: Config, options: Options) -> list[Check]:
    return evaluate(gather(config, options))


def _bare(address: str) -> str:
    from email.utils import parseaddr

    return parseaddr(address)[1]


def _message(config: Config) -> tuple[bytes | None, str]:
    # The publishing stack (jinja2, MJML, feedgen), loaded only when doctor runs.
    from ..pipeline import preview

    try:
        return preview(config).files["email.eml"], ""
    except SyndicateError as exc:
        return None, str(exc)


def _endpoint(base_url: str, options: Options) -> Endpoint:
    url = unsubscribe_url(base_url, "…")
    if options.skip_http:
        return Endpoint(url, skipped="--skip-http")
    secret = secret_from_env(required=False)
    if secret is None:
        return Endpoint(url, skipped="SYNDICATE_SECRET is not set (it signs the probe token)")
    url = unsubscribe_url(base_url, make_token(secret, UNSUBSCRIBE, PROBE_ADDRESS))
    return post_one_click(url, options.http_timeout)


__all__ = ["PROBE_ADDRESS", "Check", "DnsSettings", "Options", "diagnose", "gather",
           "smtp_channel"]
