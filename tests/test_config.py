"""The operator's config: every error class names file, key path, value and what was
expected; ``config check``/``show``/``docs``; the README lists every command."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any, ClassVar

import click
import pytest
from click.testing import CliRunner
from pydantic import Field

from syndicate.app import load_config
from syndicate.channels import channel_settings_models
from syndicate.cli import cli
from syndicate.config import reference_markdown as _reference_markdown
from syndicate.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

SECRET_VAR = "SYNDICATE_TEST_WEBHOOK_SECRET_UNSET"


def reference_markdown() -> str:
    """The reference as `syndicate config docs` writes it (every installed channel type)."""
    return _reference_markdown(channel_settings_models())


def write(tmp_path: Path, text: str, name: str = "syndicate.toml") -> Path:
    path = tmp_path / "config" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    return [p.replace(f"{path}: ", "<file>: ", 1) for p in info.value.problems]


def only(tmp_path: Path, text: str) -> str:
    found = problems(tmp_path, text)
    assert len(found) == 1, found
    return found[0]


# --------------------------------------------------------------------------- file level


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: config file not found (use --config PATH or $SYNDICATE_CONFIG)"
    )


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    message = only(tmp_path, '[site]\ntitle = "ok"\nbase_url = https://x/\n')
    assert message.startswith("<file>: not valid TOML: ")
    assert "line 3" in message


def test_empty_file_is_all_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert config.schedule.cron == "0 8 * * 2"
    assert config.schedule.timezone == "Europe/Paris"
    assert config.schedule.misfire_grace == 6 * 3600
    assert config.database == (tmp_path / "var" / "syndicate.db").resolve()
    assert config.channels == ()


# --------------------------------------------------------------------------- unknown keys


def test_unknown_top_level_key_with_suggestion(tmp_path: Path) -> None:
    assert only(tmp_path, '[shedule]\ncron = "0 8 * * 2"\n') == (
        "<file>: shedule = {'cron': '0 8 * * 2'}: unknown key (expected one of site, storage, "
        "publish, schedule, subscribe, delivery, bounces, admin, analytics, webhooks, channels; "
        "did you mean 'schedule'?)"
    )


def test_unknown_key_in_a_section_with_suggestion(tmp_path: Path) -> None:
    assert only(tmp_path, '[site]\ntitel = "Hebdo"\n') == (
        "<file>: site.titel = 'Hebdo': unknown key (expected one of author, base_url, "
        "description, email, favicon, language, postal_address, title, wordmark, "
        "wordmark_dark; did you mean 'title'?)"
    )


def test_unknown_key_in_a_channel_with_suggestion(tmp_path: Path) -> None:
    message = only(
        tmp_path,
        '[[channels]]\ntype = "feed"\n[[channels]]\ntype = "webhook"\n'
        'url = "https://hooks.example.org/x"\nsecret_envv = "HOOK"\n',
    )
    assert message.startswith("<file>: channels[1].secret_envv = 'HOOK': unknown key (expected ")
    assert message.endswith("; did you mean 'secret_env'?)")
    assert "url" in message and "timeout" in message


# --------------------------------------------------------------------------- types and values


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[publish]\nrelated_count = "3"\n',
         "<file>: publish.related_count = '3': expected a whole number"),
        ("[publish]\nrelated_count = 99\n",
         "<file>: publish.related_count = 99: expected a number less than or equal to 20"),
        ("[site]\ntitle = 3\n", "<file>: site.title = 3: expected a string (in quotes)"),
        ("[storage]\ndatabase = 3\n",
         '<file>: storage.database = 3: expected a path (a string in quotes, e.g. '
         '"../var/syndicate.db")'),
        ('[publish]\nemail_content = "short"\n',
         "<file>: publish.email_content = 'short': expected one of 'full' or 'summary'"),
        ('[schedule]\nmisfire_grace = "2 weeks"\n',
         "<file>: schedule.misfire_grace = '2 weeks': expected a duration such as 3600, "
         "'90s', '15m', '6h' or '1d'"),
        ('[schedule]\ncatch_up = "all"\n',
         "<file>: schedule.catch_up = 'all': expected one of 'latest' or 'none'"),
        ('[site]\nbase_url = "example.org/"\n',
         "<file>: site.base_url = 'example.org/': expected an absolute http(s) URL such as "
         "'https://example.org/'"),
        ('[publish]\nsubject = "{titre}"\n',
         "<file>: publish.subject = '{titre}': expected a template using only {title}, {site}, "
         "{date} and {number} (problem: 'titre')"),
        ("site = 3\n", "<file>: site = 3: expected a table [site]"),
        ('[[channels]]\ntype = "feed"\nenabled = "yes"\n',
         "<file>: channels[0].enabled = 'yes': expected true or false"),
        ('[[channels]]\ntype = "webhook"\n', "<file>: channels[0].url: missing required key"),
    ],
)
def test_wrong_types_and_values(tmp_path: Path, toml: str, expected: str) -> None:
    assert only(tmp_path, toml) == expected


def test_a_check_across_keys_names_the_entry(tmp_path: Path) -> None:
    message = only(
        tmp_path,
        '[[channels]]\ntype = "webhook"\nurl = "https://m.example.org"\nformat = "mastodon"\n',
    )
    assert message.startswith("<file>: channels[0]: format 'mastodon' needs token_env")


def test_durations(tmp_path: Path) -> None:
    for text, seconds in (("90", 90), ('"90s"', 90), ('"15m"', 900), ('"6h"', 21600),
                          ('"1d"', 86400)):
        config = load_config(write(tmp_path, f"[schedule]\nmisfire_grace = {text}\n"))
        assert config.schedule.misfire_grace == seconds


# --------------------------------------------------------------------------- cron, time zone


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("0 8 * * 2 3", "5 fields 'minute hour day month weekday' (got 6), e.g. '0 8 * * 2' "
                        "for Tuesdays at 08:00"),
        ("61 8 * * 2", "minute field: 61 is outside 0-59"),
        ("0 24 * * 2", "hour field: 24 is outside 0-23"),
        ("0 8 * * 8", "day_of_week field: 8 is outside 0-7"),
        ("0 8 * * x", "day_of_week field: 'x' is not a number"),
        ("0 8 5-1 * *", "day field: range '5-1' runs backwards"),
        ("*/0 8 * * *", "minute field: step must be at least 1"),
        ("0 8 1,,2 * *", "day field: cannot read ''"),
        ("0 8 * * 2#6", "day_of_week field: cannot read '2#6'"),
        ("0 8 31 2 *", "a date that exists: day 31 never occurs in month 2"),
    ],
)
def test_bad_cron_each_kind(tmp_path: Path, cron: str, expected: str) -> None:
    assert only(tmp_path, f'[schedule]\ncron = "{cron}"\n') == (
        f"<file>: schedule.cron = '{cron}': expected {expected}"
    )


@pytest.mark.parametrize("cron", ["0 8 * * 2", "30 2 * * 0", "*/15 9-17 * * 1-5",
                                  "0 8 1,15 * *", "0 7 * * sun", "0 6 * jan-jun 7",
                                  "0 8 1 * 2", "0 8 * * 2#1", "0 8 L * *"])
def test_good_cron(tmp_path: Path, cron: str) -> None:
    assert load_config(write(tmp_path, f'[schedule]\ncron = "{cron}"\n')).schedule.cron == cron


def test_unknown_time_zone_with_suggestion(tmp_path: Path) -> None:
    assert only(tmp_path, '[schedule]\ntimezone = "Europe/Pariss"\n') == (
        "<file>: schedule.timezone = 'Europe/Pariss': expected an IANA time zone such as "
        "'Europe/Paris' (did you mean 'Europe/Paris'?)"
    )
    assert only(tmp_path, '[schedule]\ntimezone = "Mars/Olympus"\n') == (
        "<file>: schedule.timezone = 'Mars/Olympus': expected an IANA time zone such as "
        "'Europe/Paris'"
    )


# --------------------------------------------------------------------------- channels


def test_unknown_channel_type_with_suggestion(tmp_path: Path) -> None:
    from syndicate.channels import channel_types

    assert only(tmp_path, '[[channels]]\ntype = "feeds"\n') == (
        f"<file>: channels[0].type = 'feeds': expected one of {', '.join(channel_types())} "
        "(did you mean 'feed'?)"
    )


def test_smtp_needs_an_https_base_url(tmp_path: Path) -> None:
    smtp = '[[channels]]\ntype = "smtp"\nhost = "mail.example.org"\nfrom = "a@example.org"\n'
    assert only(tmp_path, '[site]\nbase_url = "http://example.org/"\n' + smtp) == (
        "<file>: site.base_url = 'http://example.org/': expected an https:// URL, because "
        "channels[0] (type 'smtp') sends unsubscribe links built on it "
        "(RFC 8058 one-click unsubscribe works over HTTPS only)"
    )
    for fine in ("https://example.org/", "http://127.0.0.1:8080/"):
        path = write(tmp_path, f'[site]\nbase_url = "{fine}"\n' + smtp)
        assert load_config(path).site.base_url == fine


def test_duplicate_channel_names(tmp_path: Path) -> None:
    assert only(tmp_path, '[[channels]]\ntype = "feed"\n[[channels]]\ntype = "feed"\n') == (
        "<file>: channels[1].name = 'feed': expected a name unique among channels "
        '(also channels[0]; hint: set name = "...")'
    )
    config = load_config(write(
        tmp_path, '[[channels]]\ntype = "feed"\n[[channels]]\ntype = "feed"\nname = "feed2"\n'
    ))
    assert [c.name for c in config.channels] == ["feed", "feed2"]


WEBHOOK = (
    '[[channels]]\ntype = "feed"\n'
    '[[channels]]\ntype = "webhook"\nurl = "https://hooks.example.org/x"\n'
    f'secret_env = "{SECRET_VAR}"\n'
)


def test_missing_secret_env_var(tmp_path: Path) -> None:
    path = write(tmp_path, WEBHOOK)
    config = load_config(path)
    assert config.missing_secrets({}) == [
        f"{config.path}: channels[1].secret_env = '{SECRET_VAR}': the environment variable "
        f"{SECRET_VAR} is not set (the secret is read from it, never the file)"
    ]
    assert config.missing_secrets({SECRET_VAR: "whsec_abc"}) == []


def test_all_problems_at_once(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        '[site]\ntitel = "x"\n[schedule]\ncron = "0 8 * *"\ntimezone = "Europe/Pariss"\n'
        '[[channels]]\ntype = "feeds"\n',
    )
    assert [p.split(":")[1].split(" = ")[0].strip() for p in found] == [
        "site.titel", "schedule.cron", "schedule.timezone", "channels[0].type"
    ]


# --------------------------------------------------------------------------- config check


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_config_check_prints_every_problem_including_missing_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_VAR, raising=False)
    path = write(tmp_path, '[site]\ntitel = "x"\n[schedule]\ncron = "0 8 31 2 *"\n' + WEBHOOK)
    result = run("--config", str(path), "config", "check")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines == [
        f"{path}: site.titel = 'x': unknown key (expected one of author, base_url, description, "
        "email, favicon, language, postal_address, title, wordmark, wordmark_dark; did you "
        "mean 'title'?)",
        f"{path}: schedule.cron = '0 8 31 2 *': expected a date that exists: day 31 never "
        "occurs in month 2",
        f"{path}: channels[1].secret_env = '{SECRET_VAR}': the environment variable "
        f"{SECRET_VAR} is not set (the secret is read from it, never the file)",
    ]
    assert "3 problem(s)" in result.stderr


def test_config_check_ok(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_VAR, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    path = write(tmp_path, '[schedule]\ncron = "0 8 * * 2"\n' + WEBHOOK)
    result = run("--config", str(path), "config", "check")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{path}: OK (2 channel(s): feed, webhook; next slot mardi ")


def test_config_check_lists_the_bounce_mailbox_and_webhook_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The IMAP password and the providers' webhook keys are read from the environment by
    `run`, `serve` and `bounces poll`: `config check` says which are unset; a publish does
    not need them and does not refuse."""
    for var in ("SYN_TEST_IMAP_PW", "SYN_TEST_MAILGUN", "SYN_TEST_POSTMARK"):
        monkeypatch.delenv(var, raising=False)
    path = write(tmp_path, '[schedule]\ncron = "0 8 * * 2"\n'
                 '[bounces]\nimap_host = "imap.example.org"\nimap_user = "bounces"\n'
                 'imap_password_env = "SYN_TEST_IMAP_PW"\n'
                 '[webhooks]\nmailgun_signing_key_env = "SYN_TEST_MAILGUN"\n'
                 'postmark_user = "hooks"\npostmark_password_env = "SYN_TEST_POSTMARK"\n'
                 '[[channels]]\ntype = "feed"\n')
    result = run("--config", str(path), "config", "check")
    assert result.exit_code == 1
    unset = "is not set (the secret is read from it, never the file)"
    assert result.stdout.splitlines() == [
        f"{path}: bounces.imap_password_env = 'SYN_TEST_IMAP_PW': the environment variable "
        f"SYN_TEST_IMAP_PW {unset}",
        f"{path}: webhooks.postmark_password_env = 'SYN_TEST_POSTMARK': the environment "
        f"variable SYN_TEST_POSTMARK {unset}",
        f"{path}: webhooks.mailgun_signing_key_env = 'SYN_TEST_MAILGUN': the environment "
        f"variable SYN_TEST_MAILGUN {unset}",
    ]
    assert load_config(path).missing_secrets() == []  # a publish does not refuse
    for var in ("SYN_TEST_IMAP_PW", "SYN_TEST_MAILGUN", "SYN_TEST_POSTMARK"):
        monkeypatch.setenv(var, "s3cret")
    result = run("--config", str(path), "config", "check")
    assert result.exit_code == 0, result.output


