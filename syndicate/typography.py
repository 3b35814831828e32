"""French typography at render time: the no-break spaces the corpus text does not carry.

The corpus keeps plain text as written (a plain space, or none, before ``: ; ! ?``);
rendering adds what French typography wants, so a line never starts with ":" or "%":

- a narrow no-break space (U+202F, NNBSP) before ``; ! ?`` (once before a run such as
  ``?!``) and inside ``« »``;
- a no-break space (U+00A0, NBSP) before ``:`` and between a number and ``%`` or ``€``;
- an NNBSP between the groups of a number written ``12 000`` (an existing space only).

An existing space there (plain, NBSP or NNBSP, one or several) is replaced by the right
one; where there is none, one is inserted. Nothing else changes, and the pass is
idempotent (``french(french(x)) == french(x)``). Left alone: URLs (``https://…``,
``www.…``, ``mailto:…``), e-mail addresses, ``code`` in backticks, smileys, times and
ratios (``10:30``, ``1:3``), a mark glued to the next word (``a?b``, ``std::``) and a mark
starting a line.

:func:`french_html` does the same on HTML: text nodes only, never tags, attributes,
entities, nor the content of ``<code> <pre> <kbd> <samp> <script> <style> <textarea>``.
A leaf: imports nothing of syndicate.
"""

from __future__ import annotations

import html
import re

NBSP = "\u00a0"
NNBSP = "\u202f"

#: The spaces the pass replaces (never a line break or a tab: those are the author's).
_SPACES = " \u00a0\u202f"
_SPACE_RUN = f"[{_SPACES}]*"

# Spans never touched: URLs (trailing punctuation is not part of a URL, as linkifiers
# do), e-mail addresses, code in backticks, smileys.
_PROTECTED = re.compile(
    r"""
      (?:\b(?:https?|ftps?|file|mailto|tel|data|sms|urn):|\bwww\.)[^\s<>"«»]*[^\s<>"«».,;:!?)\]}'’]
    | [\w.+-]+@[\w-]+(?:\.[\w-]+)+
    | `[^`\n]*`
    | (?<!\S)[:;]-?[()\[\]DPpOo3|/\\*](?!\w)
    """,
    re.VERBOSE,
)

# A space run then a mark; the callback decides from the characters around it.
_MARK = re.compile(rf"(?P<space>{_SPACE_RUN})(?P<mark>[;!?]+|:)")
_OPEN_QUOTE = re.compile(rf"«{_SPACE_RUN}(?=[^\s{_SPACES}»])")
_CLOSE_QUOTE = re.compile(rf"(?<=[^\s{_SPACES}«]){_SPACE_RUN}»")
_UNIT = re.compile(rf"(?<=\d){_SPACE_RUN}(?=[%€])")
# ``12 000``: groups of three after one of one to three digits (not ``2024 300``).
_THOUSANDS = re.compile(rf"(?<![\d.,])(\d{{1,3}})((?:[{_SPACES}]\d{{3}})+)(?!\d)")
_THOUSANDS_GAP = re.compile(f"[{_SPACES}]")

#: What may follow a mark that is French punctuation (rather than ``a?b``, ``10:30``).
_AFTER_MARK = set(" \t\n\r\u00a0\u202f»)]}\"'’”.,…-–—")


def _mark(text: str, match: re.Match[str]) -> str:
    space, mark = match["space"], match["mark"]
    start, end = match.start(), match.end()
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    if before == "" or before in "\n\r\t":
        return match.group(0)  # a mark opening a line is not ours to move
    if not space and before in ";!?:":
        return match.group(0)  # glued to another mark (``?:``): one space per run
    if after and after not in _AFTER_MARK:
        return match.group(0)  # a?b, std::vector, 10:30, 1:3, C:\\
    return (NBSP if mark == ":" else NNBSP) + mark


def _plain(text: str) -> str:
    """The pass on text without protected spans (see :func:`french`)."""
    text = _MARK.sub(lambda m: _mark(text, m), text)
    text = _OPEN_QUOTE.sub("«" + NNBSP, text)
    text = _CLOSE_QUOTE.sub(NNBSP + "»", text)
    text = _UNIT.sub(NBSP, text)
    return _THOUSANDS.sub(lambda m: m[1] + _THOUSANDS_GAP.sub(NNBSP, m[2]), text)


def french(text: str) -> str:
    """``text`` with French no-break spaces (see the module); idempotent, spaces only."""
    if not text:
        return text
    # Protected spans are swapped for one private-use character each, so the rules see
    # the text around them (a URL followed by " !" still gets its NNBSP) but not inside.
    spans: list[str] = []

    def hide(match: re.Match[str]) -> str:
        spans.append(match.group(0))
        return "\ue000"

    if "\ue000" in text:  # never produced by corpus text; keep the pass exact anyway
        return text
    masked = _PROTECTED.sub(hide, text)
    done = _plain(masked)
    if not spans:
        return done
    pieces = iter(spans)
    return re.sub("\ue000", lambda _m: next(pieces), done)


# --------------------------------------------------------------------------- HTML

_TAG = re.compile(
    r"<!--.*?-->|<![^>]*>|<\?[^>]*>"
    r"|</?([A-Za-z][\w:-]*)(?:[^>\"']|\"[^\"]*\"|'[^']*')*>",
    re.DOTALL,
)
_RAW = frozenset({"code", "pre", "kbd", "samp", "script", "style", "textarea", "tt", "var"})


def french_html(markup: str) -> str:
    """:func:`french` on the text nodes of ``markup`` (tags and raw elements untouched).

    A text node is decoded, given its spaces, and escaped again only if it changed
    (``&``, ``<``, ``>``), so entities such as ``&nbsp;`` count as the spaces they are.
    """
    out: list[str] = []
    skip: list[str] = []  # open raw elements (code, pre, script…)
    pos = 0
    for tag in _TAG.finditer(markup):
        out.append(_text_node(markup[pos:tag.start()], raw=bool(skip)))
        out.append(tag.group(0))
        name = (tag.group(1) or "").lower()
        if name in _RAW and not tag.group(0).endswith("/>"):
            if tag.group(0).startswith("</"):
                if name in skip:
                    del skip[len(skip) - 1 - skip[::-1].index(name):]
            else:
                skip.append(name)
        pos = tag.end()
    out.append(_text_node(markup[pos:], raw=bool(skip)))
    return "".join(out)


def _text_node(segment: str, *, raw: bool) -> str:
    if raw or not segment or segment.isspace():
        return segment
    decoded = html.unescape(segment)
    typeset = french(decoded)
    if typeset == decoded:
        return segment
    return html.escape(typeset, quote=False)


__all__ = ["NBSP", "NNBSP", "french", "french_html"]
