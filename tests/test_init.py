"""``syndicate init``, the one template environment, templates and samples as package data."""

from __future__ import annotations

import email
import os
import re
import subprocess
import sys
import tomllib
from email import policy
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import EXAMPLE_CORPUS, ROOT

from syndicate import corpus as corpus_mod
from syndicate.app import App, load_config, parse_config
from syndicate.cli import cli
from syndicate.cli.init import publication_files, starter_config
from syndicate.config import SECTIONS, reference_rows
from syndicate.pipeline import publish
from syndicate.render.email import render_email
from syndicate.render.templates import shipped_templates, template_env, template_environment

PACKAGE_TEMPLATES = ROOT / "syndicate" / "templates"
#: `#key = value` (no space after #): a setting shown commented out, with its default.
COMMENTED_SETTING = re.compile(r"^#(\[\[?[\w.]+\]\]?|[\w-]+ = .+)$")


def init(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["init", *args])
    return result.exit_code, result.output


# --------------------------------------------------------------------------- the config


@pytest.mark.parametrize("templates", [False, True])
def test_starter_config_validates_and_shows_every_key_of_every_section(
    tmp_path: Path, templates: bool
) -> None:
    text = starter_config(templates=templates)
    path = tmp_path / "config" / "syndicate.toml"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    assert [c.type for c in config.channels] == ["feed", "archive", "outbox"]
    assert config.missing_secrets({}) == []
    assert config.database == tmp_path / "var" / "syndicate.db"
    assert config.site.base_url.startswith("http://127.0.0.1:")
    assert config.templates_dir == (tmp_path / "templates" if templates else None)
    data = tomllib.loads(text)
    assert set(data) == {*SECTIONS, "channels"}  # every section, even where all is default
    for name, model in SECTIONS.items():
        for key, *_ in reference_rows(model):
            assert re.search(rf"^#?{key} =", text, re.MULTILINE), f"[{name}] {key} not shown"


def test_every_commented_out_key_of_the_starter_config_exists(tmp_path: Path) -> None:
    """Uncomment every `#key = value` (the smtp example too): still valid, so every key the
    file shows is a real one, with a value of the right type (the config is strict)."""
    lines = starter_config().splitlines()
    uncommented = [line[1:] if COMMENTED_SETTING.match(line) else line for line in lines]
    assert sum(a != b for a, b in zip(lines, uncommented, strict=True)) > 20
    data = tomllib.loads("\n".join(uncommented))
    config = parse_config(data, tmp_path / "config" / "syndicate.toml")
    assert [c.type for c in config.channels] == ["feed", "archive", "outbox", "smtp"]
    assert config.templates_dir == tmp_path / "templates"
    # And the file checks with `config check` as written.
    path = tmp_path / "config" / "syndicate.toml"
    path.parent.mkdir()
    path.write_text(starter_config(), encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(path), "config", "check"])
    assert result.exit_code == 0, result.output


# --------------------------------------------------------------------------- init


def test_init_example_writes_a_publication_that_publishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SYNDICATE_CONFIG", raising=False)
    code, output = init("site", "--example")
    assert code == 0, output
    site = tmp_path / "site"
    assert sorted(p.name for p in (site / "corpus").iterdir()) == sorted(
        p.name for p in EXAMPLE_CORPUS.glob("*.md"))
    for path in EXAMPLE_CORPUS.glob("*.md"):
        assert (site / "corpus" / path.name).read_bytes() == path.read_bytes()
    assert not (site / "templates").exists()  # the shipped ones, unless asked
    assert f"{site.name}/config/syndicate.toml" in output and "(10 case studies)" in output
    assert "cd site" in output and "syndicate publish-next" in output
    # From inside the folder, with no --config: config/syndicate.toml is found.
    monkeypatch.chdir(site)
    published = CliRunner().invoke(cli, ["publish-next"])
    assert published.exit_code == 0, published.output
    assert published.stdout.startswith("complete: published edition #1")
    assert (site / "public" / "feed.xml").is_file()
    assert list((site / "var" / "outbox" / "new").iterdir())


