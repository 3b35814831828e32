"""``syndicate init DIR``: scaffold a publication that works at once, anywhere.

What it writes comes from the installed package alone (no checkout needed): the config
is generated from the declarations in :mod:`syndicate.config` (so every key it shows
exists, with its real default and description), the sample case studies and the
templates are package data. Nothing is ever overwritten: a non-empty DIR is refused,
and ``--force`` only adds the files that are missing.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import click

from ..config import DEFAULT_CONFIG, SECTIONS, reference_rows
from ..errors import SyndicateError
from ._group import cli

CONFIG_FILE = DEFAULT_CONFIG  # config/syndicate.toml: found from DIR with no --config
CORPUS_DIR = "corpus"
TEMPLATES_DIR = "templates"
EXAMPLES = ("examples", "corpus")  # the sample case studies, under the syndicate package
WIDTH = 88

#: Keys written as settings (the rest are shown commented out, with their default): what
#: an operator changes first, and the folders, so the layout is visible in the file.
_ACTIVE = {
    "site": ("title", "description", "base_url", "language", "author", "email",
             "postal_address"),
    "storage": ("database", "corpus", "public"),
}

_CHANNELS = '''\
# Outbound channels, delivered in parallel, each within its own `deadline`; one failing
# or slow never blocks the others. Types: feed, archive, outbox, smtp, webhook (the keys
# of each: `syndicate config docs`).

[[channels]]
# RSS 2.0, Atom 1.0 and JSON Feed files in [storage] public.
type = "feed"

[[channels]]
# Static archive pages in [storage] public: one per edition, an index, one per company.
type = "archive"

[[channels]]
# Each subscriber's email written to a Maildir, exactly as it would be sent (with no
# subscriber yet, a sample copy to [publish] test_address).
type = "outbox"
path = "../var/outbox"

# To send for real, add an SMTP channel (the password is read from the environment):
#[[channels]]
#type = "smtp"
#host = "smtp.example.org"
#from = "Études de cas <lettre@example.org>"
#username = "lettre@example.org"
#password_env = "SMTP_PASSWORD"
'''


def _comment(text: str) -> list[str]:
    text = " ".join(text.replace("``", "`").split())
    return textwrap.wrap(text, WIDTH - 2, initial_indent="# ", subsequent_indent="# ",
                         break_long_words=False, break_on_hyphens=False)


def starter_config(*, templates: bool = False) -> str:
    """The commented ``config/syndicate.toml`` that ``init`` writes.

    Every section and key of :data:`syndicate.config.SECTIONS`, each with its
    description; the keys of :data:`_ACTIVE` are set (to their defaults, which work at
    once: a SQLite ledger in ``var/``, ``public/``, a loopback ``base_url``), the others
    appear as ``#key = default``: uncomment one to change it. With ``templates``, the
    ``[storage] templates`` folder is set to the copy ``init --templates`` makes.
    """
    lines = [
        "# syndicate configuration, written by `syndicate init`. Paths are relative to this",
        "# file's folder. Lines `#key = value` show a default: uncomment one to change it.",
        "# The reference of every key: `syndicate config docs -o configuration.md`. Check",
        "# an edit with `syndicate config check`.",
    ]
    for name, model in SECTIONS.items():
        lines += ["", f"[{name}]"]
        doc = (model.__doc__ or "").strip()
        if doc and not doc.startswith("Unknown keys"):
            lines += _comment(doc)
        active = _ACTIVE.get(name, ())
        for key, _kind, default, text in reference_rows(model):
            lines += _comment(text)
            if name == "storage" and key == "templates":
                value = f'"../{TEMPLATES_DIR}"'
                lines.append(f"{key} = {value}" if templates else f"#{key} = {value}")
            elif default in ("(required)", "(unset)"):
                lines.append(f"#{key} =")
            elif key in active:
                lines.append(f"{key} = {default}")
            else:
                lines.append(f"#{key} = {default}")
    return "\n".join(lines) + "\n\n" + _CHANNELS


def example_corpus() -> dict[str, bytes]:
    """The ten sample case studies shipped with the package, ``{file name: bytes}``."""
    folder = resources.files("syndicate").joinpath(*EXAMPLES)
    return {item.name: item.read_bytes() for item in sorted(folder.iterdir(), key=lambda i: i.name)
            if item.name.endswith(".md")}


def publication_files(*, example: bool, templates: bool) -> dict[str, bytes]:
    """What ``init`` writes, ``{path relative to DIR: bytes}``."""
    files = {str(CONFIG_FILE): starter_config(templates=templates).encode("utf-8")}
    if example:
        files.update({f"{CORPUS_DIR}/{name}": data for name, data in example_corpus().items()})
    if templates:
        files.update({f"{TEMPLATES_DIR}/{name}": data
                      for name, data in _shipped_templates().items()})
    return files


@dataclass(frozen=True)
class Scaffold:
    """What :func:`write_publication` did: the files written and those kept as they were."""

    written: tuple[Path, ...]
    kept: tuple[Path, ...]


def write_publication(target: Path, files: dict[str, bytes], *, force: bool = False) -> Scaffold:
    """Write ``files`` under ``target`` (and an empty corpus folder); never overwrite.

    A ``target`` that exists and is not empty is refused unless ``force``; even then a
    file that exists is kept as it is (and reported), never replaced.
    """
    if target.exists() and not target.is_dir():
        raise SyndicateError(f"{target} exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise SyndicateError(f"{target} is not empty: choose a new folder (or --force to add "
                             "only the missing files; existing files are never overwritten)")
    written: list[Path] = []
    kept: list[Path] = []
    (target / CORPUS_DIR).mkdir(parents=True, exist_ok=True)
    for relative, data in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # "x": created here or not at all, so a file that appeared meanwhile is kept too.
            with path.open("xb") as handle:
                handle.write(data)
        except FileExistsError:
            kept.append(path)
            continue
        written.append(path)
    return Scaffold(tuple(written), tuple(kept))


@cli.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--example", is_flag=True,
              help="Put the ten sample case studies in corpus/ (else corpus/ is empty).")
@click.option("--templates", "with_templates", is_flag=True,
              help="Copy the shipped templates into templates/ to edit them, and point "
                   "[storage] templates there.")
@click.option("--force", is_flag=True,
              help="Accept a non-empty DIR: add the missing files, keep every existing one.")
def init_cmd(directory: Path, example: bool, with_templates: bool, force: bool) -> None:
    """Create a new publication in DIRECTORY: a commented config, a corpus folder.

    Run the next commands from DIRECTORY: the config is found there
    (config/syndicate.toml) with no --config.
    """
    files = publication_files(example=example, templates=with_templates)
    result = write_publication(directory, files, force=force)
    corpus = directory / CORPUS_DIR
    cases = len(list(corpus.glob("*.md")))
    click.echo(f"created {directory}:")
    for path in result.written:
        if path.parent != corpus:  # the case studies are counted below, not listed
            click.echo(f"  {path}")
    click.echo(f"  {corpus}{os.sep} ({cases} case stud{'y' if cases == 1 else 'ies'})")
    for path in result.kept:
        click.echo(f"  kept {path} (exists; not overwritten)")
    click.echo("next:")
    click.echo(f"  cd {directory}")
    if not cases:
        click.echo(f"  syndicate corpus import PAGE...   # or write {CORPUS_DIR}/<slug>.md "
                   "(docs/corpus.md)")
    click.echo("  syndicate publish-next          # feeds and pages in public/, emails in "
               "var/outbox/")
    click.echo("  syndicate serve                 # the archive on [site] base_url (needs "
               "SYNDICATE_SECRET)")
    click.echo("  syndicate run                   # the daemon: publishes on [schedule] cron")


__all__ = ["Scaffold", "example_corpus", "init_cmd", "publication_files", "starter_config",
           "write_publication"]


def _shipped_templates() -> dict[str, bytes]:
    # Lazy: the template module loads jinja2, which only `init --templates` needs.
    from ..render.templates import shipped_templates

    return shipped_templates()

