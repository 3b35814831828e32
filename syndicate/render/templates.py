"""The one Jinja environment every template is rendered with.

The email (MJML and text), the feed item, the archive pages, the web pages and the
confirmation emails all come from here, with the same options and filters, so a
template behaves the same wherever it is used. The templates are package data
(``syndicate/templates/``, in the wheel); an operator's folder (``[storage]
templates``) is searched first and overrides them template by template: a file
missing there falls back to the shipped one.

Compiling a template costs milliseconds (about 0.2 s for those of one publication), so
what Jinja compiles is kept between processes in the site's cache folder
(``cache/templates/`` beside a SQLite ledger, :attr:`Config.corpus_cache_dir`), keyed as
Jinja keys it by the template's source: an edited template is compiled again, a cache
file that cannot be read is ignored (and rewritten), and the folder may be deleted at
any time (docs/templates.md).

Corpus text only ever enters templates as *data*: autoescaped in HTML and MJML,
verbatim in text and style sheets (where HTML entities mean nothing). Every template
passes the corpus text it shows through the ``fr`` filter (French no-break spaces,
:mod:`syndicate.typography`): the corpus files keep plain text, rendering adds them.
"""

from __future__ import annotations

import json
import logging
import textwrap
import types
from collections.abc import MutableMapping
from datetime import date, datetime
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from ..config import Config
from ..digest import sha256_hex
from ..errors import RenderError
from ..typography import french, french_html

log = logging.getLogger("syndicate.render.templates")

#: The package and folder the shipped templates are loaded from (``PackageLoader``).
PACKAGE = "syndicate"
PACKAGE_FOLDER = "templates"
#: The folder, inside the site's cache folder, where compiled templates are kept.
CACHE_FOLDER = "templates"

NBSP = "\u00a0"
TEXT_WIDTH = 72

_MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)


# --------------------------------------------------------------------------- filters


def french_date(value: date | datetime) -> str:
    """``22 novembre 2026``, ``1er mai 2026``: no dependency on installed locales."""
    day = "1er" if value.day == 1 else str(value.day)
    return f"{day} {_MONTHS[value.month - 1]} {value.year}"


