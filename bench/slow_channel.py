"""Slow-channel benchmark: does a stuck webhook delay the email, or the publish?

    python -m bench.slow_channel                 # 500 subscribers, webhook deadline 5 s
    python -m bench.slow_channel -n 2000 --deadline 3

One edition is published (``syndicate.pipeline.publish``, in-process) to N
subscribers through the ``outbox`` channel, in fresh projects:

- ``warm-up``: the outbox alone, not counted (caches, template compilation);
- ``baseline``: the outbox alone;
- ``stuck``: the outbox plus two webhooks on a local HTTP server, one answering
  ``429`` with ``Retry-After: 3600``, one never answering (each ``--deadline`` s);
- figures: when the last email was written (the ledger polled every 10 ms) and when
  the publish returned, from its start.

Targets: the email is not delayed by the webhooks (stuck email time <= 1.5x the
baseline's, plus 0.5 s of noise), and the publish returns within the deadline plus
2 s (not after the hour the endpoint asked for).
"""

from __future__ import annotations

import argparse
import http.server
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import tomli_w

REPO = Path(__file__).resolve().parents[1]
SECRET = "bench-secret-0123456789abcdef"


class _Handler(http.server.BaseHTTPRequestHandler):
    release = threading.Event()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/busy":
            self.send_response(429)
            self.send_header("Retry-After", "3600")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:  # /hang: never answers (until the end of the benchmark)
            self.release.wait(120)

    def log_message(self, *args: Any) -> None:
        pass


def _project(root: Path, subscribers: int, channels: list[dict[str, Any]]) -> Any:
    import tomllib

    from syndicate.app import load_config
    from syndicate.ledger import Ledger

    shutil.copytree(REPO / "config", root / "config")
    shutil.copytree(REPO / "syndicate" / "examples" / "corpus", root / "corpus")
    path = root / "config" / "syndicate.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    data["storage"]["corpus"] = "../corpus"
    data["site"]["base_url"] = "https://bench.example.org/"
    data["channels"] = channels
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    config = load_config(path)
    with Ledger(config.database) as ledger:
        ledger.add_subscribers(f"lecteur{i:05d}@exemple.fr" for i in range(subscribers))
    return config


def _measure(config: Any, subscribers: int) -> tuple[float, float]:
    """(seconds until the last email was written, seconds until publish returned)."""
    from syndicate import pipeline
    from syndicate.ledger import Ledger

    done: dict[str, float] = {}
    finished = threading.Event()

    def watch(start: float) -> None:
        with Ledger(config.database) as ledger:
            while True:  # bounded: publish returns, and then every email is written
                editions = ledger.editions(status=None)
                if editions:
                    counts = ledger.delivery_counts(editions[0].id).get("outbox", {})
                    if counts.get("sent", 0) >= subscribers:
                        done["email"] = time.monotonic() - start
                        return
                if finished.is_set():
                    return
                time.sleep(0.01)

    start = time.monotonic()
    watcher = threading.Thread(target=watch, args=(start,), daemon=True)
    watcher.start()
    result = pipeline.publish(config)
    total = time.monotonic() - start
    finished.set()
    watcher.join(30)
    print(f"    {result.summary()}")
    return done.get("email", float("nan")), total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=500, help="subscribers")
    parser.add_argument("--deadline", type=int, default=5, help="webhook deadline, seconds")
    args = parser.parse_args()

    import os

    os.environ["SYNDICATE_SECRET"] = SECRET
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    hook = {"type": "webhook", "deadline": args.deadline, "timeout": 1.0, "backoff": 0.1,
            "max_delay": 86400, "max_attempts": 20}
    figures = {}
    try:
        for label, extra in (("warm-up", []), ("baseline", []),
                             ("stuck", [{**hook, "name": "busy", "url": f"{url}/busy"},
                                        {**hook, "name": "hang", "url": f"{url}/hang"}])):
            with tempfile.TemporaryDirectory() as folder:
                channels = [*extra, {"type": "outbox"}]  # the webhooks first, on purpose
                config = _project(Path(folder), args.n, channels)
                email, total = _measure(config, args.n)
                figures[label] = (email, total)
                print(f"  {label:<9} email written after {email:6.2f} s, "
                      f"publish returned after {total:6.2f} s")
    finally:
        _Handler.release.set()
        server.shutdown()
    base_email = figures["baseline"][0]
    email, total = figures["stuck"]
    ratio = email / base_email if base_email else float("inf")
    ok_email = email <= 1.5 * base_email + 0.5
    ok_total = total <= args.deadline + 2
    print(f"email with stuck webhooks / alone = {ratio:.2f}x (target <= 1.5x + 0.5 s): "
          f"{'OK' if ok_email else 'MISSED'}")
    print(f"publish returned {total - args.deadline:+.2f} s from the webhook deadline "
          f"(target <= +2 s): {'OK' if ok_total else 'MISSED'}")
    return 0 if ok_email and ok_total else 1


if __name__ == "__main__":
    sys.exit(main())
