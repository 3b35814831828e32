"""Provider webhooks: how fast a genuine event is recorded and answered.

    python -m bench.hooks              # 300 requests per kind, SendGrid batches of 100
    python -m bench.hooks -n 100 --batch 500

A real waitress server on 127.0.0.1 (2 threads), a real SQLite ledger holding one
edition sent to ``n * batch`` subscribers. Kinds of request, interleaved:

- ``baseline``: a Postmark ``Delivery`` record (basic auth, JSON parse, nothing to
  record): the cost of the request itself;
- ``postmark``: a new hard bounce (attributed by recipient, recorded, subscriber moved);
- ``replay``: the same Postmark bounce again (attributed, already recorded);
- ``mailgun``: a new signed ``failed`` event (HMAC, token stored in the ledger, recorded);
- ``forged``: a Mailgun event with a bad signature (refused before the ledger);
- ``sendgrid``: a signed batch of ``--batch`` bounces (ECDSA, one request).

Prints median and 90th percentile per kind, each median / the baseline's, and the
events recorded per second through SendGrid batches and single Mailgun posts.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import logging
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import requests
import tomli_w
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from syndicate.app import load_config
from syndicate.ledger import Ledger
from syndicate.web import make_server, stop_server

REPO = Path(__file__).resolve().parents[1]
SECRET = b"bench-secret-0123456789abcdef"
MAILGUN_KEY = "bench-mailgun-key"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=300, help="requests per kind")
    parser.add_argument("--batch", type=int, default=100, help="events per SendGrid request")
    args = parser.parse_args()
    n, batch = args.n, args.batch
    logging.getLogger("syndicate.web").setLevel(logging.ERROR)
    logging.getLogger("syndicate.web.hooks").setLevel(logging.ERROR)
    os.environ["BENCH_PM_PASSWORD"] = "pw"
    os.environ["BENCH_MG_KEY"] = MAILGUN_KEY
    sg_key = ec.generate_private_key(ec.SECP256R1())
    sg_public = base64.b64encode(sg_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "config").mkdir()
        config_path = root / "config" / "syndicate.toml"
        config_path.write_text(tomli_w.dumps({
            "site": {"base_url": "http://127.0.0.1:8080/"},
            "storage": {"templates": str(REPO / "templates")},
            "channels": [{"type": "outbox", "path": "../var/outbox"}],
            "webhooks": {"postmark_user": "pm", "postmark_password_env": "BENCH_PM_PASSWORD",
                         "mailgun_signing_key_env": "BENCH_MG_KEY",
                         "sendgrid_public_key": sg_public, "max_age": 3600,
                         "max_body": 20_000_000},
        }), encoding="utf-8")
        config = load_config(config_path)
        ledger = Ledger(config.database)
        people = {kind: [f"{kind}{i}@example.org" for i in range(n)]
                  for kind in ("postmark", "mailgun")}
        people["sendgrid"] = [f"sendgrid{i}@example.org" for i in range(n * batch)]
        everyone = [p for group in people.values() for p in group]
        ledger.add_subscribers(everyone)
        edition = ledger.claim_edition(slot="bench", slug="bench", title="Bench", url="u")
        ledger.ensure_deliveries(edition.id, "smtp", everyone)
        server = make_server(config, secret=SECRET, port=0, threads=2,
                             asyncore_loop_timeout=0.05)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.effective_port}/hooks/"
        session = requests.Session()
        session.auth = None

        def postmark(record: dict[str, object]) -> None:
            answer = session.post(base + "postmark", data=json.dumps(record), auth=("pm", "pw"),
                                  timeout=30)
            assert answer.status_code == 200, answer.text

        def mailgun(i: int, key: str = MAILGUN_KEY, expect: int = 200) -> None:
            stamp, token = str(int(time.time())), f"token-{i}-{key[:4]}"
            signature = hmac.new(key.encode(), (stamp + token).encode(),
                                 hashlib.sha256).hexdigest()
            body = {"signature": {"timestamp": stamp, "token": token, "signature": signature},
                    "event-data": {"event": "failed", "id": f"mg-{i}", "severity": "permanent",
                                   "recipient": people["mailgun"][i],
                                   "delivery-status": {"code": 550, "message": "5.1.1 no"}}}
            answer = session.post(base + "mailgun", data=json.dumps(body), timeout=30)
            assert answer.status_code == expect, answer.text

        def sendgrid(i: int) -> None:
            events = [{"email": address, "event": "bounce", "type": "bounce",
                       "status": "5.1.1", "sg_event_id": f"sg-{i}-{j}", "timestamp": 1}
                      for j, address in enumerate(people["sendgrid"][i * batch:(i + 1) * batch])]
            body = json.dumps(events).encode()
            stamp = str(int(time.time()))
            signature = sg_key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
            answer = session.post(base + "sendgrid", data=body, timeout=60, headers={
                "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                "X-Twilio-Email-Event-Webhook-Timestamp": stamp})
            assert answer.status_code == 200 and f"ok: {len(events)} recorded" in answer.text, \
                answer.text

        def bounce(i: int) -> dict[str, object]:
            return {"RecordType": "Bounce", "ID": i, "Type": "HardBounce",
                    "Email": people["postmark"][i], "Details": "550 5.1.1 no such user"}

        times: dict[str, list[float]] = {k: [] for k in ("baseline", "postmark", "replay",
                                                          "mailgun", "forged", "sendgrid")}
        calls = {
            "baseline": lambda i: postmark({"RecordType": "Delivery", "ID": i}),
            "postmark": lambda i: postmark(bounce(i)),
            "replay": lambda i: postmark(bounce(i)),
            "mailgun": lambda i: mailgun(i),
            "forged": lambda i: mailgun(i, key="wrong-key", expect=403),
            "sendgrid": lambda i: sendgrid(i),
        }
        for i in range(n):
            for kind, call in calls.items():
                start = time.perf_counter()
                call(i)
                times[kind].append(time.perf_counter() - start)
        bounced = ledger.count_subscribers("bounced")
        stop_server(server)
        thread.join(5)
        ledger.close()
    assert bounced == len(everyone), (bounced, len(everyone))
    reference = statistics.median(times["baseline"])
    print(f"{n} requests per kind, waitress 2 threads, SQLite ledger; "
          f"SendGrid batches of {batch}; {bounced} subscribers bounced in all")
    for kind, values in times.items():
        median = statistics.median(values)
        p90 = statistics.quantiles(values, n=10)[-1]
        print(f"{kind:9s} median {median * 1000:7.2f} ms  p90 {p90 * 1000:7.2f} ms  "
              f"/ baseline = {median / reference:6.2f}x")
    print(f"events recorded per second: sendgrid batches "
          f"{n * batch / sum(times['sendgrid']):.0f}/s, single mailgun posts "
          f"{n / sum(times['mailgun']):.0f}/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
