"""The corpus: one Markdown file with YAML front matter per case study.

File layout (``corpus/<slug>.md``)::

    ---
    slug: refuser-les-levees-de-fonds
    title: "Refuser les levées de fonds : stratégie d’indépendance…"
    position: 1            # queue order: lowest unpublished position goes next
    status: ready          # ready | draft (drafts are never published)
    companies: [The Green Data, Cozy Cloud]
    themes: [financement]
    source: {page: 000_2ed753a566ed84a8.txt, position: 1}
    content_hash: sha256:…  # hash of the text as imported (see ingest)
    ---

    The lede (chapô): every paragraph before the first heading.

    ## A section heading

    A paragraph of that section.

    ##

    A paragraph of an untitled section (an article whose page had no headings).

The body is *not* Markdown-rendered: paragraphs are plain text separated by
blank lines and ``## `` starts a section. Text is kept exactly (typographic
apostrophes, non-breaking spaces…) and escaped by the renderers, so an operator
can write ``<script>`` or ``{{ }}`` and readers see it as text.
"""

from __future__ import annotations

import functools
import hashlib
import json
import marshal
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from operator import attrgetter
from pathlib import Path
from stat import S_ISREG
from typing import Any, cast

import yaml

from .errors import CorpusChanged, CorpusError
from .fs import write_atomic, write_atomic_bytes
from .text import reserved_slug

STATUSES = ("ready", "draft")
# libyaml's loader when available: the pure-Python one dominates loading a large corpus.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_FRONT = "---"


@dataclass(frozen=True)
class Section:
    heading: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class Source:
    """Where a case study was imported from: the page file and its rank on that page."""

    page: str
    position: int


class _Unloaded:
    """The body of a record from the corpus index, not read yet (one object, kept by pickle)."""

    def __reduce__(self) -> str:
        return "_UNLOADED"

    def __repr__(self) -> str:
        return "<not read yet>"


_UNLOADED: Any = _Unloaded()


class _Body:
    """A body field (``lede``, ``sections``) read from the file on first access.

    A record from the corpus index (:func:`check` with a ``cache_dir``: front matter and
    figures such as words and sections) carries no body; queue, status and listings never
    touch it, and the relatedness fingerprint uses :attr:`CaseStudy.text_digest`. Reading
    ``lede`` or ``sections`` parses the file then, once. A dataclass field whose default is a
    descriptor: ``__init__`` goes through :meth:`__set__`, and the class-level
    ``AttributeError`` means "no default".
    """

    def __set_name__(self, owner: type, name: str) -> None:
        # Kept in the instance under the field's own name (a data descriptor comes first
        # anyway), so ``vars(case)`` still reads like the dataclass's fields.
        self.name = name

    def __get__(self, instance: CaseStudy | None, owner: type | None = None) -> Any:
        if instance is None:
            raise AttributeError(self.name)
        # Missing: a record of the corpus index not filled yet (see CaseStudy.__getattr__).
        value = instance.__dict__.get(self.name, _UNLOADED)
        if value is _UNLOADED:
            instance._load_body()
            value = instance.__dict__[self.name]
        return value

    def __set__(self, instance: CaseStudy, value: Any) -> None:
        instance.__dict__[self.name] = value


