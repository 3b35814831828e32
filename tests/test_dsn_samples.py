"""Real-world bounces from many MTAs (flufl.bounce's test data, tests/data/dsn/NOTICE):
the failed recipient and the status code written down in expected.tsv by reading each
sample are the ones ``parse_report`` extracts. The figure: ``python bench/dsn_samples.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from syndicate.bounces import parse_report

SAMPLES = Path(__file__).parent / "data" / "dsn"


def rows() -> list[tuple[str, str, str, str]]:
    out = []
    for line in (SAMPLES / "expected.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, mta, recipient, status = line.split("\t")
            out.append((name, mta, recipient, status))
    return out


def test_the_samples_cover_thirty_bounces_from_six_mtas() -> None:
    found = rows()
    assert len(found) >= 30
    assert len({mta.split(" (")[0] for _n, mta, _r, _s in found}) >= 6
    assert (SAMPLES / "NOTICE").is_file() and (SAMPLES / "LICENSE.flufl.bounce").is_file()


@pytest.mark.parametrize(("name", "mta", "recipient", "status"), rows(),
                         ids=[r[0] for r in rows()])
def test_recipient_and_status_extracted(name: str, mta: str, recipient: str,
                                        status: str) -> None:
    report = parse_report((SAMPLES / name).read_bytes())
    assert report.kind == "dsn", (mta, report.problem)
    got = {(f.recipient.lower(), f.status) for f in report.failures}
    assert (recipient.lower(), status) in got, (mta, report.failures)
    kind = {f.kind for f in report.failures if f.recipient.lower() == recipient.lower()}
    assert kind == {"hard" if status.startswith("5") else "soft"}
