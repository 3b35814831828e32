"""Reading a scraped page: blocks, chrome, headings, and the split into articles.

A page is plain text, one block per line. An article is a title, a one-paragraph
lede (the chapô), then sections (a heading and its paragraphs). Nothing here knows
any title: the reading is structural.

1. Each line is a *block*. Known chrome (:mod:`.chrome`) is set aside first, and so is
   the text of chrome boxes: a site box ("À propos", "Newsletter") while paragraphs
   follow it, an aside ("Le saviez-vous ?") for one paragraph, comments (names, dates,
   readers' words) until a headline or a list. A one-line "À lire aussi : <titre>" is
   chrome that opens no list.
2. A block is a *paragraph* (prose: long, or ending like a sentence) or a *short line*.
3. Only a short line directly followed by a paragraph can be a heading or a title. Of a
   run of short lines before a paragraph, the most headline-like one is kept (the others
   are widget captions, stray labels…), never one that comes back later over a paragraph
   (a table of contents); short lines that no paragraph follows are chrome, and so is a
   pull quote (a quoted line repeating words of the paragraphs around it).
   Under a "more articles" marker, short lines and teasers are other articles' titles:
   the last one is kept only if a full paragraph follows it, and only as a title (else
   its paragraphs continue the section the list interrupted, or are chrome too when
   nothing of the article follows them).
4. That gives *groups*: a heading and the paragraphs under it. A group is either an
   article's title and chapô or a section. The split into articles is the one that
   maximises a score (dynamic programming over the groups): each article start earns the
   log-odds that its group is a title and chapô (see :func:`title_odds`: no company story,
   words that come back after it, a byline under it…), and each article pays for having
   very few sections, or many more than this site's four to six.
5. A chapô of two paragraphs is kept whole as the lede, its paragraphs joined by a space:
   the corpus format has one lede paragraph, and a reader expects all of the chapô
   before the first heading, in its order.
6. Pages of other sites (issue 12): an article may have no heading at all (its first
   paragraph is the lede, the others one untitled section; the split may make such an
   article of a single group, see :func:`_sectionless_cost`, helped by the chrome that
   separates two posts of a listing: "Read more »", "Posted on…"); list items are
   paragraphs of their section; a line repeating a sentence of a paragraph near it is a
   pull quote, with or without quote marks; of a run of short lines the title is not a
   label, nor the site's name at the top of the page, nor a longer subtitle under it.
7. A scene break between paragraphs ("* * *", "***", "—", "⁂", a line of dashes) is no
   text, but it is not dropped either: the text is cut there into untitled sections (the
   corpus writes one as a bare ``##`` line), so that a heading-less page keeps its
   stretches apart instead of running them together. The breaks do not weigh in the split
   into articles.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..corpus import Section
from ..text import french_stem
from .chrome import box_kind, chrome_reason, is_inline_list, is_list_marker
from .companies import GENERIC, has_company_story, mentions


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line number in the page
    text: str


@dataclass(frozen=True)
class Skipped:
    """A line of the page left out of every case study, and why."""

    line: int
    reason: str
    text: str


@dataclass(frozen=True)
class ParsedArticle:
    rank: int  # 1-based position of the article on its page
    line: int  # line of its title
    title: str
    lede: str
    sections: tuple[Section, ...]


@dataclass(frozen=True)
class ParsedPage:
    articles: tuple[ParsedArticle, ...]
    skipped: tuple[Skipped, ...]


def blocks_of(text: str) -> list[Block]:
    """Non-blank lines, stripped of surrounding white space (NBSP included), in order."""
    return [
        Block(number, line.strip())
        for number, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1)
        if line.strip()
    ]


_SENTENCE_END = re.compile(r"[.!?…](?:\s*[»”\"’)\]])*$")
_FULL_STOP_END = re.compile(r"\.(?:\s*[»”\"’)\]])*$")
_INNER_SENTENCE = re.compile(r"[.!?…][»”\"’)]*\s+[«“\"]?[A-ZÀ-Ý]")
_TRUNCATED = re.compile(r"(?:…|\.\.\.|\[…\]|\[\.\.\.\])\s*$")


# Only questions or exclamations, no full stop: "Faut-il lever ? Et quand ?"
_QUESTIONS = re.compile(r"^[^.…]*[?!](?:\s*[»”\"’)])*$")


def word_count(text: str) -> int:
    return len(text.split())


def is_paragraph(text: str) -> bool:
    """Prose rather than a headline: long, or a sentence ending with a full stop, or
    several sentences. Headlines may end with "?", "!" or "…", never with a full stop."""
    words = word_count(text)
    if words >= 30:
        return True
    if _QUESTIONS.match(text):  # "Faut-il recruter ? Et à quel moment ?": a headline
        return False
    if words >= 5 and _FULL_STOP_END.search(text) and not _TRUNCATED.search(text):
        return True
    return words >= 8 and bool(_INNER_SENTENCE.search(text)) and bool(_SENTENCE_END.search(text))


def _is_full_paragraph(text: str) -> bool:
    """A paragraph that is not a teaser (teasers under "Derniers articles" are short or cut)."""
    return is_paragraph(text) and word_count(text) >= 40 and not _TRUNCATED.search(text)


_COMMENTER = re.compile(
    r"^(?:[A-ZÀ-Ý@][\w’'.@-]*|[a-z][\w.-]*\d[\w.-]*)(?:\s+[A-ZÀ-Ý][\w’'.-]*){0,2}"
    r"(?:\s+(?:dit|a dit|a écrit|says)\s*:?)?$")


def _commenter(text: str) -> bool:
    """A commenter's name: "Marc D.", "Sophie Lambert dit :", "jdupont75"."""
    return bool(_COMMENTER.match(text))