@dataclass(frozen=True)
class CaseStudy:
    slug: str
    title: str
    lede: str = _Body()  # type: ignore[assignment]
    sections: tuple[Section, ...] = _Body()  # type: ignore[assignment]
    # Required all the same: _Body gives no default (mypy cannot see through descriptors).
    position: int  # type: ignore[misc]
    status: str = "ready"
    companies: tuple[str, ...] = ()
    themes: tuple[str, ...] = ()
    source: Source | None = None
    content_hash: str = ""
    path: Path | None = field(default=None, compare=False)

    @property
    def is_draft(self) -> bool:
        return self.status == "draft"

    @property
    def paragraphs(self) -> Iterator[str]:
        """Every paragraph, lede first, in reading order (headings excluded)."""
        yield self.lede
        for section in self.sections:
            yield from section.paragraphs

    @property
    def text(self) -> str:
        """Plain text of the whole article (title, lede, headings, paragraphs)."""
        parts = [self.title, self.lede]
        for section in self.sections:
            parts.append(section.heading)
            parts.extend(section.paragraphs)
        return "\n\n".join(parts)

    @cached_property
    def words(self) -> int:
        if _ROW in self.__dict__:  # a record of the corpus index: the figure is there
            return int(self._from_index("words"))
        return len(self.text.split())

    @cached_property
    def section_count(self) -> int:
        if _ROW in self.__dict__:
            return int(self._from_index("section_count"))
        return len(self.sections)

    @cached_property
    def text_digest(self) -> str:
        """A hash of :attr:`text` as it is now (unlike ``content_hash``, stored by the
        importer, which a hand edit leaves stale): the corpus index keeps it, so relatedness
        can tell an edited text without reading the others."""
        if _ROW in self.__dict__:
            return str(self._from_index("text_digest"))
        return hashlib.blake2b(self.text.encode("utf-8"), digest_size=20).hexdigest()

    # A record of the corpus index (:class:`_Table`) is born with its queue fields only
    # (``slug``, ``title``, ``position``, ``status``) and ``__dict__[_ROW] = (table, row)``:
    # the first read of another field fills all but ``path`` and the body from the index's
    # columns, ``path`` is made on its first read, the body read from the file on its first
    # access (see :class:`_Filled` and :class:`_Body`).

    def _from_index(self, name: str) -> Any:
        fields = self.__dict__
        if name in fields:
            return fields[name]
        row = fields.get(_ROW)
        if row is not None:
            if name == "path":
                fields["path"] = row[0].path_of(row[1])
            elif "companies" not in fields:
                row[0].fill(fields, row[1])
        try:
            return fields[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled whole (its body still unread if it was): never with the index's table."""
        fields = dict(self.__dict__)
        if _ROW in fields:
            self._from_index("companies")
            self._from_index("path")
            fields = dict(self.__dict__)
            del fields[_ROW]
        return fields

    def _load_body(self) -> None:
        if self.path is None:
            raise CorpusError([f"{self.slug}: no file to read the text from"])
        loaded = load_file(self.path)
        self.__dict__["lede"] = loaded.lede
        self.__dict__["sections"] = loaded.sections

    def computed_hash(self) -> str:
        return content_hash(self.title, self.lede, self.sections)


class _Filled:
    """The class attribute of a field that a record of the corpus index fills on first read.

    A non-data descriptor (``__get__`` only): an instance's own value comes first, so a
    record made by ``__init__`` or already filled reads its fields as plainly as any object
    (and the interpreter's attribute caches apply); only a record of the index not filled
    yet gets here. It replaces the default the dataclass left as the class attribute
    (``__init__`` keeps its defaults); read on the class, it gives that default still.
    """

    def __init__(self, name: str, default: Any) -> None:
        self.name = name
        self.default = default

    def __get__(self, instance: CaseStudy | None, owner: type | None = None) -> Any:
        if instance is None:
            return self.default
        return instance._from_index(self.name)


for _name in ("companies", "themes", "source", "content_hash", "path"):
    setattr(CaseStudy, _name, _Filled(_name, getattr(CaseStudy, _name)))
_ROW = "_row"  # in a record's __dict__ until it is filled from the index: (table, row)


def content_hash(title: str, lede: str, sections: Iterable[Section]) -> str:
    """A stable hash of an article's text, blind to surrounding whitespace only."""
    payload = {
        "title": title.strip(),
        "lede": lede.strip(),
        "sections": [[s.heading.strip(), [p.strip() for p in s.paragraphs]] for s in sections],
    }
    blob = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- writing


def dumps(case: CaseStudy) -> str:
    """Serialise a case study to the corpus file format."""
    meta: dict[str, Any] = {
        "slug": case.slug,
        "title": case.title,
        "position": case.position,
        "status": case.status,
        "companies": list(case.companies),
        "themes": list(case.themes),
    }
    if case.source is not None:
        meta["source"] = {"page": case.source.page, "position": case.source.position}
    meta["content_hash"] = case.content_hash or case.computed_hash()
    front = yaml.safe_dump(
        meta, allow_unicode=True, sort_keys=False, width=100, default_flow_style=None
    )
    body = [case.lede.strip(), ""]
    for section in case.sections:
        # an untitled section (a page without headings) is a bare "##" line
        body += [f"## {section.heading.strip()}".rstrip(), ""]
        for paragraph in section.paragraphs:
            body += [paragraph.strip(), ""]
    return f"{_FRONT}\n{front}{_FRONT}\n\n" + "\n".join(body).rstrip("\n") + "\n"


def save(case: CaseStudy, directory: Path) -> Path:
    path = case.path or directory / f"{case.slug}.md"
    write_atomic(path, dumps(case))
    return path


# --------------------------------------------------------------------------- reading


@dataclass
class _Problems:
    """Collects ``file:line: what`` problems while parsing one file."""

    path: Path
    items: list[str] = field(default_factory=list)

    def add(self, line: int, what: str) -> None:
        self.items.append(f"{self.path}:{line}: {what}")


def _key_lines(front: str, offset: int) -> dict[str, int]:
    """Line number (1-based, in the file) of each top-level front-matter key."""
    lines: dict[str, int] = {}
    try:
        node = yaml.compose(front, Loader=_Loader)
    except yaml.YAMLError:
        return lines
    if isinstance(node, yaml.MappingNode):
        for key, _value in node.value:
            lines[str(key.value)] = key.start_mark.line + 1 + offset
    return lines


def _parse(path: Path, raw: bytes, problems: _Problems) -> CaseStudy | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.add(line, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})")
        return None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        problems.add(1, "empty file (expected front matter between '---' lines, then the text)")
        return None
    lines = text.split("\n")
    if lines[0].rstrip() != _FRONT:
        problems.add(1, "missing front matter: the file must start with a '---' line")
        return None
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].rstrip() == _FRONT)
    except StopIteration:
        problems.add(1, "front matter is not closed: no second '---' line")
        return None
    front = "\n".join(lines[1:end])
    try:
        meta = yaml.load(front, Loader=_Loader)  # a safe loader (CSafeLoader or SafeLoader)
    except yaml.YAMLError:
        meta = None
    try:
        if meta is None:  # or an error: the pure-Python loader points at the right line
            meta = yaml.safe_load(front)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 2
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        problems.add(line, f"front matter is not valid YAML: {reason}")
        return None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        problems.add(2, "front matter must be a mapping of keys to values")
        return None
    key_lines: dict[str, int] = {}

    def line_of(key: str) -> int:
        # Only a file with a problem needs line numbers: parse the YAML a second time then.
        if not key_lines:
            key_lines.update(_key_lines(front, offset=1) or {"": 0})
        return key_lines.get(key, 1)

    known = {"slug", "title", "position", "status", "companies", "themes", "source", "content_hash"}
    for key in meta:
        if key not in known:
            problems.add(
                line_of(str(key)), f"unknown key {key!r} (known: {', '.join(sorted(known))})"
            )

    def text_field(key: str, required: bool = True) -> str:
        value = meta.get(key)
        if value is None:
            if required:
                problems.add(1, f"missing required key {key!r}")
            return ""
        if not isinstance(value, str) or not value.strip():
            problems.add(line_of(key), f"{key!r} must be a non-empty string, got {value!r}")
            return ""
        return value.strip()

    slug = text_field("slug")
    if slug and not SLUG_RE.match(slug):
        problems.add(line_of("slug"), f"'slug' must be lowercase words joined by '-', got {slug!r}")
    elif slug and reserved_slug(slug):
        problems.add(line_of("slug"), f"'slug' {slug!r} is a reserved name (an archive folder or "
                                      f"a web route would collide with it): choose another")
    title = text_field("title")
    position = meta.get("position")
    if position is None:
        problems.add(1, "missing required key 'position'")
        position = 0
    elif isinstance(position, bool) or not isinstance(position, int) or position < 0:
        problems.add(
            line_of("position"), f"'position' must be a whole number >= 0, got {position!r}"
        )
        position = 0
    status = meta.get("status", "ready")
    if status not in STATUSES:
        problems.add(
            line_of("status"), f"'status' must be one of {', '.join(STATUSES)}, got {status!r}"
        )
        status = "ready"

    def list_field(key: str) -> tuple[str, ...]:
        value = meta.get(key, [])
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            problems.add(
                line_of(key), f"{key!r} must be a list of non-empty strings, got {value!r}"
            )
            return ()
        return tuple(v.strip() for v in value)

    companies = list_field("companies")
    themes = list_field("themes")
    source = None
    raw_source = meta.get("source")
    if raw_source is not None:
        if (
            isinstance(raw_source, dict)
            and isinstance(raw_source.get("page"), str)
            and isinstance(raw_source.get("position"), int)
            and set(raw_source) <= {"page", "position"}
        ):
            source = Source(raw_source["page"], raw_source["position"])
        else:
            problems.add(
                line_of("source"),
                f"'source' must be {{page: <file>, position: <n>}}, got {raw_source!r}",
            )
    stored_hash = meta.get("content_hash", "")
    if not isinstance(stored_hash, str):
        problems.add(
            line_of("content_hash"), f"'content_hash' must be a string, got {stored_hash!r}"
        )
        stored_hash = ""

    lede, sections = _parse_body(lines, end + 1, problems)
    if problems.items:
        return None
    return CaseStudy(
        slug=slug,
        title=title,
        lede=lede,
        sections=sections,
        position=position,
        status=status,
        companies=companies,
        themes=themes,
        source=source,
        content_hash=stored_hash,
        path=path,
    )


