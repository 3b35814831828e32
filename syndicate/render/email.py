"""The email digest: Jinja2 -> MJML -> HTML (mjml-python), plus a plain-text part.

An edition is rendered **once**; what differs per subscriber (the unsubscribe
URL, the name) is left as placeholders that :meth:`RenderedEmail.personalize`
fills by plain string substitution, so a fan-out to thousands costs no MJML.
The placeholders carry a random nonce drawn per render: corpus text cannot
contain them by accident or on purpose (it is escaped, and it cannot guess the
nonce), so a case study can never forge an unsubscribe link.

Corpus text only ever enters templates as *data* (autoescaped in HTML/MJML,
verbatim in text): ``<script>`` or ``{{ }}`` in a case study shows as text.

Templates are rendered through the one environment of :mod:`syndicate.render.templates`
(shared with the feed item, the archive pages and the web app).
"""

from __future__ import annotations

import html as html_lib
import json
import logging
import re
import secrets
from dataclasses import asdict, dataclass

from mjml import mjml2html

from ..config import Config
from ..errors import RenderError
from ..typography import french
from .model import EditionView
from .templates import (
    NBSP,
    TEXT_WIDTH,
    french_date,
    render_template,
    template_env,
    underline,
    wrap_text,
)
from .urls import asset_url, feed_url

log = logging.getLogger("syndicate.render.email")

#: Gmail clips messages whose HTML is larger than about 102 KB (and hides the footer,
#: unsubscribe link included); past this, a "full" email falls back to the summary.
HTML_LIMIT = 102 * 1024
PREHEADER_LENGTH = 200
#: The standfirst (the lede's first sentences, in a slightly larger roman) stops adding
#: sentences past this many characters; the rest of the lede is a normal paragraph.
STANDFIRST_LENGTH = 240

EMAIL_MJML = "email.mjml.j2"
EMAIL_TEXT = "email.txt.j2"

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
# A sentence ends at . ! ? … followed by a space and a capital (or an opening quote),
# but not after an initial such as "M." or "J.".
_SENTENCE_END = re.compile(r"(?<=[.!?…])(?<!\b[A-Z]\.)\s+(?=[«\"“A-ZÀ-ÖØ-Ý])")


# --------------------------------------------------------------------------- the email


@dataclass(frozen=True)
class RenderedEmail:
    """An edition's email, rendered once, with per-subscriber placeholders.

    ``unsubscribe_placeholder`` and ``name_placeholder`` are random per render and
    appear in ``html`` and ``text`` where :meth:`personalize` puts the subscriber's
    unsubscribe URL and name.
    """

    subject: str
    html: str
    text: str
    preheader: str
    unsubscribe_placeholder: str = ""
    name_placeholder: str = ""

    def personalize(self, unsubscribe_url: str, name: str | None = None) -> tuple[str, str]:
        """(html, text) for one subscriber, by string substitution (no re-rendering).

        The name appears after "Bonjour" (``Bonjour Marie,``; ``Bonjour,`` without one).
        """
        clean = clean_name(name)
        spoken = f" {clean}" if clean else ""
        html = self.html
        text = self.text
        if self.unsubscribe_placeholder:
            html = html.replace(self.unsubscribe_placeholder,
                                html_lib.escape(unsubscribe_url, quote=True))
            text = text.replace(self.unsubscribe_placeholder, unsubscribe_url)
        if self.name_placeholder:
            html = html.replace(self.name_placeholder, html_lib.escape(spoken, quote=True))
            text = text.replace(self.name_placeholder, spoken)
        return html, text

    def to_json(self) -> str:
        """Serialise (stored in the ledger, so a resumed edition sends the same email)."""
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> RenderedEmail:
        data = json.loads(raw)
        return cls(**{key: data[key] for key in data if key in cls.__dataclass_fields__})


def clean_name(name: str | None) -> str:
    """A subscriber's name fit for a greeting or a header: one line, no control characters."""
    return " ".join(_CONTROL.sub(" ", name or "").split())[:100]


