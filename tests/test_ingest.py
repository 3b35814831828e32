"""The importer on real files: the seed pages, pages built from them with the chrome and
layouts of other pages of the same site, conflicts, --force, errors, and the CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from syndicate import corpus as corpus_mod
from syndicate.cli import cli
from syndicate.ingest import import_pages, parse_page
from syndicate.ingest.chrome import chrome_reason, is_list_marker
from syndicate.text import slugify

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "tests" / "data" / "seeds"  # copies of ../shared/seeds
BIG = SEEDS / "000_2ed753a566ed84a8.txt"
SINGLE = SEEDS / "001_f9bf7b5107cc4f5f.txt"

# Read by hand from the big seed page: every article's title and number of sections.
EXPECTED = [
    ("Refuser les levées de fonds : stratégie d’indépendance et résultats à la clé", 6),
    ("Quand écarter son plus gros client devient une décision de croissance", 6),
    ("Supprimer 90 % des réunions : un levier inattendu de performance commerciale", 6),
    ("Travailler quatre jours par semaine : un an d’expérimentation, entre réussites et "
     "limites", 6),
    ("Ce que révèle l’acceptation systématique de tous les partenariats pendant un mois", 5),
    ("Les enseignements tirés de la création d’un produit sans marché", 6),
    ("Quand une entreprise frôle la crise… et en ressort renforcée", 5),
    ("Comment une erreur à 100K€ peut ouvrir la voie à un rebond à 1M€", 5),
    ("Ce que révèle une immersion du dirigeant dans son propre environnement opérationnel", 5),
    ("Quand l’intelligence artificielle prend une décision stratégique à la place du "
     "dirigeant", 6),
]
TITLES = [title for title, _ in EXPECTED]
# The seed lines that belong to the site, not to an article.
SEED_CHROME = ["Accueil Blog Page 12", "A lire !", "Plus d'articles", "Derniers articles"]


@dataclass
class SeedArticle:
    title: str
    lede: str
    sections: list[tuple[str, list[str]]]


def seed_articles() -> list[SeedArticle]:
    """The big page cut by hand knowledge (the titles above; on this page headings are
    under 150 characters and paragraphs over), independently of the importer."""
    articles: list[SeedArticle] = []
    for line in (raw.strip() for raw in BIG.read_text(encoding="utf-8").splitlines()):
        if not line or line in SEED_CHROME:
            continue
        if line in TITLES:
            articles.append(SeedArticle(line, "", []))
        elif not articles[-1].lede:
            articles[-1].lede = line
        elif len(line) < 150:
            articles[-1].sections.append((line, []))
        else:
            articles[-1].sections[-1][1].append(line)
    return articles


def seed_paragraphs(path: Path) -> list[str]:
    """The prose lines of a seed page (all over 300 characters; chrome and headlines are
    under 100), stripped of surrounding white space."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if len(line) > 150]


def page_text(*blocks: str) -> str:
    return "\n\n".join(blocks) + "\n"


def article_blocks(article: SeedArticle, *, paragraphs_per_section: int | None = None,
                   after_title: tuple[str, ...] = (),
                   between_sections: tuple[str, ...] = ()) -> list[str]:
    blocks = [article.title, *after_title, article.lede]
    for index, (heading, paragraphs) in enumerate(article.sections):
        if index == 2:
            blocks.extend(between_sections)
        blocks += [heading, *paragraphs[:paragraphs_per_section]]
    return blocks


def shape(parsed) -> list[tuple[str, str, list[tuple[str, list[str]]]]]:
    return [(a.title, a.lede, [(s.heading, list(s.paragraphs)) for s in a.sections])
            for a in parsed.articles]


def expected_shape(articles, paragraphs_per_section=None):
    return [(a.title, a.lede, [(h, ps[:paragraphs_per_section]) for h, ps in a.sections])
            for a in articles]


def import_seeds(corpus_dir: Path, **options):
    return import_pages([BIG, SINGLE], corpus_dir, **options)


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(directory.iterdir())}


def set_front(path: Path, key: str, value: str) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    lines = [f"{key}: {value}" if line.startswith(f"{key}:") else line for line in lines]
    path.write_text("\n".join(lines), encoding="utf-8")


# --------------------------------------------------------------------------- the seeds


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    directory = tmp_path / "corpus"
    report = import_seeds(directory)
    assert report.totals() == "new: 10, duplicate: 1, conflict: 0, skipped: 4, errors: 0"
    return directory


def test_seed_import_gives_ten_articles_with_titles_and_section_counts(seeded: Path):
    corpus = corpus_mod.load(seeded)  # validates every file as `corpus check` does
    assert [(c.title, len(c.sections)) for c in corpus] == EXPECTED
    assert [c.position for c in corpus] == list(range(1, 11))
    assert all(c.status == "ready" and c.themes and c.companies for c in corpus)
    assert [c.source for c in corpus] == [
        corpus_mod.Source(BIG.name, rank) for rank in range(1, 11)]
    for case in corpus:
        assert case.slug == slugify(case.title)
        assert case.path == seeded / f"{case.slug}.md"
        assert case.content_hash == case.computed_hash()