def _parse_body(
    lines: list[str], start: int, problems: _Problems
) -> tuple[str, tuple[Section, ...]]:
    """Split the body into the lede and sections; paragraphs are blank-line separated."""
    lede: list[str] = []
    sections: list[tuple[str, int, list[str]]] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            paragraph = " ".join(part.strip() for part in current)
            (sections[-1][2] if sections else lede).append(paragraph)
            current.clear()

    for index in range(start, len(lines)):
        line = lines[index]
        if line.startswith("## ") or line.rstrip() == "##":
            flush()
            # "##" alone: an untitled section (the body of an article without headings)
            sections.append((line[3:].strip(), index + 1, []))
        elif line.startswith("#"):
            flush()
            problems.add(
                index + 1,
                "only '## ' headings are allowed in the body (the title lives in the front matter)",
            )
        elif not line.strip():
            flush()
        else:
            current.append(line)
    flush()
    if not lede:
        problems.add(start + 1, "missing lede: the body must start with a paragraph")
    elif len(lede) > 1:
        problems.add(start + 1, f"the lede must be one paragraph, found {len(lede)}")
    if not sections:
        problems.add(start + 1, "no sections: expected at least one '## heading' with paragraphs")
    for heading, line_no, paragraphs in sections:
        if not paragraphs:
            problems.add(line_no, f"section {heading!r} has no paragraph")
    return (
        lede[0] if lede else "",
        tuple(Section(h, tuple(p)) for h, _line, p in sections),
    )