def preheader_for(lede: str, limit: int = PREHEADER_LENGTH) -> str:
    """The lede, cut at a word boundary to what inbox previews show."""
    text = " ".join(lede.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:.–—\u00a0")
    return cut + "…"


def standfirst(lede: str, limit: int = STANDFIRST_LENGTH) -> tuple[str, str]:
    """(standfirst, rest): the lede's first sentences up to ``limit`` characters, the rest.

    The first sentence is always the standfirst, however long; the next ones join it
    while the whole stays within ``limit``. ``rest`` is empty for a short lede.
    """
    text = " ".join(lede.split())
    if len(text) <= limit:
        return text, ""
    head = 0
    for match in _SENTENCE_END.finditer(text):
        if head and match.start() > limit:
            break
        head = match.start()
        if head > limit:  # one long first sentence: it is the standfirst alone
            break
    if not head:
        return text, ""
    return text[:head], text[head:].lstrip()


def subject_for(view: EditionView, config: Config) -> str:
    """``[publish] subject`` with {title}, {site}, {date}, {number}; one line."""
    subject = config.publish.subject.format(
        title=view.title, site=config.site.title, date=french_date(view.published_at),
        number=view.number,
    )
    return " ".join(subject.split())


def _context(view: EditionView, config: Config, *, full: bool, unsubscribe: str, name: str,
             preheader: str) -> dict[str, object]:
    base = config.site.base_url
    head, rest = standfirst(view.case.lede)
    return {
        "site": config.site,
        "edition": view,
        "standfirst": head,
        "lede_rest": rest,
        "date": french_date(view.published_at),
        "full": full,
        "preheader": preheader,
        "unsubscribe_url": unsubscribe,
        "name": name,
        "archive_url": base,
        "feed_url": feed_url(base, "rss"),
        "wordmark": asset_url(base, config.site.wordmark) if config.site.wordmark else "",
        "wordmark_dark": (asset_url(base, config.site.wordmark_dark)
                          if config.site.wordmark and config.site.wordmark_dark else ""),
    }


_TABLE_WITHOUT_ROLE = re.compile(r"<table(?![^>]*\brole=)", re.IGNORECASE)
# MJML has no landmark attribute: the template wraps the article in an mj-wrapper of this
# class, and its <div> becomes the main landmark (role="main") here.
MAIN_CLASS = "sy-main"
_MAIN_DIV = re.compile(rf'<div(?![^>]*\brole=)(?=[^>]*\bclass="{MAIN_CLASS}")')


# MRML writes the body's aria-label (the mj-title) with Rust's escape_debug: a no-break
# space becomes the six characters "\u{a0}" and a backslash two. Undone here, so screen
# readers hear the title, not its escapes.
_ARIA_LABEL = re.compile(r'aria-label="([^"]*)"')
_RUST_ESCAPE = re.compile(r"\\(u\{([0-9a-fA-F]{1,6})\}|.)")
_RUST_SIMPLE = {"n": " ", "r": " ", "t": " ", "0": ""}  # no control character in HTML


def _unescape_debug(match: re.Match[str]) -> str:
    if match.group(2):
        char = chr(int(match.group(2), 16))
        return char if char.isprintable() or (char.isspace() and char >= " ") else ""
    return _RUST_SIMPLE.get(match.group(1), match.group(1))


def _fix_aria_label(match: re.Match[str]) -> str:
    return 'aria-label="' + _RUST_ESCAPE.sub(_unescape_debug, match.group(1)) + '"'


def mjml_to_html(source: str) -> str:
    """MJML -> HTML with MRML; every layout table gets ``role="presentation"``."""
    try:
        # fonts={}: no web-font <link> (MRML adds Google Fonts for known names such as
        # Roboto): nothing remote, nothing that tracks, system fonts only.
        html = mjml2html(source, disable_comments=True, fonts={})
    except ValueError as exc:
        raise RenderError(f"the email template does not produce valid MJML: {exc}") from None
    # MRML already marks its tables; this keeps it true for tables a template adds.
    html = _TABLE_WITHOUT_ROLE.sub('<table role="presentation"', html)
    html = _ARIA_LABEL.sub(_fix_aria_label, html)
    return _MAIN_DIV.sub('<div role="main"', html, count=1)


def render_email_mjml(view: EditionView, config: Config, *, full: bool | None = None,
                      nonce: str = "") -> str:
    """The MJML the email template produces (what the strict MJML validator checks)."""
    nonce = nonce or secrets.token_hex(8)
    if full is None:
        full = config.publish.email_content == "full"
    return render_template(
        config, EMAIL_MJML,
        **_context(view, config, full=full, unsubscribe=_unsubscribe_placeholder(nonce),
                   name=_name_placeholder(nonce), preheader=_preheader(view)),
    )


def _preheader(view: EditionView) -> str:
    # French spaces too: it is shown as text in inbox previews (and in the hidden div).
    return french(preheader_for(view.case.lede))


def _unsubscribe_placeholder(nonce: str) -> str:
    # Looks like a URL so validators accept it in href; never a real address (.invalid).
    return f"https://unsubscribe-{nonce}.invalid/"


def _name_placeholder(nonce: str) -> str:
    return f"[name-{nonce}]"


def render_email(view: EditionView, config: Config) -> RenderedEmail:
    """Render the edition's email once (HTML and text) with per-subscriber placeholders.

    With ``email_content = "full"`` an article whose HTML would pass Gmail's clipping
    limit is sent as a summary instead (the lede and a "Lire la suite" button), with a warning:
    a clipped email hides its own unsubscribe link.
    """
    nonce = secrets.token_hex(8)
    unsubscribe = _unsubscribe_placeholder(nonce)
    name = _name_placeholder(nonce)
    preheader = _preheader(view)
    full = config.publish.email_content == "full"
    html = mjml_to_html(render_email_mjml(view, config, full=full, nonce=nonce))
    if full and len(html.encode("utf-8")) > HTML_LIMIT:
        log.warning("edition #%s (%s): full email is %d bytes (> %d, Gmail clips it); "
                    "sending the summary instead", view.number, view.slug,
                    len(html.encode("utf-8")), HTML_LIMIT)
        full = False
        html = mjml_to_html(render_email_mjml(view, config, full=False, nonce=nonce))
    text = render_template(
        config, EMAIL_TEXT,
        **_context(view, config, full=full, unsubscribe=unsubscribe, name=name,
                   preheader=preheader),
    )
    text = _tidy_text(text)
    return RenderedEmail(
        subject=subject_for(view, config),
        html=html,
        text=text,
        preheader=preheader,
        unsubscribe_placeholder=unsubscribe,
        name_placeholder=name,
    )


def _tidy_text(text: str) -> str:
    """No trailing spaces (except the "-- " signature line), at most two blank lines."""
    lines = [line if line == "-- " else line.rstrip() for line in text.splitlines()]
    tidy = re.sub(r"\n{4,}", "\n\n\n", "\n".join(lines))
    return tidy.strip("\n") + "\n"


# NBSP, TEXT_WIDTH, the filters, render_template and template_env are re-exported: they
# lived here before the one environment (syndicate.render.templates) and are imported so.
__all__ = [
    "HTML_LIMIT", "NBSP", "TEXT_WIDTH", "RenderedEmail", "clean_name", "french_date",
    "mjml_to_html", "preheader_for", "render_email", "render_email_mjml", "render_template",
    "standfirst", "subject_for", "template_env", "underline", "wrap_text",
]