def wrap_text(text: str, width: int = TEXT_WIDTH, indent: str = "") -> str:
    """Fill ``text`` at ``width`` columns without breaking words, URLs or hyphenated words.

    The first line is assumed to follow a prefix as wide as ``indent`` (e.g. ``"- "``)
    which the template writes itself; the following lines start with ``indent``.
    Only ASCII spaces break lines: a non-breaking space keeps « mot » and « : » together.
    """
    filled = textwrap.fill(
        text,
        width=width,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return filled[len(indent):]


def underline(text: str, char: str = "=", width: int = TEXT_WIDTH) -> str:
    """A rule as long as the text's longest line (at most ``width``)."""
    longest = max((len(line) for line in wrap_text(text, width).splitlines()), default=0)
    return char * longest


def french_filter(value: object) -> str:
    """The ``fr`` filter: French no-break spaces in a value shown as text.

    Plain values (corpus strings) get :func:`~syndicate.typography.french` and are then
    autoescaped as usual (the pass adds only spaces, never ``<`` or ``&``); markup that
    is already safe gets :func:`~syndicate.typography.french_html` (text nodes only).
    Never use it inside an attribute: URLs and attribute values stay as they are.
    """
    if isinstance(value, markupsafe.Markup):
        return markupsafe.Markup(french_html(str(value)))
    return french(str(value))


# --------------------------------------------------------------------------- the environment


#: Everything is HTML or MJML except plain text and style sheets (HTML entities mean
#: nothing inside <style>): templates named so are not autoescaped.
_NOT_ESCAPED = (".txt.j2", ".txt", ".css.j2", ".css")


def _autoescape(name: str | None) -> bool:
    return not (name or "").endswith(_NOT_ESCAPED)


def fingerprint(env: jinja2.Environment) -> str:
    """What the code Jinja compiles depends on besides the source: Jinja's version, the
    syntax options and the autoescape rule. Part of every cache file's name (so changing
    any of them never loads code compiled under the old ones), and recorded with the
    precompiled shipped templates (:mod:`.precompile`)."""
    seen = repr((jinja2.__version__, env.block_start_string, env.block_end_string,
                 env.variable_start_string, env.variable_end_string,
                 env.comment_start_string, env.comment_end_string,
                 env.line_statement_prefix, env.line_comment_prefix, env.trim_blocks,
                 env.lstrip_blocks, env.newline_sequence, env.keep_trailing_newline,
                 env.optimized, sorted(env.extensions), _NOT_ESCAPED))
    return sha256_hex(seen.encode())[:12]


@lru_cache(maxsize=1)
def _precompiled() -> dict[str, Any]:
    """The shipped templates compiled ahead (:mod:`.precompile`), read once; {} if absent."""
    try:
        raw = (resources.files(PACKAGE) / "render" / "precompiled.json").read_bytes()
        data = json.loads(raw)
    except (OSError, ValueError) as exc:
        log.debug("no precompiled templates: %s", exc)
        return {}
    return data if isinstance(data, dict) else {}


class ShippedLoader(jinja2.PackageLoader):
    """The shipped templates, as Jinja's PackageLoader loads them, with one more source
    of compiled code between the bytecode cache and the compiler: the Python source Jinja
    generates for each, precompiled with the package (:mod:`.precompile`), used when the
    template's source and the environment's fingerprint are the recorded ones. Turning
    that source into code costs about a tenth of compiling the template."""

    def load(self, environment: jinja2.Environment, name: str,
             globals: MutableMapping[str, Any] | None = None) -> jinja2.Template:
        # BaseLoader.load, with the precompiled step.
        source, filename, uptodate = self.get_source(environment, name)
        cache = environment.bytecode_cache
        bucket = cache.get_bucket(environment, name, filename, source) if cache else None
        code = bucket.code if bucket is not None else None
        if code is None:
            code = _precompiled_code(environment, name, source, filename)
        if code is None:
            code = environment.compile(source, name, filename)
        if cache is not None and bucket is not None and bucket.code is None:
            bucket.code = code
            cache.set_bucket(bucket)
        return environment.template_class.from_code(
            environment, code, globals if globals is not None else {}, uptodate)


def _precompiled_code(environment: jinja2.Environment, name: str, source: str,
                      filename: str) -> types.CodeType | None:
    data = _precompiled()
    entry = data.get("templates", {}).get(name)
    if not isinstance(entry, dict) or data.get("fingerprint") != fingerprint(environment):
        return None
    if entry.get("source") != sha256_hex(source.encode("utf-8")):  # as precompile writes it
        return None  # an edited shipped template (a checkout): compiled as usual
    python = entry.get("python")
    if not isinstance(python, str):
        return None
    # The same code object as Environment.compile's (which compiles this same source
    # under the same file name).
    return compile(python, filename, "exec", dont_inherit=True)  # not our __future__ flags


class TemplateCache(jinja2.FileSystemBytecodeCache):
    """Jinja's file cache of compiled templates, made harmless when it goes wrong.

    Jinja names each file after the template (its name and file) and checks it against
    the template's source (sha1) and its own and Python's versions; this adds the
    environment's options to the name. A file that cannot be read as compiled code
    (truncated, corrupt, not ours) is ignored and rewritten; a folder that cannot be
    written costs the compile, never the render. Like the corpus index, the folder is
    made only inside an existing cache folder's parent (nothing is created for a ledger
    folder that does not exist yet).
    """

    def __init__(self, folder: Path, fingerprint: str) -> None:
        super().__init__(str(folder), f"%s-{fingerprint}.cache")
        self.folder = folder

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception as exc:  # pickle and marshal raise about anything on garbage
            log.debug("ignoring the unreadable template cache %s: %s", bucket.key, exc)
            bucket.reset()
        code: object = bucket.code  # marshal can load any object, not only code
        if code is not None and not isinstance(code, types.CodeType):
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            if not self.folder.parent.parent.is_dir():
                return
            self.folder.mkdir(parents=True, exist_ok=True)
            super().dump_bytecode(bucket)
        except OSError as exc:  # a cache that cannot be written costs time, never output
            log.debug("cannot write the template cache in %s: %s", self.folder, exc)


@lru_cache(maxsize=8)
def template_environment(folder: Path | None = None,
                         cache_dir: Path | None = None) -> jinja2.Environment:
    """The environment for an operator ``folder`` over the shipped templates (or those alone).

    Cached per folder, so it is built once per config and Jinja's cache of compiled
    templates is kept; ``auto_reload`` (Jinja's default) still picks up a template an
    operator edits while ``serve`` or ``run`` is up. ``cache_dir``: the site's cache
    folder, where compiled templates are kept between processes (:class:`TemplateCache`
    in its ``templates/``); None: compiled in each process.
    """
    loaders: list[jinja2.BaseLoader] = []
    if folder is not None:
        loaders.append(jinja2.FileSystemLoader(str(folder)))
    loaders.append(ShippedLoader(PACKAGE, PACKAGE_FOLDER))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,  # a typo in a template fails loudly
        trim_blocks=True,
        lstrip_blocks=True,
        # Text templates end with the newline their author wrote (HTML callers strip).
        keep_trailing_newline=True,
    )
    if cache_dir is not None:
        env.bytecode_cache = TemplateCache(cache_dir / CACHE_FOLDER, fingerprint(env))
    env.filters["wrap"] = wrap_text
    env.filters["underline"] = underline
    env.filters["french_date"] = french_date
    env.filters["fr"] = french_filter
    env.globals["nbsp"] = NBSP
    return env


