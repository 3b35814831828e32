"""The rules of ``syndicate doctor``: pure functions from fetched facts to :class:`Check` records.

Nothing here touches the network: :mod:`.fetch` asks DNS and the web app, builds the
facts (frozen dataclasses below) and these functions judge them, so each rule is
testable from plain values. Every check names its source (the bulk-sender
requirements of Gmail, Yahoo and Microsoft, and the RFCs they point to).

Simplifications, said once: DMARC's organisational domain is approximated by the
last two labels of a name (no public-suffix list: right for ``example.org``, too
short for ``example.co.uk``); the SPF verdict is pyspf's (a full RFC 7208 evaluator,
10-lookup limit included) run over the doctor's own resolver.
"""

from __future__ import annotations

import base64
import email
import email.policy
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Literal
from urllib.parse import urlsplit

Status = Literal["pass", "warn", "fail"]

GMAIL = "Gmail email sender guidelines (2024)"
YAHOO = "Yahoo sender best practices (2024)"
MICROSOFT = "Microsoft Outlook.com high-volume sender requirements (2025)"
BULK = f"{GMAIL}; {YAHOO}; {MICROSOFT}"
RFC7208 = "RFC 7208 (SPF)"
RFC6376 = "RFC 6376 (DKIM)"
RFC7489 = "RFC 7489 (DMARC)"
RFC8058 = "RFC 8058 (one-click unsubscribe)"
RFC2369 = "RFC 2369 (List-Unsubscribe)"
RFC2919 = "RFC 2919 (List-Id)"

#: Gmail clips a message whose HTML is larger than this (and hides the rest,
#: unsubscribe link included, behind "View entire message").
GMAIL_CLIP = 102 * 1024
#: Above this the message is close enough to the clip to warn.
CLIP_MARGIN = 92 * 1024

#: Free-mail domains: they publish DMARC p=reject/quarantine and do not authorise
#: third-party relays, so a newsletter "From" them fails DMARC at the big providers.
FREE_MAIL = frozenset({
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.fr", "ymail.com", "outlook.com",
    "outlook.fr", "hotmail.com", "hotmail.fr", "live.com", "live.fr", "msn.com", "aol.com",
    "icloud.com", "me.com", "gmx.com", "gmx.fr", "gmx.de", "laposte.net", "orange.fr",
    "wanadoo.fr", "free.fr", "sfr.fr", "proton.me", "protonmail.com", "mail.com",
})


@dataclass(frozen=True)
class Check:
    """One rule's verdict. ``fix`` is what to do (or publish) when it is not a pass."""

    rule: str
    status: Status
    detail: str
    source: str
    fix: str = ""


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class Txt:
    """The TXT records at a name (each record's strings joined), or why DNS did not say."""

    name: str
    records: tuple[str, ...] = ()
    error: str = ""  # a timeout or a server failure; an absent name is just no records


@dataclass(frozen=True)
class SpfVerdict:
    ip: str
    result: str  # pyspf: pass, fail, softfail, neutral, none, permerror, temperror
    explanation: str = ""


@dataclass(frozen=True)
class SpfFact:
    domain: str
    txt: Txt
    relay_host: str
    relay_ips: tuple[str, ...] = ()
    relay_error: str = ""
    verdicts: tuple[SpfVerdict, ...] = ()


@dataclass(frozen=True)
class DkimFact:
    selector: str
    domain: str
    txt: Txt
    #: Base64 SubjectPublicKeyInfo derived from the configured private key.
    expected_p: str = ""
    key_error: str = ""

    @property
    def name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"


@dataclass(frozen=True)
class PtrFact:
    ip: str
    names: tuple[str, ...] = ()
    confirmed: bool = False  # one of the names resolves back to ip
    error: str = ""


@dataclass(frozen=True)
class Endpoint:
    url: str
    status: int = 0
    location: str = ""
    error: str = ""
    skipped: str = ""