def test_init_without_example_has_an_empty_corpus(tmp_path: Path) -> None:
    code, output = init(str(tmp_path / "new"))
    assert code == 0, output
    assert list((tmp_path / "new" / "corpus").iterdir()) == []
    assert "(0 case studies)" in output and "corpus import" in output
    config = load_config(tmp_path / "new" / "config" / "syndicate.toml")
    assert corpus_mod.load(config.corpus_dir).cases == ()


def test_init_refuses_a_non_empty_folder_and_force_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "site"
    (target / "config").mkdir(parents=True)
    mine = target / "config" / "syndicate.toml"
    mine.write_text("# my own config\n", encoding="utf-8")
    code, output = init(str(target), "--example")
    assert code == 1
    assert output.splitlines() == [
        f"error: {target} is not empty: choose a new folder (or --force to add only the "
        "missing files; existing files are never overwritten)"]
    assert not (target / "corpus").exists()

    code, output = init(str(target), "--example", "--force")
    assert code == 0, output
    assert mine.read_text(encoding="utf-8") == "# my own config\n"
    assert f"kept {mine} (exists; not overwritten)" in output
    assert len(list((target / "corpus").glob("*.md"))) == 10

    (target / "corpus" / sorted(p.name for p in EXAMPLE_CORPUS.glob("*.md"))[0]).write_text(
        "edited", encoding="utf-8")
    code, output = init(str(target), "--example", "--force")
    assert code == 0 and "edited" in {p.read_text() for p in (target / "corpus").glob("*.md")}

    a_file = tmp_path / "a-file"
    a_file.write_text("x", encoding="utf-8")
    code, output = init(str(a_file))
    assert code == 2 and "is a file" in output


def test_init_templates_copies_them_and_the_copy_overrides_file_by_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET", "init-test-secret-0123456789abcdef")
    code, output = init(str(tmp_path / "site"), "--example", "--templates")
    assert code == 0, output
    copied = tmp_path / "site" / "templates"
    for path in PACKAGE_TEMPLATES.rglob("*.j2"):
        assert (copied / path.relative_to(PACKAGE_TEMPLATES)).read_bytes() == path.read_bytes()
    config = load_config(tmp_path / "site" / "config" / "syndicate.toml")
    assert config.templates_dir == copied
    (copied / "email.txt.j2").write_text("Édition {{ edition.number }}\n", encoding="utf-8")
    (copied / "feed_item.html.j2").unlink()  # falls back to the shipped one
    result = publish(config)
    assert result.edition is not None and result.outcome == "complete"
    (raw,) = (tmp_path / "site" / "var" / "outbox" / "new").iterdir()
    message = email.message_from_bytes(raw.read_bytes(), policy=policy.default)
    text = message.get_body(("plain",))
    assert text is not None and text.get_content().splitlines() == ["Édition 1"]  # the operator's
    html = message.get_body(("html",))
    assert html is not None and "<html" in html.get_content()  # the shipped MJML
    feed = (tmp_path / "site" / "public" / "feed.xml").read_text(encoding="utf-8")
    assert f"&lt;h2&gt;{result.view.case.sections[0].heading}" in feed  # the shipped item


# --------------------------------------------------------------------------- one environment


def test_one_environment_per_templates_folder_shared_by_every_renderer(project) -> None:
    config = project.config()
    assert config.templates_dir is None  # the repo's config: the shipped templates
    env = template_env(config)
    assert App(config).templates is env is template_environment(None, config.corpus_cache_dir)
    loaders = env.loader.loaders  # type: ignore[union-attr]
    assert [type(loader).__name__ for loader in loaders] == ["ShippedLoader"]
    folder = project.root / "templates"
    folder.mkdir()
    mine = template_environment(folder, config.corpus_cache_dir)
    assert mine is template_environment(folder, config.corpus_cache_dir) and mine is not env
    assert [type(loader).__name__ for loader in mine.loader.loaders] == [  # type: ignore[union-attr]
        "FileSystemLoader", "ShippedLoader"]
    # the same options for every kind of template (the feed item once had its own)
    assert env.trim_blocks and env.lstrip_blocks and env.keep_trailing_newline
    assert env.autoescape("feed_item.html.j2") and env.autoescape("email.mjml.j2")  # type: ignore[operator]
    assert not env.autoescape("email.txt.j2")  # type: ignore[operator]


