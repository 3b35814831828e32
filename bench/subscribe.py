"""Subscribe form timing: does the answer take as long whatever the address?

    python -m bench.subscribe              # 200 requests per kind
    python -m bench.subscribe -n 50

A real waitress server on 127.0.0.1 (one thread), a real SQLite ledger, the outbox
channel (a Maildir: sending costs a file write, not an SMTP exchange). Kinds of
request, interleaved so that drift hits them alike:

- ``new``: a fresh address (counted, inserted pending, confirmation written);
- ``pending``: an address already pending (its mailbox limit lifted);
- ``active``: an active subscriber (counted, nothing mailed);
- ``limited``: a mailbox over its limit (counted, nothing inserted or mailed);
- ``form``: GET /subscribe, the baseline of a request touching no ledger.

Prints the median and 90th percentile per kind, and each median / the median of
``new``. The figure to watch is ``active / new`` and ``limited / new``: what an
observer timing the answer could learn. Sending by SMTP would widen the gap for
``new``; the confirmation outbox (sending outside the request) closes it.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import threading
import time
from pathlib import Path

import requests
import tomli_w

from syndicate.app import load_config
from syndicate.ledger import Ledger
from syndicate.web import make_server, stop_server
from syndicate.web.formguard import form_token

REPO = Path(__file__).resolve().parents[1]
SECRET = b"bench-secret-0123456789abcdef"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="requests per kind")
    args = parser.parse_args()
    logging.getLogger("syndicate.web").setLevel(logging.ERROR)  # one line per refusal
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "config").mkdir()
        config_path = root / "config" / "syndicate.toml"
        config_path.write_text(tomli_w.dumps({
            "site": {"base_url": "http://127.0.0.1:8080/"},
            "storage": {"templates": str(REPO / "templates")},
            "subscribe": {"limit_per_ip": "1000000/hour", "limit_per_domain": "1000000/hour",
                          "limit_global": "1000000/hour", "limit_per_mailbox": "1/day"},
            "channels": [{"type": "outbox", "path": "../var/outbox"}],
        }), encoding="utf-8")
        config = load_config(config_path)
        ledger = Ledger(config.database)
        n = args.n
        for i in range(n):
            ledger.add_subscriber(f"actif{i}@example.org")
        server = make_server(config, secret=SECRET, port=0, threads=1,
                             asyncore_loop_timeout=0.05)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.effective_port}/"
        session = requests.Session()
        token = form_token(SECRET, time.time() - 10)

        def post(address: str) -> None:
            response = session.post(base + "subscribe",
                                    data={"email": address, "form_token": token}, timeout=10)
            assert response.status_code == 200, response.status_code

        # Setup: addresses already pending (their limit cleared), mailboxes over limit.
        for i in range(n):
            post(f"attente{i}@example.org")
            post(f"limite{i}@example.org")
        ledger.limit_reset()
        for i in range(n):
            post(f"limite{i}@example.org")
        times: dict[str, list[float]] = {k: [] for k in
                                         ("form", "new", "pending", "active", "limited")}
        for i in range(n):
            for kind, address in (("new", f"nouveau{i}@example.org"),
                                  ("pending", f"attente{i}@example.org"),
                                  ("active", f"actif{i}@example.org"),
                                  ("limited", f"limite{i}@example.org"),
                                  ("form", "")):
                start = time.perf_counter()
                if kind == "form":
                    session.get(base + "subscribe", timeout=10)
                else:
                    post(address)
                times[kind].append(time.perf_counter() - start)
        stop_server(server)
        thread.join(5)
        ledger.close()
    reference = statistics.median(times["new"])
    print(f"{n} requests per kind, waitress 1 thread, outbox channel")
    for kind, values in times.items():
        median = statistics.median(values)
        p90 = statistics.quantiles(values, n=10)[-1]
        print(f"{kind:8s} median {median * 1000:6.2f} ms  p90 {p90 * 1000:6.2f} ms  "
              f"/ new = {median / reference:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
