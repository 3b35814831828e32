"""The operator's configuration: ``config/syndicate.toml``, declared once and validated strictly.

Every setting is declared here with its type, default and help text (pydantic
``Field(description=...)``); ``docs/configuration.md`` is generated from these
declarations (:func:`reference_markdown`) and a test fails when it is stale.

Paths in the file are relative to the folder of the config file.
Channel entries are validated by the settings model their ``type`` registered;
this module only knows :class:`ChannelSettings`, the keys every entry accepts:
the models of the channel types come from above (:func:`parse_config`'s
``channel_models``, given by :func:`syndicate.app.load_config` from the channel
registry), so loading a config imports no channel and new types need no change here.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .config_snapshot import CONFIG_ENV as CONFIG_ENV  # where a command finds its file
from .config_snapshot import DEFAULT_CONFIG as DEFAULT_CONFIG
from .config_snapshot import (
    ConfigPaths,
    ConfigSnapshot,
    ScheduleSnapshot,
    StorageSnapshot,
)
from .config_snapshot import config_path as config_path
from .cron import parse_cron
from .errors import ConfigError

# A ledger written as a URL (scheme://...) rather than a path; which schemes exist is the
# ledger's business (syndicate.ledger.open_ledger), not the config's.
_LEDGER_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")

_DURATION_RE = re.compile(r"^\s*(\d+)\s*(s|m|min|h|d)?\s*$")
_UNITS = {None: 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def _duration(value: Any) -> Any:
    """Accept ``90``, ``"90s"``, ``"15m"``, ``"6h"``, ``"1d"`` and return seconds."""
    if isinstance(value, bool):
        return value  # let the int validator reject it
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if not match:
            raise ValueError("a duration such as 3600, '90s', '15m', '6h' or '1d'")
        return int(match.group(1)) * _UNITS[match.group(2)]
    return value


Duration = Annotated[int, BeforeValidator(_duration), Field(ge=0)]


class Strict(BaseModel):
    """Unknown keys are errors; values are not coerced across types."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SiteConfig(Strict):
    title: str = Field(
        "Études de cas", description="Publication name, shown in feeds, emails and pages."
    )
    description: str = Field(
        "Une décision d’entreprise, racontée par celles qui l’ont prise.",
        description="One-line description used by the feeds and the archive index.",
    )
    base_url: str = Field(
        "http://127.0.0.1:8080/",
        description="Public address of the archive (and of `syndicate serve`); "
        "every link in feeds and emails is built on it ('/' added at the end if missing).",
    )
    language: str = Field("fr", description="Language of the content (BCP 47), e.g. 'fr'.")
    author: str = Field(
        "La rédaction", description="Author named in the feeds and in the archive pages' byline."
    )
    email: str = Field("redaction@example.org", description="Contact address named in the feeds.")
    postal_address: str = Field(
        "",
        description="Postal address printed in every email footer (required by anti-spam law).",
    )
    wordmark: str | None = Field(
        None,
        description="Image shown as the masthead of the archive pages and the email (an "
        "absolute URL, or a path under base_url such as 'logo.png' put in the public folder; "
        "PNG for the email: several mail clients show no SVG); unset: the title in text, in "
        "the theme's link colour (light and dark).",
    )
    wordmark_dark: str | None = Field(
        None,
        description="The wordmark for a dark background, shown instead of wordmark where the "
        "reader's system prefers dark mode (archive pages; Apple Mail, iOS Mail and Outlook "
        "in dark mode). Unset: wordmark is shown on a light plate in dark mode, so a dark "
        "logo stays legible.",
    )
    favicon: str | None = Field(
        None,
        description="Icon of the archive pages (an absolute URL, or a path under base_url); "
        "unset: the shipped favicon.svg, written to the public folder by the archive channel.",
    )

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+(/\S*)?$", value):
            raise ValueError("an absolute http(s) URL such as 'https://example.org/'")
        # Accepted with or without the trailing slash, as static-site tools do; every
        # link is built by appending to it, so the slash is added here, once.
        return value if value.endswith("/") else value + "/"


class StorageConfig(Strict):
    database: Path | str = Field(
        Path("../var/syndicate.db"),
        description="The ledger (created on first use): a SQLite file path, or a URL "
        "'sqlite:///relative/path' or 'sqlite:////absolute/path', or "
        "'postgresql://user@host:port/database' (docs/deployment.md). Relative paths, plain "
        "or in the URL, are relative to the config file's folder.",
    )
    database_password_env: str | None = Field(
        None,
        description="For a PostgreSQL ledger: the environment variable holding its "
        "password (never the password itself); unset: libpq's own PGPASSWORD or ~/.pgpass.",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
    )
    corpus: Path = Field(Path("../corpus"), description="Folder of case study files.")
    public: Path = Field(Path("../public"), description="Folder where feeds and archive pages go.")
    templates: Path | None = Field(
        None,
        description="Folder of Jinja2/MJML templates that override the shipped ones, file by "
        "file (`syndicate init --templates` copies them there); unset: the shipped templates.",
    )

    @field_validator("database", "corpus", "public", "templates", mode="before")
    @classmethod
    def _path(cls, value: Any) -> Any:
        if isinstance(value, str) and _LEDGER_URL.match(value):
            return value  # a URL (storage.database): kept as written, see Config.ledger_url
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("a non-empty path")
            return Path(value)
        if not isinstance(value, Path):
            raise ValueError("a path (a string in quotes, e.g. \"../var/syndicate.db\")")
        return value


