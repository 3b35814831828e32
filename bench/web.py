"""Web benchmark: feeds, pages and subscribe answers while the SMTP server stalls.

    python -m bench.web                  # 5 rounds of 50 concurrent subscribe POSTs
    python -m bench.web --rounds 10 --baseline-seconds 5

``syndicate serve`` runs in a subprocess (waitress, 4 threads, and its confirmation
sender), its smtp channel pointing at a server in this process that accepts
connections and never answers (``timeout = 5``). Two client threads poll
``/feed.xml`` and an archive page:

- ``baseline``: with no other load;
- ``under load``: while rounds of 50 concurrent subscribe POSTs (a third new
  addresses, a third active subscribers, a third pending ones) go in.

Printed: p50/p99 of the GETs in both cases and their ratio, and p50/p99 of the
subscribe answers by kind of address, under the concurrent load and then one at
a time (no queueing: the service time alone), with the ratio of each kind's
median to the new addresses' (1.0: the answer time says nothing about the address).
Targets: GETs p99 < 100 ms under load; subscribe answers the same for every kind.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
SECRET = "bench-secret-0123456789abcdef"
FROM = "Études de cas <lettre@bench.example.org>"
POSTS = 50


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class StalledSmtp:
    """Accepts connections and never says a word (the SMTP timeout is what ends them)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.listener = socket.create_server(("127.0.0.1", self.port), backlog=256)
        self.listener.settimeout(0.2)
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                self.held.append(self.listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()
        for conn in self.held:
            conn.close()


def make_project(folder: Path, smtp_port: int, web_port: int, kinds: int) -> Path:
    sys.path.insert(0, str(REPO))
    from syndicate.ledger import Ledger

    (folder / "config").mkdir(parents=True)
    config = folder / "config" / "syndicate.toml"
    config.write_text(f"""
[site]
title = "Études de cas"
base_url = "http://127.0.0.1:{web_port}/"
postal_address = "Études de cas, 10 rue de l’Exemple, 75011 Paris, France"

[storage]
database = "{folder / 'var' / 'syndicate.db'}"
corpus = "{folder / 'corpus'}"
public = "{folder / 'public'}"
templates = "{REPO / 'templates'}"

[subscribe]  # limits out of the way: this measures the sending, bench/subscribe.py the limits
limit_per_ip = "1000000/hour"
limit_per_mailbox = "1000000/hour"
limit_per_domain = "1000000/hour"
limit_global = "1000000/hour"

[[channels]]
type = "smtp"
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "{FROM}"
timeout = 5
""", encoding="utf-8")
    (folder / "corpus").mkdir()
    public = folder / "public"
    (public / "refuser-les-levees-de-fonds").mkdir(parents=True)
    item = ("<item><title>Refuser les levées de fonds</title><description>"
            + "Une étude de cas, en français. " * 40 + "</description></item>")
    (public / "feed.xml").write_text(f"<rss version=\"2.0\"><channel>{item * 20}</channel></rss>",
                                     encoding="utf-8")
    page = "<p>" + "L’équipe a refusé une levée de fonds ; voici pourquoi. " * 400 + "</p>"
    (public / "refuser-les-levees-de-fonds" / "index.html").write_text(
        f"<!doctype html><html lang=\"fr\"><title>Étude</title>{page}</html>", encoding="utf-8")
    with Ledger(folder / "var" / "syndicate.db") as ledger:
        ledger.add_subscribers((f"actif{n}@bench.example.org" for n in range(kinds)),
                               status="active")
        ledger.add_subscribers((f"attente{n}@bench.example.org" for n in range(kinds)),
                               status="pending", source="web")
    return config


def form(address: str) -> dict[str, str]:
    """What the subscribe form posts: the address and a token served 10 s ago."""
    from syndicate.web.formguard import form_token

    return {"email": address, "form_token": form_token(SECRET.encode(), time.time() - 10)}


def start_serve(config: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SYNDICATE_SECRET": SECRET, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "syndicate", "--config", str(config), "serve", "--port",
         str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"http://127.0.0.1:{port}/feed.xml", timeout=1)
            return process
        except requests.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("syndicate serve did not start") from None
            time.sleep(0.1)


def poll(base: str, stop: threading.Event, out: list[float], limit: int = 100_000) -> None:
    session = requests.Session()
    for _ in range(limit):  # bounded
        for path in ("feed.xml", "refuser-les-levees-de-fonds/"):
            start = time.perf_counter()
            response = session.get(base + path, timeout=30)
            out.append(time.perf_counter() - start)
            assert response.status_code == 200, response.status_code
        if stop.is_set():
            return


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def line(label: str, values: list[float]) -> str:
    return (f"  {label:<24} n={len(values):<5} p50 {pct(values, 0.5):7.1f} ms   "
            f"p99 {pct(values, 0.99):7.1f} ms   max {max(values) * 1000:7.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of 50 concurrent POSTs")
    parser.add_argument("--baseline-seconds", type=float, default=3.0)
    parser.add_argument("--sequential", type=int, default=30,
                        help="subscribe POSTs of each kind sent one at a time")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-web-"))
    smtp = StalledSmtp()
    port = free_port()
    per_kind = POSTS // 3 + 1
    config = make_project(work, smtp.port, port, max(per_kind * args.rounds, args.sequential))
    base = f"http://127.0.0.1:{port}/"
    serve = start_serve(config, port)
    try:
        print(f"syndicate serve (4 threads) on {base}; SMTP server 127.0.0.1:{smtp.port} "
              f"stalls (timeout 5 s); cpus {os.cpu_count()}")
        # Baseline: the same GETs, nothing else going on.
        baseline: list[float] = []
        stop = threading.Event()
        pollers = [threading.Thread(target=poll, args=(base, stop, baseline)) for _ in range(2)]
        for thread in pollers:
            thread.start()
        time.sleep(args.baseline_seconds)
        stop.set()
        for thread in pollers:
            thread.join(60)

        loaded: list[float] = []
        answers: dict[str, list[float]] = {"new": [], "active": [], "pending": []}
        lock = threading.Lock()
        stop = threading.Event()
        pollers = [threading.Thread(target=poll, args=(base, stop, loaded)) for _ in range(2)]
        for thread in pollers:
            thread.start()
        for round_ in range(args.rounds):
            kinds = ["new", "active", "pending"] * per_kind
            barrier = threading.Barrier(POSTS)

            def post(kind: str, n: int, barrier: threading.Barrier = barrier) -> None:
                prefix = {"new": "nouveau", "active": "actif", "pending": "attente"}[kind]
                address = f"{prefix}{n}@bench.example.org"
                barrier.wait(30)
                start = time.perf_counter()
                response = requests.post(base + "subscribe", data=form(address), timeout=60)
                took = time.perf_counter() - start
                assert response.status_code == 200, response.status_code
                with lock:
                    answers[kind].append(took)

            posters = [threading.Thread(target=post,
                                        args=(kind, round_ * per_kind + index // 3))
                       for index, kind in enumerate(kinds[:POSTS])]
            for thread in posters:
                thread.start()
            for thread in posters:
                thread.join(120)
            time.sleep(0.3)  # the pollers also measure between rounds
        stop.set()
        for thread in pollers:
            thread.join(60)

        # One at a time (no queueing): what the answer time alone says about an address.
        alone: dict[str, list[float]] = {"new": [], "active": [], "pending": []}
        session = requests.Session()
        for n in range(args.sequential):
            for kind, address in (("new", f"seul{n}@bench.example.org"),
                                  ("active", f"actif{n}@bench.example.org"),
                                  ("pending", f"attente{n}@bench.example.org")):
                start = time.perf_counter()
                response = session.post(base + "subscribe", data=form(address), timeout=60)
                alone[kind].append(time.perf_counter() - start)
                assert response.status_code == 200, response.status_code

        print("\nfeeds and pages (GET /feed.xml, an archive page; 2 clients)")
        print(line("baseline (no POSTs)", baseline))
        print(line(f"under {args.rounds}x{POSTS} POSTs", loaded))
        print(f"  ratio p50 {pct(loaded, 0.5) / pct(baseline, 0.5):.2f}x   "
              f"p99 {pct(loaded, 0.99) / pct(baseline, 0.99):.2f}x   "
              f"(target: p99 under load < 100 ms: "
              f"{'met' if pct(loaded, 0.99) < 100 else 'NOT met'})")
        print(f"\nsubscribe answers ({POSTS} concurrent POSTs per round), by address kind")
        for kind, values in answers.items():
            print(line(kind, values))
        reference = pct(answers["new"], 0.5)
        ratios = "   ".join(f"{kind} {pct(values, 0.5) / reference:.2f}x"
                             for kind, values in answers.items())
        print(f"  median vs new: {ratios}")
        print("\nsubscribe answers one at a time (no queueing), by address kind")
        for kind, values in alone.items():
            print(line(kind, values))
        reference = pct(alone["new"], 0.5)
        ratios = "   ".join(f"{kind} {pct(values, 0.5) / reference:.2f}x"
                             for kind, values in alone.items())
        print(f"  median vs new: {ratios}")
        every = [v for values in (*answers.values(), *alone.values()) for v in values]
        print(f"  all answers within {max(every) * 1000:.1f} ms "
              f"(SMTP timeout 5000 ms; {len(smtp.held)} SMTP connection(s) held by the "
              "background sender)")
    finally:
        serve.terminate()
        serve.wait(30)
        smtp.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