def test_seed_structure_matches_a_reading_by_hand(seeded: Path):
    corpus = corpus_mod.load(seeded)
    assert [(c.title, c.lede, [(s.heading, list(s.paragraphs)) for s in c.sections])
            for c in corpus] == expected_shape(seed_articles())


def test_every_seed_paragraph_is_kept_verbatim_in_exactly_one_case_study(seeded: Path):
    kept = [p for case in corpus_mod.load(seeded) for p in case.paragraphs]
    big = seed_paragraphs(BIG)
    assert len(big) == 10 + sum(n * 2 for _, n in EXPECTED) - 1  # last section: 1 paragraph
    for paragraph in big:
        assert kept.count(paragraph) == 1, paragraph[:80]
    assert set(seed_paragraphs(SINGLE)) <= set(big)
    assert sorted(kept) == sorted(big)  # and nothing else
    # typography survives the round trip through the files
    text = "".join(p.read_text(encoding="utf-8") for p in seeded.glob("*.md"))
    for char in "’“”…€%—–":
        assert char in text


def test_no_chrome_in_any_case_study(seeded: Path):
    for path in seeded.glob("*.md"):
        lines = path.read_text(encoding="utf-8").split("\n")
        for chrome in SEED_CHROME:
            assert not any(chrome in line for line in lines), (chrome, path.name)


def test_single_article_page_is_a_duplicate(tmp_path: Path):
    directory = tmp_path / "corpus"
    first = import_pages([BIG], directory)
    assert first.totals() == "new: 10, duplicate: 0, conflict: 0, skipped: 1, errors: 0"
    report = import_pages([SINGLE], directory)
    assert report.totals() == "new: 0, duplicate: 1, conflict: 0, skipped: 3, errors: 0"
    slug = slugify(EXPECTED[4][0])
    assert any(line.endswith(f"duplicate of {slug}") for line in report.lines())
    assert len(list(directory.glob("*.md"))) == 10


def test_reimport_changes_no_file(seeded: Path):
    before = snapshot(seeded)
    for force in (False, True):
        report = import_seeds(seeded, force=force)
        assert report.totals() == "new: 0, duplicate: 11, conflict: 0, skipped: 4, errors: 0"
        assert snapshot(seeded) == before  # same bytes, same mtimes, no new file


def test_operator_edits_survive_reimport(seeded: Path):
    path = seeded / f"{slugify(EXPECTED[1][0])}.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("près de 35 % du chiffre", "près de 35 % du chiffre"), "utf-8")
    set_front(path, "status", "draft")
    set_front(path, "companies", "[Octave & Octave, Spendesk]")
    edited = path.read_bytes()
    report = import_seeds(seeded, force=True)
    assert report.count("duplicate") == 11 and report.count("conflict") == 0
    assert path.read_bytes() == edited


def _changed_page(tmp_path: Path, old: str, new: str) -> Path:
    """The big page re-scraped after the site changed some text (same file name)."""
    folder = tmp_path / "rescraped"
    folder.mkdir(exist_ok=True)
    page = folder / BIG.name
    text = BIG.read_text(encoding="utf-8")
    assert text.count(old) == 1
    page.write_text(text.replace(old, new), encoding="utf-8")
    return page


def test_changed_article_is_a_conflict_and_force_keeps_operator_fields(seeded, tmp_path):
    slug = slugify(EXPECTED[1][0])
    path = seeded / f"{slug}.md"
    set_front(path, "position", "42")
    set_front(path, "status", "draft")
    set_front(path, "companies", "[Octave & Octave, Spendesk, Qonto]")
    set_front(path, "themes", "[clients]")
    edited = path.read_bytes()
    page = _changed_page(tmp_path, "près de 35 % du chiffre", "près de 38 % du chiffre")

    report = import_pages([page], seeded)
    assert report.totals() == "new: 0, duplicate: 9, conflict: 1, skipped: 1, errors: 0"
    conflict = [line for line in report.lines() if "conflict" in line and "#2" in line]
    assert conflict and slug in conflict[0] and "--force" in conflict[0]
    assert path.read_bytes() == edited

    dry = import_pages([page], seeded, force=True, dry_run=True)
    assert dry.count("conflict") == 1 and "dry run: nothing written" in dry.lines()
    assert path.read_bytes() == edited

    forced = import_pages([page], seeded, force=True)
    assert forced.totals() == "new: 0, duplicate: 9, conflict: 1, skipped: 1, errors: 0"
    assert any("text replaced" in line for line in forced.lines())
    case = corpus_mod.load_file(path)
    assert "près de 38 % du chiffre" in case.sections[0].paragraphs[0]
    assert (case.position, case.status, case.companies, case.themes) == (
        42, "draft", ("Octave & Octave", "Spendesk", "Qonto"), ("clients",))
    assert case.content_hash == case.computed_hash()
    assert corpus_mod.check(seeded)[1] == []

    after = snapshot(seeded)
    again = import_pages([page], seeded)
    assert again.totals() == "new: 0, duplicate: 10, conflict: 0, skipped: 1, errors: 0"
    assert snapshot(seeded) == after


