"""What every publish-next pays (issue 13): compiled templates kept between runs, and
nothing imported that the run does not use. No timing here (bench/scale.py measures)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Project

from syndicate.channels._registry import BUILTINS, ChannelRegistry, Source, channel_registry
from syndicate.render.templates import CACHE_FOLDER, template_environment

# --------------------------------------------------------------------------- helpers


def _python(code: str, cwd: Path) -> str:
    """Run ``code`` in a fresh interpreter (a new process: nothing cached in memory)."""
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "100"}, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _publish_and_list(project: Project, modules: tuple[str, ...]) -> dict[str, bool]:
    """publish-next in a fresh process; which of ``modules`` it imported."""
    code = (
        "import json, sys\nfrom syndicate.cli import cli\n"
        f"try:\n    cli(['--config', {str(project.config_path)!r}, 'publish-next'], "
        "standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        f"print(json.dumps({{m: m in sys.modules for m in {modules!r}}}))"
    )
    return dict(json.loads(_python(code, project.root).splitlines()[-1]))


def _render(project: Project, template: str) -> str:
    """Render ``template`` (with ``x``) through the config's environment, in a new process."""
    code = (
        "from syndicate.app import load_config\nfrom syndicate.render.templates import "
        f"render_template\nconfig = load_config({str(project.config_path)!r})\n"
        f"print(render_template(config, {template!r}, x='valeur'), end='')"
    )
    return _python(code, project.root)


def _cache(project: Project) -> Path:
    return project.var / "cache" / CACHE_FOLDER


# --------------------------------------------------------------------------- template cache


def test_compiled_templates_are_kept_in_the_cache_folder(project: Project) -> None:
    project.var.mkdir()
    out = _render_feed_item(project)
    files = sorted(_cache(project).glob("*.cache"))
    assert files, "nothing written to var/cache/templates"
    stamps = {f: f.stat().st_mtime_ns for f in files}
    assert _render_feed_item(project) == out
    # The second process loads them: nothing rewritten, nothing added.
    assert {f: f.stat().st_mtime_ns for f in _cache(project).glob("*.cache")} == stamps


def _render_feed_item(project: Project) -> str:
    code = (
        "from syndicate.app import load_config\nfrom syndicate.render.templates import "
        f"template_env\nconfig = load_config({str(project.config_path)!r})\n"
        "t = template_env(config).get_template('archive/favicon.svg.j2')\nprint(t.render())"
    )
    return _python(code, project.root)