def test_operator_folder_overrides_a_web_page_and_keeps_the_others(project) -> None:
    folder = project.root / "mine"
    (folder / "web").mkdir(parents=True)
    (folder / "web" / "error.html.j2").write_text("erreur {{ status }}", encoding="utf-8")
    project.write_config(storage={"templates": "../mine"})
    env = template_env(project.config())
    assert env.get_template("web/error.html.j2").render(status=404) == "erreur 404"
    assert "<mjml" in env.get_template("email.mjml.j2").render(
        **_email_context(project.config()))


def _email_context(config) -> dict[str, object]:
    from _render_support import make_history, seed_cases

    from syndicate.render.email import _context  # the template's own context

    view = make_history(seed_cases()[:1], config)[0]
    return _context(view, config, full=True, unsubscribe="https://u.invalid/", name="",
                    preheader="")


def test_templates_and_samples_live_in_one_place_in_the_repository() -> None:
    shipped = set(shipped_templates())
    assert {"email.mjml.j2", "email.txt.j2", "feed_item.html.j2", "archive/index.html.j2",
            "web/subscribe.html.j2", "web/confirm_email.txt.j2"} <= shipped
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=False)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    files = tracked.stdout.splitlines()
    templates = [f for f in files if f.endswith(".j2")]
    assert templates and all(f.startswith("syndicate/templates/") for f in templates)
    samples = {path.name for path in EXAMPLE_CORPUS.glob("*.md")}
    assert len(samples) == 10
    assert [f for f in files if Path(f).name in samples] == [
        f"syndicate/examples/corpus/{name}" for name in sorted(samples)]
    assert not (ROOT / "templates").exists() and not (ROOT / "corpus").exists()


def test_publication_files_come_from_the_package(tmp_path: Path) -> None:
    files = publication_files(example=True, templates=True)
    assert len([f for f in files if f.startswith("corpus/")]) == 10
    assert {f.removeprefix("templates/") for f in files if f.startswith("templates/")} == {
        str(p.relative_to(PACKAGE_TEMPLATES)) for p in PACKAGE_TEMPLATES.rglob("*.j2")}


def test_publish_next_from_the_folder_through_python_dash_m(tmp_path: Path) -> None:
    """The real entry point, cwd = the new folder, neither --config nor $SYNDICATE_CONFIG."""
    env = {k: v for k, v in os.environ.items() if k != "SYNDICATE_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    made = subprocess.run([sys.executable, "-m", "syndicate", "init", "site", "--example"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert made.returncode == 0, made.stderr
    run = subprocess.run([sys.executable, "-m", "syndicate", "publish-next"],
                         cwd=tmp_path / "site", env=env, capture_output=True, text=True,
                         timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "site" / "public" / "index.html").is_file()


def test_email_is_unchanged_by_an_operator_folder_that_copies_the_shipped_one(
    tmp_path: Path, project
) -> None:
    """A copy (init --templates) renders byte for byte what the package renders."""
    from _render_support import make_history, seed_cases

    config = project.config()
    view = make_history(seed_cases()[:1], config)[0]
    code, _ = init(str(tmp_path / "copy"), "--templates")
    assert code == 0
    project.write_config(site={"base_url": config.site.base_url},
                         storage={"templates": str(tmp_path / "copy" / "templates")})
    copy_config = project.config()
    assert copy_config.templates_dir == tmp_path / "copy" / "templates"
    shipped, copied = render_email(view, config), render_email(view, copy_config)
    assert copied.text.replace(copied.unsubscribe_placeholder, "U").replace(
        copied.name_placeholder, "N") == shipped.text.replace(
        shipped.unsubscribe_placeholder, "U").replace(shipped.name_placeholder, "N")