@dataclass(frozen=True)
class Sender:
    """What the smtp channel is configured to send as."""

    channel: str
    from_address: str
    host: str
    dkim_selector: str = ""
    dkim_domain: str = ""

    @property
    def domain(self) -> str:
        return address_domain(self.from_address)


@dataclass(frozen=True)
class Facts:
    base_url: str
    message: bytes | None = None
    message_error: str = ""
    endpoint: Endpoint | None = None
    sender: Sender | None = None
    spf: SpfFact | None = None
    dkim: DkimFact | None = None
    dmarc: Txt | None = None
    ptr: tuple[PtrFact, ...] = field(default_factory=tuple)


# --------------------------------------------------------------------------- helpers


def address_domain(address: str) -> str:
    found = getaddresses([address])
    addr = found[0][1] if found else ""
    return addr.rpartition("@")[2].lower().rstrip(".")


def org_domain(domain: str) -> str:
    """The organisational domain, approximated by the last two labels (see module doc)."""
    labels = domain.lower().rstrip(".").split(".")
    return ".".join(labels[-2:])


def aligned(a: str, b: str, mode: str) -> bool:
    """RFC 7489 §3.1: strict = the same name; relaxed = the same organisational domain."""
    a, b = a.lower().rstrip("."), b.lower().rstrip(".")
    return a == b if mode == "s" else org_domain(a) == org_domain(b)


def tags(record: str) -> dict[str, str]:
    """``k=v; k=v`` tag lists of DKIM and DMARC records (RFC 6376 §3.2)."""
    out: dict[str, str] = {}
    for part in record.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            out[key.strip().lower()] = "".join(value.split())
    return out


def spf_records(txt: Txt) -> list[str]:
    return [r for r in txt.records if r.lower() == "v=spf1" or r.lower().startswith("v=spf1 ")]


def dmarc_records(txt: Txt) -> list[str]:
    return [r for r in txt.records if r.replace(" ", "").lower().startswith("v=dmarc1")]


# --------------------------------------------------------------------------- SPF


def check_spf(fact: SpfFact) -> list[Check]:
    source = f"{RFC7208}; {BULK}"
    found = spf_records(fact.txt)
    if fact.txt.error:
        return [Check("spf.record", "fail", f"DNS did not answer for TXT {fact.domain}: "
                      f"{fact.txt.error}", source)]
    if not found:
        return [Check("spf.record", "fail", f"no SPF record (TXT 'v=spf1 …') at {fact.domain}: "
                      "Gmail, Yahoo and Microsoft require SPF of bulk senders", source,
                      fix=f"publish TXT at {fact.domain}: \"v=spf1 "
                      f"{_spf_mechanism(fact)} ~all\"")]
    if len(found) > 1:
        return [Check("spf.record", "fail", f"{len(found)} SPF records at {fact.domain} "
                      "(RFC 7208 §4.5: more than one is a permerror)", source,
                      fix="merge them into one TXT record")]
    checks = [Check("spf.record", "pass", f"{fact.domain}: {found[0]}", source)]
    if fact.relay_error or not fact.relay_ips:
        checks.append(Check("spf.relay", "fail", f"cannot resolve the relay {fact.relay_host}: "
                            f"{fact.relay_error or 'no address'}", source))
        return checks
    bad = [v for v in fact.verdicts if v.result != "pass"]
    if not bad:
        ips = ", ".join(v.ip for v in fact.verdicts)
        checks.append(Check("spf.relay", "pass", f"the SPF record of {fact.domain} authorises "
                            f"the relay {fact.relay_host} ({ips})", source))
    else:
        what = "; ".join(f"{v.ip}: {v.result}" + (f" ({v.explanation})" if v.explanation else "")
                         for v in bad)
        checks.append(Check("spf.relay", "fail", f"the SPF record of {fact.domain} does not "
                            f"authorise the relay {fact.relay_host}: {what}", source,
                            fix=f"add {_spf_mechanism(fact)} (or the include: of your provider) "
                            f"to the SPF record of {fact.domain}"))
    return checks