def _caption_like(text: str) -> bool:
    """A label rather than a headline: one or two words ("Entrepreneuriat", "Notre
    sélection"), ending with ":", or a short question ("Le saviez-vous ?"). A headline
    may end with "?" or "!" and be written in capitals: those are no evidence."""
    words = word_count(text)
    return words < 3 or text.endswith(":") or (words < 4 and text.endswith("?"))


# A list item: "1) …", "2. …", "- …", "• …" (kept verbatim as a paragraph of its section).
_LIST_ITEM = re.compile(r"^(?:\d{1,2}[).]|[a-z][)]|[-–—•·▪◦*➢→✓✔])\s+\S")


def is_list_item(text: str) -> bool:
    return bool(_LIST_ITEM.match(text))


@dataclass(frozen=True)
class _Line:
    """A line of a run of short lines, as a candidate header: its place in the run, and
    whether it is the first text line of the page (a site name or a masthead)."""

    block: Block
    index: int
    page_top: bool


def _header_reason(line: _Line, run: Sequence[_Line], header: _Line) -> str:
    """Why a line of a run is not its header (what ``-v`` prints)."""
    if _caption_like(line.block.text):
        return "label"
    if line.page_top and line.index < header.index:
        return "site name"
    if line.index > header.index:
        return "subtitle"
    return "caption"


def _headline_score(line: _Line, run: Sequence[_Line]) -> float:
    """How much a short line of a run looks like its title (or heading). A label is no
    title; the first line of the page over a title is the site's name; a longer line
    right under a headline is its subtitle (a standfirst without a full stop); else the
    longer line wins (captions and widget names are shorter than headlines)."""
    text = line.block.text
    score = float(min(len(text), 100))
    if _caption_like(text):
        score -= 100
    if line.page_top and word_count(text) <= 5 and any(
            word_count(other.block.text) > word_count(text) for other in run[line.index + 1:]
            if not _caption_like(other.block.text)):
        score -= 60
    previous = [other for other in run[: line.index]
                if not _caption_like(other.block.text) and not other.page_top]
    if previous and len(text) > len(previous[-1].block.text) and word_count(text) >= 5:
        score -= 60
    return score


# Chrome the site prints under an article's title, never under a section heading.
_ARTICLE_META = frozenset({"byline", "date", "reading time", "share"})
# Chrome between two posts of a listing page, right before the next one's title.
_BREAK_BEFORE = frozenset({"byline", "date", "read more", "navigation", "pagination"})


