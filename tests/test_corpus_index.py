"""The on-disk corpus index and the incremental relatedness update (issue 13).

Real corpus folders (copies of the sample corpus), real index files; parses are counted by
wrapping the parser, so "only the changed file is parsed again" is observed, not assumed.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import re
import shutil
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from syndicate import corpus, related
from syndicate.corpus import CaseStudy, _case
from syndicate.corpus import _index as index_module
from syndicate.errors import CorpusError

SEEDS = Path(__file__).resolve().parents[1] / "syndicate" / "examples" / "corpus"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copytree(SEEDS, tmp_path / "corpus")
    (tmp_path / "var").mkdir()
    return tmp_path / "corpus"


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "var" / "cache"


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files the corpus parser reads, in order."""
    seen: list[str] = []
    parse: Callable[..., Any] = _case._parse

    def counting(path: Path, raw: bytes, problems: Any) -> Any:
        seen.append(path.name)
        return parse(path, raw, problems)

    # Every caller: the index (changed files) and load_file (bodies, no cache folder).
    monkeypatch.setattr(_case, "_parse", counting)
    monkeypatch.setattr(index_module, "_parse", counting)
    return seen


def _figures(cases: tuple[CaseStudy, ...] | list[CaseStudy]) -> list[tuple[Any, ...]]:
    return [(c.slug, c.title, c.position, c.status, c.companies, c.themes, c.source,
             c.content_hash, c.path, c.words, c.section_count, c.text_digest) for c in cases]