class PublishConfig(Strict):
    related_count: int = Field(
        3, ge=0, le=20, description="How many related case studies each edition links to."
    )
    feed_size: int = Field(20, ge=1, le=1000, description="How many editions the feeds keep.")
    archive_page_size: int = Field(
        50, ge=1, le=1000,
        description="How many editions the archive's index page lists, newest first; every "
        "edition is also on a numbered page of this many (page/1/ holds the oldest) and on its "
        "year's page (2026/), so a publication rewrites a few small pages, whatever the history. "
        "A company's page lists this many of the latest editions citing it, then links to "
        "the year pages of the older ones.",
    )
    email_content: Literal["full", "summary"] = Field(
        "full",
        description="'full' puts the whole case study in the email; "
        "'summary' puts the lede and a \"Lire la suite\" button.",
    )
    subject: str = Field(
        "{title}",
        description="Subject line template; placeholders: {title}, {site}, {date}, {number}.",
    )
    test_address: str = Field(
        "test@example.org",
        description="Recipient of the sample copy written to the outbox when there is no "
        "subscriber.",
    )

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        try:
            value.format(title="t", site="s", date="d", number=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                "a template using only {title}, {site}, {date} and {number} "
                f"(problem: {exc!s})"
            ) from None
        return value


class ScheduleConfig(Strict):
    cron: str = Field(
        "0 8 * * 2",
        description="Standard 5-field crontab expression (minute hour day month weekday; "
        "weekday 0 or 7 = Sunday, 1 = Monday), run as cron runs it, DST included; a day and "
        "a weekday both set mean either. Also `L` (last day), `5L` (last Friday), `2#1` "
        "(first Tuesday).",
    )
    timezone: str = Field(
        "Europe/Paris", description="IANA time zone the cron expression is read in."
    )
    misfire_grace: Duration = Field(
        21600,
        description="After downtime, a missed slot is still published (once) if it is at most "
        "this old: seconds or '90s', '15m', '6h', '1d'.",
    )
    failover: Duration = Field(
        30,
        description="PostgreSQL ledger only: the lease of the leading `syndicate run`. Other "
        "daemons on the same database wait as standbys, poll for the publisher lock every "
        "sixth of this, and take over within it if the leader's machine vanishes (at once "
        "if its process dies); a leader that cannot reach its lock for this long stops. "
        "Seconds or '30s', '1m' (5 to 600 s).",
        ge=5, le=600,
    )
    catch_up: Literal["latest", "none"] = Field(
        "latest",
        description="'latest': after downtime publish one edition for the latest missed slot "
        "within misfire_grace; 'none': never catch up.",
    )

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            close = _close_timezones(value)
            hint = f" (did you mean {close}?)" if close else ""
            raise ValueError(f"an IANA time zone such as 'Europe/Paris'{hint}") from None
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        parse_cron(value)  # raises ValueError with what is wrong
        return value


def _rate_limits(value: str) -> str:
    """Refuse a string the ``limits`` library cannot read (``"5/hour;20/day"``)."""
    from limits import parse_many  # lazy: ~95 ms of imports, only for a [subscribe] key

    try:
        items = parse_many(value)
    except ValueError:
        raise ValueError("rate limits such as '5/hour', '1 per 5 minutes' or "
                         "'5/hour;20/day' (several separated by ';')") from None
    if any(item.amount < 1 for item in items):
        raise ValueError("limits of at least 1 per period")
    return value


RateLimits = Annotated[str, AfterValidator(_rate_limits)]


# Each limit is in the notation of the `limits` library; the counters live in the
# ledger, shared by every `serve` process. A request over any limit gets the usual
# answer page and nothing is mailed (docs/web.md).
class SubscribeConfig(Strict):
    """Limits of the subscribe form of `syndicate serve` (see [web.md](web.md#limits))."""

    limit_per_ip: RateLimits = Field(
        "5/hour;20/day",
        description="Subscribe requests per client IP address (IPv6: per /64). Limits such "
        "as '5/hour', '1 per 5 minutes'; several separated by ';' all apply.",
    )
    limit_per_mailbox: RateLimits = Field(
        "1 per 5 minutes;3/day",
        description="Requests per mailbox: the address with its '+tag' removed and case "
        "folded (v+1@x.org and V+2@X.org are one mailbox).",
    )
    limit_per_domain: RateLimits = Field(
        "60/hour", description="Requests per recipient domain (the part after '@')."
    )
    limit_global: RateLimits = Field(
        "200/hour", description="Requests in all, whoever sends them: the cap on "
        "confirmation emails the form can cause.",
    )
    trusted_proxies: int = Field(
        0, ge=0, le=10,
        description="How many reverse proxies in front of `serve` append to "
        "X-Forwarded-For: the client IP is that many entries from the right. 0: the "
        "header is ignored and the socket peer is the client.",
    )
    form_min_age: Duration = Field(
        2, description="A form sent back sooner than this after it was served is "
        "refused (bots post at once): seconds or '2s'.",
    )
    form_max_age: Duration = Field(
        7200, description="A form older than this is refused and shown again with a "
        "fresh token: seconds or '2h'.",
    )


