"""``syndicate doctor`` against real parts: an authoritative DNS server on 127.0.0.1
(tests/_dns_support.py) serving a correct zone and broken ones, the web app on
waitress for the one-click test POST, and the CLI run as a subprocess.

The doctor is always given ``--nameserver 127.0.0.1:PORT``: it asks that server only
(the queries it got are checked), never the system's resolvers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from _dns_support import dns_server
from _web_support import SECRET, Site, free_port, site_factory
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from syndicate.doctor import rules
from syndicate.doctor.fetch import DnsSettings, public_key_b64

pytestmark = pytest.mark.slow

FROM = "Études de cas <lettre@example.org>"
SELECTOR = "s2026"


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.fixture(scope="module")
def keys() -> tuple[bytes, bytes]:
    """The configured DKIM key and another one (for the mismatch)."""
    made = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)]
    return _pem(made[0]), _pem(made[1])


def txt(value: str) -> str:
    """A TXT rdata of strings of at most 255 characters (DKIM keys are longer)."""
    return " ".join(f'"{value[i:i + 255]}"' for i in range(0, len(value), 255))


def zones(pem: bytes, *, spf: str | None = "v=spf1 ip4:127.0.0.1 -all",
          dmarc: str | None = "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.org",
          dkim_name: str = f"{SELECTOR}._domainkey") -> dict[str, str]:
    lines = [
        "@ 300 IN SOA ns.example.org. hostmaster.example.org. 1 300 300 300 300",
        "@ 300 IN NS ns.example.org.",
        "ns 300 IN A 127.0.0.1",
        "mail 300 IN A 127.0.0.1",
        f"{dkim_name} 300 IN TXT {txt('v=DKIM1; k=rsa; p=' + public_key_b64(pem))}",
    ]
    if spf is not None:
        lines.append(f"@ 300 IN TXT {txt(spf)}")
    if dmarc is not None:
        lines.append(f"_dmarc 300 IN TXT {txt(dmarc)}")
    reverse = [
        "@ 300 IN SOA ns.example.org. hostmaster.example.org. 1 300 300 300 300",
        "@ 300 IN NS ns.example.org.",
        "1.0.0 300 IN PTR mail.example.org.",
    ]
    return {"example.org.": "\n".join(lines) + "\n",
            "127.in-addr.arpa.": "\n".join(reverse) + "\n"}


def smtp_channel(**overrides: str) -> dict[str, Any]:
    channel = {"type": "smtp", "host": "127.0.0.1", "port": 2525, "security": "none",
               "from": FROM, "dkim_selector": SELECTOR, "dkim_domain": "example.org",
               "dkim_key_file": "dkim.pem"}
    channel.update(overrides)
    return channel


@pytest.fixture
def make_site(project: Any) -> Iterator[Any]:
    yield from site_factory(project)


@pytest.fixture
def site(make_site: Any, project: Any, keys: tuple[bytes, bytes]) -> Site:
    (project.root / "config" / "dkim.pem").write_bytes(keys[0])
    made: Site = make_site(channels=[smtp_channel()])
    return made


def doctor(site: Site, port: int, *args: str) -> tuple[int, dict[str, Any], str]:
    env = {**os.environ, "SYNDICATE_SECRET": SECRET.decode()}
    proc = subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(site.project.config_path), "doctor",
         "--nameserver", f"127.0.0.1:{port}", "--timeout", "2", "--json", *args],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def by_rule(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for check in report["checks"]:
        out.setdefault(check["rule"], check)  # the first of a rule (relay.ptr: one per IP)
    return out


def test_correct_zone_passes(site: Site, keys: tuple[bytes, bytes]) -> None:
    with dns_server(zones(keys[0])) as (port, authority):
        code, report, stderr = doctor(site, port)
    checks = by_rule(report)
    not_passed = [c for c in report["checks"] if c["status"] != "pass"]
    assert code == 0, json.dumps(not_passed, indent=1) + stderr
    assert report["ok"] is True and report["summary"]["fail"] == 0
    for rule in ("from.domain", "spf.record", "spf.relay", "dkim.key", "dkim.alignment",
                 "dmarc.record", "dmarc.alignment", "relay.ptr", "unsubscribe.one_click",
                 "headers.list_unsubscribe_post", "headers.list_id",
                 "message.size"):
        assert checks[rule]["status"] == "pass", checks[rule]
    # The documented warnings of a local trial: a loopback base_url (and so unsubscribe
    # links). Every message carries a Feedback-ID.
    assert checks["base_url.https"]["status"] == "warn"
    assert checks["headers.list_unsubscribe"]["status"] == "warn"
    assert checks["headers.feedback_id"]["status"] == "pass"
    assert "p=quarantine" in checks["dmarc.record"]["detail"]
    assert "RFC 7208" in checks["spf.relay"]["source"]
    # Every question went to the test server, about the test zones only.
    asked = {name for name, _ in authority.queries}
    assert "_dmarc.example.org." in asked and f"{SELECTOR}._domainkey.example.org." in asked
    assert all(n.endswith(("example.org.", "in-addr.arpa.")) for n in asked), asked
    # The test POST named nobody: the ledger has no subscriber for it.
    assert site.status("doctor-probe@example.invalid") is None


@pytest.mark.parametrize(("case", "rule", "words"), [
    ("no-spf", "spf.record", "no SPF record"),
    ("spf-without-relay", "spf.relay", "does not authorise the relay 127.0.0.1"),
    ("dkim-mismatch", "dkim.key", "is not the public half of dkim_key_file"),
    ("no-dmarc", "dmarc.record", "no DMARC record at _dmarc.example.org"),
    ("dmarc-misaligned", "dmarc.alignment", "not aligned with example.org (adkim=s)"),
])
def test_broken_zone_fails_the_rule(site: Site, keys: tuple[bytes, bytes], case: str,
                                    rule: str, words: str) -> None:
    pem, other = keys
    zone = {
        "no-spf": lambda: zones(pem, spf=None),
        "spf-without-relay": lambda: zones(pem, spf="v=spf1 ip4:192.0.2.0/24 -all"),
        "dkim-mismatch": lambda: zones(other),
        "no-dmarc": lambda: zones(pem, dmarc=None),
        # DKIM signs as a subdomain, DMARC asks strict alignment, SPF does not pass.
        "dmarc-misaligned": lambda: zones(pem, spf="v=spf1 -all",
                                          dmarc="v=DMARC1; p=reject; adkim=s; aspf=s",
                                          dkim_name=f"{SELECTOR}._domainkey.mail"),
    }[case]()
    if case == "dmarc-misaligned":
        site.project.write_config(site={"base_url": site.base},
                                  channels=[smtp_channel(dkim_domain="mail.example.org")])
    with dns_server(zone) as (port, _):
        code, report, stderr = doctor(site, port)
    assert code == 1, (report, stderr)
    check = by_rule(report)[rule]
    assert check["status"] == "fail", check
    assert words in check["detail"], check
    failed = {c["rule"] for c in report["checks"] if c["status"] == "fail"}
    expected = {"dkim-mismatch": {"dkim.key"}, "no-spf": {"spf.record"},
                "spf-without-relay": {"spf.relay"}, "no-dmarc": {"dmarc.record"},
                "dmarc-misaligned": {"spf.relay", "dmarc.alignment"}}[case]
    assert failed == expected, report
    if case == "dkim-mismatch":  # the record to publish, derived from the configured key
        assert check["fix"] == (f"publish TXT at {SELECTOR}._domainkey.example.org: "
                                f"\"v=DKIM1; k=rsa; p={public_key_b64(pem)}\"")


def test_spf_is_checked_on_the_bounce_domain_with_verp(site: Site,
                                                       keys: tuple[bytes, bytes]) -> None:
    """With [bounces] domain set, the envelope sender is bounces+token@<that domain>:
    its SPF record is the one receivers check (and DMARC aligns it, relaxed)."""
    site.project.write_config(site={"base_url": site.base}, channels=[smtp_channel()],
                              bounces={"domain": "retour.example.org"})
    zone = zones(keys[0], spf="v=spf1 ip4:192.0.2.0/24 -all")  # From's: not the relay
    zone["example.org."] += f"retour 300 IN TXT {txt('v=spf1 ip4:127.0.0.1 -all')}\n"
    with dns_server(zone) as (port, _authority):
        code, report, stderr = doctor(site, port)
    checks = by_rule(report)
    assert checks["spf.record"]["status"] == "pass", checks["spf.record"]
    assert checks["spf.record"]["detail"].startswith("retour.example.org:")
    assert checks["spf.relay"]["status"] == "pass", checks["spf.relay"]
    assert checks["dmarc.alignment"]["status"] == "pass", checks["dmarc.alignment"]
    assert code == 0, stderr


def test_text_output_and_exit_status(site: Site, keys: tuple[bytes, bytes]) -> None:
    with dns_server(zones(keys[1])) as (port, _):
        proc = subprocess.run(
            [sys.executable, "-m", "syndicate", "--config", str(site.project.config_path),
             "doctor", "--nameserver", f"127.0.0.1:{port}", "--skip-http"],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "SYNDICATE_SECRET": SECRET.decode()},
        )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.startswith("fail  dkim.key") for line in lines), proc.stdout
    assert any("fix: publish TXT at s2026._domainkey.example.org" in line for line in lines)
    assert any(line.startswith("warn  unsubscribe.one_click") and "--skip-http" in line
               for line in lines)
    assert lines[-1].endswith("1 fail")


def test_dns_server_down_is_a_bounded_failure(site: Site) -> None:
    port = free_port()  # nothing listens there
    proc = subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(site.project.config_path),
         "doctor", "--nameserver", f"127.0.0.1:{port}", "--timeout", "0.2", "--skip-http",
         "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    checks = by_rule(json.loads(proc.stdout))
    assert checks["spf.record"]["status"] == "fail"
    assert "DNS did not answer" in checks["spf.record"]["detail"]


def test_without_smtp_channel_checks_what_applies(project: Any) -> None:
    project.write_config(site={"base_url": "https://cas.example.org/"},
                         channels=[{"type": "outbox", "path": "../var/outbox"}])
    proc = subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(project.config_path), "doctor",
         "--skip-http", "--json", "--nameserver", "127.0.0.1:9"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    checks = by_rule(json.loads(proc.stdout))
    assert "smtp channel with a `from` domain" in checks["dns"]["detail"]
    assert checks["base_url.https"]["status"] == "pass"
    assert checks["headers.list_unsubscribe_post"]["status"] == "pass"
    assert "spf.record" not in checks


# --------------------------------------------------------------------------- pure rules


def test_one_click_endpoint_rules() -> None:
    ok = rules.check_endpoint(rules.Endpoint("https://x/unsubscribe/t", 200))
    moved = rules.check_endpoint(rules.Endpoint("https://x/u/t", 302, "https://x/login"))
    assert ok.status == "pass"
    assert moved.status == "fail" and "must not redirect" in moved.detail
    assert rules.check_base_url("http://cas.example.org/").status == "fail"


def test_message_rules_size_and_headers() -> None:
    big = "<p>" + "x" * (rules.GMAIL_CLIP + 10) + "</p>"
    message = (
        "From: a@example.org\r\nList-Unsubscribe: <mailto:u@example.org>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n" + big + "\r\n"
    ).encode()
    checks = {c.rule: c for c in rules.check_message(message)}
    assert checks["message.size"].status == "fail"
    assert checks["headers.list_unsubscribe"].status == "fail"  # no https URI
    assert checks["headers.list_unsubscribe_post"].status == "fail"
    assert checks["headers.list_id"].status == "fail"


def test_same_key_accepts_pkcs1_form(keys: tuple[bytes, bytes]) -> None:
    import base64

    key = serialization.load_pem_private_key(keys[0], password=None)
    pkcs1 = key.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.PKCS1)
    expected = public_key_b64(keys[0])
    assert rules.same_key(base64.b64encode(pkcs1).decode(), expected)
    assert not rules.same_key(public_key_b64(keys[1]), expected)
    assert not rules.same_key("not base64!", expected)


def test_nameserver_parsing() -> None:
    assert DnsSettings.parse("127.0.0.1:5353").port == 5353
    assert DnsSettings.parse("::1").nameserver == "::1"
    assert DnsSettings.parse("[::1]:53").port == 53
    with pytest.raises(ValueError):
        DnsSettings.parse("ns.example.org")


def test_free_mail_from_warns() -> None:
    sender = rules.Sender("smtp", "Moi <moi@gmail.com>", "smtp.gmail.com")
    assert rules.check_from_domain(sender).status == "warn"


def test_dmarc_none_passes_with_note() -> None:
    sender = rules.Sender("smtp", "a@example.org", "relay", SELECTOR, "example.org")
    txt = rules.Txt("_dmarc.example.org", ("v=DMARC1; p=none",))
    (record, _) = rules.check_dmarc(sender, txt, None, [])
    assert record.status == "pass" and "p=none" in record.detail