@dataclass
class _Group:
    """The paragraphs under a run of short lines. The header (title or section heading)
    is the most headline-like line of the run: the others are captions, labels or bylines,
    which are shorter than the headlines of this kind of site. Lines of the run that come
    back later over a paragraph are a table of contents, never the header."""

    run: list[Block]
    paragraphs: list[Block]
    from_list: bool = False  # the run is the last line under a "more articles" marker
    meta: tuple[str, ...] = ()  # reasons of the chrome between the run and the paragraph
    listed: frozenset[int] = frozenset()  # lines of the run repeated later (contents)
    before: tuple[str, ...] = ()  # reasons of the chrome right before the run
    page_top: int = 0  # line number of the page's first text line
    # scene breaks ("* * *") among the paragraphs: a break before paragraphs[i] is i
    breaks: list[int] = field(default_factory=list)

    def lines(self) -> list[_Line]:
        run = [block for block in self.run if block.line not in self.listed] or self.run[-1:]
        return [_Line(block, index, block.line == self.page_top)
                for index, block in enumerate(run)]

    @property
    def header(self) -> Block:
        run = self.lines()
        best = run[-1]
        for line in run:  # ties go to the later line
            if _headline_score(line, run) > _headline_score(best, run):
                best = line
        return best.block

    def reason(self, block: Block) -> str:
        """Why a line of the run other than the header is left out."""
        if block.line in self.listed:
            return "table of contents"
        run = self.lines()
        header = next(line for line in run if line.block is self.header)
        line = next((line for line in run if line.block is block), None)
        return _header_reason(line, run, header) if line is not None else "caption"


class _Reader:
    """Turns blocks into groups, collecting what it skips (steps 1 to 3 above)."""

    def __init__(self) -> None:
        self.groups: list[_Group] = []
        self.skipped: list[Skipped] = []
        self.pending: list[Block] = []  # short lines waiting for a paragraph
        self.meta: list[str] = []  # reasons of the chrome met since the pending lines
        self.before: list[str] = []  # reasons of the chrome met since the last text
        self.page_top = 0  # the first text line of the page
        self.listing: list[Block] | None = None  # lines under a "more articles" marker
        # under "À propos", "Le saviez-vous ?", "Commentaires"...: its text is chrome too
        # (see chrome.box_kind for how far each kind of box goes)
        self.box: str | None = None

    def skip(self, block: Block, reason: str) -> None:
        self.skipped.append(Skipped(block.line, reason, block.text))

    def feed(self, block: Block) -> None:
        reason = chrome_reason(block.text)
        paragraph = is_paragraph(block.text)
        if self.box == "comments":
            # readers' names, dates and words; a headline (the next article's title, a
            # section heading when the box was a mere link) or a list ends the box
            if reason or paragraph or _commenter(block.text):
                self.skip(block, reason or "comments")
                if reason:
                    self.before.append(reason)
                return
            self.box = None
        if reason:
            self.skip(block, reason)
            if reason == "break" and not self.pending and self.groups and self.listing is None:
                self.groups[-1].breaks.append(len(self.groups[-1].paragraphs))
            if self.pending:
                self.meta.append(reason)
            else:
                self.before.append(reason)
            kind = box_kind(block.text)
            # a box heading right under a title or heading is a mere caption, and
            # comments only come after some article text
            if (kind and not self.pending and self.listing is None
                    and (kind != "comments" or self.groups)):
                self.box = kind
            return
        if self.box and paragraph:
            self.skip(block, "box text")
            if self.box == "aside":
                self.box = None
            return
        self.box = None
        self.page_top = self.page_top or block.line
        if is_list_item(block.text) and self.listing is None:
            self._list_item(block)
        elif is_inline_list(block.text):
            self.skip(block, "more-articles list")
        elif is_list_marker(block.text):
            self.skip(block, "more-articles list")
            self._close_listing()
            self.listing = []
        elif self.listing is not None and not _is_full_paragraph(block.text):
            self.listing.append(block)
        elif not paragraph:
            self.pending.append(block)
        else:
            self._paragraph(block)

    def _close_listing(self, keep_last: bool = False) -> Block | None:
        """End the list: skip its lines, except (``keep_last``) the title of the article
        whose lede has just come."""
        items, self.listing = self.listing or [], None
        kept = None
        if keep_last and items:
            last = items[-1]
            if _caption_like(last.text) and len(items) > 1:
                last = items[-2]  # "T1 / T2 / Titre / Le saviez-vous ?"
            if not is_paragraph(last.text):
                kept = last
                items.remove(last)
        for item in items:
            self.skip(item, "more-articles list")
        return kept

    def _list_item(self, block: Block) -> None:
        """A list item is a paragraph of its section; a short line ending with ":" right
        before it introduces the list ("Les erreurs les plus fréquentes :"), text too."""
        if self.pending and self.pending[-1].text.endswith(":"):
            intro = self.pending.pop()
            if self.pending or self.groups:
                self._paragraph(intro)
            else:
                self.skip(intro, "text before the first title")
        if self.pending or self.groups:
            self._paragraph(block)
        else:
            self.skip(block, "text before the first title")

    def _paragraph(self, block: Block) -> None:
        run, from_list, meta = self.pending, False, tuple(self.meta)
        before = tuple(self.before)
        self.pending, self.meta, self.before = [], [], []
        if self.listing is not None:
            # A title left before the marker ("Titre / À lire / chapô") wins over the list.
            kept = self._close_listing(keep_last=not run)
            if not run and kept is not None:
                run, from_list = [kept], True
        if run:
            self.groups.append(_Group(run, [block], from_list, meta, before=before,
                                      page_top=self.page_top))
        elif self.groups:
            self.groups[-1].paragraphs.append(block)
        else:
            self.skip(block, "text before the first title")

    def finish(self) -> None:
        self._close_listing()
        for block in self.pending:
            self.skip(block, "line without text under it")
        self.pending = []


