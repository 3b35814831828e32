"""The one Jinja environment every template is rendered with.

The email (MJML and text), the feed item, the archive pages, the web pages and the
confirmation emails all come from here, with the same options and filters, so a
template behaves the same wherever it is used. The templates are package data
(``syndicate/templates/``, in the wheel); an operator's folder (``[storage]
templates``) is searched first and overrides them template by template: a file
missing there falls back to the shipped one.

Corpus text only ever enters templates as *data*: autoescaped in HTML and MJML,
verbatim in text and style sheets (where HTML entities mean nothing). Every template
passes the corpus text it shows through the ``fr`` filter (French no-break spaces,
:mod:`syndicate.typography`): the corpus files keep plain text, rendering adds them.
"""

from __future__ import annotations

import textwrap
from datetime import date, datetime
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import jinja2
import markupsafe

from ..config import Config
from ..errors import RenderError
from ..typography import french, french_html

#: The package and folder the shipped templates are loaded from (``PackageLoader``).
PACKAGE = "syndicate"
PACKAGE_FOLDER = "templates"

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


def _autoescape(name: str | None) -> bool:
    # Everything is HTML or MJML except plain text and style sheets (HTML entities
    # mean nothing inside <style>).
    return not (name or "").endswith((".txt.j2", ".txt", ".css.j2", ".css"))


@lru_cache(maxsize=8)
def template_environment(folder: Path | None = None) -> jinja2.Environment:
    """The environment for an operator ``folder`` over the shipped templates (or those alone).

    Cached per folder, so it is built once per config and Jinja's cache of compiled
    templates is kept; ``auto_reload`` (Jinja's default) still picks up a template an
    operator edits while ``serve`` or ``run`` is up.
    """
    loaders: list[jinja2.BaseLoader] = []
    if folder is not None:
        loaders.append(jinja2.FileSystemLoader(str(folder)))
    loaders.append(jinja2.PackageLoader(PACKAGE, PACKAGE_FOLDER))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,  # a typo in a template fails loudly
        trim_blocks=True,
        lstrip_blocks=True,
        # Text templates end with the newline their author wrote (HTML callers strip).
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = wrap_text
    env.filters["underline"] = underline
    env.filters["french_date"] = french_date
    env.filters["fr"] = french_filter
    env.globals["nbsp"] = NBSP
    return env


def template_env(config: Config) -> jinja2.Environment:
    """The environment for ``config``'s ``[storage] templates`` folder (cached per folder)."""
    return template_environment(config.templates_dir)


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
    "NBSP", "PACKAGE", "PACKAGE_FOLDER", "TEXT_WIDTH", "french_date", "french_filter",
    "render_template",
    "shipped_templates", "template_env", "template_environment", "underline",
    "wrap_text",
]
