"""``config show`` writes TOML through tomlkit, exactly as the hand-written writer did."""

from __future__ import annotations

import tomllib
from pathlib import Path

from click.testing import CliRunner

from syndicate.cli import cli
from syndicate.cli.config import to_toml

ROOT = Path(__file__).resolve().parents[1]


def test_to_toml_writes_tables_arrays_of_tables_and_unset_keys_as_comments() -> None:
    data = {
        "site": {"title": "Études « de cas »", "language": "fr", "postal": None, "n": 3,
                 "ratio": 0.5, "on": True, "tags": ["a", "b\"c"], "sub": {"x": 1}},
        "channels": [{"type": "feed", "limits": {"a": 1}}, {"type": "outbox", "path": None}],
    }
    text = to_toml(data, "effective configuration of x.toml")
    assert text == (
        "# effective configuration of x.toml\n"
        "[site]\n"
        'title = "Études « de cas »"\n'
        'language = "fr"\n'
        "# postal is not set\n"
        "n = 3\n"
        "ratio = 0.5\n"
        "on = true\n"
        'tags = ["a", "b\\"c"]\n'
        "\n"
        "[site.sub]\n"
        "x = 1\n"
        "\n"
        "[[channels]]\n"
        'type = "feed"\n'
        "\n"
        "[channels.limits]\n"
        "a = 1\n"
        "\n"
        "[[channels]]\n"
        'type = "outbox"\n'
        "# path is not set\n"
    )
    loaded = tomllib.loads(text)
    assert loaded["site"]["tags"] == ["a", 'b"c'] and "postal" not in loaded["site"]
    assert [c["type"] for c in loaded["channels"]] == ["feed", "outbox"]


def test_config_show_of_the_shipped_config_is_valid_toml_under_its_header() -> None:
    path = ROOT / "config" / "syndicate.toml"
    result = CliRunner().invoke(cli, ["--config", str(path), "config", "show"])
    assert result.exit_code == 0, result.output
    first, second = result.stdout.splitlines()[:2]
    assert first == f"# effective configuration of {path}" and second == "[site]"
    assert tomllib.loads(result.stdout)["schedule"]["cron"] == "0 8 * * 2"