def test_shipped_config_is_valid() -> None:
    config = load_config(ROOT / "config" / "syndicate.toml")
    assert config.missing_secrets({}) == []
    assert [c.type for c in config.channels] == ["feed", "archive", "outbox"]


# --------------------------------------------------------------------------- config show


@pytest.fixture
def vault_type(monkeypatch: pytest.MonkeyPatch) -> str:
    """A channel type whose settings hold secrets in the file (what show must mask)."""
    from syndicate.channels import ChannelSettings, channel_registry

    class VaultSettings(ChannelSettings):
        password: str = Field("", description="a password")
        api_token: str = Field("", description="a token")
        token_env: str = Field("", description="name of a variable")
        path: Path = Field(Path("../var/vault"), description="a folder")

    class Vault:
        type_name: ClassVar[str] = "vault-test"
        Settings: ClassVar[type] = VaultSettings

    monkeypatch.setitem(channel_registry().classes, "vault-test", Vault)
    return "vault-test"


def test_config_show_fills_defaults_resolves_paths_masks_secrets(
    tmp_path: Path, vault_type: str
) -> None:
    path = write(
        tmp_path,
        '[schedule]\nmisfire_grace = "15m"\n[storage]\ndatabase = "../data/ledger.db"\n'
        f'[[channels]]\ntype = "{vault_type}"\npassword = "hunter2"\napi_token = "t0k3n"\n'
        'token_env = "VAULT_TOKEN"\n' + WEBHOOK,
    )
    result = run("--config", str(path), "config", "show")
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.stdout and "t0k3n" not in result.stdout
    data = tomllib.loads(result.stdout)
    assert data["schedule"] == {"cron": "0 8 * * 2", "timezone": "Europe/Paris",
                                "misfire_grace": 900, "failover": 30,
                                "catch_up": "latest"}
    assert data["storage"]["database"] == str((tmp_path / "data" / "ledger.db").resolve())
    assert data["storage"]["corpus"] == str((tmp_path / "corpus").resolve())
    assert data["site"]["title"] == "Études de cas"
    vault, feed, webhook = data["channels"]
    assert vault["password"] == "********" and vault["api_token"] == "********"
    assert vault["token_env"] == "VAULT_TOKEN"  # a variable's name, not a secret
    assert vault["path"] == str((tmp_path / "var" / "vault").resolve())
    assert vault["name"] == vault_type and vault["enabled"] is True
    assert feed["type"] == "feed"
    assert webhook["secret_env"] == SECRET_VAR and webhook["timeout"] == 10.0

    assert "# templates is not set" in result.stdout  # unset: the shipped templates
    as_json = run("--config", str(path), "config", "show", "--json")
    shown = json.loads(as_json.stdout)
    assert shown["storage"].pop("templates") is None  # JSON says null where TOML comments
    assert shown["storage"].pop("database_password_env") is None  # unset: libpq's sources
    assert shown["site"].pop("wordmark") is None  # unset: the title in text
    assert shown["site"].pop("wordmark_dark") is None
    assert shown["site"].pop("favicon") is None  # unset: the shipped favicon.svg
    assert shown == data


