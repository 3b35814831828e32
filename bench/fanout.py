"""Fan-out benchmark: one edition to N subscribers through the ``smtp`` channel.

    python bench/fanout.py                    # 10,000 subscribers, ~40 KB messages
    python bench/fanout.py -n 2000 --skip-naive
    python bench/fanout.py --memory-check     # peak RSS at 1,000 vs 100,000 subscribers

The SMTP server is a fast local discard server in its own process: Postfix's
``smtp-sink`` when installed (Debian: ``apt-get install postfix``; it lives in
/usr/sbin), else a minimal asyncio one started from this file (aiosmtpd parses
every line in Python and would be the bottleneck, not the sender).

Each measured sender runs in a fresh subprocess so that its peak RSS (VmHWM)
is its own. Three senders get the same message bytes:

- ``channel``: the real thing (``syndicate.pipeline.publish`` with only the smtp
  channel): ledger rows, status re-check, unsubscribe token, per-subscriber MIME
  splice, one commit per message. Timed from the start to the end of
  ``SmtpChannel.deliver`` (rows created, template built, every message sent);
- ``reused``: plain smtplib, the same number of connections (threads) reused for
  every message, no ledger, no personalisation: the ceiling to compare with;
- ``naive``: one connection per message, in a loop.

Targets: channel >= 0.9x reused; peak RSS at 100,000 subscribers <= 1.2x that at 1,000.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SMTP_SINK = Path("/usr/sbin/smtp-sink")
SECRET = "bench-secret-0123456789abcdef"
FROM = "Études de cas <lettre@bench.example.org>"

# About 600 characters of French prose; repeated (with variations) to size the email.
PARAGRAPH = (
    "Quand l’équipe fondatrice a décidé de refuser une nouvelle levée de fonds, "
    "elle savait que la croissance serait plus lente : « Nous voulions garder la main "
    "sur nos priorités », explique la directrice générale. Le chiffre d’affaires a "
    "progressé de 18 % l’an dernier, sans publicité payante, grâce au bouche-à-oreille "
    "et à un service client joignable en moins de deux heures. Les recrutements se "
    "font au rythme des revenus ; chaque embauche est discutée en comité, et la "
    "rentabilité, atteinte au bout de trois ans, finance désormais l’international. "
)


# --------------------------------------------------------------------------- utilities


def peak_rss_kb() -> int:
    """Peak resident set size of this process (VmHWM), in KiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.recv(100)  # the 220 greeting
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# --------------------------------------------------------------------------- discard servers