class DeliveryConfig(Strict):
    """Who sends the per-subscriber mail of the `smtp` channels: the publisher itself (one
    box), or `syndicate worker` processes on any machines sharing the ledger
    ([deployment.md](deployment.md#workers-many-senders))."""

    senders: Literal["self", "workers"] = Field(
        "self",
        description="'self': `run` / `publish-next` send the mail of the smtp channels "
        "themselves. 'workers': they create one delivery row per subscriber and leave the "
        "rows to `syndicate worker` processes (the edition stays 'delivering', pending, "
        "until the workers have sent the last one); the other channels are still theirs.",
    )
    batch: int = Field(
        50, ge=1, le=1000,
        description="Delivery rows a worker claims at a time. A worker killed mid-batch "
        "leaves at most its messages in flight to be sent twice; the rest of its batch "
        "goes to another worker when its lease runs out.",
    )
    lease: Duration = Field(
        60, ge=2, le=3600,
        description="How long a worker's claim on its rows lasts without news from it; its "
        "heartbeat renews it every third of this. The rows of a worker that died are taken "
        "over by the others within it: seconds or '60s', '5m'.",
    )
    poll: Duration = Field(
        5, ge=1, le=3600,
        description="How often an idle worker looks for rows handed to the workers: "
        "seconds or '5s', '1m'.",
    )


_LOCAL_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,30}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                     r"[A-Za-z]{2,63}$")


# Bounces and complaints that arrive after the SMTP conversation (docs/deliverability.md):
# the envelope sender of each message names its delivery row (VERP), and the reports
# are read back from a mailbox.
class BouncesConfig(Strict):
    """Bounces (DSN) and complaints (ARF) arriving later, by mail
    (see [deliverability.md](deliverability.md#bounces-and-complaints))."""

    domain: str = Field(
        "",
        description="Domain of the per-message envelope sender (VERP) "
        "`<local_part><separator><token>@<domain>`, the token naming the delivery row "
        "(signed with SYNDICATE_SECRET). Empty: the envelope sender is the channel's `from` "
        "and later bounces are not attributed.",
    )
    local_part: str = Field("bounces", description="Local part before the separator.")
    separator: str = Field(
        "+", description="Character between the local part and the token: the "
        "`recipient_delimiter` of the receiving MTA (Postfix), '+' or '-'.",
    )
    maildir: str = Field(
        "",
        description="Maildir folder the bounce address is delivered to (relative to the "
        "config file), read by `syndicate bounces fetch` and by `run`. Messages are moved to "
        "its `.processed` or `.unparsed` subfolder once their outcome is recorded.",
    )
    soft_limit: int = Field(
        3, ge=1, le=100,
        description="Soft bounces (4.x.x) of one address within `soft_window` that make "
        "it 'bounced'; a hard bounce (5.x.x) does at once.",
    )
    soft_window: Duration = Field(
        7 * 86400, ge=1, description="Window over which soft bounces are counted: '7d'."
    )
    poll_interval: Duration = Field(
        300, description="How often `run` reads the Maildir (0: never; "
        "`syndicate bounces fetch` still does).",
    )
    max_size: int = Field(
        2_000_000, ge=10_000,
        description="Larger reports are not parsed (moved to `.unparsed`, one log line).",
    )
    max_per_pass: int = Field(
        1000, ge=1, le=100_000,
        description="Messages one pass over the mailbox handles at most; the rest wait "
        "for the next pass.",
    )
    imap_host: str = Field(
        "",
        description="IMAP server the bounce address is delivered to, read over TLS "
        "(IMAPS) instead of a Maildir; exactly one of `maildir` and `imap_host` may be set. "
        "Messages are moved to its `processed` or `unparsed` folder (created when missing) "
        "once their outcome is recorded.",
    )
    imap_port: int = Field(993, ge=1, le=65535, description="IMAPS port (TLS from the start).")
    imap_user: str = Field("", description="IMAP login name.")
    imap_password_env: str = Field(
        "", description="Environment variable holding the IMAP password (never the file)."
    )
    imap_folder: str = Field("INBOX", description="Folder the reports arrive in.")
    imap_ca_file: str = Field(
        "",
        description="CA bundle (PEM) the IMAP server's certificate is verified against, for "
        "a private CA (relative to the config file). Empty: the system's trust store.",
    )
    imap_timeout: Duration = Field(
        30, ge=1, le=600, description="Socket timeout of the IMAP connection: seconds or '30s'."
    )
    pause_bounce_rate: float = Field(
        0.05, gt=0, le=1,
        description="Circuit breaker: while an edition is being sent, more bounces than this "
        "fraction of its messages sent pauses its sending until `syndicate edition resume`.",
    )
    pause_complaint_rate: float = Field(
        0.001, gt=0, le=1,
        description="Circuit breaker: likewise for complaints (0.001 = 0.1 %).",
    )
    pause_min_sent: int = Field(
        100, ge=1,
        description="Circuit breaker: the rates are only judged once this many messages of "
        "the edition are sent (1 bounce in 3 does not pause).",
    )

    @field_validator("local_part")
    @classmethod
    def _local(cls, value: str) -> str:
        if not _LOCAL_PART.match(value):
            raise ValueError("a plain local part such as 'bounces'")
        return value

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if value and not _DOMAIN.match(value):
            raise ValueError("a domain name such as 'example.org'")
        return value.lower()

    @field_validator("separator")
    @classmethod
    def _separator(cls, value: str) -> str:
        if value not in ("+", "-", "=", "_"):
            raise ValueError("one of '+', '-', '=', '_'")
        return value

    @model_validator(mode="after")
    def _one_mailbox(self) -> BouncesConfig:
        if self.maildir and self.imap_host:
            raise ValueError("set either maildir or imap_host, not both (one bounce mailbox)")
        if self.imap_host and not (self.imap_user and self.imap_password_env):
            raise ValueError("imap_host needs imap_user and imap_password_env (the "
                             "environment variable holding the password)")
        return self