def test_retitled_article_is_a_conflict_not_a_new_file(seeded, tmp_path):
    old = EXPECTED[2][0]
    page = _changed_page(tmp_path, old, old.replace("de performance", "pour la performance"))
    report = import_pages([page], seeded)
    assert report.totals() == "new: 0, duplicate: 9, conflict: 1, skipped: 1, errors: 0"
    forced = import_pages([page], seeded, force=True)
    assert forced.count("conflict") == 1
    case = corpus_mod.load_file(seeded / f"{slugify(old)}.md")
    assert case.title.endswith("pour la performance commerciale")
    assert case.slug == slugify(old)  # the slug is the article's identity
    assert len(list(seeded.glob("*.md"))) == 10


def test_new_articles_go_to_the_end_of_the_queue(tmp_path: Path):
    directory = tmp_path / "corpus"
    import_pages([SINGLE], directory)
    path = next(directory.glob("*.md"))
    set_front(path, "position", "7")
    report = import_pages([BIG], directory)
    assert report.totals() == "new: 9, duplicate: 1, conflict: 0, skipped: 1, errors: 0"
    positions = {c.title: c.position for c in corpus_mod.load(directory)}
    assert positions[EXPECTED[4][0]] == 7
    assert [positions[t] for t in TITLES if t != EXPECTED[4][0]] == list(range(8, 17))


@pytest.mark.parametrize(("title", "slug"), [("Page", "page-2"), ("2026", "2026-2"),
                                             ("Confirm", "confirm-2"),
                                             ("Subscribe", "subscribe-2"), ("R", "r-2")])
def test_an_article_never_gets_a_reserved_slug(tmp_path: Path, title: str, slug: str):
    page = tmp_path / "page.txt"
    page.write_text(f"{title}\n{LEDE_FOR_SLUGS}\n{BODY_FOR_SLUGS}\n", encoding="utf-8")
    report = import_pages([page], tmp_path / "corpus")
    assert [o.slug for o in report.outcomes] == [slug]
    cases, problems = corpus_mod.check(tmp_path / "corpus")
    assert problems == [] and [c.slug for c in cases] == [slug]
    assert (tmp_path / "corpus" / f"{slug}.md").is_file()


LEDE_FOR_SLUGS = ("Offrir une version gratuite de son logiciel pour attirer des utilisateurs, "
                  "puis les convertir en clients payants : le modèle a fait des fortunes.")
BODY_FOR_SLUGS = ("Les utilisateurs gratuits coûtent cher en support, sans jamais devenir "
                  "prescripteurs auprès de leurs experts-comptables, explique la direction.")


def test_dry_run_writes_nothing(tmp_path: Path):
    directory = tmp_path / "corpus"
    report = import_seeds(directory, dry_run=True)
    assert report.totals() == "new: 10, duplicate: 1, conflict: 0, skipped: 4, errors: 0"
    assert report.lines()[-2] == "dry run: nothing written"
    assert not directory.exists() or not any(directory.iterdir())


