"""The corpus file format: round trip, operator edits, and precise errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from syndicate import corpus
from syndicate.cli import cli
from syndicate.corpus import CaseStudy, Section, Source
from syndicate.errors import CorpusError
from syndicate.text import slugify

CASE = CaseStudy(
    slug="semaine-de-quatre-jours",
    title="Travailler quatre jours par semaine : un an d’expérimentation",
    lede="La semaine de quatre jours, longtemps perçue comme une utopie\u00a0: 100 % réel… 3 €.",
    sections=(
        Section("Un choc culturel", ("Chez Alan & Co, “tout” change.", "Deuxième paragraphe.")),
        Section("Une marque employeur", ("Chez LDLC, <script>alert(1)</script> {{ 7*7 }}.",)),
    ),
    position=3,
    companies=("Alan & Co", "LDLC"),
    themes=("organisation du travail",),
    source=Source("000_page.txt", 4),
)


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_round_trip_keeps_text_exactly(tmp_path: Path) -> None:
    path = corpus.save(CASE, tmp_path)
    loaded = corpus.load_file(path)
    assert loaded.title == CASE.title
    assert loaded.lede == CASE.lede  # NBSP, %, …, € kept
    assert loaded.sections == CASE.sections
    assert loaded.companies == CASE.companies
    assert loaded.source == CASE.source
    assert loaded.content_hash == CASE.computed_hash()
    # Saving what was loaded changes no byte.
    before = path.read_bytes()
    corpus.save(loaded, tmp_path)
    assert path.read_bytes() == before


def test_operator_edits_are_read_back(tmp_path: Path) -> None:
    path = corpus.save(CASE, tmp_path)
    text = path.read_text(encoding="utf-8")
    text = text.replace("position: 3", "position: 1").replace("status: ready", "status: draft")
    text = text.replace("Deuxième paragraphe.", "Deuxième paragraphe corrigé.")
    path.write_text(text, encoding="utf-8")
    loaded = corpus.load_file(path)
    assert loaded.position == 1
    assert loaded.is_draft
    assert loaded.sections[0].paragraphs[1] == "Deuxième paragraphe corrigé."
    # The stored hash is the hash as imported: an edited text no longer matches it.
    assert loaded.content_hash == CASE.computed_hash() != loaded.computed_hash()


def test_load_orders_by_position(tmp_path: Path) -> None:
    for position, slug in ((2, "b-case"), (1, "a-case"), (3, "c-case")):
        corpus.save(corpus.replace(CASE, slug=slug, position=position), tmp_path)
    assert [c.slug for c in corpus.load(tmp_path)] == ["a-case", "b-case", "c-case"]


GOOD = corpus.dumps(CASE)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.md", "", "empty.md:1: empty file"),
        ("nofront.md", "Juste du texte.\n", "nofront.md:1: missing front matter"),
        ("unclosed.md", "---\nslug: a\n", "unclosed.md:1: front matter is not closed"),
        (
            "badyaml.md",
            "---\nslug: a\ntitle: [oops\n---\n\nLede.\n",
            "badyaml.md:3: front matter is not valid YAML",
        ),
        (
            "notitle.md",
            "\n".join(line for line in GOOD.split("\n") if not line.startswith("title:")),
            "notitle.md:1: missing required key 'title'",
        ),
        (
            "badpos.md",
            GOOD.replace("position: 3", "position: trois"),
            "badpos.md:4: 'position' must be a whole number >= 0, got 'trois'",
        ),
        (
            "badstatus.md",
            GOOD.replace("status: ready", "status: live"),
            "badstatus.md:5: 'status' must be one of ready, draft, got 'live'",
        ),
        (
            "badslug.md",
            GOOD.replace(f"slug: {CASE.slug}", "slug: Pas Un Slug"),
            "badslug.md:2: 'slug' must be lowercase words joined by '-'",
        ),
        (
            "reserved.md",
            GOOD.replace(f"slug: {CASE.slug}", "slug: page"),
            "reserved.md:2: 'slug' 'page' is a reserved name (an archive folder or a web route "
            "would collide with it): choose another",
        ),
        (
            "year.md",
            GOOD.replace(f"slug: {CASE.slug}", "slug: '2026'"),
            "year.md:2: 'slug' '2026' is a reserved name",
        ),
        (
            "badcompanies.md",
            GOOD.replace("companies:", "companies: 12\nx_companies:"),
            "badcompanies.md:6: 'companies' must be a list of non-empty strings",
        ),
        (
            "unknownkey.md",
            GOOD.replace("themes:", "colour: red\nthemes:"),
            "unknownkey.md:7: unknown key 'colour'",
        ),
        ("nosections.md", GOOD.split("## ")[0], "nosections.md:11: no sections"),
        (
            "emptysection.md",
            GOOD.replace(
                "## Une marque employeur\n\nChez LDLC, <script>alert(1)</script> {{ 7*7 }}.\n",
                "## Une marque employeur\n",
            ),
            "emptysection.md:20: section 'Une marque employeur' has no paragraph",
        ),
        (
            "nonutf8.md",
            GOOD.encode("utf-8").replace(b"Travailler", b"Trav\xe9iller"),
            "nonutf8.md:3: not valid UTF-8 (byte 0xe9",
        ),
    ],
)
def test_malformed_file_gives_precise_error(
    tmp_path: Path, name: str, content: str | bytes, expected: str
) -> None:
    path = write(tmp_path, name, content)
    with pytest.raises(CorpusError) as info:
        corpus.load_file(path)
    assert any(
        problem.startswith(str(tmp_path / expected.split(":")[0]) + expected[len(name) :])
        for problem in info.value.problems
    ), info.value.problems


def test_duplicate_slug_and_position_across_files(tmp_path: Path) -> None:
    write(tmp_path, "a.md", GOOD)
    write(tmp_path, "b.md", GOOD)
    cases, problems = corpus.check(tmp_path)
    assert len(cases) == 2
    assert (
        f"{tmp_path / 'b.md'}:2: duplicate slug '{CASE.slug}' (also in {tmp_path / 'a.md'})"
        in problems
    )
    assert f"{tmp_path / 'b.md'}:4: duplicate position 3 (also in {tmp_path / 'a.md'})" in problems


def test_corpus_check_cli_reports_every_problem(tmp_path: Path) -> None:
    write(tmp_path, "good.md", GOOD)
    write(tmp_path, "empty.md", "")
    write(
        tmp_path,
        "bad.md",
        GOOD.replace("position: 3", "position: -1").replace(f"slug: {CASE.slug}", "slug: other"),
    )
    result = CliRunner().invoke(cli, ["corpus", "check", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{tmp_path / 'empty.md'}:1: empty file" in result.output
    assert (
        f"{tmp_path / 'bad.md'}:4: 'position' must be a whole number >= 0, got -1" in result.output
    )
    assert "Traceback" not in result.output


def test_corpus_check_cli_ok(tmp_path: Path) -> None:
    corpus.save(CASE, tmp_path)
    result = CliRunner().invoke(cli, ["corpus", "check", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "1 case studies OK" in result.output


def test_corpus_list_json(tmp_path: Path) -> None:
    corpus.save(CASE, tmp_path)
    result = CliRunner().invoke(cli, ["corpus", "list", "--json", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    import json

    (row,) = json.loads(result.output)
    assert row["slug"] == CASE.slug
    assert row["sections"] == 2
    assert row["companies"] == ["Alan & Co", "LDLC"]
    assert row["position"] == 3
    assert row["words"] == CASE.words


def test_corpus_list_json_is_json_dumps_byte_for_byte(tmp_path: Path) -> None:
    """The listing writes its JSON itself (fast): the bytes json.dumps(indent=2) gives."""
    import json

    assert CliRunner().invoke(cli, ["corpus", "list", "--json", "--dir", str(tmp_path)]
                              ).output == "[]\n"
    odd = ['Guillemets "droits", \\ barre, \t tab', "\x01\x1f contrôle \u2028 ligne",
           "émoji 😀 </script> {{ x }}", "é" * 3]
    for number, title in enumerate(odd):
        corpus.save(corpus.replace(CASE, slug=f"cas-{number}", title=title, position=number,
                                   companies=tuple(odd[:number]), themes=tuple(odd[number:]),
                                   status="draft" if number == 2 else "ready",
                                   content_hash=""), tmp_path)
    result = CliRunner().invoke(cli, ["corpus", "list", "--json", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = [{"position": c.position, "slug": c.slug, "title": c.title,
             "sections": c.section_count, "words": c.words, "companies": list(c.companies),
             "themes": list(c.themes), "status": c.status} for c in corpus.load(tmp_path)]
    assert [row["title"] for row in rows] == odd
    assert result.output == json.dumps(rows, ensure_ascii=False, indent=2) + "\n"


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        (
            "Refuser les levées de fonds : stratégie d’indépendance",
            "refuser-les-levees-de-fonds-strategie-d-independance",
        ),
        ("Supprimer 90 % des réunions", "supprimer-90-des-reunions"),
        ("Œuvrer à l’été", "oeuvrer-a-l-ete"),
        ("!!!", "case-study"),
    ],
)
def test_slugify(title: str, slug: str) -> None:
    assert slugify(title) == slug
