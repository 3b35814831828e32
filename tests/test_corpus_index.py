"""The on-disk corpus index and the incremental relatedness update (issue 13).

Real corpus folders (copies of the sample corpus), real index files; parses are counted by
wrapping the parser, so "only the changed file is parsed again" is observed, not assumed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from syndicate import corpus, related
from syndicate.corpus import CaseStudy

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
    parse: Callable[..., Any] = corpus._parse

    def counting(path: Path, raw: bytes, problems: Any) -> Any:
        seen.append(path.name)
        return parse(path, raw, problems)

    monkeypatch.setattr(corpus, "_parse", counting)
    return seen


def _figures(cases: tuple[CaseStudy, ...] | list[CaseStudy]) -> list[tuple[Any, ...]]:
    return [(c.slug, c.title, c.position, c.status, c.companies, c.themes, c.source,
             c.content_hash, c.path, c.words, c.section_count, c.text_digest) for c in cases]


def test_only_changed_files_are_parsed_again(folder: Path, cache: Path,
                                             parses: list[str]) -> None:
    first = corpus.load(folder, cache_dir=cache)
    assert len(parses) == 10 and len(list(cache.glob("corpus-*.json"))) == 1
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


@pytest.mark.parametrize("damage", [
    b"\x00not json", b"[]", b'{"version": 2, "folder": "elsewhere", "files": {}}', b"",
    b'{"version": 1, "folder": "", "files": {}}',
])
def test_a_corrupt_index_is_ignored_and_rebuilt(folder: Path, cache: Path,
                                                parses: list[str], damage: bytes) -> None:
    corpus.load(folder, cache_dir=cache)
    (index,) = cache.glob("corpus-*.json")
    index.write_bytes(damage)
    parses.clear()
    assert corpus.load(folder, cache_dir=cache) == corpus.load(folder)
    assert len(parses) == 20  # with the index (ignored) and without
    assert len(json.loads(index.read_bytes())["files"]) == 10  # rewritten
    parses.clear()
    corpus.load(folder, cache_dir=cache)
    assert parses == []


def test_a_damaged_entry_is_parsed_again(folder: Path, cache: Path, parses: list[str]) -> None:
    corpus.load(folder, cache_dir=cache)
    (index,) = cache.glob("corpus-*.json")
    data = json.loads(index.read_bytes())
    name = sorted(data["files"])[0]
    del data["files"][name][4][1]  # the record loses its title
    index.write_text(json.dumps(data), encoding="utf-8")
    parses.clear()
    assert _figures(corpus.load(folder, cache_dir=cache).cases) == _figures(
        corpus.load(folder).cases)
    assert parses.count(name) == 2 and len(parses) == 11  # with the index and without


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
    assert len(list((tmp_path / "var" / "cache").glob("corpus-*.json"))) == 1
    checked = runner.invoke(cli, ["--config", str(config), "corpus", "check"])
    assert checked.exit_code == 0 and "10 case studies OK" in checked.output