# --------------------------------------------------------------------------- splitting


_STOP_STEMS = frozenset(
    [
        "entrepris", "équip", "dirig", "fait", "plus", "cet", "cett", "comm", "entre", "aussi",
        "tout", "mêm", "autr", "leur", "dont", "être", "avoir", "sans", "sous", "non", "pas"
    ]
)


def _bag(texts: Sequence[str]) -> Counter[str]:
    stems = (french_stem(w.lower()) for text in texts for w in re.findall(r"[^\W\d_]{4,}", text))
    return Counter(s for s in stems if s not in _STOP_STEMS)


def _cosine(a: Counter[str], b: Counter[str]) -> float:
    if not a or not b:
        return 0.0
    dot = sum(count * b[word] for word, count in a.items() if word in b)
    return dot / math.sqrt(sum(v * v for v in a.values()) * sum(v * v for v in b.values()))


def _group_texts(group: _Group) -> list[str]:
    return [group.header.text] + [p.text for p in group.paragraphs]


# A paragraph that goes on with what precedes, a demonstrative in its first words: "Ce
# choix…", "Cette contrainte…", "Dans plusieurs de ces cas…", "Derrière ces décisions…".
# A chapô opens a subject; it points back at nothing.
_ANAPHORA = re.compile(r"^(?:[^.,;:]{0,30}\s)?(?:ce|cet|cette|ces)\s+"
                       r"(?!(?:que|qui|dont)\b|qu[’'])\w", re.IGNORECASE)


def _names(texts: Sequence[str]) -> set[str]:
    """Proper names cited inside sentences (not generic acronyms such as IA or RH)."""
    return {m.name for text in texts for m in mentions(text)
            if not m.sentence_start and m.name not in GENERIC and not m.name.isupper()}


def title_odds(groups: Sequence[_Group], index: int,
               bags: Sequence[Counter[str]] | None = None) -> float:
    """Log-odds-like score that a group starts an article: its header is a title and its
    paragraphs the chapô. Evidence, each a few points at most:

    * a chapô tells no company's story and names no company: it sets the scene;
    * it announces what follows: its words come back in the next sections more than in
      the previous ones, and it does not go on with the group before ("Ce choix…", the
      same company);
    * the site prints a byline, a date or a caption under a title, not under a heading;
    * a colon in a headline is the site's way with titles;
    * a chapô is one paragraph more often than a section is (most sections have two).

    The length of the headline is no evidence: titles of 30 characters and headings of
    80 both occur."""
    group = groups[index]
    title, lede = group.header.text, group.paragraphs[0].text
    chapo = [p.text for p in group.paragraphs]
    score = -0.5 - 1.0 * (len(chapo) - 1)
    if re.search(r"\s:\s", title):
        score += 0.5
    score += -2.5 if any(has_company_story(p) for p in chapo) else 1.0
    if _names(chapo):
        score -= 1.0
    if _ANAPHORA.match(lede):
        score -= 1.5
    if index > 0 and _names([lede]) & _names([p.text for p in groups[index - 1].paragraphs]):
        score -= 1.5
    if any(reason in _ARTICLE_META for reason in group.meta):
        score += 2.5
    elif group.meta:
        score += 1.0
    if group.from_list:  # a title under "Derniers articles" right before a lede
        score += 1.5
    if any(reason in _BREAK_BEFORE for reason in group.before):
        # "Read more »", "Posted on … by …", "Lire la suite", a comment count: a listing
        # page's break between two posts
        score += 2.5
    # A lede announces what follows; a one-paragraph section goes on with what precedes.
    if bags is None:
        bags = [_bag(_group_texts(g)) for g in groups]
    own = bags[index]
    before = sum(bags[max(0, index - 3): index], Counter())
    after = sum(bags[index + 1: index + 4], Counter())
    if before and after:
        score += 8.0 * (_cosine(own, after) - _cosine(own, before))
    return score