def test_unreadable_pages_are_errors_and_the_others_are_imported(tmp_path: Path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "latin1.txt").write_bytes("Un titre\n\nUn été à Paris.\n".encode("latin-1"))
    (bad / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (bad / "chrome.txt").write_text(page_text(
        "Accueil > Blog > Page 2", "Derniers articles", "Un titre", "Un autre titre"), "utf-8")
    (bad / "empty.txt").write_text("", "utf-8")
    pages = [bad / "missing.txt", bad / "latin1.txt", BIG, bad / "binary.txt",
             bad / "chrome.txt", bad / "empty.txt", bad]
    report = import_pages(pages, tmp_path / "corpus")
    assert report.totals() == "new: 10, duplicate: 0, conflict: 0, skipped: 1, errors: 6"
    errors = [line for line in report.lines() if line.startswith("error:")]
    assert errors == [
        f"error: {bad / 'missing.txt'}: no such file",
        f"error: {bad / 'latin1.txt'}: not UTF-8 text (byte 0xe9 on line 3, offset 13)",
        f"error: {bad / 'binary.txt'}: binary file, not a text page",
        f"error: {bad / 'chrome.txt'}: no article found (expected a title, a one-paragraph "
        f"lede, then headings with paragraphs)",
        f"error: {bad / 'empty.txt'}: no article found (expected a title, a one-paragraph "
        f"lede, then headings with paragraphs)",
        f"error: {bad}: is a directory, not a page",
    ]


def test_broken_corpus_file_is_never_overwritten(seeded: Path):
    path = seeded / f"{slugify(EXPECTED[0][0])}.md"
    path.write_text("---\ntitle: [oops\n---\n", encoding="utf-8")
    report = import_seeds(seeded, force=True)
    assert report.count("conflict") == 1 and report.count("new") == 0
    assert any(line.startswith("warning:") for line in report.lines())
    assert path.read_text(encoding="utf-8") == "---\ntitle: [oops\n---\n"


# --------------------------------------------------------------------------- chrome


CHROME_LINES = {
    "Accueil Blog Page 12": "breadcrumb",
    "Accueil > Blog > Management > Quand écarter son plus gros client": "breadcrumb",
    "Accueil » Blog": "breadcrumb",
    "Vous êtes ici : Accueil / Blog": "breadcrumb",
    "Page 3 sur 40": "pagination",
    "1 2 3 … 40": "pagination",
    "Par Claire Martin": "byline",
    "Par Claire Martin, le 12 mars 2024": "byline",
    "Rédigé par Jean-Marc Dupont · 5 min de lecture": "byline",
    "12 mars 2024": "date",
    "Publié le 1er avril 2024 à 10h30": "date",
    "Mis à jour le 12/03/2024": "date",
    "Mars 2024": "date",
    "Il y a 3 jours": "date",
    "5 min de lecture": "reading time",
    "Temps de lecture : 7 minutes": "reading time",
    "Partager cet article": "share",
    "Facebook Twitter LinkedIn": "share",
    "Copier le lien": "share",
    "Newsletter": "newsletter",
    "Recevez chaque semaine nos meilleures études de cas dans votre boîte mail.": "newsletter",
    "Votre adresse e-mail": "newsletter",
    "Je m’abonne": "newsletter",
    "Ce site utilise des cookies pour mesurer l’audience. Vous pouvez les refuser.": "cookies",
    "Tout accepter": "cookies",
    "© 2024 Le Blog des Dirigeants": "copyright",
    "Tous droits réservés": "copyright",
    "Politique de confidentialité": "copyright",
    "A lire !": "navigation",
    "Lire la suite": "navigation",
    "Laisser un commentaire": "navigation",
    "Tags : management, RH": "navigation",
    "Sponsorisé": "navigation",
    "Crédit photo : Unsplash": "credit",
    "Photo de Jean Dupont sur Unsplash": "credit",
}


@pytest.mark.parametrize(("line", "reason"), sorted(CHROME_LINES.items()))
def test_chrome_lines_are_recognised(line: str, reason: str):
    assert chrome_reason(line) == reason


@pytest.mark.parametrize("line", ["Derniers articles", "Plus d'articles", "Articles similaires",
                                  "Lire aussi", "À lire aussi : Un titre d’article",
                                  "Vous aimerez aussi", "Sur le même sujet"])
def test_more_articles_markers(line: str):
    assert is_list_marker(line) and chrome_reason(line) is None


def test_no_article_line_of_the_seeds_looks_like_chrome():
    lines = [line.strip() for line in BIG.read_text(encoding="utf-8").splitlines()]
    for line in filter(None, lines):
        if line not in SEED_CHROME:
            assert chrome_reason(line) is None and not is_list_marker(line), line
    # nor do article sentences that speak of newsletters, cookies, dates or LinkedIn
    for line in ["Cette proximité vaut plus qu’une dizaine de newsletters internes.",
                 "Chez Michel et Augustin, les cookies sont fabriqués à la main et vendus "
                 "en grande surface depuis 2004.",
                 "Par ailleurs, l’équipe publie sur LinkedIn chaque semaine.",
                 "Un partenariat “patient”, mieux ciblé"]:
        assert chrome_reason(line) is None, line


# --------------------------------------------------------------------------- other pages


ARTS = seed_articles()


def test_page_of_one_paragraph_sections():
    chosen = [ARTS[6], ARTS[0], ARTS[9]]
    text = page_text(*[b for a in chosen for b in article_blocks(a, paragraphs_per_section=1)])
    assert shape(parse_page(text)) == expected_shape(chosen, paragraphs_per_section=1)


def test_mixed_one_and_two_paragraph_sections_and_short_articles():
    short = SeedArticle(ARTS[7].title, ARTS[7].lede, ARTS[7].sections[:2])
    chosen = [ARTS[3], short, ARTS[5]]
    blocks = [ARTS[3].title, ARTS[3].lede]
    for index, (heading, paragraphs) in enumerate(ARTS[3].sections):
        blocks += [heading, *paragraphs[: 1 + index % 2]]
    blocks += article_blocks(short) + article_blocks(ARTS[5], paragraphs_per_section=1)
    expected = expected_shape(chosen)
    expected[0] = (ARTS[3].title, ARTS[3].lede,
                   [(h, ps[: 1 + i % 2]) for i, (h, ps) in enumerate(ARTS[3].sections)])
    expected[2] = expected_shape([ARTS[5]], 1)[0]
    assert shape(parse_page(page_text(*blocks))) == expected


def test_single_article_page_with_breadcrumb_byline_and_widgets():
    article = ARTS[1]
    head = ["Nous utilisons des cookies pour améliorer votre expérience sur notre site.",
            "Tout accepter", f"Accueil > Blog > {article.title}", "Management"]
    after_title = ("Par Claire Martin · 14 mars 2024 · 6 min de lecture",
                   "Publié le 14 mars 2024", "Partager sur LinkedIn", "À lire")
    between = ("Publicité", "Inscrivez-vous à notre newsletter pour recevoir chaque semaine "
                            "une nouvelle étude de cas.")
    tail = ["Partager", "Facebook Twitter LinkedIn", "Articles similaires", ARTS[2].title,
            ARTS[3].title, "© 2024 Le Blog. Tous droits réservés.", "Mentions légales"]
    text = page_text(*head, *article_blocks(article, after_title=after_title,
                                            between_sections=between), *tail)
    parsed = parse_page(text)
    assert shape(parsed) == expected_shape([article])
    assert sorted(s.text for s in parsed.skipped) == sorted(
        [*head, *after_title, *between, *tail])
    reasons = {s.text: s.reason for s in parsed.skipped}
    assert reasons[f"Accueil > Blog > {article.title}"] == "breadcrumb"
    assert reasons["Par Claire Martin · 14 mars 2024 · 6 min de lecture"] == "byline"
    assert reasons["Publié le 14 mars 2024"] == "date"
    assert reasons[ARTS[2].title] == "more-articles list"
    assert reasons["Management"] == "label"  # a category over the title


def test_more_articles_lists_between_and_after_articles():
    first, second, third = ARTS[8], ARTS[4], ARTS[2]
    text = page_text(
        "Accueil Blog Page 3",
        "Derniers articles", ARTS[0].title, ARTS[1].title,
        *article_blocks(first),
        "Plus d'articles", ARTS[5].title, ARTS[6].title, ARTS[7].title,
        *article_blocks(second, after_title=("A lire !",)),
        "Lire aussi", ARTS[9].title,
        *article_blocks(third),
        "Plus d'articles", "Derniers articles", ARTS[0].title,
        "Un résumé de l’article, coupé au milieu d’une phrase comme sur la page d’accueil…",
        ARTS[1].title,
    )
    parsed = parse_page(text)
    assert shape(parsed) == expected_shape([first, second, third])
    assert [s.reason for s in parsed.skipped].count("more-articles list") == 14


def test_inline_read_also_inside_a_section_keeps_the_section_whole():
    article = ARTS[0]
    blocks = article_blocks(article)
    second_paragraph = blocks.index(article.sections[1][1][1])
    blocks.insert(second_paragraph, f"À lire aussi : {ARTS[4].title}")
    parsed = parse_page(page_text(*blocks))
    assert shape(parsed) == expected_shape([article])
    assert parsed.skipped[0].text.startswith("À lire aussi")


def test_unknown_captions_around_titles_and_headings():
    article = ARTS[7]
    blocks = article_blocks(article, after_title=("Le saviez-vous ?",),
                            between_sections=("Notre sélection",))
    blocks.insert(0, "Entrepreneuriat")
    parsed = parse_page(page_text(*blocks, "Cet article vous a plu ?"))
    assert shape(parsed) == expected_shape([article])
    assert {s.text for s in parsed.skipped} == {
        "Le saviez-vous ?", "Notre sélection", "Entrepreneuriat", "Cet article vous a plu ?"}


def test_windows_line_ends_bom_and_trailing_spaces(tmp_path: Path):
    page = tmp_path / "crlf.txt"
    text = BIG.read_text(encoding="utf-8")
    page.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "  \r\n").encode("utf-8"))
    directory = tmp_path / "corpus"
    import_pages([BIG], directory)
    assert import_pages([page], directory).count("duplicate") == 10