def test_config_show_of_an_invalid_config_fails_with_the_errors(tmp_path: Path) -> None:
    path = write(tmp_path, '[site]\ntitel = "x"\n')
    result = CliRunner().invoke(cli, ["--config", str(path), "config", "show"])
    assert result.exit_code == 1
    assert "site.titel = 'x': unknown key" in result.stderr


# --------------------------------------------------------------------------- docs


def test_committed_reference_is_up_to_date() -> None:
    committed = ROOT / "docs" / "configuration.md"
    assert committed.exists(), "run `syndicate config docs`"
    assert committed.read_text(encoding="utf-8") == reference_markdown(), (
        "docs/configuration.md is out of date: run `syndicate config docs`"
    )


def test_reference_lists_every_key_of_every_section_and_channel_type() -> None:
    from syndicate.channels import channel_settings_model, channel_types
    from syndicate.config import SECTIONS

    text = reference_markdown()
    for name, model in SECTIONS.items():
        assert f"## `[{name}]`" in text
        for key, info in model.model_fields.items():
            assert f"| `{key}` |" in text
            assert (info.description or "").split()[0] in text
    for type_name in channel_types():
        assert f'### `type = "{type_name}"`' in text
        model = channel_settings_model(type_name)
        assert model is not None
        for key, info in model.model_fields.items():
            assert f"| `{info.alias or key}` |" in text
    assert '| `misfire_grace` | duration | `21600` |' in text
    assert '| `catch_up` | "latest" \\| "none" | `"latest"` |' in text