def load_file(path: Path) -> CaseStudy:
    """Read one corpus file; raise :class:`CorpusError` listing every problem."""
    problems = _Problems(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CorpusError([f"{path}:1: cannot read file: {exc.strerror}"]) from exc
    case = _parse(path, raw, problems)
    if case is None:
        raise CorpusError(problems.items)
    return case


class _Cases:
    """``Corpus.cases`` of a corpus loaded through its index: ``_UNLOADED`` until read, then
    the index's records (a listing reads the columns and never builds them). As
    :class:`_Body`, a data descriptor as a dataclass field without a default."""

    def __get__(self, instance: Corpus | None, owner: type | None = None) -> Any:
        if instance is None:
            raise AttributeError("cases")
        value = instance.__dict__["cases"]
        if value is _UNLOADED:
            table = instance._table
            assert table is not None
            value = instance.__dict__["cases"] = table.in_order()
        return value

    def __set__(self, instance: Corpus, value: Any) -> None:
        instance.__dict__["cases"] = value


@dataclass(frozen=True)
class Corpus:
    """The loaded corpus, ordered by queue position."""

    directory: Path
    # Built on first access when the corpus came through its index (see _Cases).
    cases: tuple[CaseStudy, ...] = _Cases()  # type: ignore[assignment]
    # The corpus index it was loaded through, if it was: its columns answer :meth:`values`
    # without a record.
    _table: _Table | None = field(default=None, compare=False, repr=False)

    def __iter__(self) -> Iterator[CaseStudy]:
        return iter(self.cases)

    def __len__(self) -> int:
        return len(self._table.order) if self._table is not None else len(self.cases)

    def get(self, slug: str) -> CaseStudy | None:
        return next((case for case in self.cases if case.slug == slug), None)

    def by_slug(self) -> dict[str, CaseStudy]:
        return {case.slug: case for case in self.cases}

    def values(self, *names: str) -> list[tuple[Any, ...]]:
        """The attributes ``names`` (fields, ``words``, ``section_count``, ``text_digest``)
        of every case study, in queue order: read from the corpus index's columns when the
        corpus came through it (no record filled), else from the records."""
        if self._table is not None:
            return self._table.values(names)
        return [tuple(getattr(case, name) for name in names) for case in self.cases]


def corpus_files(directory: Path) -> list[Path]:
    # Sorted by name, as strings: sorting 10,000 Path objects costs a fifth of a second.
    return [_child(directory, name) for name, _entry in _corpus_entries(directory)]


def _corpus_entries(directory: Path) -> list[tuple[str, os.DirEntry[str]]]:
    """The corpus files' names, sorted, with their directory entries (whose ``stat()`` costs
    one system call and no path object)."""
    with os.scandir(directory) as found:
        entries = [(entry.name, entry) for entry in found
                   if entry.name.endswith(".md") and not entry.name.startswith(".")
                   and entry.is_file()]
    entries.sort(key=lambda pair: pair[0])
    return entries


def _child(directory: Path, name: str) -> Path:
    """``directory / name`` for a plain file name, without parsing it again: pathlib's own
    shortcut when there is one (a tenth of the cost at 10,000 files), else the operator."""
    make = getattr(directory, "_make_child_relpath", None)
    if make is not None:
        child = make(name)
        if isinstance(child, Path):
            return child
    return directory / name


def check(
    directory: Path, *, cache_dir: Path | None = None
) -> tuple[list[CaseStudy], list[str]]:
    """Validate every file; return the readable case studies and all problems found.

    With ``cache_dir``, through the corpus index kept there (:class:`_Table`): a file whose
    size and mtime (or, if those moved, whose bytes) are unchanged is not parsed again, and
    its case study is a record of the index (filled from it on first use, its body read from
    the file on first access). The result is the same either way.
    """
    if not directory.is_dir():
        return [], [f"{directory}:1: corpus directory does not exist"]
    if cache_dir is not None:
        table, found = _Table.scan(directory, cache_dir)
        return table.by_name(), found
    cases: list[CaseStudy] = []
    problems: list[str] = []
    for path in corpus_files(directory):
        try:
            cases.append(load_file(path))
        except CorpusError as exc:
            problems.extend(exc.problems)
    problems.extend(_cross_file_problems(cases))
    return cases, problems


def _cross_file_problems(cases: list[CaseStudy]) -> list[str]:
    problems: list[str] = []
    for attribute in ("slug", "position"):
        seen: dict[object, CaseStudy] = {}
        for case in cases:
            value = getattr(case, attribute)
            if value in seen:
                line = _line_of_key(case.path, attribute)
                problems.append(
                    f"{case.path}:{line}: duplicate {attribute} {value!r} "
                    f"(also in {seen[value].path})"
                )
            else:
                seen[value] = case
    return problems


def _line_of_key(path: Path | None, key: str) -> int:
    if path is None:
        return 1
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        if line.startswith(f"{key}:"):
            return number
    return 1


_QUEUE_ORDER = attrgetter("position", "slug")


def load(directory: Path, *, cache_dir: Path | None = None) -> Corpus:
    """Load and validate the whole corpus; raise :class:`CorpusError` on any problem.
    ``cache_dir``: where the corpus index lives (see :func:`check`)."""
    if cache_dir is not None and directory.is_dir():
        table, problems = _Table.scan(directory, cache_dir)
        if problems:
            raise CorpusError(problems)
        return Corpus(directory, _UNLOADED, table)  # records built on first use
    cases, problems = check(directory)
    if problems:
        raise CorpusError(problems)
    cases.sort(key=_QUEUE_ORDER)
    return Corpus(directory, tuple(cases))


def queue(cases: Iterable[CaseStudy], published: Iterable[str]) -> list[CaseStudy]:
    """Every case study still to publish (not published, not a draft), in queue order.

    Here rather than in :mod:`syndicate.pipeline` (which re-exports it) so that ``queue``,
    ``status`` and ``schedule`` do not import the renderers and channels to sort a list.
    Reads only the fields a record of the corpus index is born with."""
    taken = set(published)
    ready = [case for case in cases if not case.is_draft and case.slug not in taken]
    if isinstance(cases, Corpus) and cases._table is not None:
        return ready  # in queue order already: the index keeps that order
    return sorted(ready, key=_QUEUE_ORDER)


# --------------------------------------------------------------------------- the index

#: Bumped whenever the parser or the index layout change: an index of another version is
#: ignored (and rewritten). 2: reserved slugs are problems (entries of 1 would miss them);
#: 3: compact arrays instead of one object per file; 4: columns in a marshal file (the JSON
#: one of 3, ``corpus-*.json``, is removed when the new one is written).
CORPUS_INDEX_VERSION = 4
_MAGIC = b"syndicate corpus index\n"
# marshal's format may change with Python: an index written by another one is ignored.
_TAG = f"{sys.implementation.cache_tag}/marshal-{marshal.version}"

# The columns, one list per field and one row per corpus file, rows sorted by file name.
# "head" is decoded on every load: what validating the folder and the queue need. "detail"
# only when a record is filled, a listing reads it or a changed file's hash is compared.
_HEAD = ("names", "sizes", "mtimes", "slugs", "titles", "positions", "statuses")
_DETAIL = ("sha256", "companies", "themes", "sources", "content_hashes", "words", "sections",
           "digests")
# A row as a tuple (building and copying rows): the head, its problems, the detail.
_PROBLEMS = len(_HEAD)
# A case study's attribute -> its column (what Corpus.values reads without a record).
_COLUMN = {"slug": "slugs", "title": "titles", "position": "positions", "status": "statuses",
           "companies": "companies", "themes": "themes", "content_hash": "content_hashes",
           "words": "words", "section_count": "sections", "text_digest": "digests"}
# The types a column may hold (a damaged index is ignored, not trusted).
_TYPES: dict[str, set[type]] = {
    "names": {str}, "sizes": {int}, "mtimes": {int}, "slugs": {str, type(None)},
    "titles": {str, type(None)}, "positions": {int, type(None)},
    "statuses": {str, type(None)}, "sha256": {bytes}, "companies": {tuple},
    "themes": {tuple}, "sources": {tuple, type(None)}, "content_hashes": {str, type(None)},
    "words": {int, type(None)}, "sections": {int, type(None)},
    "digests": {str, type(None)},
}


def _valid(columns: object, names: tuple[str, ...], length: int | None = None) -> bool:
    if type(columns) is not list or len(columns) != len(names):
        return False
    for name, column in zip(names, columns, strict=True):
        if type(column) is not list:
            return False
        if length is None:
            length = len(column)
        if len(column) != length or not set(map(type, column)) <= _TYPES[name]:
            return False
    return True


class _Folder:
    """A corpus folder read by file name: its listing, and each file's stat relative to an
    open descriptor of the folder (no path resolved per file) where the platform has it."""

    def __init__(self, directory: Path) -> None:
        self.fd: int | None = None
        self.stat: Callable[[str], os.stat_result]
        if os.stat in os.supports_dir_fd and os.listdir in os.supports_fd:
            try:
                self.fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            except OSError:
                self.fd = None
        if self.fd is not None:
            self.stat = functools.partial(os.stat, dir_fd=self.fd)
        else:
            base = str(directory)
            self.stat = lambda name: os.stat(os.path.join(base, name))
        self.directory = directory

    def listing(self) -> list[str]:
        return os.listdir(self.fd if self.fd is not None else self.directory)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class _Table:
    """The on-disk corpus index: per corpus file, its (size, mtime_ns, sha256 of the bytes)
    and what parsing it gave (the front matter and figures of its case study, or its
    problems), as columns (one list per field; rows sorted by file name).

    The file ``corpus-<hash of the folder>.idx`` in the cache folder is ``_MAGIC`` then a
    marshal'd ``(version, Python tag, folder, head, detail)``, ``head`` and ``detail``
    themselves marshal'd: ``head`` = (the folder's listing as ``os.listdir`` gave it, the
    :data:`_HEAD` columns, ``{row: problems}``, the readable rows in queue order), decoded on
    every load; ``detail`` = the :data:`_DETAIL` columns, decoded on first need. marshal,
    not pickle: it builds only plain values (no class named by the file is ever called), and
    decodes four times faster than JSON; the file is trusted only under its version, the
    Python tag and the folder, and with its columns of the expected shapes and types, else
    ignored and rebuilt (it is a cache). Written atomically, only when something changed.

    A load: list the folder; the same listing as stored (``==`` on two lists) means the
    same files, so each is ``stat``-ed by name and its size and mtime compared with the
    columns; a changed stat re-hashes that file, changed bytes parse it again (that row is
    updated in place). Another listing rebuilds the rows by name, reusing every unchanged
    one. Records are built from the columns (:meth:`records`) with their queue fields only.
    """

    def __init__(self, directory: Path, path: Path, folder: str, listing: list[str],
                 head: list[list[Any]], problems: dict[int, tuple[str, ...]],
                 order: list[int], detail: bytes | list[list[Any]]) -> None:
        self.directory = directory
        self.path = path
        self.folder = folder
        self.listing = listing
        self.columns: dict[str, list[Any]] = dict(zip(_HEAD, head, strict=True))
        self.problems = problems
        self.order = order
        self._detail_raw = detail if isinstance(detail, bytes) else None
        self._detail: dict[str, list[Any]] | None = (
            None if isinstance(detail, bytes) else dict(zip(_DETAIL, detail, strict=True)))
        self.parsed: dict[int, CaseStudy] = {}  # rows parsed in this run: whole records
        self.changed = False  # head or detail differ from the file
        self._records: list[CaseStudy | None] | None = None
        self._fill: tuple[Any, ...] | None = None  # what fill reads (the detail decoded)
        self._path: Callable[[str], Path] | None = None

    # ------------------------------------------------------------------ reading the file

    @classmethod
    def scan(cls, directory: Path, cache_dir: Path) -> tuple[_Table, list[str]]:
        """The corpus index of ``directory`` brought up to date with the files (and saved if
        it changed), and every problem of the corpus."""
        folder = str(directory.resolve())
        path = cache_dir / f"corpus-{hashlib.sha256(folder.encode()).hexdigest()[:16]}.idx"
        table = cls.read(directory, path, folder)
        found = _Folder(directory)
        try:
            listing = found.listing()
            # The same listing (most loads: one list comparison) or the same names in
            # another order (a file system that does not keep it): the same files.
            same = table is not None and (listing == table.listing
                                          or sorted(listing) == sorted(table.listing))
            if table is None or not same or not table.refresh(found):
                table = cls.rebuild(directory, path, folder, found, listing, table)
            table.listing = listing
        finally:
            found.close()
        if table.changed:
            table.save()
        return table, table.problem_list()

    @classmethod
    def read(cls, directory: Path, path: Path, folder: str) -> _Table | None:
        try:
            raw = path.read_bytes()
        except OSError:
            return None  # no index yet
        if not raw.startswith(_MAGIC):
            return None  # another format (the JSON of version 3), or not an index
        try:
            outer = marshal.loads(memoryview(raw)[len(_MAGIC):])
            if (type(outer) is not tuple or len(outer) != 5
                    or outer[:3] != (CORPUS_INDEX_VERSION, _TAG, folder)
                    or type(outer[3]) is not bytes or type(outer[4]) is not bytes):
                return None
            head = marshal.loads(outer[3])
        except (ValueError, TypeError, EOFError):
            return None  # a damaged file
        if type(head) is not tuple or len(head) != 4:
            return None
        listing, columns, problems, order = head
        if (type(listing) is not list or not set(map(type, listing)) <= {str}
                or not _valid(columns, _HEAD) or type(problems) is not dict
                or type(order) is not list or not set(map(type, order)) <= {int}):
            return None
        rows = len(columns[0])
        if (any(type(r) is not int or not 0 <= r < rows or type(p) is not tuple
                for r, p in problems.items())
                or (order and not (min(order) >= 0 and max(order) < rows))):
            return None
        return cls(directory, path, folder, listing, columns, problems, order, outer[4])

    def detail(self) -> dict[str, list[Any]]:
        """The :data:`_DETAIL` columns, decoded on first need."""
        if self._detail is None:
            rows = len(self.columns["names"])
            try:
                columns = marshal.loads(self._detail_raw or b"")
            except (ValueError, TypeError, EOFError):
                columns = None
            if not _valid(columns, _DETAIL, rows):
                self._detail = dict(zip(_DETAIL, self._detail_from_files(), strict=True))
                self.save()  # repaired
            else:
                self._detail = dict(zip(_DETAIL, columns, strict=True))
        return self._detail

    def _detail_from_files(self) -> list[list[Any]]:
        """The detail columns of a damaged index, from the files (parsed again; a file with
        a problem now raises it): slow, and only after a damaged file."""
        rows = []
        names = self.columns["names"]
        for row, name in enumerate(names):
            if self.columns["slugs"][row] is None:
                rows.append((b"", (), (), None, None, None, None, None))
            else:
                path = _child(self.directory, name)
                raw = path.read_bytes()
                case = load_file(path)
                digest = hashlib.sha256(raw).digest()
                rows.append(_row_of(name, os.stat(path), digest, case)[_PROBLEMS + 1:])
        self.changed = True
        self._detail_raw = None
        result = [list(column) for column in zip(*rows, strict=True)]
        return result or [[] for _ in _DETAIL]

    # ------------------------------------------------------------------ bringing it up to date

    def refresh(self, found: _Folder) -> bool:
        """Check every file's stat against the columns (the listing is the stored one);
        re-read the rows that changed. False: a file vanished or is no longer a regular file
        (the caller rebuilds)."""
        names, sizes, mtimes = (self.columns[name] for name in ("names", "sizes", "mtimes"))
        try:
            stats = list(map(found.stat, names))
        except OSError:
            return False
        if [s.st_size for s in stats] == sizes and [s.st_mtime_ns for s in stats] == mtimes:
            return True
        moved = False
        for row, stat in enumerate(stats):
            if stat.st_size != sizes[row] or stat.st_mtime_ns != mtimes[row]:
                if not S_ISREG(stat.st_mode):
                    return False
                moved |= self._set_row(row, self._entry(names[row], stat, self, row))
        if moved:
            self._sort()
        return True

    @classmethod
    def rebuild(cls, directory: Path, path: Path, folder: str, found: _Folder,
                listing: list[str], old: _Table | None) -> _Table:
        """The rows of the files now in the folder (sorted by name), each unchanged one
        taken from ``old``."""
        by_name = {name: row for row, name in enumerate(old.columns["names"])} if old else {}
        rows: list[tuple[Any, ...]] = []
        parsed: dict[int, CaseStudy] = {}
        for name in sorted(n for n in listing if n.endswith(".md") and not n.startswith(".")):
            try:
                stat = found.stat(name)
            except FileNotFoundError:
                continue  # a broken link (not a file, as for os.scandir), or gone since
            except OSError as exc:
                rows.append(_unreadable(name, exc))
                continue
            if not S_ISREG(stat.st_mode):
                continue
            row = by_name.get(name)
            if (old is not None and row is not None and old.columns["sizes"][row]
                    == stat.st_size and old.columns["mtimes"][row] == stat.st_mtime_ns):
                rows.append(old._row(row))
            else:
                entry, case = cls._entry_of(directory, name, stat, old, row)
                if case is not None:
                    parsed[len(rows)] = case
                rows.append(entry)
        columns = [list(column) for column in zip(*rows, strict=True)] or [
            [] for _ in range(len(_HEAD) + 1 + len(_DETAIL))]
        table = cls(directory, path, folder, listing, columns[:_PROBLEMS],
                    {row: entry[_PROBLEMS] for row, entry in enumerate(rows)
                     if entry[_PROBLEMS]}, [], columns[_PROBLEMS + 1:])
        table.parsed = parsed
        table.changed = True
        table._sort()
        return table

    def _entry(self, name: str, stat: os.stat_result, old: _Table, row: int) -> tuple[Any, ...]:
        entry, case = self._entry_of(self.directory, name, stat, old, row)
        if case is not None:
            self.parsed[row] = case
        return entry

    @staticmethod
    def _entry_of(directory: Path, name: str, stat: os.stat_result, old: _Table | None,
                  row: int | None) -> tuple[tuple[Any, ...], CaseStudy | None]:
        """The row of a new or changed file: ``old``'s row with the new stat if its bytes are
        the same, else the file parsed (and its whole case study, if it has no problem)."""
        path = _child(directory, name)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            return _unreadable(name, exc), None
        digest = hashlib.sha256(raw).digest()
        if old is not None and row is not None and old.detail()["sha256"][row] == digest:
            return (name, stat.st_size, stat.st_mtime_ns, *old._row(row)[3:]), None
        problems = _Problems(path)
        case = _parse(path, raw, problems)
        if case is None:
            # Without the path prefix: the folder may be moved or renamed.
            return (name, stat.st_size, stat.st_mtime_ns, None, None, None, None,
                    tuple(item[len(str(path)):] for item in problems.items), digest,
                    (), (), None, None, None, None, None), None
        return _row_of(name, stat, digest, case), case

    def _row(self, row: int) -> tuple[Any, ...]:
        detail = self.detail()
        return (*(self.columns[name][row] for name in _HEAD), self.problems.get(row),
                *(detail[name][row] for name in _DETAIL))

    def _set_row(self, row: int, entry: tuple[Any, ...]) -> bool:
        """Replace a row; True if its place in the queue may have changed."""
        detail = self.detail()
        slugs, positions = self.columns["slugs"], self.columns["positions"]
        moved = (slugs[row], positions[row]) != (entry[_HEAD.index("slugs")],
                                                  entry[_HEAD.index("positions")])
        for index, name in enumerate(_HEAD):
            self.columns[name][row] = entry[index]
        if entry[_PROBLEMS]:
            self.problems[row] = entry[_PROBLEMS]
        else:
            self.problems.pop(row, None)
        for index, name in enumerate(_DETAIL, _PROBLEMS + 1):
            detail[name][row] = entry[index]
        self._detail_raw = None
        self._fill = None
        self.changed = True
        return moved

    def _sort(self) -> None:
        slugs, positions = self.columns["slugs"], self.columns["positions"]
        self.order = sorted((row for row, slug in enumerate(slugs) if slug is not None),
                            key=lambda row: (positions[row], slugs[row]))

    def save(self) -> None:
        if not self.path.parent.parent.is_dir():
            return  # e.g. the ledger's folder does not exist yet: no cache created for it
        head = marshal.dumps((self.listing, [self.columns[name] for name in _HEAD],
                              self.problems, self.order))
        detail = self._detail_raw
        if detail is None:
            columns = self.detail()
            detail = marshal.dumps([columns[name] for name in _DETAIL])
        data = marshal.dumps((CORPUS_INDEX_VERSION, _TAG, self.folder, head, detail))
        try:
            write_atomic_bytes(self.path, _MAGIC + data)
            self.path.with_suffix(".json").unlink(missing_ok=True)  # version 3's
        except OSError:
            pass  # a cache that cannot be written costs time, never correctness

    # ------------------------------------------------------------------ what loads read

    def problem_list(self) -> list[str]:
        """Each file's problems (files in name order), then the duplicates across files."""
        problems: list[str] = []
        names = self.columns["names"]
        for row in sorted(self.problems):
            path = str(_child(self.directory, names[row]))
            problems.extend(path + item for item in self.problems[row])
        for name in ("slugs", "positions"):
            distinct = set(self.columns[name])
            distinct.discard(None)
            if len(distinct) != len(self.order):  # some value twice: say where, as check does
                problems.extend(_cross_file_problems(self.by_name()))
                break
        return problems

    def records(self) -> list[CaseStudy | None]:
        """A case study per row (None: the file has problems), born with its queue fields
        and filled from the columns on first use of another (:meth:`fill`)."""
        if self._records is None:
            new, set_fields = object.__new__, object.__setattr__
            records: list[CaseStudy | None] = []
            append = records.append
            columns = self.columns
            for row, (slug, title, position, status) in enumerate(zip(
                    columns["slugs"], columns["titles"], columns["positions"],
                    columns["statuses"], strict=True)):
                if slug is None:
                    append(None)
                    continue
                case = new(CaseStudy)
                set_fields(case, "__dict__", {"slug": slug, "title": title, "position": position,
                                              "status": status, _ROW: (self, row)})
                append(case)
            for row, parsed in self.parsed.items():
                records[row] = parsed
            self._records = records
        return self._records

    def fill(self, fields: dict[str, Any], row: int) -> None:
        """Every field of the record of ``row`` but its path and body, from the columns
        (looked up once per table: this runs for every record a relatedness fingerprint
        reads)."""
        if self._fill is None:
            detail = self.detail()
            self._fill = tuple(detail[name] for name in _DETAIL[1:])
        companies, themes, sources, hashes, words, sections, digests = self._fill
        source = sources[row]
        fields["lede"] = fields["sections"] = _UNLOADED
        fields["companies"] = companies[row]
        fields["themes"] = themes[row]
        fields["source"] = None if source is None else Source(str(source[0]), int(source[1]))
        fields["content_hash"] = hashes[row]
        fields["words"] = words[row]
        fields["section_count"] = sections[row]
        fields["text_digest"] = digests[row]

    def path_of(self, row: int) -> Path:
        if self._path is None:
            make = getattr(self.directory, "_make_child_relpath", None)  # see _child
            self._path = make if callable(make) else functools.partial(_child, self.directory)
        path: Path = self._path(self.columns["names"][row])
        return path

    def by_name(self) -> list[CaseStudy]:
        return [case for case in self.records() if case is not None]

    def in_order(self) -> tuple[CaseStudy, ...]:
        records = cast(list[CaseStudy], self.records())
        return tuple(map(records.__getitem__, self.order))

    def values(self, names: Sequence[str]) -> list[tuple[Any, ...]]:
        if not all(name in _COLUMN for name in names):
            records = self.in_order()
            return [tuple(getattr(case, name) for name in names) for case in records]
        columns = [self.columns[_COLUMN[name]] if _COLUMN[name] in self.columns
                   else self.detail()[_COLUMN[name]] for name in names]
        order = self.order
        return list(zip(*(list(map(column.__getitem__, order)) for column in columns),
                        strict=True))


def _row_of(name: str, stat: os.stat_result, digest: bytes, case: CaseStudy) -> tuple[Any, ...]:
    """The row of a parsed case study (strings that repeat across rows interned: marshal
    then writes each once)."""
    source = case.source
    return (name, stat.st_size, stat.st_mtime_ns, case.slug, case.title, case.position,
            sys.intern(case.status), None, digest,
            tuple(map(sys.intern, case.companies)), tuple(map(sys.intern, case.themes)),
            None if source is None else (source.page, source.position), case.content_hash,
            case.words, case.section_count, case.text_digest)


def _unreadable(name: str, exc: OSError) -> tuple[Any, ...]:
    """The row of a file that cannot be read: a problem, and a stat no file has (read again
    at the next load)."""
    return (name, -1, -1, None, None, None, None, (f":1: cannot read file: {exc.strerror}",),
            b"", (), (), None, None, None, None, None)


def next_position(corpus_dir: Path) -> int:
    """The queue position after the last one in use (new imports go to the end)."""
    cases, _problems = check(corpus_dir)
    return max((case.position for case in cases), default=0) + 1


# --------------------------------------------------------------------------- queue edits
# The console's queue page (syndicate.web.admin.queue) reorders and marks drafts
# through these: only the ``position:`` and ``status:`` lines of the front matter are
# rewritten (the rest of the file, comments included, is kept byte for byte), every
# rewritten file is validated as ``corpus check`` validates it before anything is
# written, and each is written atomically.


def corpus_stamp(directory: Path) -> str:
    """A version stamp of the whole corpus folder: every file's name, mtime (ns) and size.
    Any edit, new or removed file changes it."""
    digest = hashlib.sha256()
    for path in corpus_files(directory):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        digest.update(f"{path.name}\0{st.st_mtime_ns}\0{st.st_size}\n".encode())
    return digest.hexdigest()[:32]


def renumber(queue: Sequence[CaseStudy], order: Sequence[str]) -> dict[str, int]:
    """The positions of ``queue``'s case studies once in ``order`` (their slugs, every one
    once): the positions they hold now, sorted, handed out in the new order, so no
    published case study's position is taken and no file outside the queue changes."""
    if sorted(order) != sorted(case.slug for case in queue):
        raise ValueError("order must list the queue's slugs, each once")
    positions = sorted(case.position for case in queue)
    return dict(zip(order, positions, strict=True))


_FRONT_KEY = r"^({key}:[ \t]*)([^#\n]*?)([ \t]+#[^\n]*)?$"


def _set_front(text: str, key: str, value: str) -> str:
    """``text`` with the top-level front-matter ``key`` set to ``value`` (its trailing
    comment kept), or the key added at the end of the front matter."""
    lines = text.split("\n")
    start = 1 if lines and lines[0].lstrip("\ufeff").rstrip() == _FRONT else None
    if start is None:
        return text
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() == _FRONT), None)
    if end is None:
        return text
    pattern = re.compile(_FRONT_KEY.format(key=re.escape(key)))
    for index in range(start, end):
        match = pattern.match(lines[index])
        if match:
            lines[index] = f"{match.group(1) or key + ': '}{value}{match.group(3) or ''}"
            return "\n".join(lines)
    lines.insert(end, f"{key}: {value}")
    return "\n".join(lines)