def test_an_edited_operator_template_is_picked_up_on_the_next_run(project: Project) -> None:
    project.var.mkdir()
    folder = project.root / "templates"
    folder.mkdir()
    mine = folder / "note.txt.j2"
    mine.write_text("avant {{ x }}\n", encoding="utf-8")
    project.write_config(storage={"templates": "../templates"})
    assert _render(project, "note.txt.j2") == "avant valeur\n"
    assert list(_cache(project).glob("*.cache")), "the compiled template was not kept"
    # Same size, same second: only the source tells the edit (Jinja checks its sha1).
    stat = mine.stat()
    mine.write_text("après {{ x }}\n", encoding="utf-8")
    os.utime(mine, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert _render(project, "note.txt.j2") == "après valeur\n"


@pytest.mark.parametrize("garbage", [
    b"",  # truncated to nothing
    b"not a cache file at all",
    None,  # Jinja's header, then garbage where the checksum and the code go
])
def test_a_corrupt_cache_file_is_ignored_and_rewritten(project: Project,
                                                       garbage: bytes | None) -> None:
    from jinja2.bccache import bc_magic

    project.var.mkdir()
    folder = project.root / "templates"
    folder.mkdir()
    (folder / "note.txt.j2").write_text("note {{ x }}\n", encoding="utf-8")
    project.write_config(storage={"templates": "../templates"})
    assert _render(project, "note.txt.j2") == "note valeur\n"
    files = list(_cache(project).glob("*.cache"))
    assert len(files) == 1
    files[0].write_bytes(bc_magic + b"\x80\x02garbage" if garbage is None else garbage)
    assert _render(project, "note.txt.j2") == "note valeur\n"
    assert files[0].read_bytes().startswith(bc_magic) and len(files[0].read_bytes()) > 100


def test_a_cache_that_cannot_be_written_costs_only_the_compile(project: Project) -> None:
    project.var.mkdir()
    (project.var / "cache").write_text("a file where the folder should be", encoding="utf-8")
    assert _render(project, "archive/favicon.svg.j2").startswith("<svg")


def test_no_cache_folder_is_made_for_a_ledger_folder_that_does_not_exist(
        project: Project) -> None:
    assert not project.var.exists()
    _render(project, "archive/favicon.svg.j2")
    assert not project.var.exists()


def test_environments_are_per_folder_and_cache(tmp_path: Path) -> None:
    plain = template_environment(None)
    assert plain.bytecode_cache is None
    cached = template_environment(None, tmp_path)
    assert cached is not plain and cached is template_environment(None, tmp_path)
    assert cached.bytecode_cache is not None


# --------------------------------------------------------------------------- imports


def test_a_first_publish_without_subscribers_loads_no_address_validator_nor_smtp(
        project: Project) -> None:
    # The seed site: feed, archive and outbox channels, nobody subscribed yet.
    imported = _publish_and_list(project, ("email_validator", "smtplib", "ssl",
                                           "syndicate.transport.smtp", "syndicate.mail"))
    assert imported == {"email_validator": False, "smtplib": False, "ssl": False,
                        "syndicate.transport.smtp": False,
                        "syndicate.mail": True}  # the outbox writes mail


def test_loading_a_config_naming_a_mail_channel_loads_no_address_validator(
        project: Project) -> None:
    code = ("import sys\nfrom syndicate.app import load_config\n"
            f"config = load_config({str(project.config_path)!r})\n"
            "assert any(c.type == 'outbox' for c in config.channels)\n"
            "print('email_validator' in sys.modules)")
    assert _python(code, project.root).strip() == "False"


def test_an_address_in_a_mail_channel_is_still_validated(project: Project) -> None:
    from syndicate.errors import ConfigError

    project.write_config(channels=[{"type": "outbox", "reply_to": "pas une adresse"}])
    with pytest.raises(ConfigError, match="reply_to"):
        project.config()


def test_importing_the_pipeline_does_not_import_the_mime_assembly() -> None:
    code = "import sys\nimport syndicate.pipeline\nprint('syndicate.mail' in sys.modules)"
    assert _python(code, Path.cwd()).strip() == "False"


def test_the_transport_loads_each_module_on_first_use() -> None:
    code = ("import sys\nfrom syndicate.transport import MaildirWriter, dot_stuffed\n"
            "print(sorted(m for m in sys.modules if m.startswith('syndicate.transport.')),"
            " 'smtplib' in sys.modules)\n"
            "from syndicate.transport import SmtpTransport\n"
            "print('smtplib' in sys.modules)")
    first, then = _python(code, Path.cwd()).splitlines()
    assert first == "['syndicate.transport.maildir', 'syndicate.transport.wire'] False"
    assert then == "True"


# --------------------------------------------------------------------------- channel registry


def test_builtin_types_resolve_without_reading_the_entry_points() -> None:
    asked: list[str] = []

    def scan() -> dict[str, Source]:
        asked.append("scan")
        return {"echo": Source("echo", "pathlib:Path", "echo-package"),
                **{n: Source(n, v, "syndicate") for n, v in BUILTINS.items()}}

    registry = ChannelRegistry({n: Source(n, v, "syndicate") for n, v in BUILTINS.items()},
                               more=scan)
    assert "feed" in registry
    assert registry.channel_class("feed").type_name == "feed"
    assert registry.settings_models()["archive"].__name__ == "ArchiveSettings"
    assert asked == []
    # A name outside the built-ins, or the whole list, reads them (once).
    assert "echo" in registry and "nope" not in registry
    assert registry.types() == sorted({*BUILTINS, "echo"})
    assert asked == ["scan"]


def test_the_installed_registry_still_lists_every_type() -> None:
    assert set(BUILTINS) <= set(channel_registry().types())


# --------------------------------------------------------------------------- precompiled


def test_the_precompiled_templates_match_the_shipped_ones() -> None:
    from syndicate.render.precompile import PRECOMPILED, generate

    assert PRECOMPILED.read_text(encoding="utf-8") == generate(), (
        "a shipped template changed: run `python -m syndicate.render.precompile`")


def test_a_first_render_of_a_shipped_template_compiles_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import jinja2

    env = template_environment.__wrapped__(None)  # a new one: nothing in memory
    monkeypatch.setattr(jinja2.Environment, "compile", _no_compile)
    assert env.get_template("archive/favicon.svg.j2").render().startswith("<svg")
    with pytest.raises(AssertionError, match="compiled"):
        env.get_template("web/error.html.j2")  # not precompiled: the web pages compile


def _no_compile(*args: object, **kwargs: object) -> object:
    raise AssertionError("compiled")


def test_precompiled_code_is_used_only_for_the_recorded_source_and_options(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from syndicate.render import templates

    env = template_environment.__wrapped__(None)
    source, filename, _ = env.loader.get_source(env, "archive/favicon.svg.j2")  # type: ignore[union-attr]
    assert templates._precompiled_code(env, "archive/favicon.svg.j2", source, filename)
    # An edited shipped template (a checkout) is compiled from its source.
    assert templates._precompiled_code(env, "archive/favicon.svg.j2", source + "x",
                                       filename) is None
    # Another Jinja (or other options): the recorded code is not used.
    data = dict(templates._precompiled(), fingerprint="another")
    monkeypatch.setattr(templates, "_precompiled", lambda: data)
    assert templates._precompiled_code(env, "archive/favicon.svg.j2", source, filename) is None


def test_precompiled_code_is_the_code_jinja_compiles() -> None:
    import marshal

    from syndicate.render import templates

    env = template_environment.__wrapped__(None)
    names = sorted(templates._precompiled()["templates"])
    assert "email.mjml.j2" in names and "archive/edition.html.j2" in names
    for name in names:
        source, filename, _ = env.loader.get_source(env, name)  # type: ignore[union-attr]
        ours = templates._precompiled_code(env, name, source, filename)
        assert ours is not None, name
        assert marshal.dumps(ours) == marshal.dumps(env.compile(source, name, filename)), name
