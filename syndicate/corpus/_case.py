"""A case study: the record, its file format (read and written) and the folder of files.

The format is described in :mod:`syndicate.corpus`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, cast

from ..digest import blake2b, sha256
from ..errors import CorpusError
from ..fs import write_atomic

STATUSES = ("ready", "draft")


def _yaml_loader() -> Any:
    """libyaml's loader when available: the pure-Python one dominates loading a large corpus.
    PyYAML is imported by what parses or writes a file (here and below), not at import: a
    corpus loaded through its index parses nothing, and the light commands skip its import."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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
        return blake2b(self.text.encode("utf-8"), digest_size=20).hexdigest()

    @cached_property
    def file_digest(self) -> str | None:
        """The sha256 (hex) of the file bytes this case study was read from, front matter and
        body alike, or None: not read from a file (made in code, a snapshot), or its body read
        from bytes other than its front matter's (the file edited in between). The same bytes
        parse to the same case study: a published snapshot taken from these bytes is still
        the file's text while this digest is unchanged (:func:`syndicate.snapshots.published_drift`
        compares it instead of reading the file)."""
        if _ROW in self.__dict__:
            return cast("str | None", self._from_index("file_digest"))
        return None

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
        known = self.file_digest  # the bytes the front matter came from (None: unknown)
        loaded = load_file(self.path)
        self.__dict__["lede"] = loaded.lede
        self.__dict__["sections"] = loaded.sections
        if loaded.file_digest != known:  # the file changed since: this record mixes two
            self.__dict__["file_digest"] = None

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
    import json  # here: the light commands read the corpus index, never hash a case

    blob = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return "sha256:" + sha256(blob.encode("utf-8")).hexdigest()


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
    import yaml

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


class _Problems:
    """Collects ``file:line: what`` problems while parsing one file (a plain class, not a
    dataclass: defining one costs the light commands a millisecond at import)."""

    __slots__ = ("items", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[str] = []

    def add(self, line: int, what: str) -> None:
        self.items.append(f"{self.path}:{line}: {what}")


def _key_lines(front: str, offset: int) -> dict[str, int]:
    """Line number (1-based, in the file) of each top-level front-matter key."""
    import yaml

    lines: dict[str, int] = {}
    try:
        node = yaml.compose(front, Loader=_yaml_loader())
    except yaml.YAMLError:
        return lines
    if isinstance(node, yaml.MappingNode):
        for key, _value in node.value:
            lines[str(key.value)] = key.start_mark.line + 1 + offset
    return lines


def _reserved(slug: str) -> bool:
    """:func:`syndicate.text.reserved_slug` (imported on a parse: text's Unicode tables are
    not what a light command reading the index needs)."""
    from ..text import reserved_slug

    return reserved_slug(slug)


def _parse(path: Path, raw: bytes, problems: _Problems) -> CaseStudy | None:
    import yaml

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
        meta = yaml.load(front, Loader=_yaml_loader())  # a safe loader (CSafeLoader or SafeLoader)
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
    elif slug and _reserved(slug):
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
    case = CaseStudy(
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
    case.__dict__["file_digest"] = sha256(raw).hexdigest()  # the cached property's
    return case


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


# --------------------------------------------------------------------------- the folder


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