def edit_queue(directory: Path, changes: Mapping[str, tuple[int, str]], stamp: str) -> list[Path]:
    """Set ``(position, status)`` of the case studies named by slug; return the files
    rewritten (only those whose values change).

    ``stamp`` is :func:`corpus_stamp` when the operator looked: if the folder changed
    since, :class:`~syndicate.errors.CorpusChanged` is raised and nothing is written.
    The corpus must pass ``corpus check`` before and after the edit (same validation:
    each rewritten file parsed, positions and slugs unique), else
    :class:`~syndicate.errors.CorpusError` with the problems, and nothing is written.
    """
    if corpus_stamp(directory) != stamp:
        raise CorpusChanged([f"{directory}: the corpus changed on disk since the page was "
                             "loaded; nothing was written"])
    cases, problems = check(directory)
    if problems:
        raise CorpusError(problems)
    by_slug = {case.slug: case for case in cases}
    unknown = sorted(set(changes) - set(by_slug))
    if unknown:
        raise CorpusChanged([f"{directory}: no case study {slug!r}" for slug in unknown])
    rewritten: dict[Path, str] = {}
    for slug, (position, status) in changes.items():
        case = by_slug[slug]
        if (case.position, case.status) == (position, status) or case.path is None:
            continue
        text = case.path.read_text(encoding="utf-8")
        text = _set_front(_set_front(text, "position", str(position)), "status", status)
        found = _Problems(case.path)
        parsed = _parse(case.path, text.encode("utf-8"), found)
        if parsed is None or found.items:
            problems.extend(found.items)
            continue
        by_slug[slug] = replace(parsed, path=case.path)
        rewritten[case.path] = text
    problems.extend(_cross_file_problems(list(by_slug.values())))
    if problems:
        raise CorpusError(problems)
    if corpus_stamp(directory) != stamp:  # changed while we read: still nothing written
        raise CorpusChanged([f"{directory}: the corpus changed on disk during the edit; "
                             "nothing was written"])
    for path, text in rewritten.items():
        write_atomic(path, text)
    return list(rewritten)


__all__ = [
    "CaseStudy",
    "Corpus",
    "Section",
    "Source",
    "check",
    "content_hash",
    "corpus_stamp",
    "dumps",
    "edit_queue",
    "load",
    "load_file",
    "next_position",
    "queue",
    "renumber",
    "replace",
    "save",
]