def _spf_mechanism(fact: SpfFact) -> str:
    return " ".join(("ip6:" if ":" in ip else "ip4:") + ip for ip in fact.relay_ips) or "a:" + \
        fact.relay_host


# --------------------------------------------------------------------------- DKIM


def dkim_txt_value(p: str) -> str:
    """The TXT record value to publish for a public key."""
    return f"v=DKIM1; k=rsa; p={p}"


def check_dkim(sender: Sender, fact: DkimFact | None) -> list[Check]:
    source = f"{RFC6376}; {BULK}"
    if fact is None:
        return [Check("dkim.key", "fail", f"channel {sender.channel!r} signs nothing: set "
                      "dkim_selector, dkim_domain and dkim_key_file (Gmail and Yahoo require "
                      "DKIM of bulk senders, Microsoft of senders over 5,000 a day)", source)]
    checks: list[Check] = []
    if fact.key_error:
        checks.append(Check("dkim.key", "fail", f"cannot read the DKIM key: {fact.key_error}",
                            source))
    elif fact.txt.error:
        checks.append(Check("dkim.key", "fail", f"DNS did not answer for TXT {fact.name}: "
                            f"{fact.txt.error}", source))
    else:
        published = [tags(r).get("p", "") for r in fact.txt.records if "p=" in r]
        fix = f"publish TXT at {fact.name}: \"{dkim_txt_value(fact.expected_p)}\""
        if not published:
            checks.append(Check("dkim.key", "fail", f"no DKIM key (TXT 'v=DKIM1; p=…') at "
                                f"{fact.name}", source, fix=fix))
        elif any(same_key(p, fact.expected_p) for p in published):
            checks.append(Check("dkim.key", "pass", f"{fact.name} publishes the public key of "
                                "the configured private key", source))
        elif all(not p for p in published):
            checks.append(Check("dkim.key", "fail", f"{fact.name} has an empty p= (key revoked)",
                                source, fix=fix))
        else:
            checks.append(Check("dkim.key", "fail", f"the key published at {fact.name} is not "
                                "the public half of dkim_key_file: receivers will see every "
                                "signature fail", source, fix=fix))
    if aligned(fact.domain, sender.domain, "r"):
        checks.append(Check("dkim.alignment", "pass", f"d={fact.domain} aligns with From "
                            f"{sender.domain}", f"{RFC7489} §3.1.1; {GMAIL}"))
    else:
        checks.append(Check("dkim.alignment", "fail", f"d={fact.domain} does not align with "
                            f"From {sender.domain}: DMARC cannot pass through DKIM",
                            f"{RFC7489} §3.1.1; {GMAIL}",
                            fix=f"sign with dkim_domain = {sender.domain!r} (or a subdomain)"))
    return checks