def template_env(config: Config) -> jinja2.Environment:
    """The environment for ``config``'s ``[storage] templates`` folder (cached per folder),
    its compiled templates kept in the site's cache folder (``Config.corpus_cache_dir``)."""
    return template_environment(config.templates_dir, config.corpus_cache_dir)


def render_template(config: Config, template: str, /, **context: object) -> str:
    """Render one template; template problems become :class:`RenderError` with file:line."""
    try:
        return template_env(config).get_template(template).render(**context)
    except jinja2.TemplateNotFound as exc:
        where = (f"in {config.templates_dir} (nor in the shipped templates)"
                 if config.templates_dir is not None else "in the shipped templates")
        raise RenderError(f"template {exc.name} not found {where}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(f"{exc.filename or exc.name}:{exc.lineno}: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise RenderError(f"template {template}: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise RenderError(f"template {template}: {exc}") from exc


def shipped_templates() -> dict[str, bytes]:
    """Every shipped template, ``{name: bytes}`` (what ``syndicate init --templates`` copies).

    Read through :mod:`importlib.resources`, so it works from a wheel, a zip or a checkout.
    """
    found: dict[str, bytes] = {}

    def walk(folder: Traversable, prefix: str) -> None:
        for item in folder.iterdir():
            if item.is_dir():
                walk(item, f"{prefix}{item.name}/")
            elif item.name.endswith(".j2"):
                found[f"{prefix}{item.name}"] = item.read_bytes()

    walk(resources.files(PACKAGE) / PACKAGE_FOLDER, "")
    return dict(sorted(found.items()))


__all__ = [
    "CACHE_FOLDER", "NBSP", "PACKAGE", "PACKAGE_FOLDER", "TEXT_WIDTH", "ShippedLoader",
    "TemplateCache", "fingerprint", "french_date", "french_filter", "render_template",
    "shipped_templates", "template_env", "template_environment", "underline", "wrap_text",
]