_ARGON2_PREFIX = "$argon2id$"


def _operators(value: dict[str, str]) -> dict[str, str]:
    for name, digest in value.items():
        if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", name):
            raise ValueError(f"operator name {name!r}: letters, digits, '.', '_' and '-' only")
        if not digest.startswith(_ARGON2_PREFIX):
            raise ValueError(f"operator {name!r}: expected an argon2id hash such as "
                             "`syndicate admin passwd` prints ('$argon2id$...'), never a "
                             "password")
    return value


class AdminConfig(Strict):
    """The operator console under `/admin/` of `syndicate serve` (see [admin.md](admin.md)).
    Disabled (every `/admin/` URL answers 404) while `operators` is empty."""

    operators: Annotated[dict[str, str], AfterValidator(_operators)] = Field(
        default_factory=dict,
        description="Who may sign in: a table of operator name = argon2id hash of their "
        "password, as printed by `syndicate admin passwd` (never the password itself).",
    )
    session_lifetime: Duration = Field(
        43200, ge=300,
        description="How long a sign-in lasts (seconds or '12h'); the session cookie is "
        "signed with SYNDICATE_SECRET, so every `serve` instance accepts it.",
    )
    login_limit_per_ip: RateLimits = Field(
        "10/minute;50/day",
        description="Sign-in attempts per client IP address (IPv6: per /64), counted in the "
        "ledger (shared by every `serve` instance).",
    )
    login_limit_per_operator: RateLimits = Field(
        "20/hour",
        description="Sign-in attempts per operator name, whoever makes them.",
    )

    @property
    def enabled(self) -> bool:
        return bool(self.operators)


class AnalyticsConfig(Strict):
    """Counting what readers do with an edition (see [admin.md](admin.md), "Analytics").
    Everything is off unless turned on here; nothing is counted about a reader unless
    `per_subscriber` is."""

    clicks: bool = Field(
        False,
        description="Count clicks: the links of the email (HTML and text parts), except "
        "unsubscribe and confirmation links, become signed redirect links "
        "`<base_url>/r/<token>` of `syndicate serve`, counted per edition and link. Feeds and "
        "archive pages are never rewritten.",
    )
    per_subscriber: bool = Field(
        False,
        description="Also record which delivery (so which subscriber) clicked or opened, "
        "and when. Off: only aggregate counts per edition and link exist, and no link "
        "names a subscriber. Every link is then signed per message (a slower fan-out: see "
        "`python -m bench.analytics`).",
    )
    open_pixel: bool = Field(
        False,
        description="Add a 1x1 image `<base_url>/o/<token>` to the HTML part and count its "
        "loads as opens. Unreliable (Apple Mail Privacy Protection loads every image at "
        "delivery, other clients block images): the console labels it so.",
    )
    scanner_window: Duration = Field(
        30, le=3600,
        description="Clicks and opens this soon after the send are mail scanners "
        "following links, not readers: not counted ('30s'; 0 counts them).",
    )