def test_only_changed_files_are_parsed_again(folder: Path, cache: Path,
                                             parses: list[str]) -> None:
    first = corpus.load(folder, cache_dir=cache)
    assert len(parses) == 10 and len(list(cache.glob("corpus-*.idx"))) == 1
    parses.clear()
    again = corpus.load(folder, cache_dir=cache)
    assert parses == []
    assert _figures(again.cases) == _figures(first.cases)

    files = sorted(folder.glob("*.md"))
    # touched, same bytes: the hash says unchanged, no parse (and the new stat is kept)
    stat = files[0].stat()
    os.utime(files[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    corpus.load(folder, cache_dir=cache)
    assert parses == []
    # its content changed: that file alone
    text = files[1].read_text(encoding="utf-8").rstrip("\n")
    files[1].write_text(text + " Une phrase de plus.\n", encoding="utf-8")
    edited = corpus.load(folder, cache_dir=cache)
    assert parses == [files[1].name]
    case = next(c for c in edited if c.path == files[1])
    assert case.lede == corpus.load_file(files[1]).lede
    assert case.text_digest == corpus.load_file(files[1]).text_digest
    # one deleted, one added
    parses.clear()
    files[2].unlink()
    added = folder / "nouvelle.md"
    text = files[3].read_text(encoding="utf-8")
    text = re.sub(r"^slug: .*$", "slug: nouvelle", text, count=1, flags=re.M)
    added.write_text(re.sub(r"^position: .*$", "position: 99", text, count=1, flags=re.M),
                     encoding="utf-8")
    changed = corpus.load(folder, cache_dir=cache)
    assert parses == ["nouvelle.md"]
    assert len(changed) == 10 and changed.get("nouvelle") is not None
    parses.clear()
    assert _figures(corpus.load(folder, cache_dir=cache).cases) == _figures(changed.cases)
    assert parses == []


def test_metadata_reads_no_body(folder: Path, cache: Path, parses: list[str]) -> None:
    corpus.load(folder, cache_dir=cache)
    parses.clear()
    loaded = corpus.load(folder, cache_dir=cache)
    # what queue, status, schedule and corpus list use; the relatedness fingerprint too
    assert _figures(loaded.cases)[0][-3:] == (
        loaded.cases[0].words, loaded.cases[0].section_count, loaded.cases[0].text_digest)
    related.corpus_fingerprint(loaded.cases)
    assert parses == []
    # the body is read on first access, once
    first = loaded.cases[0]
    assert first.path is not None
    sections, lede = first.sections, first.lede
    assert len(parses) == 1
    whole = corpus.load_file(first.path)
    assert (sections, lede) == (whole.sections, whole.lede) and first == whole


def test_same_results_with_and_without_the_index(folder: Path, cache: Path) -> None:
    (folder / "casse.md").write_text("---\nslug: Casse\n---\n\nTexte.\n", encoding="utf-8")
    dup = sorted(folder.glob("*.md"))[0]
    (folder / "doublon.md").write_bytes(dup.read_bytes())
    plain = corpus.check(folder)
    for _ in range(2):  # the index written, then read
        cases, problems = corpus.check(folder, cache_dir=cache)
        assert problems == plain[1] and problems
        assert cases == plain[0]
        assert _figures(cases) == _figures(plain[0])
    (folder / "casse.md").unlink()
    (folder / "doublon.md").unlink()
    assert corpus.load(folder, cache_dir=cache) == corpus.load(folder)


def _index(cache: Path) -> Path:
    (index,) = cache.glob("corpus-*.idx")
    return index


def _decoded(index: Path) -> dict[str, Any]:
    """The index file's parts: its header's (version, tag, folder, key, rows, token,
    distinct), each blob (every column, problems, order) decoded, by name; the stamps as the
    ``mtimes`` and ``sizes`` columns."""
    raw = index.read_bytes()
    magic = index_module._MAGIC
    assert raw.startswith(magic)
    start = len(magic) + 8
    base = start + int.from_bytes(raw[len(magic):start], "little")
    version, tag, folder, key, rows, spans, token, distinct = marshal.loads(raw[start:base])
    parts = {"version": version, "tag": tag, "folder": folder, "key": key, "rows": rows,
             "token": token, "distinct": distinct}
    for at, name in enumerate(index_module._BLOBS):
        blob = raw[base + spans[2 * at]:base + spans[2 * at + 1]]
        if name == "stamps":
            stamps = array("q", blob)
            parts["mtimes"], parts["sizes"] = stamps[0::2].tolist(), stamps[1::2].tolist()
        else:
            parts[name] = marshal.loads(blob)
    return parts


def _written(index: Path, parts: dict[str, Any]) -> None:
    # (a column one row short: the stamps of the shorter, as a damaged file could have)
    stamps = [n for pair in zip(parts["mtimes"], parts["sizes"], strict=False) for n in pair]
    blobs = [array("q", stamps).tobytes() if name == "stamps" else marshal.dumps(parts[name])
             for name in index_module._BLOBS]
    spans, at = [], 0
    for blob in blobs:
        spans += [at, at + len(blob)]
        at += len(blob)
    header = marshal.dumps((parts["version"], parts["tag"], parts["folder"], parts["key"],
                            parts["rows"], spans, parts["token"], parts["distinct"]))
    index.write_bytes(b"".join([index_module._MAGIC, len(header).to_bytes(8, "little"),
                                header, *blobs]))


def _rows(index: Path) -> int:
    return len(_decoded(index)["names"])


MAGIC = b"syndicate corpus index\n"  # index_module._MAGIC


@pytest.mark.parametrize("damage", [
    b"\x00not an index", b"", MAGIC, MAGIC + b"\x00garbage",
    b'{"version": 3, "folder": "", "files": {}}',
])
def test_a_corrupt_index_is_ignored_and_rebuilt(folder: Path, cache: Path,
                                                parses: list[str], damage: bytes) -> None:
    corpus.load(folder, cache_dir=cache)
    index = _index(cache)
    index.write_bytes(damage)
    parses.clear()
    assert corpus.load(folder, cache_dir=cache) == corpus.load(folder)
    assert len(parses) == 20  # with the index (ignored) and without
    assert _rows(index) == 10  # rewritten
    parses.clear()
    corpus.load(folder, cache_dir=cache)
    assert parses == []


def test_an_index_on_a_file_system_that_cannot_map_files_is_read(
        folder: Path, cache: Path, parses: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The index is memory-mapped; where that fails (some network and FUSE file systems),
    it is read whole instead, and still used."""
    corpus.load(folder, cache_dir=cache)

    def cannot_map(*args: object, **kwargs: object) -> None:
        raise OSError(19, "No such device")

    monkeypatch.setattr(index_module.mmap, "mmap", cannot_map)
    parses.clear()
    assert _figures(corpus.load(folder, cache_dir=cache).cases) == _figures(
        corpus.load(folder).cases)
    assert len(parses) == 10  # the load without the index only


def test_a_truncated_index_is_ignored(folder: Path, cache: Path, parses: list[str]) -> None:
    corpus.load(folder, cache_dir=cache)
    index = _index(cache)
    index.write_bytes(index.read_bytes()[: index.stat().st_size // 2])
    parses.clear()
    assert _figures(corpus.load(folder, cache_dir=cache).cases) == _figures(
        corpus.load(folder).cases)
    assert len(parses) == 20 and _rows(index) == 10


@pytest.mark.parametrize("what", ["version", "tag", "folder", "type", "length", "key",
                                  "order", "problems"])
def test_an_index_not_of_this_version_folder_or_shape_is_ignored(
        folder: Path, cache: Path, parses: list[str], what: str) -> None:
    corpus.load(folder, cache_dir=cache)
    index = _index(cache)
    parts = _decoded(index)
    if what == "version":
        parts["version"] = 4
    elif what == "tag":
        parts["tag"] = "cpython-299/marshal-9"
    elif what == "folder":
        parts["folder"] = str(folder.parent / "elsewhere")
    elif what == "type":
        parts["names"][0] = 12  # a file name that is not a string
    elif what == "length":
        parts["sizes"].pop()  # the stamps one row short
    elif what == "key":
        parts["key"] = (1, 2, 3)
    elif what == "order":
        parts["order"].append(10)  # a row that is not there
    else:
        parts["problems"] = {10: (":1: a problem",)}
    _written(index, parts)
    parses.clear()
    loaded = corpus.load(folder, cache_dir=cache)
    assert len(parses) == 10  # every file parsed again
    assert _figures(loaded.cases) == _figures(corpus.load(folder).cases)
    parts = _decoded(index)
    assert (parts["version"], parts["tag"], parts["folder"]) == (
        corpus.CORPUS_INDEX_VERSION, index_module._TAG, str(folder.resolve()))


def test_a_stamp_unlike_the_stat_reads_its_file_again(folder: Path, cache: Path,
                                                       parses: list[str]) -> None:
    """Sizes and mtimes are only compared with each file's stat: one that differs is a
    changed file (its bytes hashed, the same: no parse), and the stamps are put right."""
    corpus.load(folder, cache_dir=cache)
    index = _index(cache)
    parts = _decoded(index)
    sizes, mtimes = list(parts["sizes"]), list(parts["mtimes"])
    parts["sizes"][0], parts["mtimes"][1] = sizes[0] + 1, 0
    _written(index, parts)
    parses.clear()
    assert _figures(corpus.load(folder, cache_dir=cache).cases) == _figures(
        corpus.load(folder).cases)
    assert len(parses) == 10  # the load without the index only
    assert (_decoded(index)["sizes"], _decoded(index)["mtimes"]) == (sizes, mtimes)


def test_a_listing_in_another_order_is_the_same_folder(folder: Path, cache: Path,
                                                       parses: list[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A file system need not list a folder in the same order twice: same names, same files
    (each still checked by its stat), no parse and no rewrite."""
    corpus.load(folder, cache_dir=cache)
    index = _index(cache)
    written = index.read_bytes()
    listing = index_module._Folder.listing
    monkeypatch.setattr(index_module._Folder, "listing",
                        lambda self: sorted(listing(self), reverse=True))
    parses.clear()
    assert _figures(corpus.load(folder, cache_dir=cache).cases) == _figures(
        corpus.load(folder).cases)
    assert len(parses) == 10 and index.read_bytes() == written  # the load without the index


@pytest.mark.parametrize("column", ["companies", "titles", "sha256", "slugs", "positions"])
def test_a_damaged_column_is_read_from_the_files(folder: Path, cache: Path,
                                                 parses: list[str], column: str) -> None:
    """The columns other than those checking the folder are decoded after the load (on
    first need): damaged, they come from the files again, and the index is rewritten."""
    corpus.load(folder, cache_dir=cache)
    index = _index(cache)
    parts = _decoded(index)
    damage = "12" if column == "positions" else 12  # of no type that column holds
    parts[column][0] = damage
    _written(index, parts)
    parses.clear()
    loaded = corpus.load(folder, cache_dir=cache)
    assert parses == []
    assert _figures(loaded.cases) == _figures(corpus.load(folder).cases)
    assert len(parses) == 20  # every file for the columns, then the load without the index
    parses.clear()
    assert _figures(corpus.load(folder, cache_dir=cache).cases) == _figures(
        corpus.load(folder).cases)
    assert len(parses) == 10  # the index is whole again: only the load without it
    assert damage not in _decoded(index)[column]


def test_an_index_of_the_previous_version_is_ignored_and_replaced(
        folder: Path, cache: Path, parses: list[str]) -> None:
    """Version 3 kept one JSON file per corpus folder (``corpus-<hash>.json``): it is not
    read, and it is removed when the new index is written."""
    cache.mkdir()
    resolved = str(folder.resolve())
    name = hashlib.sha256(resolved.encode()).hexdigest()[:16]
    legacy = cache / f"corpus-{name}.json"
    files = {}
    for path in sorted(folder.glob("*.md")):
        case = corpus.load_file(path)
        stat = path.stat()
        files[path.name] = [stat.st_size, stat.st_mtime_ns,
                            hashlib.sha256(path.read_bytes()).hexdigest(), [],
                            [case.slug, "A title from the old index", case.position,
                             case.status, [], [], None, case.content_hash, 1, 1, "0" * 40]]
    legacy.write_text(json.dumps({"version": 3, "folder": resolved, "files": files}),
                      encoding="utf-8")
    parses.clear()
    loaded = corpus.load(folder, cache_dir=cache)
    assert len(parses) == 10
    assert "A title from the old index" not in {case.title for case in loaded}
    assert not legacy.exists() and _index(cache).name == f"corpus-{name}.idx"
    assert _figures(loaded.cases) == _figures(corpus.load(folder).cases)


def _restat(path: Path, stat: os.stat_result) -> None:
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.fixture(params=["just changed", "settled"])
def settled(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Both ways a load checks the names: the folder just changed (its stat vouches for no
    listing: listed every time), or settled (the clock 10 s ahead: its unchanged stat is
    enough, no listing)."""
    if request.param == "settled":
        monkeypatch.setattr(index_module, "_clock", lambda: time.time_ns() + 10_000_000_000)
        return True
    return False


def _listings(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The folders listed by the corpus index, in order."""
    seen: list[Path] = []
    listing = index_module._Folder.listing

    def counting(self: Any) -> list[str]:
        seen.append(self.directory)
        return listing(self)

    monkeypatch.setattr(index_module._Folder, "listing", counting)
    return seen


def test_every_kind_of_edit_is_seen(folder: Path, cache: Path, parses: list[str],
                                    settled: bool) -> None:
    corpus.load(folder, cache_dir=cache)
    files = sorted(folder.glob("*.md"))

    def loaded() -> list[tuple[Any, ...]]:
        parses.clear()
        result = corpus.load(folder, cache_dir=cache)
        seen = list(parses)
        assert _figures(result.cases) == _figures(corpus.load(folder).cases)
        for case in result:  # the body too, read from the file
            assert case.path is not None and case == corpus.load_file(case.path)
        parses[:] = seen
        return _figures(result.cases)

    # a longer text, its mtime put back: the size tells
    stat = files[0].stat()
    files[0].write_text(files[0].read_text(encoding="utf-8") + "Ajouté.\n", encoding="utf-8")
    _restat(files[0], stat)
    assert files[0].stat().st_mtime_ns == stat.st_mtime_ns
    loaded()
    assert parses == [files[0].name]
    # the same size, another mtime: the bytes tell (a title changed, letter for letter)
    text = files[1].read_text(encoding="utf-8")
    title = corpus.load_file(files[1]).title
    files[1].write_text(text.replace(title, title[::-1], 1), encoding="utf-8")
    assert files[1].stat().st_size == len(text.encode())
    figures = loaded()
    assert parses == [files[1].name] and title[::-1] in {row[1] for row in figures}
    # deleted
    files[2].unlink()
    loaded()
    assert parses == []
    # renamed: the new name parsed, the old one gone
    files[3].rename(folder / "renomme.md")
    figures = loaded()
    assert parses == ["renomme.md"]
    assert folder / "renomme.md" in {row[8] for row in figures}
    assert files[3] not in {row[8] for row in figures}
    # neither hidden files, other files, folders nor broken links are case studies
    (folder / ".brouillon.md").write_bytes(files[4].read_bytes())
    (folder / "notes.txt").write_text("pas un cas\n", encoding="utf-8")
    (folder / "dossier.md").mkdir()
    (folder / "lien.md").symlink_to(folder / "absent.md")
    assert len(loaded()) == 9 and parses == []
    # a folder that was a file
    files[4].unlink()
    files[4].mkdir()
    assert len(loaded()) == 8 and parses == []
    parses.clear()
    corpus.load(folder, cache_dir=cache)
    assert parses == []


def _added(folder: Path, name: str, slug: str, position: int) -> Path:
    """A new case study (a copy of the first one under another slug and position)."""
    text = sorted(folder.glob("*.md"))[0].read_text(encoding="utf-8")
    text = re.sub(r"^slug: .*$", f"slug: {slug}", text, count=1, flags=re.M)
    path = folder / name
    path.write_text(re.sub(r"^position: .*$", f"position: {position}", text, count=1,
                           flags=re.M), encoding="utf-8")
    return path


def test_a_settled_folder_is_not_listed(folder: Path, cache: Path, parses: list[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The folder's own stat unchanged since a listing it vouches for: no listing, each
    file still stat-ed (an edit in place is seen); any name added, removed or renamed
    changes that stat (the folder is listed again), and so does another folder put in its
    place."""
    monkeypatch.setattr(index_module, "_clock", lambda: time.time_ns() + 10_000_000_000)
    listed = _listings(monkeypatch)
    plain = _figures(corpus.load(folder).cases)
    corpus.load(folder, cache_dir=cache)
    index = _index(cache)
    stat = os.stat(folder)
    assert _decoded(index)["key"] == (stat.st_dev, stat.st_ino, stat.st_mtime_ns,
                                      stat.st_ctime_ns)
    listed.clear()
    parses.clear()
    written = index.read_bytes()
    assert _figures(corpus.load(folder, cache_dir=cache).cases) == plain
    assert listed == [] and parses == [] and index.read_bytes() == written

    def loaded(names: int) -> list[str]:
        listed.clear()
        parses.clear()
        result = corpus.load(folder, cache_dir=cache)
        assert _figures(result.cases) == _figures(corpus.load(folder).cases)
        assert len(result) == names
        seen = [path.name for path in listed if path == folder]
        listed.clear()
        again = corpus.load(folder, cache_dir=cache)  # the new stat vouches: no listing
        assert listed == [] and _figures(again.cases) == _figures(result.cases)
        return seen

    files = sorted(folder.glob("*.md"))
    # in place: the folder's stat does not move, the file's does
    before = os.stat(folder)
    files[0].write_text(files[0].read_text(encoding="utf-8") + "Ajouté.\n", encoding="utf-8")
    assert os.stat(folder).st_mtime_ns == before.st_mtime_ns
    assert loaded(10) == [] and parses[:1] == [files[0].name]
    # added, removed, renamed: listed again
    _added(folder, "nouvelle.md", "nouvelle", 99)
    assert loaded(11) == ["corpus"]
    files[1].unlink()
    assert loaded(10) == ["corpus"]
    files[2].rename(folder / "renomme.md")
    assert loaded(10) == ["corpus"]
    paths = {case.path for case in corpus.load(folder, cache_dir=cache)}
    assert folder / "renomme.md" in paths and files[2] not in paths
    # added, the folder's mtime then put back (as rsync -t or tar do): its ctime tells
    mtime = os.stat(folder).st_mtime_ns
    _added(folder, "encore.md", "encore", 98)
    os.utime(folder, ns=(mtime, mtime))
    assert loaded(11) == ["corpus"]
    # another folder in its place, even with the same mtime
    mtime = os.stat(folder).st_mtime_ns
    folder.rename(folder.with_name("ancien"))
    shutil.copytree(folder.with_name("ancien"), folder)
    (folder / "nouvelle.md").unlink()
    os.utime(folder, ns=(mtime, mtime))
    assert loaded(10) == ["corpus"]


def test_a_listing_in_the_tick_of_a_change_is_not_trusted(
        folder: Path, cache: Path, parses: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A file system with coarse time stamps can leave the folder's stat as it was when a
    file is added, removed or renamed in the same tick as the listing: the index keeps no
    folder stat (and lists the folder at every load) until that stat is older than a margin,
    so such a change is never hidden. Simulated here: the folder's stat frozen, the clock a
    second after it."""
    frozen = os.stat(folder)
    real = os.fstat

    def coarse(fd: int) -> os.stat_result:
        found = real(fd)
        same = (found.st_dev, found.st_ino) == (frozen.st_dev, frozen.st_ino)
        return frozen if same else found

    monkeypatch.setattr(index_module.os, "fstat", coarse)
    tick = max(frozen.st_mtime_ns, frozen.st_ctime_ns) + 1_000_000_000
    monkeypatch.setattr(index_module, "_clock", lambda: tick)
    listed = _listings(monkeypatch)
    corpus.load(folder, cache_dir=cache)
    index = _index(cache)
    assert _decoded(index)["key"] is None
    files = sorted(folder.glob("*.md"))

    def loaded() -> list[tuple[Any, ...]]:
        listed.clear()
        result = _figures(corpus.load(folder, cache_dir=cache).cases)
        assert listed == [folder] and result == _figures(corpus.load(folder).cases)
        return result

    assert len(loaded()) == 10
    _added(folder, "nouvelle.md", "nouvelle", 99)
    assert len(loaded()) == 11
    files[1].unlink()
    assert len(loaded()) == 10
    files[2].rename(folder / "renomme.md")
    assert folder / "renomme.md" in {row[8] for row in loaded()}
    assert _decoded(index)["key"] is None
    # the margin past: the stat vouches for the listing taken then (kept, no listing after)
    monkeypatch.setattr(index_module, "_clock", lambda: tick + 10_000_000_000)
    corpus.load(folder, cache_dir=cache)
    assert _decoded(index)["key"] == (frozen.st_dev, frozen.st_ino, frozen.st_mtime_ns,
                                      frozen.st_ctime_ns)
    listed.clear()
    corpus.load(folder, cache_dir=cache)
    assert listed == []


def _draft(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"^status: .*$", "status: draft", text, count=1, flags=re.M),
                    encoding="utf-8")


def test_queue_values_are_the_queues_without_a_record(folder: Path, cache: Path,
                                                      parses: list[str]) -> None:
    """``queue_values``: the queue's attributes from the index's columns (no record built),
    equal to reading them from ``queue``'s records, through the index or not."""
    files = sorted(folder.glob("*.md"))
    _draft(files[3])
    published = [corpus.load_file(files[0]).slug, corpus.load_file(files[7]).slug, "autre"]
    names = ("position", "slug", "title", "status", "companies", "words", "file_digest")
    plain = corpus.load(folder)
    expected = [tuple(getattr(case, name) for name in names)
                for case in corpus.queue(plain, published)]
    assert len(expected) == 7 and corpus.load_file(files[3]).slug not in {
        row[1] for row in expected}
    assert corpus.queue_values(plain, published, *names) == expected
    corpus.load(folder, cache_dir=cache)
    parses.clear()
    loaded = corpus.load(folder, cache_dir=cache)
    assert corpus.queue_values(loaded, published, *names) == expected
    assert corpus.queue_values(loaded, (), "slug") == [
        (case.slug,) for case in corpus.queue(plain, ())]
    for source in (loaded, plain):  # the first few (schedule), and how many in all
        assert corpus.queue_values(source, published, *names, limit=3) == expected[:3]
        assert corpus.queue_head(source, published, *names, limit=2) == (
            len(expected), expected[:2])
        assert corpus.queue_head(source, (), "slug", limit=0) == (
            len(corpus.queue(plain, ())), [])
    assert loaded._table is not None and loaded._table._records is None  # no record built
    assert parses == []
    # an attribute without a column: from the records, the same
    assert corpus.queue_values(loaded, published, "slug", "path") == [
        (case.slug, case.path) for case in corpus.queue(plain, published)]


def test_file_digests_are_read_from_the_index(folder: Path, cache: Path) -> None:
    """``Corpus.values(..., "file_digest")``: the sha256 of each file's bytes, as the
    records give it, without building one."""
    corpus.load(folder, cache_dir=cache)
    loaded = corpus.load(folder, cache_dir=cache)
    digests = loaded.values("slug", "file_digest")
    assert loaded._table is not None and loaded._table._records is None
    assert digests == [(case.slug, hashlib.sha256(case.path.read_bytes()).hexdigest())
                       for case in corpus.load(folder) if case.path is not None]
    assert digests == [(case.slug, case.file_digest) for case in loaded]


def test_a_case_study_is_found_by_slug_without_building_the_others(
        folder: Path, cache: Path) -> None:
    corpus.load(folder, cache_dir=cache)
    plain = corpus.load(folder)
    loaded = corpus.load(folder, cache_dir=cache)
    slug = plain.cases[4].slug
    found = loaded.get(slug)
    assert loaded._table is not None and loaded._table._records is None
    assert found is not None and loaded.get(slug) is found
    assert _figures([found]) == _figures([plain.cases[4]]) and found == plain.cases[4]
    assert loaded.get("absent") is None and plain.get("absent") is None
    assert found in loaded.cases and loaded.cases[4] is found  # the same record after
    assert loaded.get(plain.cases[0].slug) is loaded.cases[0]


def test_duplicates_across_files_are_found_from_the_index(
        folder: Path, cache: Path, parses: list[str]) -> None:
    corpus.load(folder, cache_dir=cache)
    files = sorted(folder.glob("*.md"))
    # a copy: same slug and position as its original
    (folder / "zz-copie.md").write_bytes(files[2].read_bytes())
    # an edit: a position taken by another file
    other = corpus.load_file(files[5]).position
    text = files[0].read_text(encoding="utf-8")
    files[0].write_text(re.sub(r"^position: .*$", f"position: {other}", text, count=1,
                               flags=re.M), encoding="utf-8")
    expected = corpus.check(folder)[1]
    assert len(expected) == 3 and all("duplicate" in p for p in expected)
    parses.clear()
    assert corpus.check(folder, cache_dir=cache)[1] == expected
    assert sorted(parses) == sorted(["zz-copie.md", files[0].name])
    parses.clear()
    cases, problems = corpus.check(folder, cache_dir=cache)  # from the index alone
    assert problems == expected and parses == []
    assert cases == corpus.check(folder)[0]
    with pytest.raises(CorpusError) as raised:
        corpus.load(folder, cache_dir=cache)
    assert raised.value.problems == expected


def test_records_from_the_index_are_filled_on_first_use(
        folder: Path, cache: Path, parses: list[str]) -> None:
    corpus.load(folder, cache_dir=cache)
    parses.clear()
    loaded = corpus.load(folder, cache_dir=cache)
    parsed = corpus.load(folder)
    # born with the queue's fields only: a queue, a count of drafts, a lookup fill nothing
    draft = loaded.cases[4]
    assert draft.path is not None
    draft.path.write_text(draft.path.read_text(encoding="utf-8").replace(
        "status: ready", "status: draft"), encoding="utf-8")
    loaded = corpus.load(folder, cache_dir=cache)
    parsed = corpus.load(folder)
    parses.clear()
    published = [loaded.cases[0].slug, loaded.cases[7].slug]
    pending = corpus.queue(loaded, published)
    assert [c.slug for c in pending] == [c.slug for c in corpus.queue(parsed, published)]
    assert [c.slug for c in pending] == [c.slug for c in corpus.queue(list(parsed), published)]
    assert sum(c.is_draft for c in loaded) == 1 and loaded.get(published[1]) is loaded.cases[7]
    assert all(sorted(vars(c)) == ["_row", "position", "slug", "status", "title"]
               for c in pending if c.slug != draft.slug)
    # what a listing reads comes from the columns, without filling a record
    names = ("position", "slug", "title", "section_count", "words", "companies", "themes",
             "status", "content_hash", "text_digest")
    assert loaded.values(*names) == parsed.values(*names)
    assert all("_row" in vars(c) for c in pending if c.slug != draft.slug)
    # any other field fills the record, all but its path and body, made on first access
    first = loaded.cases[1]
    assert first.companies == parsed.cases[1].companies and "path" not in vars(first)
    assert vars(first)["lede"] is _case._UNLOADED and parses == []
    assert first.path == parsed.cases[1].path and "path" in vars(first)
    assert _figures(loaded.cases) == _figures(parsed.cases) and parses == []
    assert loaded.cases == parsed.cases and len(parses) == 9  # == reads each body (1 parsed)
    assert loaded == parsed and loaded.by_slug() == parsed.by_slug()


def test_an_unfilled_record_pickles_whole(folder: Path, cache: Path) -> None:
    import copy
    import pickle

    corpus.load(folder, cache_dir=cache)
    case = corpus.load(folder, cache_dir=cache).cases[3]
    assert "_row" in vars(case)
    for twin in (pickle.loads(pickle.dumps(case)), copy.copy(case), copy.deepcopy(case)):
        assert "_row" not in vars(twin) and _figures([twin]) == _figures([case])
        assert twin == corpus.load_file(folder / twin.path.name)  # type: ignore[union-attr]
    assert corpus.replace(case, title="Autre").companies == case.companies


def test_no_cache_folder_is_created_without_its_parent(tmp_path: Path) -> None:
    shutil.copytree(SEEDS, tmp_path / "corpus")
    corpus.load(tmp_path / "corpus", cache_dir=tmp_path / "var" / "cache")
    assert not (tmp_path / "var").exists()


# --------------------------------------------------------------------------- relatedness


def test_tfidf_is_scikit_learns() -> None:
    documents = [related.analyze(case.text) for case in corpus.load(SEEDS)]
    documents.append([])  # an empty document stays an empty row
    vocabulary, counts = related.term_counts(documents)
    expected = TfidfVectorizer(analyzer=lambda terms: terms, sublinear_tf=True)
    matrix = expected.fit_transform(documents)
    assert vocabulary == list(expected.get_feature_names_out())
    np.testing.assert_allclose(related.tfidf(counts).toarray(), matrix.toarray(), atol=1e-6)


def _edited(cases: tuple[CaseStudy, ...], index: int, text: str) -> list[CaseStudy]:
    edited = list(cases)
    case = cases[index]
    edited[index] = corpus.replace(case, lede=text)
    return edited


def _same(one: related.RelatednessIndex, two: related.RelatednessIndex) -> None:
    assert one.slugs == two.slugs and one.fingerprint == two.fingerprint
    a, b = one.to_arrays(), two.to_arrays()
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_update_after_an_edit_equals_a_full_fit() -> None:
    cases = corpus.load(SEEDS).cases
    before = related.build_index(cases)
    # new words, and words only the old lede had dropped
    edited = _edited(cases, 3, "Un paragraphe entièrement nouveau sur la photosynthèse.")
    updated = related.update_index(before, edited)
    assert updated is not None
    _same(updated, related.build_index(edited))
    removed = [c for c in cases if c.slug != cases[5].slug]
    updated = related.update_index(before, removed)
    assert updated is not None
    _same(updated, related.build_index(removed))


def test_an_edit_analyses_only_the_edited_text(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    cases = corpus.load(SEEDS).cases
    related.clear_memory_cache()
    related.load_or_build(cases, tmp_path)
    related.clear_memory_cache()  # a fresh process: only the cache file is there
    analysed: list[str] = []
    analyze = related.analyze

    def counting(text: str) -> list[str]:
        analysed.append(text)
        return analyze(text)

    monkeypatch.setattr(related, "analyze", counting)
    edited = _edited(cases, 7, "Une phrase réécrite par la rédaction.")
    index = related.load_or_build(edited, tmp_path)
    assert analysed == [edited[7].text]
    monkeypatch.setattr(related, "analyze", analyze)
    _same(index, related.build_index(edited))
    assert [p.name for p in tmp_path.glob("related-*.rel")] == [
        f"related-{index.fingerprint}.rel"]
    related.clear_memory_cache()
    # rankings as a full fit gives them
    fitted = related.build_index(edited)
    for case in edited:
        assert index.related(case.slug) == fitted.related(case.slug)


def test_an_index_record_pickles_and_compares_without_its_body(
        folder: Path, cache: Path, parses: list[str]) -> None:
    import pickle

    corpus.load(folder, cache_dir=cache)
    parses.clear()
    cases = corpus.load(folder, cache_dir=cache).cases
    copies = pickle.loads(pickle.dumps(cases))
    assert related._same_cases(cases, copies) and parses == []
    assert copies[0].lede == corpus.load_file(folder / copies[0].path.name).lede  # type: ignore[union-attr]


def test_commands_keep_the_index_beside_the_ledger(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from syndicate.cli import cli

    root = Path(__file__).resolve().parents[1]
    shutil.copytree(root / "config", tmp_path / "config")
    shutil.copytree(SEEDS, tmp_path / "corpus")
    config = tmp_path / "config" / "syndicate.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        '"../syndicate/examples/corpus"', '"../corpus"'), encoding="utf-8")
    runner = CliRunner()
    listed = runner.invoke(cli, ["--config", str(config), "corpus", "list", "--json"])
    assert listed.exit_code == 0 and not (tmp_path / "var").exists()  # no ledger folder yet
    (tmp_path / "var").mkdir()
    again = runner.invoke(cli, ["--config", str(config), "corpus", "list", "--json"])
    assert again.output == listed.output
    rows = [{"position": c.position, "slug": c.slug, "title": c.title,
             "sections": c.section_count, "words": c.words, "companies": list(c.companies),
             "themes": list(c.themes), "status": c.status}
            for c in corpus.load(tmp_path / "corpus")]
    assert listed.output == json.dumps(rows, ensure_ascii=False, indent=2) + "\n"
    table = runner.invoke(cli, ["--config", str(config), "corpus", "list"])
    assert table.exit_code == 0 and "10 case studies" in table.output
    assert len(list((tmp_path / "var" / "cache").glob("corpus-*.idx"))) == 1
    checked = runner.invoke(cli, ["--config", str(config), "corpus", "check"])
    assert checked.exit_code == 0 and "10 case studies OK" in checked.output


def test_an_output_is_kept_while_the_index_is_unchanged(folder: Path, cache: Path,
                                                        settled: bool) -> None:
    """``Corpus.kept``: made once per state of the index and version, read back after;
    any change to the files (or a repaired index) makes it again."""
    made: list[bytes] = []

    def kept(version: bytes = b"1", **where: Any) -> bytes:
        loaded = corpus.load(folder, **where)

        def make() -> bytes:
            made.append(json.dumps(loaded.values("slug", "title", "words")).encode())
            return made[-1]

        result = loaded.kept("test.json", version, make)
        assert result == json.dumps(corpus.load(folder).values(
            "slug", "title", "words")).encode()
        return result

    first = kept(cache_dir=cache)
    assert len(made) == 1 and kept(cache_dir=cache) == first and len(made) == 1
    assert (_index(cache).parent / f"{_index(cache).name}.test.json").exists()
    assert kept(b"2", cache_dir=cache) == first and len(made) == 2
    kept(None, cache_dir=cache)  # type: ignore[arg-type]
    assert len(made) == 3
    kept(b"2", cache_dir=cache)
    assert len(made) == 3
    files = sorted(folder.glob("*.md"))
    text = files[0].read_text(encoding="utf-8")
    files[0].write_text(text + "Une phrase de plus.\n", encoding="utf-8")  # in place
    assert kept(b"2", cache_dir=cache) != first and len(made) == 4
    _added(folder, "nouvelle.md", "nouvelle", 99)
    kept(b"2", cache_dir=cache)
    assert len(made) == 5
    # a damaged column: not read for a kept output (made from the columns before the
    # damage: the files'); once read, repaired from the files, a new state of the index
    parts = _decoded(_index(cache))
    parts["words"][0] = "x"
    _written(_index(cache), parts)
    kept(b"2", cache_dir=cache)
    assert len(made) == 5
    corpus.load(folder, cache_dir=cache).values("words")
    kept(b"2", cache_dir=cache)
    assert len(made) == 6
    kept(b"2", cache_dir=cache)
    assert len(made) == 6
    kept(b"2")  # no index: made every time
    assert len(made) == 7


def test_the_json_listing_is_kept_and_follows_every_edit(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    from click.testing import CliRunner

    from syndicate.cli import cli
    from syndicate.cli import corpus as corpus_cli

    shutil.copytree(SEEDS, tmp_path / "corpus")
    (tmp_path / "var").mkdir()
    files = sorted((tmp_path / "corpus").glob("*.md"))
    made = []
    listing = corpus_cli._json_listing
    monkeypatch.setattr(corpus_cli, "_json_listing",
                        lambda rows: made.append(1) or listing(rows))

    def listed() -> str:
        result = CliRunner().invoke(cli, ["--config", str(_config(tmp_path)), "corpus",
                                          "list", "--json"])
        assert result.exit_code == 0, result.output
        rows = [{"position": c.position, "slug": c.slug, "title": c.title,
                 "sections": c.section_count, "words": c.words,
                 "companies": list(c.companies), "themes": list(c.themes),
                 "status": c.status} for c in corpus.load(tmp_path / "corpus")]
        assert result.output == json.dumps(rows, ensure_ascii=False, indent=2) + "\n"
        return result.output

    first = listed()
    assert listed() == first and len(made) == 1  # the second one read back
    title = corpus.load_file(files[1]).title
    text = files[1].read_text(encoding="utf-8")
    files[1].write_text(text.replace(title, title[::-1], 1), encoding="utf-8")
    assert title[::-1] in listed() and len(made) == 2
    _draft(files[2])
    assert '"status": "draft"' in listed() and len(made) == 3
    assert listed() and len(made) == 3


def _config(root: Path) -> Path:
    config = root / "config" / "syndicate.toml"
    if not config.exists():
        shutil.copytree(Path(__file__).resolve().parents[1] / "config", root / "config")
        config.write_text(config.read_text(encoding="utf-8").replace(
            '"../syndicate/examples/corpus"', '"../corpus"'), encoding="utf-8")
    return config


def test_the_relatedness_key_is_kept_beside_the_corpus_index(
    folder: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publish keys the relatedness cache by ``related.kept_fingerprint``: the corpus's
    fingerprint, computed once per state of the corpus index (filling every record costs
    about 90 ms at 10,000 case studies), made again after any edit."""
    loaded = corpus.load(folder, cache_dir=cache)
    first = related.kept_fingerprint(loaded)
    assert first == related.corpus_fingerprint(corpus.load(folder).cases)

    def refuse(cases: object) -> str:
        raise AssertionError("fingerprinted again, the corpus being unchanged")

    with monkeypatch.context() as patch:
        patch.setattr(related, "corpus_fingerprint", refuse)
        assert related.kept_fingerprint(corpus.load(folder, cache_dir=cache)) == first
    path = sorted(folder.glob("*.md"))[0]
    path.write_text(path.read_text(encoding="utf-8") + "Une phrase de plus.\n",
                    encoding="utf-8")  # the text: its digest is in the fingerprint
    edited = corpus.load(folder, cache_dir=cache)
    again = related.kept_fingerprint(edited)
    assert again != first
    assert again == related.corpus_fingerprint(corpus.load(folder).cases)


def test_file_digests_and_drafts_of_the_index_are_the_records(
    folder: Path, cache: Path
) -> None:
    files = sorted(folder.glob("*.md"))
    text = files[1].read_text(encoding="utf-8")
    files[1].write_text(re.sub(r"^status: .*$", "status: draft", text, count=1, flags=re.M)
                        if re.search(r"^status: ", text, flags=re.M)
                        else text.replace("\nslug: ", "\nstatus: draft\nslug: ", 1),
                        encoding="utf-8")
    indexed, plain = corpus.load(folder, cache_dir=cache), corpus.load(folder)
    cases = plain.by_slug()
    wanted = [*sorted(cases)[::2], "no-such-slug"]
    expected = {slug: cases[slug].file_digest for slug in wanted if slug in cases}
    assert indexed.file_digests(wanted) == plain.file_digests(wanted) == expected
    assert all(digest and len(digest) == 64 for digest in expected.values())
    drafts = sum(1 for case in plain if case.is_draft)
    assert indexed.drafts() == plain.drafts() == drafts == 1
    assert indexed._table is not None and indexed._table._records is None  # no record built