def _size_cost(sections: int) -> float:
    """Articles of this site have four to six sections: fewer is rare, many more means
    two articles read as one. An article without any heading (its title and its text
    only) is common on other sites, but a section mistaken for one is the usual error."""
    return {1: 1.0, 2: 0.5, 3: 0.2}.get(sections, 0.3 * max(0, sections - 7))


def _sectionless_cost(paragraphs: int) -> float:
    """An article without any heading: a title over its text only. Common on other sites,
    but a section heading mistaken for a title is the usual error; a long text under one
    headline (three paragraphs or more: this site's sections have one or two) is evidence."""
    return max(0.0, 3.0 - 1.5 * (paragraphs - 1))


def split_articles(groups: Sequence[_Group]) -> list[int]:
    """Indices of the groups that start an article (the first group always does)."""
    n = len(groups)
    candidates = list(range(1, n))
    bags = [_bag(_group_texts(g)) for g in groups]
    odds = {i: title_odds(groups, i, bags) for i in candidates}
    # best[i]: best score of a split of groups[:i] into whole articles, with an article
    # starting at i; back[i]: where the article before it started.
    starts = [0, *candidates]
    best: dict[int, float] = {0: 0.0}
    back: dict[int, int] = {}
    for i in [*candidates, n]:
        options = [
            (best[s] - (_size_cost(i - s - 1) if i - s >= 2
                        else _sectionless_cost(len(groups[s].paragraphs)))
             + (odds[i] if i < n else 0.0), s)
            for s in starts
            if s in best and s < i and (i - s >= 2 or len(groups[s].paragraphs) >= 2)
        ]
        if options:
            best[i], back[i] = max(options)
    if n not in best:
        return [0]
    chain = [n]
    while chain[-1] != 0:
        chain.append(back[chain[-1]])
    return sorted(chain[1:])


def _mark_contents(groups: Sequence[_Group]) -> None:
    """A short line that comes back later over a paragraph is an entry of a table of
    contents ("Sommaire" and the headings, the last one right over its paragraph)."""
    last_seen: dict[str, int] = {}
    for group in groups:
        for block in group.run:
            last_seen[block.text] = block.line
    for group in groups:
        group.listed = frozenset(b.line for b in group.run if last_seen[b.text] > b.line)


_QUOTED = re.compile(r"^[«“\"]\s*(?P<inner>.+?)\s*[»”\"]$")


def _plain(text: str) -> str:
    return " ".join(text.split())  # NBSP and narrow NBSP are white space too


def _pull_quote(group: _Group, before: _Group) -> bool:
    """A quoted line set between two paragraphs, repeating words of a paragraph next to it
    ("« Le bureau doit redevenir… »"): decoration, not a heading."""
    match = _QUOTED.match(group.header.text)
    if match is None or word_count(match["inner"]) < 4:
        return False
    inner = _plain(match["inner"])
    return any(inner in _plain(p.text) for p in [*before.paragraphs, *group.paragraphs])


def _merge_pull_quotes(groups: list[_Group], skipped: list[Skipped]) -> list[_Group]:
    """Groups headed by a pull quote go on with the group before them."""
    merged: list[_Group] = []
    for group in groups:
        if merged and _pull_quote(group, merged[-1]):
            skipped.extend(Skipped(b.line, "pull quote" if b is group.header else "caption",
                                   b.text) for b in group.run)
            merged[-1].breaks.extend(len(merged[-1].paragraphs) + i for i in group.breaks)
            merged[-1].paragraphs.extend(group.paragraphs)
        else:
            merged.append(group)
    return merged


_QUOTE_CHARS = "«»“”\"„‹›'’ \u00a0\u202f"


def _echo_key(text: str) -> str:
    """A short line as it would read inside a paragraph: no quote marks, no final stop."""
    return _plain(text.strip(_QUOTE_CHARS).rstrip(".…!?;:,").strip(_QUOTE_CHARS))