_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# Provider event webhooks on `syndicate serve` (docs/deliverability.md#provider-webhooks):
# each provider is off until its keys are set; secrets come from environment variables.
class WebhooksConfig(Strict):
    """Bounce and complaint events posted by a sending provider to `syndicate serve`
    (`POST /hooks/<provider>`, see [deliverability.md](deliverability.md#provider-webhooks)).
    Each provider is disabled until its keys are set."""

    ses_topics: list[str] = Field(
        [],
        description="Amazon SES through SNS: the ARNs of the SNS topics whose messages are "
        "accepted (and whose subscription is confirmed). Empty: `/hooks/ses` is disabled.",
    )
    ses_cert_host: str = Field(
        r"^sns\.[a-z0-9-]+\.amazonaws\.com$",
        description="Regular expression the host of an SNS message's SigningCertURL (and "
        "SubscribeURL) must match; the URL must be https.",
    )
    ses_ca_bundle: str = Field(
        "",
        description="PEM file of extra CA certificates trusted when fetching the SNS signing "
        "certificate (relative to the config file). Empty: the system's trust store.",
    )
    postmark_user: str = Field(
        "", description="Postmark: the HTTP basic auth user name set in the webhook URL. "
        "Empty: `/hooks/postmark` is disabled.",
    )
    postmark_password_env: str = Field(
        "", description="Postmark: the environment variable holding the basic auth password.",
    )
    mailgun_signing_key_env: str = Field(
        "", description="Mailgun: the environment variable holding the HTTP webhook signing "
        "key. Empty: `/hooks/mailgun` is disabled.",
    )
    sendgrid_public_key: str = Field(
        "", description="SendGrid: the signed event webhook's verification key, base64 DER "
        "as SendGrid shows it (public, so it may be written here). Empty: `/hooks/sendgrid` "
        "is disabled.",
    )
    max_age: Duration = Field(
        300, ge=1, le=86400,
        description="Mailgun and SendGrid: events signed longer ago than this (or that far "
        "in the future) are refused: seconds or '5m'.",
    )
    max_body: int = Field(
        1_048_576, ge=16_384, le=20_000_000,
        description="Largest webhook request body in bytes (SendGrid posts events in batches).",
    )

    @field_validator("postmark_password_env", "mailgun_signing_key_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if value and not _ENV_VAR.match(value):
            raise ValueError("the NAME of an environment variable, e.g. 'POSTMARK_HOOK_PASSWORD'")
        return value

    @field_validator("ses_cert_host")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"a regular expression ({exc})") from None
        return value

    @model_validator(mode="after")
    def _postmark_pair(self) -> WebhooksConfig:
        if bool(self.postmark_user) != bool(self.postmark_password_env):
            raise ValueError("postmark_user and postmark_password_env go together")
        return self

    def secret_env_vars(self) -> dict[str, str]:
        """``{key: ENV_VAR}`` for each secret a configured provider reads."""
        found = {"postmark_password_env": self.postmark_password_env,
                 "mailgun_signing_key_env": self.mailgun_signing_key_env}
        return {key: var for key, var in found.items() if var}


def deadline_field(default: int) -> Any:
    """The ``deadline`` key, with a default per channel type (seconds)."""
    return Field(
        default, ge=1,
        description="Longest time this channel may take for one edition. Channels run in "
        "parallel, each within its own deadline: past it, the channel stops at the next safe "
        "point and what is left stays pending, for the next `resume` (or publish) to finish.",
    )


class ChannelSettings(Strict):
    """Keys every ``[[channels]]`` entry accepts; each type adds its own."""

    #: Whether this type sends links built on ``[site] base_url`` that must work over
    #: HTTPS (RFC 8058 one-click unsubscribe): such an entry, when enabled, needs an
    #: https base_url. A class attribute, not a key of the file.
    sends_unsubscribe_links: ClassVar[bool] = False
    #: Whether ``syndicate worker`` processes can send this type's per-subscriber rows
    #: (``[delivery] senders = "workers"``); a class attribute, not a key of the file.
    sent_by_workers: ClassVar[bool] = False

    type: str = Field(description="Channel type.")
    name: str = Field("", description="Name in logs and the ledger (default: the type); unique.")
    enabled: bool = Field(True, description="Set to false to keep the entry but not deliver.")
    deadline: Duration = deadline_field(120)

    @model_validator(mode="after")
    def _default_name(self) -> ChannelSettings:
        if not self.name:
            object.__setattr__(self, "name", self.type)
        return self

    def secret_env_vars(self) -> dict[str, str]:
        """``{key: ENV_VAR}`` for each secret this entry reads from the environment."""
        return {}


#: The settings model of each channel type, by type name (from the channel registry).
ChannelModels = Mapping[str, type[ChannelSettings]]


def _close_timezones(value: str) -> str:
    names = sorted(available_timezones())
    matches = difflib.get_close_matches(value, names, n=1, cutoff=0.6)
    return repr(matches[0]) if matches else ""


