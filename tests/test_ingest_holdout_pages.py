"""The importer on pages of other sites (tests/data/holdout_pages, written with their
expectations before the importer was changed): the invariant (every paragraph of article
text lands verbatim in exactly one case study, no chrome does), titles, companies, the
language warning, HTML pages; and the shapes those pages showed, one by one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _render_support import make_config, make_history
from click.testing import CliRunner

from syndicate import corpus as corpus_mod
from syndicate.cli import cli
from syndicate.corpus import CaseStudy, Section
from syndicate.ingest import extract_companies, import_pages, parse_page
from syndicate.ingest.html import html_to_text, not_french

ROOT = Path(__file__).resolve().parents[1]
PAGES_DIR = ROOT / "tests" / "data" / "holdout_pages"
PAGES = sorted(p for p in PAGES_DIR.iterdir() if p.suffix in (".txt", ".html"))


def fixture(page: Path) -> dict:
    return json.loads(page.with_suffix(".json").read_text(encoding="utf-8"))


def imported(page: Path, tmp_path: Path) -> tuple[list[CaseStudy], list[str], object]:
    report = import_pages([page], tmp_path / "corpus")
    assert report.errors == []
    cases, problems = corpus_mod.check(tmp_path / "corpus")
    assert problems == []  # the written files are valid corpus files (untitled sections too)
    return sorted(cases, key=lambda c: c.position), report.warnings, report


def blocks(case: CaseStudy) -> list[str]:
    return [case.lede, *(p for s in case.sections for p in s.paragraphs)]


def test_the_set_has_the_shapes_of_the_issue():
    assert len(PAGES) >= 12
    fixtures = [fixture(p) for p in PAGES]
    assert sum(len(f["articles"]) for f in fixtures) >= 14
    assert any(p.suffix == ".html" for p in PAGES)
    assert any(f["language"] != "fr" for f in fixtures)
    assert any(len(f["articles"]) == 2 for f in fixtures)  # listing pages


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_every_paragraph_lands_verbatim_in_exactly_one_case_study(page: Path, tmp_path: Path):
    cases, _warnings, _report = imported(page, tmp_path)
    expected = fixture(page)
    every = [(c.slug, b) for c in cases for b in blocks(c)]
    for article in expected["articles"]:
        for paragraph in article["paragraphs"]:
            holders = [(slug, b) for slug, b in every if paragraph in b]
            assert len(holders) == 1, (len(holders), paragraph[:70])
            assert holders[0][1].count(paragraph) == 1
    # heading-less articles cut at their scene breaks: the untitled sections expected
    for article in expected["articles"]:
        if "sections" in article:
            (case,) = [c for c in cases if c.title == article["title"]]
            assert [(s.heading, len(s.paragraphs)) for s in case.sections] == [
                ("", n) for n in article["sections"]]
    # and nothing else: every block is made of expected paragraphs
    wanted = [p for a in expected["articles"] for p in a["paragraphs"]]
    for _slug, block in every:
        rest = block
        for paragraph in sorted(wanted, key=len, reverse=True):
            rest = rest.replace(paragraph, " ")
        assert not rest.strip(), rest[:80]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_no_chrome_in_any_case_study_and_titles_are_right(page: Path, tmp_path: Path):
    cases, _warnings, _report = imported(page, tmp_path)
    expected = fixture(page)
    assert [c.title for c in cases] == [a["title"] for a in expected["articles"]]
    for case in cases:
        texts = [case.title, case.slug, *(s.heading for s in case.sections), *blocks(case)]
        for chrome in expected["chrome"]:
            assert not any(chrome in text for text in texts), (chrome, case.slug)
        headings = {h for a in expected["articles"] for h in a.get("headings", [])}
        assert {s.heading for s in case.sections} <= headings | {""}
        assert "<" not in case.title and "class" not in case.slug


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_a_page_not_in_french_is_imported_with_a_warning(page: Path, tmp_path: Path):
    cases, warnings, _report = imported(page, tmp_path)
    french = fixture(page)["language"] == "fr"
    warned = [w for w in warnings if "does not look French" in w]
    assert (warned == []) == french, warnings
    assert cases  # imported anyway


def test_companies_recall_and_precision_on_the_pages(tmp_path: Path):
    hits = gold_total = found_total = wrong = 0
    for index, page in enumerate(PAGES):
        cases, _warnings, _report = imported(page, tmp_path / str(index))
        expected = fixture(page)
        by_title = {c.title: c for c in cases}
        for article in expected["articles"]:
            if article["companies"] is None:
                continue
            found = list(by_title[article["title"]].companies)
            assert not set(found) & set(expected["not_companies"]), (page.name, found)
            allowed = set(article["companies"]) | set(article["named_only"])
            hits += len(set(found) & set(article["companies"]))
            gold_total += len(article["companies"])
            found_total += len(found)
            wrong += len([name for name in found if name not in allowed])
    recall, precision = hits / gold_total, (found_total - wrong) / found_total
    print(f"recall {recall:.2f} ({hits}/{gold_total}), precision {precision:.2f}")
    assert recall >= 0.9
    assert precision >= 0.9


# --------------------------------------------------------------------------- the shapes


LEDE = ("Offrir une version gratuite de son logiciel pour attirer des utilisateurs, puis les "
        "convertir en clients payants : le modèle a fait la fortune de quelques éditeurs.")
BODY = ["Les utilisateurs gratuits coûtent cher en support, sans jamais devenir prescripteurs "
        "auprès de leurs experts-comptables, explique la direction de l’entreprise.",
        "Reste une question rarement posée : que deviennent les utilisateurs gratuits quand "
        "l’éditeur change d’avis ? Mieux vaut le prévoir dès le départ."]


def page(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def shape(text: str) -> list[tuple[str, str, list[tuple[str, list[str]]]]]:
    return [(a.title, a.lede, [(s.heading, list(s.paragraphs)) for s in a.sections])
            for a in parse_page(text).articles]


def test_a_page_without_headings_is_one_article_with_an_untitled_section():
    assert shape(page("Le freemium, une fausse bonne idée ?", LEDE, *BODY)) == [
        ("Le freemium, une fausse bonne idée ?", LEDE, [("", BODY)])]


@pytest.mark.parametrize("title", ["Ils ont relocalisé leur production, et ça marche !",
                                   "LE TÉLÉTRAVAIL À 100 %, ÇA SE PRÉPARE",
                                   "Faut-il recruter un directeur financier ? Et à quel moment ?"])
def test_titles_ending_in_a_question_or_an_exclamation_or_in_capitals(title: str):
    text = page("Entrepreneuriat", title, "Trois PME racontent le retour de leurs ateliers",
                "Par Marc Lefeuvre, le 14 janvier 2025", LEDE, *BODY)
    parsed = parse_page(text)
    assert [a.title for a in parsed.articles] == [title]
    reasons = {s.text: s.reason for s in parsed.skipped}
    assert reasons["Entrepreneuriat"] == "label"
    assert reasons["Trois PME racontent le retour de leurs ateliers"] == "subtitle"
    assert reasons["Par Marc Lefeuvre, le 14 janvier 2025"] == "byline"


@pytest.mark.parametrize(("line", "reason"), [
    ("L’équipe produit de Pennylane dans ses bureaux parisiens (Photo DR)", "photo caption"),
    ("Les anciens locaux de l’agence, à Nantes © Brume & Cie", "photo caption"),
    ("Photo d’illustration : un atelier de confection", "photo caption"),
    ("Read more: Comment fixer le prix de son premier logiciel", "read more"),
    ("Sur le terrain | publié le : 21 novembre 2024", "date"),
    ("Dossier publié en mars 2025", "date"),
    ("Posted on 12 mars 2025 by Julien Carré", "date"),
    ("* * *", "break"),
])
def test_chrome_of_other_sites_is_neither_heading_nor_lede(line: str, reason: str):
    for where in (1, 2, 4):  # over the title, under it, between paragraphs
        lines = ["Le freemium, une fausse bonne idée ?", LEDE, *BODY]
        lines.insert(where, line)
        parsed = parse_page(page(*lines))
        assert shape(page(*lines)) == [("Le freemium, une fausse bonne idée ?", LEDE,
                                        [("", BODY)])], (line, where)
        assert [(s.reason, s.text) for s in parsed.skipped] == [(reason, line)]


@pytest.mark.parametrize("mark", ["* * *", "***", "—", "⁂", "----------", "— — —", "_____"])
def test_a_scene_break_cuts_a_heading_less_text_into_untitled_sections(mark: str):
    text = page("Le freemium, une fausse bonne idée ?", LEDE, BODY[0], mark, BODY[1])
    assert shape(text) == [("Le freemium, une fausse bonne idée ?", LEDE,
                            [("", [BODY[0]]), ("", [BODY[1]])])]
    assert [(s.reason, s.text) for s in parse_page(text).skipped] == [("break", mark)]


def test_breaks_next_to_each_other_or_at_the_ends_cut_nothing_more():
    text = page("Le freemium, une fausse bonne idée ?", "* * *", LEDE, "* * *", BODY[0], "⁂",
                "***", BODY[1], "* * *")
    assert shape(text) == [("Le freemium, une fausse bonne idée ?", LEDE,
                            [("", [BODY[0]]), ("", [BODY[1]])])]


def test_a_break_inside_a_titled_section_starts_an_untitled_one():
    text = page("Cinq règles pour un premier rendez-vous", LEDE, "Préparer plus qu’on ne parle",
                BODY[0], "* * *", BODY[1])
    assert shape(text) == [("Cinq règles pour un premier rendez-vous", LEDE, [
        ("Préparer plus qu’on ne parle", [BODY[0]]), ("", [BODY[1]])])]


def test_a_pull_quote_without_quote_marks_is_chrome():
    quote = "Mieux vaut le prévoir dès le départ, disent les dirigeants."
    body = [BODY[0], quote, BODY[1] + " « Mieux vaut le prévoir dès le départ, disent les "
                                      "dirigeants », conclut-elle."]
    parsed = parse_page(page("Un titre d’article", LEDE, *body))
    assert [(s.reason, s.text) for s in parsed.skipped] == [("pull quote", quote)]
    assert parsed.articles[0].sections[0].paragraphs == (body[0], body[2])


def test_list_items_are_paragraphs_verbatim_and_their_intro_too():
    items = ["1) lire le dernier rapport annuel du prospect ;", "- répondre au prix ;",
             "• le nom de la personne qui signe."]
    text = page("Cinq règles pour un premier rendez-vous", LEDE, "Préparer plus qu’on ne parle",
                "Elle relit la même liste avant chaque rendez-vous :", *items, BODY[0])
    assert shape(text) == [("Cinq règles pour un premier rendez-vous", LEDE, [
        ("Préparer plus qu’on ne parle",
         ["Elle relit la même liste avant chaque rendez-vous :", *items, BODY[0]])])]
    assert parse_page(text).skipped == ()


def test_a_listing_page_of_another_cms_is_split_into_its_posts():
    second = [p.replace("gratuits", "payants") for p in BODY]
    text = page("Posted on 12 mars 2025 by Julien Carré", "Facturer à l’heure ou au forfait",
                LEDE, *BODY, "Read more »", "12 commentaires",
                "Posted on 5 mars 2025 by Nadia Benali", "Choisir son statut en 2025 ?",
                LEDE.replace("logiciel", "service"), *second, "Read more »", "Older posts")
    assert shape(text) == [
        ("Facturer à l’heure ou au forfait", LEDE, [("", BODY)]),
        ("Choisir son statut en 2025 ?", LEDE.replace("logiciel", "service"), [("", second)])]


def test_html_page_main_content_title_without_tags(tmp_path: Path):
    html = (PAGES_DIR / "p07_wordpress.html").read_text(encoding="utf-8")
    text = html_to_text(html)
    assert text.splitlines()[0] == "Ce que la crise du fret a appris à trois e-commerçants"
    assert "<" not in text and "Articles récents" not in text
    cases, _warnings, _report = imported(PAGES_DIR / "p07_wordpress.html", tmp_path)
    assert [c.slug for c in cases] == ["ce-que-la-crise-du-fret-a-appris-a-trois-e-commercants"]


def test_language_test_on_the_seeds_and_an_english_text():
    seed = (ROOT / "tests" / "data" / "seeds" / "000_2ed753a566ed84a8.txt").read_text("utf-8")
    assert not_french(seed) is None
    english = (PAGES_DIR / "p09_english.txt").read_text(encoding="utf-8")
    assert not_french(english) is not None
    assert not_french("Too short to tell.") is None


def test_verbose_reasons_say_what_happened(tmp_path: Path):
    p02 = PAGES_DIR / "p02_titre_exclamation.txt"
    result = CliRunner().invoke(cli, ["corpus", "import", str(p02), "--dir",
                                      str(tmp_path / "corpus"), "-v", "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "  skipped   line 1 (label): Entrepreneuriat" in lines
    assert ("  skipped   line 4 (subtitle): Trois PME racontent le retour de leurs ateliers "
            "en France") in lines
    assert "  skipped   line 2 (photo caption): Photo d’illustration : un atelier de confection " \
           "dans le Maine-et-Loire" in lines
    assert not any("(caption)" in line for line in lines)
    english = CliRunner().invoke(cli, ["corpus", "import", str(PAGES_DIR / "p09_english.txt"),
                                       "--dir", str(tmp_path / "corpus"), "--dry-run"])
    assert english.output.startswith("warning: p09_english.txt: the page does not look French")


# --------------------------------------------------------------------------- companies


@pytest.mark.parametrize(("text", "companies"), [
    ("Prenez Slack, par exemple. La messagerie a longtemps laissé ses équipes l’utiliser.",
     ("Slack",)),
    ("Il faut revenir à ce qu’a fait Instagram en 2016 avec son fil.", ("Instagram",)),
    ("Patagonia, par exemple, publie la liste de ses usines.", ("Patagonia",)),
    ("Plug in digital, éditeur montpelliérain, vend des jeux. Plug in digital gère ainsi "
     "des centaines de titres.", ("Plug in digital",)),
    ("Même constat du côté de Guillaume Decugis, qui a accompagné plusieurs entreprises.", ()),
    ("La startup lilloise Jean Bouteille développe des solutions de vrac.", ("Jean Bouteille",)),
    ("Chez Atelier Tuffery, fabricant de jeans installé en Lozère, tout change.",
     ("Atelier Tuffery",)),
    ("Lush a fermé ses comptes en 2021. Surtout, l’agence recrute partout.", ("Lush",)),
])
def test_company_patterns_without_cue_words(text: str, companies: tuple[str, ...]):
    assert extract_companies([[text]]) == companies


def test_companies_told_in_the_chapo_are_found(tmp_path: Path):
    chapo = ("Alan, l’assureur santé, et Swile, spécialiste des avantages salariés, ont tous "
             "deux abandonné l’entretien annuel d’évaluation au profit d’échanges fréquents.")
    (tmp_path / "page.txt").write_text(page("Deux façons de remplacer l’entretien annuel",
                                            chapo, *BODY), encoding="utf-8")
    import_pages([tmp_path / "page.txt"], tmp_path / "corpus")
    (case,) = corpus_mod.load(tmp_path / "corpus")
    assert case.companies == ("Alan", "Swile")


# --------------------------------------------------------------------------- rendering


def test_an_untitled_section_round_trips_and_renders_without_a_heading(tmp_path: Path):
    case = CaseStudy(slug="sans-titre", title="Un article sans intertitres", lede=LEDE,
                     sections=(Section("", tuple(BODY)),), position=1, status="ready",
                     companies=(), themes=("produit",))
    path = corpus_mod.save(case, tmp_path / "corpus")
    assert "\n##\n" in path.read_text(encoding="utf-8")
    loaded = corpus_mod.load_file(path)
    assert loaded.sections == case.sections and loaded.computed_hash() == case.computed_hash()
    from syndicate.render.archive import render_edition_page
    from syndicate.render.feeds import render_item_html

    config = make_config(tmp_path)
    (view,) = make_history([loaded], config)
    for html in (render_edition_page(view, config), render_item_html(view, config)):
        assert "<h2></h2>" not in html and BODY[0].split(",")[0] in html
        assert "<hr" not in html  # one untitled section: no break to show


def test_untitled_sections_after_the_first_show_a_break_everywhere(tmp_path: Path):
    case = CaseStudy(slug="ruptures", title="Un article coupé par des astérisques", lede=LEDE,
                     sections=(Section("", (BODY[0],)), Section("", (BODY[1],))), position=1,
                     status="ready", companies=(), themes=("produit",))
    path = corpus_mod.save(case, tmp_path / "corpus")
    assert path.read_text(encoding="utf-8").count("\n##\n") == 2
    assert corpus_mod.load_file(path).sections == case.sections
    from syndicate.render.archive import render_edition_page
    from syndicate.render.email import render_email
    from syndicate.render.feeds import render_item_html

    config = make_config(tmp_path, publish={"email_content": "full"})
    (view,) = make_history([case], config)
    page_html = render_edition_page(view, config)
    assert page_html.count('<hr class="break">') == 1
    assert page_html.index(BODY[0][:30]) < page_html.index('<hr class="break">') \
        < page_html.index(BODY[1][:30])
    assert render_item_html(view, config).count("<hr>") == 1
    email = render_email(view, config)
    assert email.html.count('role="separator"') == 1
    assert "\n* * *\n" in email.text
