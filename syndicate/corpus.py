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

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from .errors import CorpusChanged, CorpusError
from .fs import write_atomic
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
        value = instance.__dict__[self.name]
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
        return len(self.text.split())

    @cached_property
    def section_count(self) -> int:
        return len(self.sections)

    @cached_property
    def text_digest(self) -> str:
        """A hash of :attr:`text` as it is now (unlike ``content_hash``, stored by the
        importer, which a hand edit leaves stale): the corpus index keeps it, so relatedness
        can tell an edited text without reading the others."""
        return hashlib.blake2b(self.text.encode("utf-8"), digest_size=20).hexdigest()

    def _load_body(self) -> None:
        if self.path is None:
            raise CorpusError([f"{self.slug}: no file to read the text from"])
        loaded = load_file(self.path)
        self.__dict__["lede"] = loaded.lede
        self.__dict__["sections"] = loaded.sections

    def computed_hash(self) -> str:
        return content_hash(self.title, self.lede, self.sections)


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


@dataclass(frozen=True)
class Corpus:
    """The loaded corpus, ordered by queue position."""

    directory: Path
    cases: tuple[CaseStudy, ...]

    def __iter__(self) -> Iterator[CaseStudy]:
        return iter(self.cases)

    def __len__(self) -> int:
        return len(self.cases)

    def get(self, slug: str) -> CaseStudy | None:
        return next((case for case in self.cases if case.slug == slug), None)

    def by_slug(self) -> dict[str, CaseStudy]:
        return {case.slug: case for case in self.cases}


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

    With ``cache_dir``, through the corpus index kept there (:class:`_Index`): a file whose
    size and mtime (or, if those moved, whose bytes) are unchanged is not parsed again, and
    its case study comes without its body (read from the file on first access). The result is
    the same either way.
    """
    if not directory.is_dir():
        return [], [f"{directory}:1: corpus directory does not exist"]
    cases: list[CaseStudy] = []
    problems: list[str] = []
    if cache_dir is not None:
        index = _Index.open(directory, cache_dir)
        for name, entry in _corpus_entries(directory):
            case, found = index.entry(_child(directory, name), entry)
            if case is not None:
                cases.append(case)
            if found:
                problems.extend(found)
        index.save()
        problems.extend(_cross_file_problems(cases))
        return cases, problems
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


def load(directory: Path, *, cache_dir: Path | None = None) -> Corpus:
    """Load and validate the whole corpus; raise :class:`CorpusError` on any problem.
    ``cache_dir``: where the corpus index lives (see :func:`check`)."""
    cases, problems = check(directory, cache_dir=cache_dir)
    if problems:
        raise CorpusError(problems)
    cases.sort(key=lambda case: (case.position, case.slug))
    return Corpus(directory, tuple(cases))


def queue(cases: Iterable[CaseStudy], published: Iterable[str]) -> list[CaseStudy]:
    """Every case study still to publish (not published, not a draft), in queue order.

    Here rather than in :mod:`syndicate.pipeline` (which re-exports it) so that ``queue``,
    ``status`` and ``schedule`` do not import the renderers and channels to sort a list."""
    taken = set(published)
    ready = [case for case in cases if not case.is_draft and case.slug not in taken]
    return sorted(ready, key=lambda case: (case.position, case.slug))


# --------------------------------------------------------------------------- the index

#: Bumped whenever the parser or the record layout change: an index of another version is
#: ignored (and rewritten). 2: reserved slugs are problems (entries of 1 would miss them);
#: 3: compact arrays instead of one object per file.
CORPUS_INDEX_VERSION = 3

# The layout of one file's entry and of its case study's record (arrays: a third of the
# JSON of named objects, and faster to decode).
_SIZE, _MTIME, _SHA256, _PROBLEMS, _CASE = range(5)


class _Index:
    """The on-disk corpus index: per file name, its (size, mtime_ns, sha256 of the bytes) and
    what parsing it gave (the front matter and figures of the case study, or its problems).

    A JSON file in the cache folder (``corpus-<hash of the corpus folder>.json``), written
    atomically; a missing, unreadable or foreign one is ignored and rebuilt (it is a cache).
    An entry is trusted on an unchanged stat; a changed stat with unchanged bytes keeps the
    entry; anything else parses the file again. Each entry is an array
    ``[size, mtime_ns, sha256, problems, case]``, ``case`` being null (the file has problems)
    or ``[slug, title, position, status, companies, themes, source, content_hash, words,
    sections, text_digest]``.
    """

    def __init__(self, directory: Path, path: Path, entries: dict[str, Any]) -> None:
        self.directory = directory
        self.path = path
        self.old = entries
        self.new: dict[str, Any] = {}
        self.changed = False

    @classmethod
    def open(cls, directory: Path, cache_dir: Path) -> _Index:
        folder = str(directory.resolve())
        name = hashlib.sha256(folder.encode("utf-8")).hexdigest()[:16]
        path = cache_dir / f"corpus-{name}.json"
        entries: dict[str, Any] = {}
        try:
            data = json.loads(path.read_bytes())
            if (isinstance(data, dict) and data.get("version") == CORPUS_INDEX_VERSION
                    and data.get("folder") == folder and isinstance(data.get("files"), dict)):
                entries = data["files"]
        except (OSError, ValueError):
            pass  # no index yet, or a corrupt one: rebuilt
        return cls(directory, path, entries)

    def entry(self, path: Path, found: os.DirEntry[str] | None = None
              ) -> tuple[CaseStudy | None, list[str]]:
        """The case study of ``path`` (or None) and its own problems. ``found``: its
        directory entry, if the caller has it (one ``stat`` without a path object)."""
        try:
            stat = found.stat() if found is not None else path.stat()
        except OSError as exc:
            return None, [f"{path}:1: cannot read file: {exc.strerror}"]
        old = self.old.get(path.name)
        if (type(old) is list and len(old) == 5 and old[_SIZE] == stat.st_size
                and old[_MTIME] == stat.st_mtime_ns):
            entry = old
        else:
            try:
                raw = path.read_bytes()
            except OSError as exc:
                return None, [f"{path}:1: cannot read file: {exc.strerror}"]
            digest = hashlib.sha256(raw).hexdigest()
            self.changed = True
            if type(old) is list and len(old) == 5 and old[_SHA256] == digest:
                entry = [stat.st_size, stat.st_mtime_ns, *old[_SHA256:]]
            else:
                return self._parsed(path, raw, stat)
        try:
            case = self._record(path, entry)
            problems = [f"{path}{item}" for item in entry[_PROBLEMS]] if entry[_PROBLEMS] else []
        except (KeyError, TypeError, ValueError, IndexError):  # a damaged entry: parse again
            try:
                raw = path.read_bytes()
            except OSError as exc:
                return None, [f"{path}:1: cannot read file: {exc.strerror}"]
            self.changed = True
            return self._parsed(path, raw, stat)
        self.new[path.name] = entry
        return case, problems

    def _parsed(self, path: Path, raw: bytes, stat: os.stat_result
                ) -> tuple[CaseStudy | None, list[str]]:
        """Parse a new or changed file, record it; its case study comes whole (body read)."""
        problems = _Problems(path)
        case = _parse(path, raw, problems)
        record = None
        if case is not None:
            record = [
                case.slug, case.title, case.position, case.status, list(case.companies),
                list(case.themes),
                [case.source.page, case.source.position] if case.source else None,
                case.content_hash, case.words, case.section_count, case.text_digest,
            ]
        self.new[path.name] = [
            stat.st_size, stat.st_mtime_ns, hashlib.sha256(raw).hexdigest(),
            # Without the path prefix: the folder may be moved or renamed.
            [item[len(str(path)):] for item in problems.items], record,
        ]
        return case, problems.items

    @staticmethod
    def _record(path: Path, entry: list[Any]) -> CaseStudy | None:
        meta = entry[_CASE]
        if meta is None:
            if not entry[_PROBLEMS]:
                raise ValueError("an entry with neither a case study nor a problem")
            return None
        (slug, title, position, status, companies, themes, source, content_hash_, words,
         sections, text_digest) = meta
        # What CaseStudy(...) would store, without its frozen __init__ (one object.__setattr__
        # per field: a tenth of a second at 10,000 records). The body fields are left unread
        # (read from the file on first access); the figures are the cached properties' values.
        case: CaseStudy = object.__new__(CaseStudy)
        case.__dict__.update(
            slug=str(slug), title=str(title), lede=_UNLOADED, sections=_UNLOADED,
            position=int(position), status=str(status), companies=tuple(companies),
            themes=tuple(themes),
            source=Source(str(source[0]), int(source[1])) if source is not None else None,
            content_hash=str(content_hash_), path=path, words=int(words),
            section_count=int(sections), text_digest=str(text_digest),
        )
        return case

    def save(self) -> None:
        if not self.changed and self.new.keys() == self.old.keys():
            return
        if not self.path.parent.parent.is_dir():
            return  # e.g. the ledger's folder does not exist yet: no cache created for it
        data = {"version": CORPUS_INDEX_VERSION, "folder": str(self.directory.resolve()),
                "files": self.new}
        try:
            self.path.parent.mkdir(exist_ok=True)
            write_atomic(self.path, json.dumps(data, ensure_ascii=False, separators=(",", ":")))
        except OSError:
            pass  # a cache that cannot be written costs time, never correctness


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