@dataclass(frozen=True)
class Config(ConfigPaths):
    """The validated configuration, paths resolved against the config file's folder (the
    rules, ``ledger_url``, ``corpus_dir``..., are :class:`ConfigPaths`', shared with the
    light commands' snapshot)."""

    path: Path
    site: SiteConfig
    storage: StorageConfig
    publish: PublishConfig
    schedule: ScheduleConfig
    channels: tuple[ChannelSettings, ...]  # each of its type's model (syndicate.channels)
    subscribe: SubscribeConfig = field(
        default_factory=lambda: SubscribeConfig.model_validate({}))
    delivery: DeliveryConfig = field(
        default_factory=lambda: DeliveryConfig.model_validate({}))
    bounces: BouncesConfig = field(
        default_factory=lambda: BouncesConfig.model_validate({}))
    admin: AdminConfig = field(default_factory=lambda: AdminConfig.model_validate({}))
    analytics: AnalyticsConfig = field(
        default_factory=lambda: AnalyticsConfig.model_validate({}))
    webhooks: WebhooksConfig = field(
        default_factory=lambda: WebhooksConfig.model_validate({}))

    def by_workers(self, channel: ChannelSettings) -> bool:
        """Whether ``syndicate worker`` sends this channel's rows, not the publisher."""
        return self.delivery.senders == "workers" and type(channel).sent_by_workers

    @property
    def public_dir(self) -> Path:
        return self.resolve(self.storage.public)

    @property
    def templates_dir(self) -> Path | None:
        """The operator's templates folder, or None: the shipped templates alone."""
        templates = self.storage.templates
        return None if templates is None else self.resolve(templates)

    def missing_secrets(self, environ: Mapping[str, str] | None = None) -> list[str]:
        """Problems for every secret environment variable the channels name but is unset."""
        return secret_problems(self.path, enumerate(self.channels), environ)

    def missing_service_secrets(self, environ: Mapping[str, str] | None = None) -> list[str]:
        """Likewise for ``[bounces]`` (the IMAP password) and ``[webhooks]`` (the providers'
        keys): read by ``run``, ``serve`` and ``bounces poll``, not by a publish, so only
        ``config check`` lists them (a publish must not refuse for a mailbox it never reads)."""
        env = os.environ if environ is None else environ
        named = [("webhooks", key, var) for key, var in self.webhooks.secret_env_vars().items()]
        if self.bounces.imap_host:
            named.insert(0, ("bounces", "imap_password_env", self.bounces.imap_password_env))
        return [f"{self.path}: {section}.{key} = {var!r}: the environment variable {var} is "
                "not set (the secret is read from it, never the file)"
                for section, key, var in named if var and not env.get(var)]


def snapshot_of(config: Config) -> ConfigSnapshot:
    """What the light commands read of a validated config (:mod:`syndicate.config_snapshot`):
    the one place the snapshot is made, always from a validated :class:`Config`."""
    return ConfigSnapshot(
        path=config.path,
        storage=StorageSnapshot(database=config.storage.database,
                                database_password_env=config.storage.database_password_env,
                                corpus=config.storage.corpus),
        schedule=ScheduleSnapshot(cron=config.schedule.cron, timezone=config.schedule.timezone),
    )


def secret_problems(
    path: Path,
    channels: Iterable[tuple[int, ChannelSettings]],
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """``channels[i].key = 'VAR': the environment variable VAR is not set`` for each
    secret a (validated) channel entry reads from an unset or empty variable."""
    env = os.environ if environ is None else environ
    problems = []
    for index, channel in channels:
        for key, var in channel.secret_env_vars().items():
            if not var or env.get(var):
                continue
            if key in type(channel).model_fields:  # a key of the file names the variable
                problems.append(
                    f"{path}: channels[{index}].{key} = {var!r}: the environment "
                    f"variable {var} is not set (the secret is read from it, never the file)"
                )
            else:  # a secret the channel type always needs, e.g. SYNDICATE_SECRET
                problems.append(
                    f"{path}: channels[{index}] (type {channel.type!r}): the environment "
                    f"variable {var} is not set (needed for: {key.replace('_', ' ')})"
                )
    return problems


SECTIONS: dict[str, type[Strict]] = {
    "site": SiteConfig,
    "storage": StorageConfig,
    "publish": PublishConfig,
    "schedule": ScheduleConfig,
    "subscribe": SubscribeConfig,
    "delivery": DeliveryConfig,
    "bounces": BouncesConfig,
    "admin": AdminConfig,
    "analytics": AnalyticsConfig,
    "webhooks": WebhooksConfig,
}


def read_config(
    path: str | os.PathLike[str] | None, *, channel_models: ChannelModels
) -> Config:
    """Read and validate a config file; raise :class:`ConfigError` listing every problem.

    ``channel_models`` maps each channel type to its settings model (the commands use
    :func:`syndicate.app.load_config`, which passes the channel registry's).
    """
    path = config_path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, [f"{path}: config file not found (use --config PATH or "
                                 f"${CONFIG_ENV})"]) from None
    except OSError as exc:
        raise ConfigError(path, [f"{path}: cannot read config file: {exc.strerror}"]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [f"{path}: not valid UTF-8 (offset {exc.start})"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"{path}: not valid TOML: {exc}"]) from None
    return parse_config(data, path, channel_models=channel_models)


