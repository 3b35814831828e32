"""``syndicate corpus ...``: list, check and import case studies."""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from json.encoder import encode_basestring as encode
from pathlib import Path
from typing import Any

import click

from .. import corpus as corpus_mod
from ..app import LightApp
from ..errors import ConfigError, CorpusError
from ..modules import module_source
from ._group import AppContext, cli, pass_app, short_lived


@cli.group("corpus")
def corpus_group() -> None:
    """The case studies: list, check, import scraped pages."""


def _corpus_dir(app: AppContext, directory: str | None) -> Path:
    return Path(directory) if directory else app.settings.corpus_dir


def _cache_dir(app: AppContext) -> Path | None:
    """The corpus index's folder, when there is a config (``--dir`` works without one)."""
    try:
        return app.settings.corpus_cache_dir
    except ConfigError:
        return None


@corpus_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.option("--dir", "directory", type=click.Path(file_okay=False), help="Corpus folder "
              "(default: [storage] corpus of the config).")
@pass_app
@short_lived()
def list_cmd(app: AppContext, as_json: bool, directory: str | None) -> None:
    """List case studies in queue order."""
    corpus = corpus_mod.load(_corpus_dir(app, directory), cache_dir=_cache_dir(app))
    if as_json:
        # Made once per state of the corpus index (from its columns: no record built) and
        # kept beside it: until a file changes, the listing is read, not made again.
        # What it depends on besides the corpus: this module's code (None: unreadable,
        # so a kept listing could not be told from another version's: not kept).
        listing = corpus.kept("list.json", module_source(__file__),
                              lambda: _json_listing(corpus.values(*_LISTED)).encode())
        click.echo(listing.decode())
        return
    rows = corpus.values(*_LISTED)  # read from the corpus index's columns: no record built
    from rich.console import Console  # rich tables: only for this listing
    from rich.table import Table

    table = Table(title=f"{len(rows)} case studies", title_justify="left")
    for header, justify in (("pos", "right"), ("slug", "left"), ("title", "left"),
                            ("sections", "right"), ("words", "right"),
                            ("companies", "left"), ("status", "left")):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for position, slug, title, sections, words, companies, _themes, status in rows:
        table.add_row(str(position), slug, title, str(sections), str(words),
                      ", ".join(companies), status)
    Console(width=200 if not sys.stdout.isatty() else None).print(table)


# The listing's case study attributes, in the order of the JSON keys (position, slug,
# title, sections, words, companies, themes, status).
_LISTED = ("position", "slug", "title", "section_count", "words", "companies", "themes",
           "status")


def _json_listing(rows: Sequence[tuple[Any, ...]]) -> str:
    """``json.dumps([{key: value, ...} per row], ensure_ascii=False, indent=2)``, byte for
    byte, four times faster: with an indent, the json module encodes in Python, value by
    value; here each string goes through its C escaping (``encode_basestring``, what
    ``ensure_ascii=False`` uses) and each row is one f-string."""
    if not rows:
        return "[]"
    items: list[str] = []
    append = items.append
    for position, slug, title, sections, words, companies, themes, status in rows:
        # a list of strings at this depth: one per line, or [] when empty
        listed = (_OPEN + _NEXT.join(map(encode, companies)) + _CLOSE) if companies else "[]"
        tagged = (_OPEN + _NEXT.join(map(encode, themes)) + _CLOSE) if themes else "[]"
        append(f'  {{\n    "position": {position!r},\n    "slug": {encode(slug)},\n'
               f'    "title": {encode(title)},\n    "sections": {sections!r},\n'
               f'    "words": {words!r},\n    "companies": {listed},\n'
               f'    "themes": {tagged},\n    "status": {encode(status)}\n  }}')
    return "[\n" + ",\n".join(items) + "\n]"


_OPEN, _NEXT, _CLOSE = "[\n      ", ",\n      ", "\n    ]"


@functools.cache
@corpus_group.command("check")
@click.option("--dir", "directory", type=click.Path(file_okay=False), help="Corpus folder.")
@pass_app
@short_lived()
def check_cmd(app: AppContext, directory: str | None) -> None:
    """Validate every corpus file; print each problem as file:line: what.

    Also warns (on stderr, without changing the exit status) about published editions whose
    file is gone or changed since publication: readers still see the published text.
    """
    folder = _corpus_dir(app, directory)
    cases, problems = corpus_mod.checked(folder, cache_dir=_cache_dir(app))
    for warning in _published_warnings(app, folder, cases, problems):
        click.echo(f"warning: {warning}", err=True)
    if problems:
        raise CorpusError([*problems, f"{len(problems)} problem(s) in {folder}"])
    click.echo(f"{len(cases)} case studies OK in {folder}")


def _published_warnings(
    app: AppContext, folder: Path, cases: corpus_mod.Corpus, problems: list[str]
) -> list[str]:
    """Published editions whose file is gone or changed: only for the config's own corpus
    folder with an existing ledger (another folder, or no ledger yet, has nothing published)."""
    from ..snapshots import published_drift  # the relatedness stack: only with a ledger

    try:
        config = app.settings  # the validated-config snapshot: no pydantic, no channels
    except ConfigError:
        return []
    if folder.resolve() != config.corpus_dir.resolve() or not LightApp(config).ledger_exists():
        return []
    # A file with a problem is not among ``cases``: it is reported, not "gone".
    with LightApp(config).open_ledger() as ledger:
        drifts = published_drift(ledger, cases, missing_is_gone=not problems)
    return [drift.message(folder) for drift in drifts]


@corpus_group.command("import")
@click.argument("pages", nargs=-1, required=True, type=click.Path())
@click.option("--force", is_flag=True, help="Overwrite case studies whose text changed "
              "(operator fields such as position, status and companies are kept).")
@click.option("--dry-run", is_flag=True, help="Report what would happen, write nothing.")
@click.option("--dir", "directory", type=click.Path(file_okay=False), help="Corpus folder.")
@click.option("-v", "--verbose", is_flag=True, help="Also list every skipped line (site "
              "chrome: breadcrumbs, captions, article lists...) with its reason.")
@pass_app
def import_cmd(app: AppContext, pages: tuple[str, ...], force: bool, dry_run: bool,
               directory: str | None, verbose: bool) -> None:
    """Import scraped blog pages (plain text, one block per line) as case studies.

    Prints one line per article (new, duplicate of <slug>, conflict) and the totals;
    exits with status 1 if a page cannot be read.
    """
    from ..ingest import import_pages

    report = import_pages([Path(p) for p in pages], _corpus_dir(app, directory),
                          force=force, dry_run=dry_run)
    for line in report.lines(verbose=verbose):
        click.echo(line)
    if report.errors:
        raise click.exceptions.Exit(1)
