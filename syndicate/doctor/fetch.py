"""The I/O of ``syndicate doctor``: DNS answers, the relay's addresses, the SPF verdict,
the DKIM key, the one-click test POST. Each function returns a fact of :mod:`.rules`.

DNS goes through one :class:`DnsClient` (dnspython), configured with a nameserver
(IP and port) or the system's, a per-try timeout and a bounded number of tries:
with ``--nameserver`` nothing else is ever asked (no fallback to the system resolver),
which is what lets the tests run against their own server on 127.0.0.1.

SPF is evaluated by pyspf (RFC 7208 in full: include, redirect, a, mx, ptr, exists,
macros, the 10-lookup limit) through its documented hook ``spf.DNSLookup``, pointed
at the same :class:`DnsClient` while the verdict is computed.
"""

from __future__ import annotations

import base64
import ipaddress
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
import dns.reversename

from .rules import DkimFact, Endpoint, PtrFact, SpfFact, SpfVerdict, Txt, org_domain

#: The longest the doctor waits for one DNS answer, all tries together.
MAX_TRIES = 5


@dataclass(frozen=True)
class DnsSettings:
    """``nameserver`` empty: the system's resolvers (/etc/resolv.conf)."""

    nameserver: str = ""
    port: int = 53
    timeout: float = 3.0  # per try
    tries: int = 2

    @classmethod
    def parse(cls, value: str, *, timeout: float = 3.0, tries: int = 2) -> DnsSettings:
        """``IP``, ``IP:PORT``, ``[IPv6]:PORT`` or a bare IPv6 address."""
        host, port = value, 53
        if value.startswith("["):
            host, _, rest = value[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else 53
        elif value.count(":") == 1:
            host, _, text = value.partition(":")
            port = int(text)
        ipaddress.ip_address(host)  # ValueError for a name: a resolver is given by address
        if not 0 < port < 65536:
            raise ValueError(f"port out of range: {port}")
        return cls(host, port, timeout, max(1, min(tries, MAX_TRIES)))


class DnsClient:
    def __init__(self, settings: DnsSettings) -> None:
        self.settings = settings
        if settings.nameserver:
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = [settings.nameserver]
            resolver.port = settings.port
        else:
            resolver = dns.resolver.Resolver()
        resolver.timeout = settings.timeout
        # The lifetime bounds the whole query, retries on timeout included.
        resolver.lifetime = settings.timeout * settings.tries
        resolver.retry_servfail = False
        self.resolver = resolver

    def query(self, name: str, rdtype: str) -> list[Any]:
        """The rdata at ``name``; [] when the name or the type does not exist.
        Raises ``dns.exception.DNSException`` for a timeout or a failing server."""
        try:
            answer = self.resolver.resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        return list(answer)

    def txt(self, name: str) -> Txt:
        try:
            rdata = self.query(name, "TXT")
        except dns.exception.DNSException as exc:
            return Txt(name, error=_why(exc))
        return Txt(name, tuple(b"".join(r.strings).decode("utf-8", "replace") for r in rdata))

    def addresses(self, host: str) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            found += [r.address for r in self.query(host, rdtype)]
        return found

    # -- pyspf's hook -------------------------------------------------------

    def spf_lookup(self, name: str, qtype: str, tcpfallback: bool = True,
                   timeout: float = 30) -> list[tuple[tuple[str, str], Any]]:
        """What pyspf's ``DNSLookup`` returns: ``((name, qtype), data)`` pairs."""
        import spf  # see spf_verdicts

        try:
            rdata = self.query(name, qtype)
        except dns.exception.DNSException as exc:
            raise spf.TempError(f"DNS {_why(exc)}") from None
        out: list[tuple[tuple[str, str], Any]] = []
        for r in rdata:
            if qtype in ("A", "AAAA"):
                out.append(((name, qtype), r.address))
            elif qtype == "MX":
                out.append(((name, qtype), (r.preference, r.exchange)))
            elif qtype == "PTR":
                out.append(((name, qtype), r.target.to_text(True)))
            elif qtype in ("TXT", "SPF"):
                out.append(((name, qtype), r.strings))
        return out


def _why(exc: BaseException) -> str:
    if isinstance(exc, dns.exception.Timeout):
        return "timed out"
    if isinstance(exc, dns.resolver.NoNameservers):
        return "the nameserver failed (SERVFAIL or REFUSED)"
    return f"{type(exc).__name__}: {exc}"


_SPF_HOOK = threading.Lock()


@contextmanager
def _spf_through(client: DnsClient) -> Iterator[Any]:
    # pyspf is imported here on purpose: only `doctor` needs it. Its DNS hook is a
    # module global, hence the lock around the swap.
    import spf

    with _SPF_HOOK:
        saved = spf.DNSLookup
        spf.DNSLookup = client.spf_lookup
        try:
            yield spf
        finally:
            spf.DNSLookup = saved


def spf_fact(client: DnsClient, from_address: str, domain: str, relay_host: str) -> SpfFact:
    txt = client.txt(domain)
    try:
        ips = client.addresses(relay_host)
    except dns.exception.DNSException as exc:
        return SpfFact(domain, txt, relay_host, relay_error=_why(exc))
    verdicts = []
    with _spf_through(client) as spf:
        for ip in ips:
            query = spf.query(i=ip, s=from_address, h=relay_host,
                              timeout=client.settings.timeout * client.settings.tries)
            result, _code, explanation = query.check()
            verdicts.append(SpfVerdict(ip, str(result), str(explanation)))
    return SpfFact(domain, txt, relay_host, tuple(ips), verdicts=tuple(verdicts))


def dmarc_txt(client: DnsClient, domain: str) -> Txt:
    """``_dmarc.<domain>``, then the organisational domain's (RFC 7489 §6.6.3)."""
    txt = client.txt(f"_dmarc.{domain}")
    if txt.error or any(r.replace(" ", "").lower().startswith("v=dmarc1") for r in txt.records):
        return txt
    org = org_domain(domain)
    return client.txt(f"_dmarc.{org}") if org != domain else txt


def public_key_b64(pem: bytes) -> str:
    """The ``p=`` value of a private key: base64 DER SubjectPublicKeyInfo."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pem, password=None)
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode("ascii")


def dkim_fact(client: DnsClient, selector: str, domain: str, key_file: Path) -> DkimFact:
    txt = client.txt(f"{selector}._domainkey.{domain}")
    try:
        expected = public_key_b64(key_file.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        return DkimFact(selector, domain, txt, key_error=f"{key_file}: {exc}")
    return DkimFact(selector, domain, txt, expected)


def ptr_fact(client: DnsClient, ip: str) -> PtrFact:
    try:
        names = [r.target.to_text(True) for r in
                 client.query(dns.reversename.from_address(ip).to_text(), "PTR")]
        for name in names[:3]:  # bounded: a relay has one name, rarely two
            if ip in client.addresses(name):
                return PtrFact(ip, (name,), confirmed=True)
    except dns.exception.DNSException as exc:
        return PtrFact(ip, error=_why(exc))
    return PtrFact(ip, tuple(names))


def post_one_click(url: str, timeout: float) -> Endpoint:
    """The POST a mail provider makes (RFC 8058 §3.2), redirects not followed."""
    import requests

    try:
        answer = requests.post(url, data={"List-Unsubscribe": "One-Click"},
                               allow_redirects=False, timeout=timeout)
    except requests.RequestException as exc:
        return Endpoint(url, error=f"{type(exc).__name__}: {exc}")
    return Endpoint(url, answer.status_code, answer.headers.get("Location", ""))


__all__ = [
    "DnsClient", "DnsSettings", "dkim_fact", "dmarc_txt", "post_one_click", "ptr_fact",
    "public_key_b64", "spf_fact",
]