def parse_config(
    data: dict[str, Any], path: Path, *, channel_models: ChannelModels
) -> Config:
    """Validate already-parsed TOML ``data`` read from ``path``; each ``[[channels]]``
    entry with the model ``channel_models`` gives for its ``type``."""
    problems: list[str] = []
    sections: dict[str, Strict] = {}
    known = [*SECTIONS, "channels"]
    for key in data:
        if key not in known:
            problems.append(_unknown(path, key, data[key], known))
    for name, model in SECTIONS.items():
        raw = data.get(name, {})
        if not isinstance(raw, dict):
            problems.append(f"{path}: {name} = {raw!r}: expected a table [{name}]")
            raw = {}
        try:
            sections[name] = model.model_validate(raw)
        except ValidationError as exc:
            problems.extend(_format_errors(path, name, raw, exc, model))
    channels: list[ChannelSettings] = []
    raw_channels = data.get("channels", [])
    if not isinstance(raw_channels, list):
        problems.append(f"{path}: channels: expected an array of tables [[channels]]")
        raw_channels = []
    names: dict[str, int] = {}
    valid: list[tuple[int, ChannelSettings]] = []
    for index, entry in enumerate(raw_channels):
        where = f"channels[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{path}: {where} = {entry!r}: expected a table [[channels]]")
            continue
        kind = entry.get("type")
        channel_model = channel_models.get(kind) if isinstance(kind, str) else None
        if channel_model is None:
            types = sorted(channel_models)
            close = difflib.get_close_matches(str(kind), types, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(
                f"{path}: {where}.type = {kind!r}: expected one of {', '.join(types)}{hint}"
            )
            continue
        try:
            settings = channel_model.model_validate(entry)
        except ValidationError as exc:
            problems.extend(_format_errors(path, where, entry, exc, channel_model))
            continue
        if settings.name in names:
            problems.append(
                f"{path}: {where}.name = {settings.name!r}: expected a name unique among "
                f"channels (also channels[{names[settings.name]}]; hint: set name = \"...\")"
            )
        names[settings.name] = index
        channels.append(settings)
        valid.append((index, settings))
    site = sections.get("site")
    if isinstance(site, SiteConfig):
        problems.extend(_unsubscribe_problems(path, site, valid))
    if problems:
        error = ConfigError(path, problems)
        # The entries that did validate, so `config check` can list their missing
        # secrets along with the schema errors (all problems at once).
        error.channels = tuple(valid)  # type: ignore[attr-defined]
        raise error
    return Config(
        path=path.absolute(),
        site=sections["site"],  # type: ignore[arg-type]
        storage=sections["storage"],  # type: ignore[arg-type]
        publish=sections["publish"],  # type: ignore[arg-type]
        schedule=sections["schedule"],  # type: ignore[arg-type]
        channels=tuple(channels),
        subscribe=sections["subscribe"],  # type: ignore[arg-type]
        delivery=sections["delivery"],  # type: ignore[arg-type]
        bounces=sections["bounces"],  # type: ignore[arg-type]
        admin=sections["admin"],  # type: ignore[arg-type]
        analytics=sections["analytics"],  # type: ignore[arg-type]
        webhooks=sections["webhooks"],  # type: ignore[arg-type]
    )


def _unsubscribe_problems(
    path: Path, site: SiteConfig, channels: Iterable[tuple[int, ChannelSettings]]
) -> list[str]:
    """Real email needs an HTTPS unsubscribe URL: RFC 8058 one-click (which Gmail and Yahoo
    require of bulk senders) is only honoured over HTTPS. Loopback addresses are allowed
    for local trials and tests."""
    url = urlsplit(site.base_url)
    if url.scheme == "https" or url.hostname in {"127.0.0.1", "::1", "localhost"}:
        return []
    return [
        f"{path}: site.base_url = {site.base_url!r}: expected an https:// URL, because "
        f"channels[{index}] (type {channel.type!r}) sends unsubscribe links built on it "
        "(RFC 8058 one-click unsubscribe works over HTTPS only)"
        for index, channel in channels
        if channel.sends_unsubscribe_links and channel.enabled
    ]


def _unknown(path: Path, key: str, value: Any, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{path}: {key} = {value!r}: unknown key (expected one of {', '.join(known)}{hint})"


def _format_errors(
    path: Path, prefix: str, raw: dict[str, Any], exc: ValidationError, model: type[BaseModel]
) -> list[str]:
    """Turn pydantic errors into ``file: key.path = value: expected ...`` lines."""
    lines = []
    for error in exc.errors(include_url=False):
        loc = [part for part in error["loc"] if not str(part).startswith("function-")]
        key = prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
        value = _lookup(raw, loc)
        kind = error["type"]
        if not loc and kind == "value_error":
            # A check across several keys (model validator): no single value to show.
            lines.append(f"{path}: {key}: {_expected(error)}")
        elif kind == "extra_forbidden":
            fields = sorted(model.model_fields)
            close = difflib.get_close_matches(str(loc[-1]), fields, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            lines.append(f"{path}: {key} = {value!r}: unknown key "
                         f"(expected one of {', '.join(fields)}{hint})")
        elif kind == "missing":
            lines.append(f"{path}: {key}: missing required key")
        else:
            lines.append(f"{path}: {key} = {value!r}: expected {_expected(error)}")
    return lines


def _expected(error: Any) -> str:
    kind = error["type"]
    message = str(error["msg"])
    if kind == "value_error":
        return message.removeprefix("Value error, ")
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return "a whole number"
    if kind in {"string_type"}:
        return "a string (in quotes)"
    if kind in {"bool_type", "bool_parsing"}:
        return "true or false"
    if kind == "literal_error":
        return "one of " + message.removeprefix("Input should be ")
    if kind in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
        return "a number " + message.removeprefix("Input should be ")
    if kind in {"list_type"}:
        return "an array, e.g. [\"a\", \"b\"]"
    if kind in {"float_type", "float_parsing"}:
        return "a number"
    return message[0].lower() + message[1:]


def _lookup(raw: Any, loc: list[Any]) -> Any:
    value = raw
    for part in loc:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def _type_name(info: Any) -> str:
    """A reader's name for a field's type (``duration``, ``"full" | "summary"``...)."""
    if any(getattr(m, "func", None) is _duration for m in info.metadata):
        return "duration"
    return _annotation_name(info.annotation)


def _annotation_name(annotation: Any) -> str:
    args = getattr(annotation, "__args__", None) or ()
    origin = getattr(annotation, "__origin__", None)
    if len(args) == 2 and type(None) in args:  # `X | None`: an optional X (unset: None)
        return _annotation_name(next(a for a in args if a is not type(None)))
    if origin is Literal:
        return " | ".join(_toml_value(a) for a in args)
    if origin in (list, tuple) and args:
        return f"array of {_annotation_name(args[0])}"
    names = {str: "string", int: "integer", float: "number", bool: "boolean", Path: "path",
             Path | str: "path or URL"}
    if annotation in names:
        return names[annotation]
    return (getattr(annotation, "__name__", None) or str(annotation)).replace("typing.", "")


def _toml_value(value: Any) -> str:
    """``value`` as it would be written in the TOML file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return str(value)


def reference_rows(model: type[BaseModel]) -> list[tuple[str, str, str, str]]:
    """(key, type, default, help) of each declared field, TOML-style (for the docs)."""
    rows = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        if info.is_required():
            default = "(required)"
        else:
            value = info.get_default(call_default_factory=True)
            default = "(unset)" if value is None else _toml_value(value)
        rows.append((key, _type_name(info), default, info.description or ""))
    return rows


def reference_markdown(channel_models: ChannelModels) -> str:
    """``docs/configuration.md``: every key of every section and channel type
    (``channel_models``: the settings model of each channel type, by name)."""

    def cell(text: str) -> str:
        return " ".join(text.replace("``", "`").replace("|", "\\|").split())

    def table(rows: list[tuple[str, str, str, str]]) -> list[str]:
        lines = ["| key | type | default | description |", "|---|---|---|---|"]
        for key, kind, default, text in rows:
            shown = ("*required*" if default == "(required)" else "*unset*"
                     if default == "(unset)" else f"`{cell(default)}`")
            lines.append(f"| `{key}` | {cell(kind)} | {shown} | {cell(text)} |")
        return lines

    out = [
        "# Configuration reference",
        "",
        "<!-- Generated by `syndicate config docs` from the declarations in",
        "     syndicate/config.py and syndicate/channels/; do not edit by hand. -->",
        "",
        f"The configuration is one TOML file, `{DEFAULT_CONFIG}` by default (`--config PATH`",
        f"or `${CONFIG_ENV}` to use another). Paths are relative to the file's folder.",
        "Unknown keys are errors. `syndicate config check` validates the file (and that",
        "every secret environment variable it names is set); `syndicate config show`",
        "prints the effective configuration with defaults filled in and secrets masked.",
        "Durations are seconds or a string such as `\"90s\"`, `\"15m\"`, `\"6h\"`, `\"1d\"`.",
        "",
    ]
    for name, model in SECTIONS.items():
        doc = (model.__doc__ or "").strip()
        out += [f"## `[{name}]`", ""]
        if doc and not doc.startswith("Unknown keys"):
            out += [doc, ""]
        out += [*table(reference_rows(model)), ""]
    out += [
        "## `[[channels]]`",
        "",
        "Outbound channels, delivered in parallel, each within its own `deadline`; one failing "
        "or slow never blocks the others.",
        "Each entry has a `type` and that type's keys. Keys every type accepts:",
        "",
        *table(reference_rows(ChannelSettings)),
        "",
    ]
    common = {row[0]: row for row in reference_rows(ChannelSettings)}
    for type_name in sorted(channel_models):
        model = channel_models[type_name]
        out += [f"### `type = \"{type_name}\"`", ""]
        doc = (model.__doc__ or "").strip()
        if doc and doc != (ChannelSettings.__doc__ or "").strip():
            out += [cell(doc), ""]
        # A common key shows again where the type changes it (e.g. its own `deadline`).
        rows = [row for row in reference_rows(model) if common.get(row[0]) != row]
        out += [*(table(rows) if rows else ["No keys of its own."]), ""]
    return "\n".join(out).rstrip("\n") + "\n"
