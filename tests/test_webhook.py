"""The ``webhook`` channel against a real HTTP server on 127.0.0.1 (pytest-httpserver).

Signatures are checked twice: with the spec's algorithm written out here and with the
reference ``standardwebhooks`` package (interoperability). Timing tests use tiny
backoffs; the Retry-After one waits about a second on purpose.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

import pytest
from pytest_httpserver import HTTPServer
from standardwebhooks.webhooks import Webhook
from werkzeug import Request, Response

from syndicate.channels import Bookkeeping, DeliveryJob, DeliveryReport, build_channel
from syndicate.channels.webhook import (
    classify,
    decode_secret,
    parse_retry_after,
    retry_delay,
    truncate,
)
from syndicate.corpus import CaseStudy, Section, save
from syndicate.errors import ConfigError
from syndicate.ledger import Delivery, Ledger
from syndicate.render.model import CompanyMention, EditionView, Link
from syndicate.render.urls import company_url, edition_url

if TYPE_CHECKING:
    from .conftest import Project

BASE = "https://cas.example.org/"
SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
LEDE = (
    "Refuser une levée de fonds, c’est choisir son rythme\u00a0: chez The Green Data comme "
    "chez Cozy Cloud, « l’indépendance » s’est payée en croissance plus lente… mais en "
    "décisions prises sans actionnaire pressé."
)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def server() -> Iterator[HTTPServer]:
    # Threaded: the timeout test leaves a handler sleeping while the retry comes in.
    srv = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    srv.start()
    yield srv
    srv.clear()
    srv.stop()


@pytest.fixture
def http(server: HTTPServer) -> HTTPServer:
    server.clear()
    return server


def case_study(slug: str = "refuser-les-levees-de-fonds", *, title: str | None = None,
               lede: str = LEDE, position: int = 1) -> CaseStudy:
    return CaseStudy(
        slug=slug,
        title=title or "Refuser les levées de fonds\u00a0: la stratégie d’indépendance",
        lede=lede,
        sections=(Section("Le choix", ("Un paragraphe « cité » avec 10\u00a0% d’effort…",)),),
        position=position,
        companies=("The Green Data", "Cozy Cloud"),
        themes=("financement",),
    )


def view_of(case: CaseStudy, number: int = 3) -> EditionView:
    earlier = Link("garder-le-cap", "Garder le cap", edition_url(BASE, "garder-le-cap"))
    return EditionView(
        number=number,
        case=case,
        url=edition_url(BASE, case.slug),
        published_at=datetime(2026, 11, 24, 8, 0, tzinfo=UTC),
        related=(earlier,),
        companies=tuple(
            CompanyMention(c, company_url(BASE, c), (earlier,) if i == 0 else ())
            for i, c in enumerate(case.companies)
        ),
    )


class Harness:
    """A project with webhook channels, a ledger with one claimed edition, and a job."""

    def __init__(self, project: Project, channels: list[dict[str, Any]],
                 case: CaseStudy | None = None) -> None:
        project.write_config(site={"base_url": BASE}, channels=channels)
        self.config = project.config()
        self.ledger = Ledger(self.config.database)
        self.case = case or case_study()
        self.view = view_of(self.case)
        self.edition = self.ledger.claim_edition(
            slot="test:1", slug=self.case.slug, title=self.case.title, url=self.view.url
        )
        self.stop = threading.Event()

    def job(self) -> DeliveryJob:
        return DeliveryJob(self.edition, self.view, (self.view,),
                           None,  # type: ignore[arg-type]  # webhooks never read the email
                           Bookkeeping(self.ledger, self.edition), stop=self.stop)

    def deliver(self, index: int = 0) -> DeliveryReport:
        return build_channel(self.config.channels[index], self.config).deliver(self.job())

    def row(self, channel: str = "webhook") -> Delivery:
        return self.ledger.ensure_delivery(self.edition.id, channel, "")

    def close(self) -> None:
        self.ledger.close()


@pytest.fixture
def make(project: Project) -> Iterator[Any]:
    made: list[Harness] = []

    def factory(channels: list[dict[str, Any]], case: CaseStudy | None = None) -> Harness:
        harness = Harness(project, channels, case)
        made.append(harness)
        return harness

    yield factory
    for harness in made:
        harness.close()


def hook(url: str, **settings: Any) -> dict[str, Any]:
    return {"type": "webhook", "url": url, "backoff": 0.01, "timeout": 2.0, **settings}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def requests_made(http: HTTPServer) -> list[Request]:
    return [request for request, _response in http.log]


# --------------------------------------------------------------------------- json + signature


def spec_verify(secret: str, headers: Any, body: bytes) -> bool:
    """The Standard Webhooks algorithm, written from the spec: HMAC-SHA256 with the
    base64-decoded secret over ``{id}.{timestamp}.{body}``; header ``v1,<base64>``
    (space-separated list)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    candidates = [s.split(",", 1) for s in headers["webhook-signature"].split(" ")]
    return any(v == "v1" and hmac.compare_digest(sig, expected) for v, sig in candidates)