def serve_python_sink(port: int) -> None:
    """A minimal, fast SMTP discard server (asyncio): accepts everything, keeps nothing."""
    import asyncio

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 sink ESMTP\r\n")
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    writer.write(b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                                 b"250 SMTPUTF8\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go ahead\r\n")
                    await reader.readuntil(b"\r\n.\r\n")
                    writer.write(b"250 2.0.0 Ok: discarded\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    break
                else:
                    writer.write(b"250 2.0.0 Ok\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(session, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def start_sink(kind: str) -> tuple[subprocess.Popen[bytes], int, str]:
    port = free_port()
    if kind in ("auto", "smtp-sink") and SMTP_SINK.exists():
        command = [str(SMTP_SINK)]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]  # smtp-sink refuses to run as root
        process = subprocess.Popen([*command, f"127.0.0.1:{port}", "1024"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        name = "postfix smtp-sink"
    elif kind == "smtp-sink":
        raise SystemExit(f"{SMTP_SINK} not found (apt-get install postfix)")
    else:
        process = subprocess.Popen([sys.executable, __file__, "--child", "sink",
                                    "--port", str(port)])
        name = "python asyncio discard server"
    wait_for_port(port)
    return process, port, name


# --------------------------------------------------------------------------- the project


def make_project(folder: Path, port: int, subscribers: int, concurrency: int,
                 size_kb: int) -> Path:
    """A config, a one-case corpus sized for ~``size_kb`` KB messages, N subscribers."""
    sys.path.insert(0, str(REPO))
    from syndicate.corpus import CaseStudy, Section, save
    from syndicate.ledger import Ledger

    (folder / "config").mkdir(parents=True)
    config = folder / "config" / "syndicate.toml"
    config.write_text(f"""
[site]
title = "Études de cas"
base_url = "https://bench.example.org/"
postal_address = "Études de cas, 10 rue de l’Exemple, 75011 Paris, France"

[storage]
database = "{folder / 'var' / 'syndicate.db'}"
corpus = "{folder / 'corpus'}"
public = "{folder / 'public'}"

[[channels]]
type = "smtp"
host = "127.0.0.1"
port = {port}
security = "none"
from = "{FROM}"
concurrency = {concurrency}
timeout = 30
""", encoding="utf-8")
    # Measured: the layout (MJML HTML, text part, headers) weighs ~28 KiB, and each
    # paragraph ~1.6 KiB more (in the QP-encoded HTML and in the text part).
    paragraphs = max(1, round((size_kb - 28.4) / 1.62))
    sections = tuple(
        Section(f"Étape {i + 1} : ce qui a changé", tuple(
            PARAGRAPH.replace("18 %", f"{18 + j} %") for j in range(i, paragraphs, 6)))
        for i in range(min(6, paragraphs))
    )
    save(CaseStudy(slug="refuser-la-levee", title="Refuser la levée de fonds : le pari "
                   "de l’indépendance", lede=PARAGRAPH, sections=sections, position=1,
                   companies=("Qonto",), themes=("financement",)), folder / "corpus")
    with Ledger(folder / "var" / "syndicate.db") as ledger:
        result = ledger.add_subscribers(
            (f"abonne{i:06d}@exemple.fr", f"Abonné n°{i}" if i % 3 else None)
            for i in range(subscribers))
    assert result.added == subscribers
    return config


# --------------------------------------------------------------------------- measured children


def child_channel(config_path: str, sample: str) -> dict[str, Any]:
    """Publish the edition through the smtp channel; time ``deliver``."""
    sys.path.insert(0, str(REPO))
    os.environ["SYNDICATE_SECRET"] = SECRET
    from syndicate.app import load_config
    from syndicate.channels import smtp
    from syndicate.pipeline import publish

    timings: list[float] = []
    original = smtp.SmtpChannel.deliver
    samples: list[bytes] = []

    def timed(self: Any, job: Any) -> Any:
        started, cpu = time.perf_counter(), cpu_seconds()
        report = original(self, job)
        timings.append(time.perf_counter() - started)
        timings.append(cpu_seconds() - cpu)
        # One subscriber's message, for the baselines (built after the clock stopped).
        from syndicate.channels._mailing import Mailing, MailSender

        mailing = Mailing(job, self.config, MailSender(FROM))
        mailing.start()
        subscriber = job.book.subscriber("abonne000001@exemple.fr")
        samples.append(mailing.message(subscriber))
        return report

    smtp.SmtpChannel.deliver = timed  # type: ignore[method-assign]
    started = time.perf_counter()
    result = publish(load_config(config_path))
    total = time.perf_counter() - started
    (report,) = result.reports
    Path(sample).write_bytes(samples[0])
    return {"messages": report.sent, "failed": report.failed, "seconds": timings[0],
            "cpu": timings[1],
            "publish_seconds": total, "rss_kb": peak_rss_kb(), "message_bytes": len(samples[0])}


def child_reused(port: int, count: int, concurrency: int, sample: str) -> dict[str, Any]:
    """Plain smtplib, ``concurrency`` reused connections, the same bytes for everyone."""
    import smtplib

    message = Path(sample).read_bytes()
    sent = [0] * concurrency

    def work(index: int) -> None:
        connection = smtplib.SMTP("127.0.0.1", port, timeout=30)
        for n in range(index, count, concurrency):
            connection.sendmail("lettre@bench.example.org", [f"abonne{n:06d}@exemple.fr"],
                                message)
            sent[index] += 1
        connection.quit()

    started, cpu = time.perf_counter(), cpu_seconds()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"messages": sum(sent), "seconds": time.perf_counter() - started,
            "cpu": cpu_seconds() - cpu, "rss_kb": peak_rss_kb()}


def child_naive(port: int, count: int, sample: str) -> dict[str, Any]:
    """One connection per message, one message after the other."""
    import smtplib

    message = Path(sample).read_bytes()
    started, cpu = time.perf_counter(), cpu_seconds()
    for n in range(count):
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as connection:
            connection.sendmail("lettre@bench.example.org", [f"abonne{n:06d}@exemple.fr"],
                                message)
    return {"messages": count, "seconds": time.perf_counter() - started,
            "cpu": cpu_seconds() - cpu, "rss_kb": peak_rss_kb()}


def run_child(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- main


def channel_run(work: Path, port: int, subscribers: int, concurrency: int,
                size_kb: int) -> tuple[dict[str, Any], Path]:
    folder = Path(tempfile.mkdtemp(prefix=f"fanout-{subscribers}-", dir=work))
    config = make_project(folder, port, subscribers, concurrency, size_kb)
    sample = folder / "sample.eml"
    return run_child("channel", "--config", str(config), "--sample", str(sample)), sample


def rate(result: dict[str, Any]) -> float:
    return float(result["messages"] / result["seconds"])


def line(name: str, result: dict[str, Any]) -> str:
    return (f"  {name:<8} {result['messages']:>7} msgs in {result['seconds']:7.2f} s "
            f"= {rate(result):7.0f} msg/s   "
            f"CPU {result['cpu'] / result['messages'] * 1e6:5.0f} us/msg"
            f"   peak RSS {result['rss_kb'] / 1024:6.1f} MiB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--subscribers", type=int, default=10_000)
    parser.add_argument("-c", "--concurrency", type=int, default=4)
    parser.add_argument("--size-kb", type=int, default=40, help="target message size")
    parser.add_argument("--server", choices=("auto", "smtp-sink", "python"), default="auto")
    parser.add_argument("--memory-check", action="store_true",
                        help="peak RSS of the channel at 1,000 and 100,000 subscribers")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--repeat", type=int, default=1,
                        help="alternate channel and reused runs this many times; compare "
                        "the best of each (for a machine with other load)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--sample", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child == "sink":
        serve_python_sink(args.port)
        return 0
    if args.child:
        if args.child == "channel":
            result = child_channel(args.config, args.sample)
        elif args.child == "reused":
            result = child_reused(args.port, args.count, args.concurrency, args.sample)
        else:
            result = child_naive(args.port, args.count, args.sample)
        print(json.dumps(result))
        return 0

    work = Path(tempfile.mkdtemp(prefix="fanout-"))
    sink, port, server = start_sink(args.server)
    try:
        print(f"server: {server} on 127.0.0.1:{port}; concurrency {args.concurrency}; "
              f"cpus {os.cpu_count()}")
        if args.memory_check:
            small, _ = channel_run(work, port, 1_000, args.concurrency, args.size_kb)
            print(line("1,000", small))
            big, _ = channel_run(work, port, 100_000, args.concurrency, args.size_kb)
            print(line("100,000", big))
            ratio = big["rss_kb"] / small["rss_kb"]
            verdict = "OK" if ratio <= 1.2 else "OVER TARGET"
            print(f"peak RSS 100,000 / 1,000 = {ratio:.2f}x (target <= 1.2x): {verdict}")
            return 0 if ratio <= 1.2 else 1
        n = args.subscribers
        channels, reuses = [], []
        for _ in range(args.repeat):
            # Alternated, so that a burst of load from elsewhere hits both sides.
            channel, sample = channel_run(work, port, n, args.concurrency, args.size_kb)
            channels.append(channel)
            print(line("channel", channel)
                  + f"   (whole publish {channel['publish_seconds']:.2f} s)")
            reused = run_child("reused", "--port", str(port), "--count", str(n), "--concurrency",
                               str(args.concurrency), "--sample", str(sample))
            reuses.append(reused)
            print(line("reused", reused))
        print(f"message: {channels[0]['message_bytes'] / 1024:.1f} KiB; {n} subscribers")
        if not args.skip_naive:
            naive = run_child("naive", "--port", str(port), "--count", str(n),
                              "--sample", str(sample))
            print(line("naive", naive))
        channel, reused = max(channels, key=rate), max(reuses, key=rate)
        ratio = rate(channel) / rate(reused)
        best = " (best of each)" if args.repeat > 1 else ""
        if not args.skip_naive:
            print(f"channel / naive  = {rate(channel) / rate(naive):.2f}x{best}")
        verdict = "OK" if ratio >= 0.9 else "UNDER TARGET"
        print(f"channel / reused = {ratio:.2f}x{best} (target >= 0.9x): {verdict}")
        if any(c["failed"] for c in channels):
            print("warning: some deliveries failed")
        return 0 if ratio >= 0.9 else 1
    finally:
        sink.terminate()
        sink.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
