"""How well ``syndicate.bounces.parse`` reads real-world bounces (issue 11).

    python bench/dsn_samples.py

Reads each sample of tests/data/dsn/ (real bounces from many MTAs, from flufl.bounce's
test data: see its NOTICE) and compares the failed recipient and status code
extracted with the ones written down in tests/data/dsn/expected.tsv by reading each
sample. Prints one row per sample, then the figure per MTA and overall. The baseline
in the same run is flufl.bounce alone (recipients only: it extracts no status code).
"""

from __future__ import annotations

import email
import sys
from collections import defaultdict
from email.policy import compat32
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent / "tests" / "data" / "dsn"
sys.path.insert(0, str(HERE.parent))

from flufl.bounce import all_failures  # noqa: E402

from syndicate.bounces.parse import parse_report  # noqa: E402


def expected() -> list[tuple[str, str, str, str]]:
    rows = []
    for line in (SAMPLES / "expected.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, mta, recipient, status = line.split("\t")
            rows.append((name, mta, recipient, status))
    return rows


def measure() -> list[dict[str, object]]:
    out = []
    for name, mta, recipient, status in expected():
        raw = (SAMPLES / name).read_bytes()
        report = parse_report(raw)
        found = [(f.recipient, f.status, f.kind) for f in report.failures]
        ours = next(((r, s, k) for r, s, k in found if r.lower() == recipient.lower()),
                    found[0] if found else ("", "", ""))
        temporary, permanent = all_failures(email.message_from_bytes(raw, policy=compat32))
        flufl = {a.decode("utf-8", "replace").lower() for a in (*temporary, *permanent)}
        out.append({
            "file": name, "mta": mta, "recipient": recipient, "status": status,
            "got_recipient": ours[0], "got_status": ours[1], "kind": ours[2],
            "recipient_ok": ours[0].lower() == recipient.lower(),
            "status_ok": ours[1] == status,
            "flufl_ok": recipient.lower() in flufl,
        })
    return out


def main() -> None:
    rows = measure()
    print(f"{'sample':<17} {'MTA':<24} {'recipient':<28} {'want':<6} {'got':<6} kind  ok")
    for r in rows:
        ok = "yes" if r["recipient_ok"] and r["status_ok"] else "NO"
        print(f"{r['file']:<17} {r['mta']:<24} {r['got_recipient']!s:<28} {r['status']:<6} "
              f"{r['got_status']!s:<6} {r['kind']!s:<5} {ok}")
    per: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        per[str(r["mta"]).split(" (")[0]].append(bool(r["recipient_ok"] and r["status_ok"]))
    print()
    for mta, oks in per.items():
        print(f"  {mta:<26} {sum(oks)}/{len(oks)}")
    both = sum(bool(r["recipient_ok"] and r["status_ok"]) for r in rows)
    recipients = sum(bool(r["recipient_ok"]) for r in rows)
    flufl = sum(bool(r["flufl_ok"]) for r in rows)
    n = len(rows)
    print(f"\n{n} samples from {len(per)} MTAs: recipient and status right {both}/{n} "
          f"({100 * both / n:.0f} %); recipient right {recipients}/{n}; baseline "
          f"flufl.bounce alone: recipient right {flufl}/{n} (no status code)")


if __name__ == "__main__":
    main()