def test_config_docs_writes_and_checks(tmp_path: Path) -> None:
    out = tmp_path / "docs" / "configuration.md"
    assert run("config", "docs", "--check", "-o", str(out)).exit_code == 1
    result = run("config", "docs", "-o", str(out))
    assert result.exit_code == 0 and out.read_text(encoding="utf-8") == reference_markdown()
    assert run("config", "docs", "--check", "-o", str(out)).exit_code == 0
    out.write_text(out.read_text(encoding="utf-8").replace("duration", "durée"), encoding="utf-8")
    stale = run("config", "docs", "--check", "-o", str(out))
    assert stale.exit_code == 1 and "out of date" in stale.stderr


# --------------------------------------------------------------------------- README


def _commands(group: click.Group, prefix: str) -> list[str]:
    out = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # the top-level group loads them on demand
        command = group.get_command(ctx, name)
        assert command is not None, name
        if command.hidden:
            continue
        if isinstance(command, click.Group):
            out += _commands(command, f"{prefix} {name}")
        else:
            out.append(f"{prefix} {name}")
    return out


def test_every_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = _commands(cli, "syndicate")
    assert "syndicate config check" in commands and "syndicate run" in commands
    missing = [c for c in commands if not re.search(re.escape(c) + r"(?![\w-])", readme)]
    assert not missing, f"commands missing from README.md: {', '.join(missing)}"


def test_base_url_without_trailing_slash_is_accepted(tmp_path: Path) -> None:
    # Static-site tools accept both forms; links are built by appending to it.
    path = write(tmp_path, '[site]\nbase_url = "https://example.org/lettre"\n'
                 '[[channels]]\ntype = "smtp"\nhost = "127.0.0.1"\nfrom = "a@example.org"\n')
    config = load_config(path)
    assert config.site.base_url == "https://example.org/lettre/"
    from syndicate.render.urls import edition_url, unsubscribe_url

    assert edition_url(config.site.base_url, "x") == "https://example.org/lettre/x/"
    assert unsubscribe_url(config.site.base_url, "t").startswith(
        "https://example.org/lettre/unsubscribe/")