# --------------------------------------------------------------------------- CLI


def test_cli_import_prints_summary_and_writes_files(tmp_path: Path):
    directory = tmp_path / "corpus"
    runner = CliRunner()
    result = runner.invoke(cli, ["corpus", "import", str(BIG), str(SINGLE), "--dir",
                                 str(directory)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"{BIG.name}: 10 articles, 1 line skipped"
    assert lines[1].startswith("  new       #1 refuser-les-levees-de-fonds")
    assert "position 1, 6 sections, companies: The Green Data, Cozy Cloud" in lines[1]
    assert lines[-1] == "new: 10, duplicate: 1, conflict: 0, skipped: 4, errors: 0"
    assert len(list(directory.glob("*.md"))) == 10

    check = runner.invoke(cli, ["corpus", "check", "--dir", str(directory)])
    assert check.exit_code == 0 and check.output.startswith("10 case studies OK")

    verbose = runner.invoke(cli, ["corpus", "import", str(SINGLE), "--dir", str(directory),
                                  "-v"])
    assert verbose.exit_code == 0
    assert "  skipped   line 3 (navigation): A lire !" in verbose.output.splitlines()
    assert verbose.output.splitlines()[-1] == (
        "new: 0, duplicate: 1, conflict: 0, skipped: 3, errors: 0")


def test_cli_import_exits_1_on_unreadable_page(tmp_path: Path):
    missing = tmp_path / "nope.txt"
    result = CliRunner().invoke(cli, ["corpus", "import", str(missing), str(BIG), "--dir",
                                      str(tmp_path / "corpus"), "--dry-run"])
    assert result.exit_code == 1
    assert f"error: {missing}: no such file" in result.output.splitlines()
    assert result.output.splitlines()[-1] == (
        "new: 10, duplicate: 0, conflict: 0, skipped: 1, errors: 1")
    assert not (tmp_path / "corpus").exists()


def test_cli_through_python_dash_m(tmp_path: Path):
    """The real entry point in a subprocess, with the corpus folder taken from a config."""
    (tmp_path / "config").mkdir()
    shipped = (ROOT / "config" / "syndicate.toml").read_text(encoding="utf-8")
    (tmp_path / "config" / "syndicate.toml").write_text(  # a corpus of its own, not the samples
        shipped.replace('"../syndicate/examples/corpus"', '"../corpus"'), encoding="utf-8")
    env = {**os.environ, "SYNDICATE_CONFIG": str(tmp_path / "config" / "syndicate.toml"),
           "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "syndicate", "corpus", "import", str(BIG), str(SINGLE)]
    first = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60,
                           check=False)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1] == (
        "new: 10, duplicate: 1, conflict: 0, skipped: 4, errors: 0")
    assert len(list((tmp_path / "corpus").glob("*.md"))) == 10
    listing = subprocess.run([sys.executable, "-m", "syndicate", "corpus", "list", "--json"],
                             capture_output=True, text=True, env=env, timeout=60, check=False)
    assert listing.returncode == 0, listing.stderr
    import json

    rows = json.loads(listing.stdout)
    assert [row["title"] for row in rows] == TITLES
    assert [row["sections"] for row in rows] == [n for _, n in EXPECTED]


def test_footer_text_after_the_last_article_is_not_kept():
    about = ("Le Blog des Dirigeants est un média indépendant qui raconte chaque semaine les "
             "décisions d’entreprises françaises, petites et grandes, à partir d’entretiens "
             "avec celles et ceux qui les ont prises, et de documents publics que notre "
             "rédaction vérifie avant publication.")
    for tail in (["Derniers articles", ARTS[1].title, ARTS[2].title, about],
                 ["À propos", about],
                 ["Newsletter", "Recevez chaque semaine nos études de cas.", about,
                  "Votre adresse e-mail", "Commentaires", about, about]):
        parsed = parse_page(page_text(*article_blocks(ARTS[0]), *tail))
        assert shape(parsed) == expected_shape([ARTS[0]]), tail[0]
        assert about in {s.text for s in parsed.skipped}


def _random_page(rng) -> tuple[str, list]:
    """Seed articles in random order and shape, with chrome at random places."""
    chrome = [*CHROME_LINES, "Le saviez-vous ?", "Entrepreneuriat", "Notre sélection"]
    lists = ["Derniers articles", "Plus d'articles", "Articles similaires", "Lire aussi"]
    blocks: list[str] = []
    expected = []
    if rng.random() < 0.5:
        blocks.append(rng.choice(chrome))
    for article in rng.sample(ARTS, rng.randint(1, 4)):
        sections = [(h, ps[: rng.choice([1, len(ps)])]) for h, ps in article.sections]
        if rng.random() < 0.3:
            sections = sections[: rng.randint(2, len(sections))]
        expected.append((article.title, article.lede, sections))
        blocks += [article.title, *rng.sample(chrome, rng.choice([0, 0, 1, 2])), article.lede]
        for heading, paragraphs in sections:
            if rng.random() < 0.1:
                blocks.append(rng.choice(chrome))
            blocks += [heading, *paragraphs]
        if rng.random() < 0.4:
            blocks += [rng.choice(lists), *(a.title for a in rng.sample(ARTS, 3))]
    return page_text(*blocks), expected


def test_random_pages_built_from_the_seeds():
    import random

    failures = []
    for seed in range(80):
        text, expected = _random_page(random.Random(seed))
        if shape(parse_page(text)) != expected:
            failures.append(seed)
    assert failures == []


# --------------------------------------------------------------------------- hold-out pages
#
# Six pages of the same site written after the importer, never used to tune it (see
# tests/data/holdout/*.json for what each page exercises). Next to each page, a reading by
# hand: its articles (title, number of chapô paragraphs, each heading with its number of
# paragraphs) and every chrome line in page order. Anything else on the page is article
# text, so the expected articles are rebuilt line by line from the page itself.
#
# A chapô of two paragraphs: the corpus format has room for one lede paragraph, and a
# reader expects the whole chapô before the first heading, in order. So the lede is the
# chapô's paragraphs joined by a space (nothing lost, nothing moved under a heading).

HOLDOUT = ROOT / "tests" / "data" / "holdout"
HOLDOUT_PAGES = sorted(HOLDOUT.glob("*.txt"))


@dataclass
class HandReading:
    articles: list[tuple[str, str, list[tuple[str, list[str]]]]]
    chrome: list[str]
    lines: list[str]  # the page's non-blank lines, stripped
    chapo_parts: list[str]  # the paragraphs of chapôs of more than one paragraph


def hand_reading(page: Path) -> HandReading:
    """The page cut by the hand-made expectations next to it, independently of the importer.
    A line equal to the next expected chrome line is chrome (a table of contents repeats the
    headings: those come first); any other line is the next title, chapô paragraph, heading
    or paragraph of the expectations, which must be used up exactly."""
    fixture = json.loads(page.with_suffix(".json").read_text(encoding="utf-8"))
    lines = [line.strip() for line in page.read_text(encoding="utf-8").splitlines()
             if line.strip()]
    plan: list[tuple[str, str | None]] = []
    for article in fixture["articles"]:
        plan += [("title", article["title"]), *[("lede", None)] * article["lede"]]
        for heading, count in article["sections"]:
            plan += [("heading", heading), *[("paragraph", None)] * count]
    chrome: list[str] = fixture["chrome"]
    articles: list[tuple[str, list[str], list[tuple[str, list[str]]]]] = []
    seen_chrome = step = 0
    for line in lines:
        if seen_chrome < len(chrome) and line == chrome[seen_chrome]:
            seen_chrome += 1
            continue
        assert step < len(plan), f"{page.name}: unexpected line {line[:60]!r}"
        kind, text = plan[step]
        step += 1
        assert text in (None, line), f"{page.name}: expected {text!r}, found {line!r}"
        if kind == "title":
            articles.append((line, [], []))
        elif kind == "lede":
            articles[-1][1].append(line)
        elif kind == "heading":
            articles[-1][2].append((line, []))
        else:
            articles[-1][2][-1][1].append(line)
    assert (seen_chrome, step) == (len(chrome), len(plan)), f"{page.name}: fixture not used up"
    return HandReading([(t, " ".join(lede), s) for t, lede, s in articles], chrome, lines,
                       [p for _, lede, _ in articles if len(lede) > 1 for p in lede])


def test_holdout_set_is_there():
    assert len(HOLDOUT_PAGES) >= 4
    readings = [hand_reading(page) for page in HOLDOUT_PAGES]
    assert sum(len(r.articles) for r in readings) >= 10
    assert any(r.chapo_parts and len(r.articles) > 1 for r in readings)  # in a listing too


@pytest.mark.parametrize("page", HOLDOUT_PAGES, ids=lambda p: p.stem)
def test_holdout_page_articles_match_the_reading_by_hand(page: Path):
    expected = hand_reading(page)
    parsed = parse_page(page.read_text(encoding="utf-8"))
    assert [a.title for a in parsed.articles] == [t for t, _, _ in expected.articles]
    assert shape(parsed) == expected.articles


@pytest.mark.parametrize("page", HOLDOUT_PAGES, ids=lambda p: p.stem)
def test_holdout_page_chrome_is_skipped_and_only_chrome(page: Path):
    expected = hand_reading(page)
    parsed = parse_page(page.read_text(encoding="utf-8"))
    assert sorted(s.text for s in parsed.skipped) == sorted(expected.chrome)


@pytest.mark.parametrize("page", HOLDOUT_PAGES, ids=lambda p: p.stem)
def test_holdout_every_line_is_in_one_case_study_or_skipped(page: Path, tmp_path: Path):
    """The invariants, through the files written by a real import."""
    expected = hand_reading(page)
    report = import_pages([page], tmp_path / "corpus")
    assert report.errors == [] and report.count("new") == len(expected.articles)
    cases, problems = corpus_mod.check(tmp_path / "corpus")
    assert problems == []
    # the blocks of the written case studies; a chapô of two paragraphs is one lede block
    blocks = [b for c in cases
              for b in (c.title, c.lede, *(s.heading for s in c.sections),
                        *(p for s in c.sections for p in s.paragraphs))]
    chapo_parts = set(expected.chapo_parts)
    skipped = Counter(item.text for _, item in report.skipped)
    in_articles = Counter(line for t, lede, sections in expected.articles
                          for line in (t, lede, *(h for h, _ in sections),
                                       *(p for _, ps in sections for p in ps)))
    in_articles.update(chapo_parts)
    for line in expected.lines:
        kept = sum(block == line or (line in chapo_parts and line in block) for block in blocks)
        assert kept == in_articles[line], f"kept {kept} times: {line[:70]!r}"
        assert skipped[line] == expected.chrome.count(line), f"skipped: {line[:70]!r}"


def _hard_page(rng) -> tuple[str, list]:
    """Seed articles as the hold-out pages showed them: titles as short as 30 characters
    (cut before their colon), chapôs of two paragraphs, and nothing under a title to tell
    it from a heading. The expected lede of a split chapô is the original paragraph."""
    blocks: list[str] = []
    expected = []
    for article in rng.sample(ARTS, rng.randint(2, 4)):
        title = article.title
        if " : " in title and rng.random() < 0.7:
            title = title.split(" : ")[0]
        chapo = [article.lede]
        cuts = [m.end() for m in re.finditer(r"\. (?=[A-ZÀ-Ý])", article.lede)]
        if cuts and rng.random() < 0.4:
            cut = rng.choice(cuts)
            chapo = [article.lede[: cut - 1], article.lede[cut:]]
        sections = [(h, ps[: rng.choice([1, len(ps)])]) for h, ps in article.sections]
        expected.append((title, article.lede, sections))
        blocks += [title, *chapo, *(b for h, ps in sections for b in (h, *ps))]
    return page_text(*blocks), expected


def test_random_hard_pages_built_from_the_seeds():
    import random

    failures = []
    for seed in range(80):  # 600 seeds pass; 80 keep the test around a second
        text, expected = _hard_page(random.Random(seed))
        if shape(parse_page(text)) != expected:
            failures.append(seed)
    assert failures == []


def test_comments_after_the_article_are_chrome_but_a_comment_link_is_not_a_box():
    article = ARTS[1]
    comments = ["3 commentaires", "Marc D.", "14 mars 2025 à 9 h 12",
                "Très bon article, nous avons vécu la même chose avec un client qui pesait "
                "la moitié de notre chiffre d’affaires.", "Répondre", "jdupont75",
                "Merci ! Le cas de Spendesk est intéressant.", "Laisser un commentaire"]
    parsed = parse_page(page_text(*article_blocks(article), *comments,
                                  "Derniers articles", ARTS[2].title))
    assert shape(parsed) == expected_shape([article])
    assert {s.text for s in parsed.skipped} == {*comments, "Derniers articles", ARTS[2].title}
    # a comment count left between two articles of a listing page takes nothing with it
    parsed = parse_page(page_text(*article_blocks(ARTS[0]), "2 commentaires",
                                  *article_blocks(ARTS[3])))
    assert shape(parsed) == expected_shape([ARTS[0], ARTS[3]])


def test_aside_box_takes_one_paragraph_and_the_section_goes_on():
    article = ARTS[2]
    blocks = article_blocks(article)
    second = blocks.index(article.sections[1][1][1])
    fact = "Selon une étude, un cadre passe en moyenne seize heures par semaine en réunion."
    blocks[second:second] = ["Le saviez-vous ?", fact]
    parsed = parse_page(page_text(*blocks))
    assert shape(parsed) == expected_shape([article])
    assert {s.text for s in parsed.skipped} == {"Le saviez-vous ?", fact}


def test_table_of_contents_is_not_taken_for_headings():
    article = ARTS[3]
    toc = ["Sommaire", *(heading for heading, _ in article.sections)]
    blocks = article_blocks(article)
    parsed = parse_page(page_text(*blocks[:2], *toc, *blocks[2:]))
    assert shape(parsed) == expected_shape([article])
    assert sorted(s.text for s in parsed.skipped) == sorted(toc)
    assert [s.reason for s in parsed.skipped].count("table of contents") == len(toc) - 1


def test_one_line_read_also_before_a_heading_keeps_the_heading():
    article = ARTS[5]
    blocks = article_blocks(article)
    third = blocks.index(article.sections[2][0])
    blocks.insert(third, f"À lire aussi : {ARTS[8].title}")
    parsed = parse_page(page_text(*blocks))
    assert shape(parsed) == expected_shape([article])


def test_pull_quote_between_paragraphs_is_not_a_heading():
    article = ARTS[4]
    blocks = article_blocks(article)
    second = blocks.index(article.sections[0][1][1])
    quote = "“On a gagné en visibilité, mais surtout en lucidité”"  # from that paragraph
    blocks.insert(second, quote)
    parsed = parse_page(page_text(*blocks))
    assert shape(parsed) == expected_shape([article])
    assert [(s.reason, s.text) for s in parsed.skipped] == [("pull quote", quote)]
    # a quotation as a heading stays a heading when its words are not in the text
    blocks[second] = "« On ne reviendra pas en arrière »"
    parsed = parse_page(page_text(*blocks))
    assert [s.heading for s in parsed.articles[0].sections][:2] == [
        article.sections[0][0], "« On ne reviendra pas en arrière »"]
