"""The email templates pass the official MJML validator (npm ``mjml``) in strict mode.

Runs ``node_modules/.bin/mjml`` (installed by ``.ci/run`` with ``npm install --no-save
mjml@4``) once over the MJML produced for every seed case study, in both content
modes, plus a hostile case; skips with the reason when Node or mjml is absent.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from _render_support import ROOT, hostile_case, make_config, make_history, seed_cases

from syndicate.render.email import render_email_mjml

pytestmark = pytest.mark.slow


def _mjml_cli() -> Path:
    cli = ROOT / "node_modules" / ".bin" / "mjml"
    if not cli.exists():
        pytest.skip(f"mjml CLI not found: {cli} (run `npm install --no-save mjml@4` in {ROOT})")
    if shutil.which("node") is None:
        pytest.skip("mjml CLI not found: Node.js (`node`) is not on PATH")
    return cli


def _strict(cli: Path, files: list[Path], out: Path) -> subprocess.CompletedProcess[str]:
    out.mkdir(exist_ok=True)
    return subprocess.run(
        [str(cli), "-r", *map(str, files), "-o", str(out), "--config.validationLevel=strict"],
        capture_output=True, text=True, timeout=60, check=False,
    )


def test_templates_pass_strict_validation(tmp_path):
    cli = _mjml_cli()
    full = make_config(tmp_path / "full")
    summary = make_config(tmp_path / "summary", publish={"email_content": "summary"})
    views = make_history([*seed_cases(), hostile_case()], full)
    files = []
    for config, mode in ((full, "full"), (summary, "summary")):
        for view in views:
            path = tmp_path / f"{mode}-{view.slug}.mjml"
            path.write_text(render_email_mjml(view, config), encoding="utf-8")
            files.append(path)
    # the masthead's wordmark image, alone (on a light plate) or with its dark version
    for mode, site in (("wordmark", {"wordmark": "logo.png"}),
                       ("wordmark-dark", {"wordmark": "logo.png", "wordmark_dark": "dark.png"})):
        path = tmp_path / f"{mode}.mjml"
        path.write_text(render_email_mjml(views[0], make_config(tmp_path / mode, site=site)),
                        encoding="utf-8")
        files.append(path)
    result = _strict(cli, files, tmp_path / "html")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in (result.stdout + result.stderr).lower()
    compiled = sorted((tmp_path / "html").glob("*.html"))
    assert len(compiled) == len(files) == 2 * 11 + 2
    # The official compiler agrees with MRML on the essentials.
    page = compiled[0].read_text(encoding="utf-8")
    assert 'lang="fr"' in page and 'role="presentation"' in page


def test_validator_does_reject_invalid_mjml(tmp_path):
    # Control: the same command fails on what strict mode must refuse, so the test
    # above cannot pass by accident (a CLI that validates nothing).
    cli = _mjml_cli()
    bad = tmp_path / "bad.mjml"
    bad.write_text(
        "<mjml><mj-body><mj-section><mj-text unknown-attr=\"1\">x</mj-text>"
        "</mj-section></mj-body></mjml>",
        encoding="utf-8",
    )
    result = _strict(cli, [bad], tmp_path / "html")
    assert result.returncode != 0
    assert "mj-text" in result.stdout + result.stderr