def test_json_payload_is_signed_per_standard_webhooks(make, http, monkeypatch) -> None:
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET)
    http.expect_request("/hook", method="POST").respond_with_data("merci", status=202)
    h = make([hook(http.url_for("/hook"), secret_env="TEST_WEBHOOK_SECRET")])

    report = h.deliver()

    assert report.sent == 1 and report.ok, report
    (request,) = requests_made(http)
    body = request.get_data()
    headers = request.headers
    assert headers["Content-Type"].startswith("application/json")
    assert spec_verify(SECRET, headers, body)
    # Interoperability: the reference implementation accepts it too.
    Webhook(SECRET).verify(body, dict(headers))
    # ...and rejects a tampered body or another secret (the check can fail).
    assert not spec_verify(SECRET, headers, body.replace(b"Cozy", b"Cosy"))
    other = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    assert not spec_verify(other, headers, body)
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert headers["webhook-id"].startswith("msg_") and "." not in headers["webhook-id"]

    payload = json.loads(body)
    assert payload["type"] == "edition.published"
    assert payload["timestamp"] == "2026-11-24T08:00:00Z"
    data = payload["data"]
    assert data["title"] == h.case.title  # NBSP and ’ kept, not escaped
    assert "\u00a0" in body.decode("utf-8")
    assert data["url"] == "https://cas.example.org/refuser-les-levees-de-fonds/"
    assert data["summary"] == LEDE
    assert data["number"] == 3
    assert data["slug"] == "refuser-les-levees-de-fonds"
    assert data["published_at"] == "2026-11-24T08:00:00+00:00"
    assert [c["name"] for c in data["companies"]] == ["The Green Data", "Cozy Cloud"]
    assert data["companies"][0]["url"] == "https://cas.example.org/entreprises/the-green-data/"
    assert data["companies"][0]["earlier"][0]["slug"] == "garder-le-cap"
    assert data["related"] == [{"slug": "garder-le-cap", "title": "Garder le cap",
                                "url": "https://cas.example.org/garder-le-cap/"}]
    assert data["site"]["url"] == BASE

    row = h.row()
    assert (row.status, row.attempts, row.code) == ("sent", 1, 202)
    assert "merci" in row.response


def test_unsigned_json_when_no_secret_configured(make, http) -> None:
    http.expect_request("/hook", method="POST").respond_with_data("ok")
    h = make([hook(http.url_for("/hook"))])
    assert h.deliver().sent == 1
    (request,) = requests_made(http)
    assert "webhook-signature" not in request.headers
    assert request.headers["webhook-id"].startswith("msg_")