def same_key(published: str, expected: str) -> bool:
    """Whether two base64 public keys are the same key. Both DER forms are in use in
    ``p=`` (SubjectPublicKeyInfo, the standard one, and bare PKCS#1): compared by their
    numbers, not their bytes."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    def numbers(b64: str) -> tuple[int, int] | None:
        try:
            der = base64.b64decode(b64, validate=True)
        except ValueError:
            return None
        try:
            key = load_der_public_key(der)
        except ValueError:
            try:  # PKCS#1 RSAPublicKey: wrap it in a SubjectPublicKeyInfo
                key = load_der_public_key(_spki_from_pkcs1(der))
            except ValueError:
                return None
        if not isinstance(key, rsa.RSAPublicKey):
            return None
        n = key.public_numbers()
        return n.n, n.e

    got = numbers(published)
    return got is not None and got == numbers(expected)


def _spki_from_pkcs1(der: bytes) -> bytes:
    algorithm = bytes.fromhex("300d06092a864886f70d0101010500")  # rsaEncryption, NULL
    bit_string = b"\x03" + _der_len(len(der) + 1) + b"\x00" + der
    body = algorithm + bit_string
    return b"\x30" + _der_len(len(body)) + body


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


# --------------------------------------------------------------------------- DMARC


def check_dmarc(sender: Sender, txt: Txt, spf: SpfFact | None, dkim: list[Check]) -> list[Check]:
    source = f"{RFC7489}; {BULK}"
    if txt.error:
        return [Check("dmarc.record", "fail", f"DNS did not answer for TXT {txt.name}: "
                      f"{txt.error}", source)]
    found = dmarc_records(txt)
    fix = f"publish TXT at _dmarc.{sender.domain}: \"v=DMARC1; p=none; rua=mailto:dmarc@" \
          f"{sender.domain}\" (then quarantine or reject once reports are clean)"
    if not found:
        return [Check("dmarc.record", "fail", f"no DMARC record at _dmarc.{sender.domain}: "
                      "required of bulk senders by Gmail, Yahoo and Microsoft", source, fix=fix)]
    if len(found) > 1:
        return [Check("dmarc.record", "fail", f"{len(found)} DMARC records at {txt.name} "
                      "(RFC 7489 §6.6.3: receivers then ignore DMARC)", source)]
    policy = tags(found[0])
    p = policy.get("p", "").lower()
    checks: list[Check] = []
    if p not in ("none", "quarantine", "reject"):
        checks.append(Check("dmarc.record", "fail", f"{txt.name}: no valid p= tag in "
                            f"{found[0]!r}", source, fix=fix))
    elif p == "none":
        checks.append(Check("dmarc.record", "pass", f"{txt.name}: p=none (accepted by Gmail and "
                            "Yahoo for bulk senders; quarantine or reject protect the domain)",
                            source))
    else:
        checks.append(Check("dmarc.record", "pass", f"{txt.name}: p={p}", source))
    # Alignment: DMARC passes when SPF or DKIM passes *and* its domain aligns with From.
    # The envelope sender is the From address (the smtp channel uses it for both).
    aspf, adkim = policy.get("aspf", "r").lower(), policy.get("adkim", "r").lower()
    spf_ok = spf is not None and bool(spf.verdicts) and all(
        v.result == "pass" for v in spf.verdicts)
    spf_aligned = spf is not None and aligned(spf.domain, sender.domain, aspf)
    dkim_ok = any(c.rule == "dkim.key" and c.status == "pass" for c in dkim)
    dkim_aligned = bool(sender.dkim_domain) and aligned(sender.dkim_domain, sender.domain, adkim)
    src = f"{RFC7489} §3.1, §4.2; {GMAIL}"
    if (spf_ok and spf_aligned) or (dkim_ok and dkim_aligned):
        via = " and ".join(n for n, ok in (("SPF", spf_ok and spf_aligned),
                                           ("DKIM", dkim_ok and dkim_aligned)) if ok)
        checks.append(Check("dmarc.alignment", "pass", f"From {sender.domain} aligned through "
                            f"{via} (aspf={aspf}, adkim={adkim})", src))
    else:
        reasons = [
            "SPF does not pass" if not spf_ok else
            f"SPF domain {spf.domain if spf else '?'} not aligned (aspf={aspf})",
            "no DKIM signing domain" if not sender.dkim_domain else
            "the DKIM key does not verify" if not dkim_ok else
            f"DKIM d={sender.dkim_domain} not aligned with {sender.domain} (adkim={adkim})",
        ]
        checks.append(Check("dmarc.alignment", "fail", f"DMARC would fail for From "
                            f"{sender.domain}: " + "; ".join(reasons), src))
    return checks


# --------------------------------------------------------------------------- the relay


def check_ptr(facts: tuple[PtrFact, ...]) -> list[Check]:
    source = f"{MICROSOFT}; {YAHOO} (forward-confirmed reverse DNS)"
    out = []
    for fact in facts:
        if fact.confirmed:
            out.append(Check("relay.ptr", "pass", f"{fact.ip} -> {fact.names[0]} -> {fact.ip}",
                             source))
        elif fact.names:
            out.append(Check("relay.ptr", "warn", f"{fact.ip} -> {', '.join(fact.names)}, which "
                             f"does not resolve back to {fact.ip}", source))
        else:
            out.append(Check("relay.ptr", "warn", f"no PTR record for the relay address "
                             f"{fact.ip}" + (f" ({fact.error})" if fact.error else "") +
                             ": your provider's relay normally has one", source))
    return out


def check_from_domain(sender: Sender) -> Check:
    source = f"{YAHOO}; {GMAIL} (DMARC of free-mail domains)"
    if sender.domain in FREE_MAIL or org_domain(sender.domain) in FREE_MAIL:
        return Check("from.domain", "warn", f"From {sender.domain} is a free-mail domain: its "
                     "DMARC policy makes relayed newsletters fail; send from your own domain",
                     source)
    return Check("from.domain", "pass", f"From {sender.domain} is your own domain", source)


# --------------------------------------------------------------------------- web


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def check_base_url(base_url: str) -> Check:
    source = f"{RFC8058} §3.1; {GMAIL}"
    parts = urlsplit(base_url)
    loopback = is_loopback(base_url)
    if parts.scheme == "https" and not loopback:
        return Check("base_url.https", "pass", f"{base_url} is HTTPS", source)
    if loopback:
        return Check("base_url.https", "warn", f"{base_url} is a loopback address: fine for a "
                     "test, but no mail provider can reach it", source)
    return Check("base_url.https", "fail", f"{base_url} is not HTTPS: RFC 8058 one-click needs "
                 "an https URI, providers ignore others", source,
                 fix="serve the site over HTTPS and set [site] base_url = \"https://…/\"")


def check_endpoint(endpoint: Endpoint | None) -> Check:
    source = f"{RFC8058} §3.2; {GMAIL}; {YAHOO}"
    if endpoint is None:
        return Check("unsubscribe.one_click", "warn", "not tested", source)
    if endpoint.skipped:
        return Check("unsubscribe.one_click", "warn", f"not tested: {endpoint.skipped}", source)
    if endpoint.error:
        return Check("unsubscribe.one_click", "fail", f"POST {endpoint.url}: {endpoint.error}",
                     source, fix="run `syndicate serve` behind base_url")
    if 300 <= endpoint.status < 400:
        return Check("unsubscribe.one_click", "fail", f"POST {endpoint.url} answered "
                     f"{endpoint.status} -> {endpoint.location or '?'}: RFC 8058 one-click must "
                     "not redirect", source)
    if 200 <= endpoint.status < 300:
        return Check("unsubscribe.one_click", "pass", f"POST {endpoint.url} answered "
                     f"{endpoint.status}", source)
    return Check("unsubscribe.one_click", "fail", f"POST {endpoint.url} answered "
                 f"{endpoint.status}", source)


# --------------------------------------------------------------------------- the message


def check_message(data: bytes | None, error: str = "") -> list[Check]:
    if data is None:
        return [Check("message", "warn", f"no message to check: {error}", GMAIL)]
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    out: list[Check] = []
    unsub = " ".join(str(msg.get("List-Unsubscribe", "")).split())
    uris = [u.strip().strip("<>") for u in unsub.split(",") if u.strip()]
    src = f"{RFC2369}; {RFC8058}; {BULK}"
    if not uris:
        out.append(Check("headers.list_unsubscribe", "fail", "no List-Unsubscribe header", src))
    elif not any(u.startswith("https://") for u in uris) and any(map(is_loopback, uris)):
        out.append(Check("headers.list_unsubscribe", "warn", f"List-Unsubscribe points to a "
                         f"loopback address ({unsub}): a local trial (see base_url.https)", src))
    elif not any(u.startswith("https://") for u in uris):
        out.append(Check("headers.list_unsubscribe", "fail", f"List-Unsubscribe has no https "
                         f"URI ({unsub}): one-click needs one", src))
    else:
        out.append(Check("headers.list_unsubscribe", "pass", "List-Unsubscribe has an https URI",
                         src))
    post = " ".join(str(msg.get("List-Unsubscribe-Post", "")).split())
    if post == "List-Unsubscribe=One-Click":
        out.append(Check("headers.list_unsubscribe_post", "pass",
                         "List-Unsubscribe-Post: List-Unsubscribe=One-Click", src))
    else:
        out.append(Check("headers.list_unsubscribe_post", "fail", "List-Unsubscribe-Post is "
                         f"{post or 'absent'}, not 'List-Unsubscribe=One-Click'", src))
    lid = str(msg.get("List-Id", ""))
    out.append(Check("headers.list_id", "pass", f"List-Id: {lid}", RFC2919) if lid else
               Check("headers.list_id", "fail", "no List-Id header", RFC2919))
    fid = str(msg.get("Feedback-ID", ""))
    fsrc = "Gmail Postmaster Tools feedback loop (Feedback-ID)"
    out.append(Check("headers.feedback_id", "pass", f"Feedback-ID: {fid}", fsrc) if fid else
               Check("headers.feedback_id", "warn", "no Feedback-ID header: Gmail's feedback "
                     "loop cannot report complaints per campaign (recommended, not required)",
                     fsrc))
    out.append(_size(msg))
    return out


def _size(msg: EmailMessage) -> Check:
    source = "Gmail clips messages whose HTML exceeds 102 KB"
    html = next((p for p in msg.walk() if p.get_content_type() == "text/html"), None)
    if html is None:
        return Check("message.size", "warn", "no HTML part", source)
    raw = html.get_payload(decode=False)
    size = len(raw.encode("ascii", "replace")) if isinstance(raw, str) else 0
    kb = f"{size / 1024:.1f} KB"
    if size >= GMAIL_CLIP:
        return Check("message.size", "fail", f"HTML part is {kb} (encoded): Gmail clips it "
                     "and hides the end, unsubscribe link included", source,
                     fix="send summaries ([publish] email_content = 'summary') or lighten the "
                     "template")
    if size >= CLIP_MARGIN:
        return Check("message.size", "warn", f"HTML part is {kb} (encoded), close to Gmail's "
                     "102 KB clip", source)
    return Check("message.size", "pass", f"HTML part is {kb} (encoded), under Gmail's 102 KB "
                 "clip", source)


# --------------------------------------------------------------------------- all of it


def evaluate(facts: Facts) -> list[Check]:
    """Every check, in the order they are printed."""
    checks: list[Check] = []
    sender = facts.sender
    if sender is None:
        checks.append(Check("dns", "warn", "no smtp channel: the SPF, DKIM, DMARC and relay "
                            "checks need an smtp channel with a `from` domain", BULK))
    else:
        checks.append(check_from_domain(sender))
        if facts.spf is not None:
            checks += check_spf(facts.spf)
        dkim = check_dkim(sender, facts.dkim)
        checks += dkim
        if facts.dmarc is not None:
            checks += check_dmarc(sender, facts.dmarc, facts.spf, dkim)
        checks += check_ptr(facts.ptr)
    checks.append(check_base_url(facts.base_url))
    checks.append(check_endpoint(facts.endpoint))
    checks += check_message(facts.message, facts.message_error)
    return checks


__all__ = [
    "Check", "DkimFact", "Endpoint", "Facts", "PtrFact", "Sender", "SpfFact", "SpfVerdict",
    "Status", "Txt", "aligned", "check_base_url", "check_dkim", "check_dmarc", "check_endpoint",
    "check_from_domain", "check_message", "check_ptr", "check_spf", "dkim_txt_value",
    "evaluate", "is_loopback", "org_domain", "same_key", "tags",
]