def _pull_quotes(blocks: Sequence[Block]) -> set[int]:
    """Lines of the page that repeat words of a paragraph near them, with or without quote
    marks ("Un bon directeur financier ne fait pas que compter, il aide à décider."): a pull
    quote, set in large type between paragraphs. Six words at least, so that a heading
    echoed by its text is not one."""
    found: set[int] = set()
    for index, block in enumerate(blocks):
        key = _echo_key(block.text)
        if word_count(key) < 6 or word_count(block.text) > 40 or is_list_item(block.text):
            continue
        near = [*blocks[max(0, index - 4): index], *blocks[index + 1: index + 5]]
        if any(len(other.text) > len(block.text) + 10 and key in _plain(other.text)
               and chrome_reason(other.text) is None and is_paragraph(other.text)
               for other in near):
            found.add(block.line)
    return found


def cut_at_breaks(paragraphs: Sequence[str], breaks: Sequence[int]) -> list[tuple[str, ...]]:
    """The paragraphs in stretches, cut before each index of ``breaks`` (a break before the
    first paragraph, after the last one or next to another break cuts nothing)."""
    cuts = sorted({i for i in breaks if 0 < i < len(paragraphs)})
    bounds = [0, *cuts, len(paragraphs)]
    return [tuple(paragraphs[a:b]) for a, b in itertools.pairwise(bounds)]


def _sections_of(heading: str, group: _Group) -> list[Section]:
    """A group's section, and an untitled section after each break in it."""
    stretches = cut_at_breaks([p.text for p in group.paragraphs], group.breaks)
    return [Section(heading if index == 0 else "", stretch)
            for index, stretch in enumerate(stretches)]


def parse_page(text: str) -> ParsedPage:
    """Read a page into articles and the lines left out."""
    reader = _Reader()
    page_blocks = blocks_of(text)
    quotes = _pull_quotes(page_blocks)
    for block in page_blocks:
        if block.line in quotes:
            reader.skip(block, "pull quote")
            continue
        reader.feed(block)
    reader.finish()
    skipped = list(reader.skipped)
    _mark_contents(reader.groups)
    groups = _merge_pull_quotes(reader.groups, skipped)
    articles: list[ParsedArticle] = []

    def keep(group: _Group, header: Block) -> None:
        """Skip the lines of the group's run that are not its header."""
        skipped.extend(Skipped(b.line, group.reason(b), b.text)
                       for b in group.run if b is not header)

    if groups:
        starts = split_articles(groups) if len(groups) >= 2 else [0]
        bounds = [*starts, len(groups)]
        for start, end in itertools.pairwise(bounds):
            head = groups[start]
            title = head.header
            keep(head, title)
            sections: list[Section] = []
            for index in range(start + 1, end):
                group = groups[index]
                paragraphs = tuple(p.text for p in group.paragraphs)
                if group.from_list and index == end - 1 and index > start + 1:
                    # the text after a list that ends the article is more chrome (a teaser,
                    # an "about us" box), not this article's
                    skipped.extend(Skipped(b.line, "more-articles list", b.text)
                                   for b in [*group.run, *group.paragraphs])
                    continue
                if group.from_list and sections:
                    # a listed title that starts no article is chrome: its paragraphs go on
                    # with the section the list interrupted
                    skipped.extend(Skipped(b.line, "more-articles list", b.text)
                                   for b in group.run)
                    last = sections[-1]
                    sections[-1] = Section(last.heading, last.paragraphs + paragraphs)
                    continue
                heading = group.header
                keep(group, heading)
                sections.extend(_sections_of(heading.text, group))
            chapo = [p.text for p in head.paragraphs]
            if not sections:
                if len(chapo) < 2:  # a title and one paragraph: a teaser, not an article
                    skipped.extend(Skipped(b.line, "no article structure", b.text)
                                   for b in [title, *head.paragraphs])
                    continue
                # no heading on the page: the first paragraph is the lede, the others one
                # untitled section, in order, or several where scene breaks cut the text
                stretches = cut_at_breaks(chapo[1:], [i - 1 for i in head.breaks])
                articles.append(ParsedArticle(len(articles) + 1, title.line, title.text,
                                              chapo[0],
                                              tuple(Section("", s) for s in stretches)))
                continue
            # a chapô of several paragraphs is the lede, whole (the corpus has room for
            # one lede paragraph; moving the rest under the first heading would misplace it)
            articles.append(ParsedArticle(len(articles) + 1, title.line, title.text,
                                          " ".join(chapo), tuple(sections)))
    skipped.sort(key=lambda s: s.line)
    return ParsedPage(tuple(articles), tuple(skipped))