def test_sent_row_is_not_sent_again_on_resume(make, http) -> None:
    http.expect_request("/hook", method="POST").respond_with_data("ok")
    h = make([hook(http.url_for("/hook"))])
    assert h.deliver().sent == 1
    again = h.deliver()
    assert (again.sent, again.skipped) == (0, 1)
    assert len(requests_made(http)) == 1


# --------------------------------------------------------------------------- retries


def test_500_then_200_is_retried_with_the_same_id(make, http, monkeypatch) -> None:
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET)
    http.expect_ordered_request("/hook", method="POST").respond_with_data("boom", status=500)
    http.expect_ordered_request("/hook", method="POST").respond_with_data("ok", status=200)
    h = make([hook(http.url_for("/hook"), secret_env="TEST_WEBHOOK_SECRET")])

    report = h.deliver()

    assert report.sent == 1 and report.failed == 0
    first, second = requests_made(http)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.get_data() == second.get_data()
    for request in (first, second):  # each attempt is signed with its own timestamp
        Webhook(SECRET).verify(request.get_data(), dict(request.headers))
    row = h.row()
    assert (row.status, row.attempts, row.code) == ("sent", 2, 200)
    http.check_assertions()


def _spy_delays(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays the channel decides to wait (behaviour), instead of timing the run
    (a busy machine only makes it longer)."""
    from syndicate.channels import webhook

    delays: list[float] = []
    real = webhook.retry_delay

    def spy(*args: Any) -> float:
        delays.append(real(*args))
        return delays[-1]

    monkeypatch.setattr(webhook, "retry_delay", spy)
    return delays


def test_429_retry_after_seconds_is_honoured(make, http, monkeypatch) -> None:
    http.expect_ordered_request("/hook").respond_with_response(
        Response("slow down", status=429, headers={"Retry-After": "1"}))
    http.expect_ordered_request("/hook").respond_with_data("ok")
    h = make([hook(http.url_for("/hook"))])
    delays = _spy_delays(monkeypatch)

    started = time.monotonic()
    report = h.deliver()
    elapsed = time.monotonic() - started

    assert report.sent == 1
    assert delays == [1.0]  # Retry-After, not the 0.01 s backoff
    assert elapsed >= 0.9, elapsed  # and it did wait (a lower bound: load only adds)
    assert h.row().attempts == 2


def test_retry_after_http_date_is_capped_by_max_delay(make, http, monkeypatch) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    http.expect_ordered_request("/hook").respond_with_response(
        Response("", status=503, headers={"Retry-After": later}))
    http.expect_ordered_request("/hook").respond_with_data("ok")
    h = make([hook(http.url_for("/hook"), max_delay=0.3)])
    delays = _spy_delays(monkeypatch)

    started = time.monotonic()
    assert h.deliver().sent == 1
    assert delays == [0.3]  # an hour asked, capped at max_delay
    assert time.monotonic() - started >= 0.25


def test_404_is_permanent_not_retried(make, http) -> None:
    http.expect_request("/hook").respond_with_data("no such hook", status=404)
    h = make([hook(http.url_for("/hook"), max_attempts=5)])

    report = h.deliver()

    assert (report.sent, report.failed, report.pending) == (0, 1, 0)
    assert len(requests_made(http)) == 1
    row = h.row()
    assert (row.status, row.attempts, row.code) == ("failed", 1, 404)
    assert "no such hook" in row.response
    # A finished failure is not retried by a resume (only `retry-failed` does that).
    assert h.deliver().failed == 1
    assert len(requests_made(http)) == 1


def test_redirect_is_not_followed(make, http) -> None:
    http.expect_request("/hook").respond_with_response(
        Response("", status=301, headers={"Location": http.url_for("/elsewhere")}))
    http.expect_request("/elsewhere").respond_with_data("ok")
    h = make([hook(http.url_for("/hook"))])
    assert h.deliver().failed == 1
    assert [r.path for r in requests_made(http)] == ["/hook"]
    assert "redirect" in h.row().response


def test_connection_refused_is_retried_then_failed(make) -> None:
    h = make([hook(f"http://127.0.0.1:{free_port()}/hook", max_attempts=3)])
    report = h.deliver()
    assert report.failed == 1
    row = h.row()
    assert (row.status, row.attempts, row.code) == ("failed", 3, None)
    assert "connection" in row.response.lower()


def settle(calls: list[float], done: list[float]) -> None:
    """Wait for handlers the client gave up on, so their late log lines stay in this test."""
    deadline = time.monotonic() + 5
    while len(done) < len(calls) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_timeout_is_retried(make, http) -> None:
    calls: list[float] = []
    done: list[float] = []

    def slow_then_fast(request: Request) -> Response:
        calls.append(time.monotonic())
        if len(calls) == 1:
            time.sleep(1.0)
        done.append(time.monotonic())
        return Response("ok")

    http.expect_request("/hook").respond_with_handler(slow_then_fast)
    h = make([hook(http.url_for("/hook"), timeout=0.3, max_attempts=3)])

    report = h.deliver()

    assert report.sent == 1
    assert len(calls) == 2
    assert h.row().attempts == 2
    settle(calls, done)


def test_timeout_every_time_fails_with_a_clear_message(make, http) -> None:
    calls: list[float] = []
    done: list[float] = []

    def slow(request: Request) -> Response:
        calls.append(time.monotonic())
        time.sleep(0.6)
        done.append(time.monotonic())
        return Response("late")

    http.expect_request("/hook").respond_with_handler(slow)
    h = make([hook(http.url_for("/hook"), timeout=0.2, max_attempts=2)])
    assert h.deliver().failed == 1
    row = h.row()
    assert (row.status, row.attempts) == ("failed", 2)
    assert "timeout" in row.response
    settle(calls, done)


def test_stop_between_attempts_leaves_the_row_pending(make, http) -> None:
    http.expect_request("/hook").respond_with_data("down", status=502)
    h = make([hook(http.url_for("/hook"), backoff=30.0, max_attempts=5)])
    threading.Timer(0.3, h.stop.set).start()

    started = time.monotonic()
    report = h.deliver()

    assert time.monotonic() - started < 5
    assert (report.pending, report.failed) == (1, 0)
    row = h.row()
    assert (row.status, row.attempts, row.code) == ("pending", 1, 502)


def test_stop_before_sending_sends_nothing(make, http) -> None:
    http.expect_request("/hook").respond_with_data("ok")
    h = make([hook(http.url_for("/hook"))])
    h.stop.set()
    assert h.deliver().pending == 1
    assert requests_made(http) == []


def test_missing_or_bad_secret_is_recorded_not_sent(make, http, monkeypatch) -> None:
    http.expect_request("/hook").respond_with_data("ok")
    monkeypatch.delenv("TEST_WEBHOOK_SECRET", raising=False)
    h = make([hook(http.url_for("/hook"), secret_env="TEST_WEBHOOK_SECRET")])
    assert h.config.missing_secrets({}) and "TEST_WEBHOOK_SECRET" in h.config.missing_secrets({})[0]
    assert h.deliver().failed == 1
    assert "TEST_WEBHOOK_SECRET" in h.row().response
    assert requests_made(http) == []


def test_short_secret_is_rejected() -> None:
    with pytest.raises(ValueError, match="too short"):
        decode_secret("whsec_" + base64.b64encode(b"short").decode())
    with pytest.raises(ValueError, match="base64"):
        decode_secret("whsec_not base64!")
    assert len(decode_secret(SECRET)) == 32


# --------------------------------------------------------------------------- other formats


def test_slack_block_kit_shape(make, http) -> None:
    http.expect_request("/services/T/B/X", method="POST").respond_with_data("ok")
    long_title = "Refuser <les> levées & " + "très " * 60
    case = case_study(title=long_title)
    h = make([hook(http.url_for("/services/T/B/X"), format="slack")], case)

    assert h.deliver().sent == 1
    (request,) = requests_made(http)
    assert "webhook-signature" not in request.headers
    payload = json.loads(request.get_data())
    blocks = payload["blocks"]
    assert [b["type"] for b in blocks] == ["header", "section", "context", "actions", "section"]
    assert len(blocks[0]["text"]["text"]) <= 150 and blocks[0]["text"]["type"] == "plain_text"
    assert "\u00a0: chez The Green Data" in blocks[1]["text"]["text"]
    context = blocks[2]["elements"][0]["text"]
    assert "<https://cas.example.org/entreprises/cozy-cloud/|Cozy Cloud>" in context
    button = blocks[3]["elements"][0]
    assert button["type"] == "button" and button["url"] == h.view.url
    assert len(button["text"]["text"]) <= 75
    assert "<https://cas.example.org/garder-le-cap/|Garder le cap>" in blocks[4]["text"]["text"]
    assert h.view.url in payload["text"]  # notification fallback


def test_slack_escapes_mrkdwn_control_characters() -> None:
    from syndicate.app import parse_config
    from syndicate.channels.webhook import slack_payload

    config = parse_config({"site": {"base_url": BASE}}, __import__("pathlib").Path("x.toml"))
    case = case_study(lede="Marges < 5 % & « croissance > tout »")
    text = slack_payload(view_of(case), config)["blocks"][1]["text"]["text"]
    assert text == "Marges &lt; 5 % &amp; « croissance &gt; tout »"


def test_discord_embed_within_limits(make, http) -> None:
    http.expect_request("/api/webhooks/1/abc").respond_with_data("", status=204)
    case = case_study(title="T" * 400, lede="Une phrase assez longue, répétée. " * 400)
    h = make([hook(http.url_for("/api/webhooks/1/abc"), format="discord")], case)

    assert h.deliver().sent == 1
    (request,) = requests_made(http)
    payload = json.loads(request.get_data())
    assert payload["allowed_mentions"] == {"parse": []}
    (embed,) = payload["embeds"]
    assert embed["url"] == h.view.url
    assert len(embed["title"]) <= 256
    assert 1000 < len(embed["description"]) <= 4096
    assert embed["description"].endswith("…")
    assert embed["timestamp"] == "2026-11-24T08:00:00Z"
    names = [f["name"] for f in embed["fields"]]
    assert names == ["Entreprises", "À lire aussi"]
    assert all(len(f["value"]) <= 1024 and len(f["name"]) <= 256 for f in embed["fields"])
    total = (len(embed["title"]) + len(embed["description"]) + len(embed["footer"]["text"])
             + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"]))
    assert total <= 6000
    assert h.row().code == 204


def test_mastodon_status_headers_and_stable_idempotency_key(make, http, monkeypatch) -> None:
    monkeypatch.setenv("TEST_MASTODON_TOKEN", "tok-123")
    http.expect_ordered_request("/api/v1/statuses", method="POST").respond_with_data(
        "busy", status=503)
    http.expect_ordered_request("/api/v1/statuses", method="POST").respond_with_json(
        {"id": "1"})
    case = case_study(lede="Très long chapô. " * 100)
    h = make([hook(http.url_for("/"), format="mastodon", token_env="TEST_MASTODON_TOKEN")],
             case)

    assert h.deliver().sent == 1
    first, second = requests_made(http)
    for request in (first, second):
        assert request.headers["Authorization"] == "Bearer tok-123"
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert first.headers["Idempotency-Key"]
    payload = json.loads(second.get_data())
    assert payload["language"] == "fr" and payload["visibility"] == "public"
    status = payload["status"]
    assert len(status) <= 500
    assert status.startswith(case.title)
    assert status.endswith(h.view.url)
    assert "…" in status


def test_mastodon_key_differs_per_edition(make, http, monkeypatch) -> None:
    from syndicate.channels.webhook import idempotency_key, message_id

    h = make([hook("http://127.0.0.1:1/")])
    other = view_of(case_study("autre-cas"), number=4)
    assert idempotency_key(h.config, h.view, "m") == idempotency_key(h.config, h.view, "m")
    assert idempotency_key(h.config, h.view, "m") != idempotency_key(h.config, other, "m")
    assert message_id(h.config, h.view, "a") != message_id(h.config, h.view, "b")


def test_config_validation(project: Project) -> None:
    bad = [
        {"type": "webhook", "url": "https://x.example/", "format": "mastodon"},
        {"type": "webhook", "url": "https://x.example/", "format": "slack", "secret_env": "S"},
        {"type": "webhook", "url": "ftp://x.example/"},
        {"type": "webhook", "url": "https://x.example/", "secret_env": "not a name"},
        {"type": "webhook", "url": "https://x.example/", "format": "xml"},
    ]
    for entry in bad:
        project.write_config(channels=[entry])
        with pytest.raises(ConfigError):
            project.config()
    project.write_config(channels=[
        {"type": "webhook", "name": "social", "url": "https://m.example/", "format": "mastodon",
         "token_env": "MASTO", "timeout": 5, "max_attempts": 2, "backoff": 0.5},
    ])
    (settings,) = project.config().channels
    assert settings.secret_env_vars() == {"token_env": "MASTO"}
    assert settings.timeout == 5.0


# --------------------------------------------------------------------------- pure policy


def test_classify() -> None:
    assert [classify(c) for c in (200, 204, 301, 400, 404, 408, 410, 429, 500, 503)] == [
        "sent", "sent", "permanent", "permanent", "permanent", "retry", "permanent", "retry",
        "retry", "retry"]


def test_parse_retry_after() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after("1.5", now) == 1.5
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0
    assert parse_retry_after("-5", now) == 0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_retry_delay_doubles_and_is_capped(project: Project) -> None:
    project.write_config(channels=[hook("https://x.example/", backoff=1.0, max_delay=5.0)])
    (settings,) = project.config().channels
    assert [retry_delay(n, settings, None) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]
    assert retry_delay(1, settings, 3.0) == 3.0
    assert retry_delay(1, settings, 3600.0) == 5.0


def test_truncate_keeps_words_and_typography() -> None:
    text = "L’indépendance\u00a0: un choix « rare » pour une jeune pousse"
    assert truncate(text, 100) == text
    short = truncate(text, 30)
    assert len(short) <= 30 and short.endswith("…")
    assert short.startswith("L’indépendance\u00a0:")


# --------------------------------------------------------------------------- with the pipeline


def test_failing_webhook_does_not_block_other_channels(project: Project, http) -> None:
    from syndicate.pipeline import publish

    for old in (project.root / "corpus").glob("*.md"):  # a small corpus of our own
        old.unlink()
    for i, slug in enumerate(["premier-cas", "second-cas"], start=1):
        save(case_study(slug, title=f"Cas n°\u00a0{i}", position=i), project.root / "corpus")
    http.expect_request("/good", method="POST").respond_with_data("ok")
    project.write_config(site={"base_url": BASE}, channels=[
        hook(f"http://127.0.0.1:{free_port()}/down", name="down", max_attempts=2),
        {"type": "feed"},
        hook(http.url_for("/good"), name="good"),
    ])
    config = project.config()

    result = publish(config)

    by_name = {r.channel: r for r in result.reports}
    assert by_name["down"].failed == 1
    assert by_name["feed"].ok and by_name["good"].sent == 1
    assert (project.public / "feed.xml").exists()
    (request,) = requests_made(http)
    assert json.loads(request.get_data())["data"]["slug"] == "premier-cas"
    with Ledger(config.database) as ledger:
        counts = ledger.delivery_counts(result.edition.id)
        assert counts["down"] == {"sent": 0, "failed": 1, "pending": 0}
        assert counts["good"] == {"sent": 1, "failed": 0, "pending": 0}
