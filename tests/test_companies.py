"""Company extraction: a hand-made gold list for the ten seed articles, and sentences
built to trip it (tools, people, cities, sectors, acronyms, look-alike names)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from syndicate.ingest import build_case, parse_page, read_page
from syndicate.ingest.companies import extract_companies, has_company_story

SEEDS = Path(__file__).resolve().parent / "data" / "seeds"  # copies of ../shared/seeds
BIG_PAGE = SEEDS / "000_2ed753a566ed84a8.txt"

# Read from the text by hand: the organisations whose story a section tells, in order of
# first appearance. Keyed by the start of the article title.
GOLD: dict[str, list[str]] = {
    "Refuser les levées de fonds": [
        "The Green Data", "Cozy Cloud", "Swile", "Loom", "Livementor", "Contournement"],
    "Quand écarter son plus gros client": [
        "Octave & Octave", "Spendesk", "In Principo", "Qonto", "Shine", "Equify"],
    "Supprimer 90 % des réunions": [
        "Germinal", "Waalaxy", "Agicap", "Shine", "Superprof", "Partoo"],
    "Travailler quatre jours par semaine": [
        "Alan & Co", "LDLC", "Intuiti", "Welcome to the Jungle", "Shine", "Slite"],
    "Ce que révèle l’acceptation systématique": [
        "Skello", "Legalstart", "Alan", "Olvid", "Shine"],
    "Les enseignements tirés de la création": [
        "Tilkee", "Brigad", "Cashbee", "Ornikar", "Cubyn"],
    "Quand une entreprise frôle la crise": [
        "Pennylane", "Luko", "Bergamotte", "PayFit"],
    "Comment une erreur à 100K€": [
        "QuiToque", "Heetch", "Luko", "Loom", "Swile"],
    "Ce que révèle une immersion du dirigeant": [
        "FoodChéri", "Michel et Augustin", "OpenClassrooms", "Oui.sncf", "Lydia", "Alan",
        "Welcome to the Jungle"],
    "Quand l’intelligence artificielle prend": [
        "Faguo", "Yelda", "Klaxoon", "ManoMano", "Alan", "OpenClassrooms"],
}
# Organisations that are named but whose story is not told (an acquirer, a parent
# company, a former employer). Finding them is not counted as a hit; it still lowers
# the strict precision below.
NAMED_ONLY = {"Carrefour", "Admiral", "Danone Venture", "SNCF"}
# Never companies: tools, people, places, sectors, acronyms that appear in the seeds.
NEVER = {
    "LinkedIn", "Slack", "Julia Faure", "Romain Raffard", "Charles Guilhamon", "Guilhamon",
    "Aurélie Jeanblanc", "Mathieu Nebra", "Cyril Chiche", "Guillaume Pépy", "Lyon", "Paris",
    "Nantes", "Rennes", "Lille", "Montpellier", "Maghreb", "Algérie", "France", "HealthTech",
    "EdTech", "IA", "RH", "PDG", "CEO", "CTO", "SAV", "PME", "TPE", "ONG", "UX", "MVP", "CRM",
    "SaaS", "SCI", "Customer Success", "Cozy", "Alan & Co et Alan",
}


@pytest.fixture(scope="module")
def seed_cases():
    page = parse_page(read_page(BIG_PAGE))
    return [build_case(article, BIG_PAGE.name, article.rank, f"a{article.rank}")
            for article in page.articles]


def _gold_for(title: str) -> list[str]:
    keys = [key for key in GOLD if title.startswith(key)]
    assert len(keys) == 1, f"no gold list for {title!r}"
    return GOLD[keys[0]]


def test_seed_companies_recall_and_precision(seed_cases):
    assert len(seed_cases) == len(GOLD) == 10
    hits = found_total = gold_total = strict_wrong = 0
    for case in seed_cases:
        gold = _gold_for(case.title)
        found = list(case.companies)
        assert len(found) == len(set(found)), f"duplicates in {found}"
        hits += len(set(found) & set(gold))
        found_total += len(found)
        gold_total += len(gold)
        strict_wrong += len(set(found) - set(gold))
        assert not set(found) & NEVER, (case.title, set(found) & NEVER)
        missed, extra = set(gold) - set(found), set(found) - set(gold) - NAMED_ONLY
        print(f"{case.title[:50]:50}  missed={sorted(missed)} extra={sorted(extra)}")
    recall = hits / gold_total
    precision = (found_total - strict_wrong) / found_total
    print(f"companies on the seeds: recall {recall:.3f} ({hits}/{gold_total}), "
          f"strict precision {precision:.3f} ({found_total - strict_wrong}/{found_total})")
    assert recall >= 0.95
    assert precision >= 0.9


def test_seed_companies_keep_order_of_first_appearance(seed_cases):
    for case in seed_cases:
        gold = _gold_for(case.title)
        common = [name for name in case.companies if name in gold]
        assert common == [name for name in gold if name in common], case.title


def _one(*paragraphs: str) -> tuple[str, ...]:
    return extract_companies([list(paragraphs)])


def test_cues_before_the_name():
    assert _one(
        "Chez Skello, les équipes testent tout. C’est le cas de Swile à ses débuts, "
        "lorsque la startup lyonnaise Tilkee lance un module. L’agence digitale "
        "Octave & Octave, basée à Lille, rompt un contrat. La fondatrice de la marque "
        "Loom raconte. Le CEO de Lydia décide.",
    ) == ("Skello", "Swile", "Tilkee", "Octave & Octave", "Loom", "Lydia")


def test_descriptions_after_the_name():
    assert _one(
        "Pour Alan, startup spécialisée dans la santé, tout change. En 2020, PayFit, "
        "scale-up de gestion de paie, est confrontée à un conflit. Dans la mode, "
        "Cashbee, application d’épargne, lance une offre.",
    ) == ("Alan", "PayFit", "Cashbee")


def test_tools_places_sectors_and_acronyms_are_not_companies():
    found = _one(
        "Chez Waalaxy, basée à Montpellier, les équipes échangent sur Slack et sur Slack "
        "encore, publient sur LinkedIn puis via LinkedIn, documentent dans Notion et avec "
        "Notion. L’IA aide les RH et le PDG. Ce modèle inspire la HealthTech et les EdTech "
        "à Paris comme à Lyon, à Paris surtout.",
    )
    assert found == ("Waalaxy",)


def test_people_are_not_companies():
    found = _one(
        "En 2019, Romain Raffard, fondateur de QuiToque, plateforme de paniers-repas, "
        "investit. Le CEO de Lydia, Cyril Chiche, passe une semaine en équipe. Pour Mathieu "
        "Nebra, cofondateur d’OpenClassrooms, tout change. “Nous avons appris”, confie "
        "Raffard. Chez Oui.sncf, Guillaume Pépy, alors à la tête de la SNCF, observe.",
    )
    assert found == ("QuiToque", "Lydia", "OpenClassrooms", "Oui.sncf")


def test_look_alike_names_stay_distinct():
    assert extract_companies([
        ["En 2022, l’agence de design Alan & Co passe à quatre jours."],
        ["Chez Alan, la direction teste une IA. Chez Welcome to the Jungle, on écrit."],
    ]) == ("Alan & Co", "Alan", "Welcome to the Jungle")


def test_et_joins_a_name_unless_each_half_is_cited_alone():
    assert _one("Le PDG de Michel et Augustin tente l’exercice.") == ("Michel et Augustin",)
    assert _one(
        "Chez Qonto et Shine, même constat. Chez Qonto, les équipes ralentissent. "
        "Chez Shine, elles accélèrent."
    ) == ("Qonto", "Shine")


def test_repeated_plain_name_is_a_company_but_a_single_one_is_not():
    assert _one(
        "L’expérience menée par Legalstart en 2022 a mis en lumière un aspect. En intégrant "
        "leur outil, Legalstart ouvre un canal. Le groupe Carrefour rachète une enseigne."
    ) == ("Legalstart",)


def test_sentence_start_words_are_not_names():
    found = extract_companies(
        [["Objectif : libérer du temps. Chez Germinal, tout change. Résultat : moins de "
          "réunions. Derrière ces décisions, Germinal avance. Mais Germinal hésite."]],
        lowercase_words={"objectif", "résultat"},
    )
    assert found == ("Germinal",)


def test_lede_detection_of_company_story():
    assert has_company_story("Chez Spendesk, fintech spécialisée, un client absorbe tout.")
    assert not has_company_story(
        "Lever des fonds est souvent perçu comme une étape incontournable. Pourtant, un "
        "nombre croissant d’entreprises françaises revendiquent une autre trajectoire."
    )


def test_more_ways_of_introducing_a_company():
    assert _one(
        "Fondée en 2015, Doctolib a choisi une autre voie. Du côté de Back Market, la "
        "licorne française, le constat est le même. Au sein de Malt, rien ne change. La "
        "néobanque Memo Bank tente l’expérience. Le géant américain Amazon observe."
    ) == ("Doctolib", "Back Market", "Malt", "Memo Bank", "Amazon")


def test_tools_in_use_are_not_companies_even_with_an_org_noun():
    assert _one(
        "Chez Alan, les équipes publient sur la plateforme LinkedIn, utilisent Notion et "
        "adoptent Notion pour tout, puis migrent vers l’application Slack."
    ) == ("Alan",)


def test_more_people():
    assert _one(
        "Julie Martin, 34 ans, dirige Lemon Way depuis 2019. La cofondatrice Claire Dupont "
        "l’a rejointe. Chez Lemon Way, la fintech toulousaine, Julie Martin et Claire Dupont "
        "décident. “Nous avons tout revu”, explique Claire Dupont."
    ) == ("Lemon Way",)


# --------------------------------------------------------------------------- hold-out pages
# Pages written after the importer (tests/data/holdout), with their companies read by hand
# in the JSON next to each page: "companies" per article (the stories told, in order),
# "named_only" (cited, e.g. a client group: not counted as a hit, nor as a miss) and, per
# page, "not_companies" (tools, people, places, institutions, acronyms: never companies).

HOLDOUT = Path(__file__).resolve().parent / "data" / "holdout"


def _holdout_cases():
    for page in sorted(HOLDOUT.glob("*.txt")):
        fixture = json.loads(page.with_suffix(".json").read_text(encoding="utf-8"))
        gold = {article["title"]: article for article in fixture["articles"]}
        parsed = parse_page(read_page(page))
        for article in parsed.articles:
            case = build_case(article, page.name, article.rank, f"a{article.rank}")
            yield page.name, case, gold.get(case.title), set(fixture["not_companies"])


def test_holdout_companies_recall_and_precision():
    hits = found_total = gold_total = wrong = 0
    for page, case, gold, never in _holdout_cases():
        assert gold is not None, f"{page}: unexpected article {case.title!r}"
        found = list(case.companies)
        assert len(found) == len(set(found)), f"duplicates in {found}"
        assert not set(found) & never, (case.title, set(found) & never)
        hits += len(set(found) & set(gold["companies"]))
        found_total += len(found)
        gold_total += len(gold["companies"])
        wrong += len(set(found) - set(gold["companies"]) - set(gold["named_only"]))
        print(f"{page:28} {case.title[:40]:40} missed="
              f"{sorted(set(gold['companies']) - set(found))} extra="
              f"{sorted(set(found) - set(gold['companies']))}")
    recall, precision = hits / gold_total, (found_total - wrong) / found_total
    print(f"companies on the hold-out pages: recall {recall:.3f} ({hits}/{gold_total}), "
          f"precision {precision:.3f} ({found_total - wrong}/{found_total})")
    assert recall >= 0.95
    assert precision >= 0.9


def test_holdout_companies_in_order_of_first_appearance():
    for _page, case, gold, _never in _holdout_cases():
        if gold is None:
            continue
        common = [name for name in case.companies if name in gold["companies"]]
        assert common == [name for name in gold["companies"] if name in common], case.title


def test_names_with_an_article_keep_it():
    assert extract_companies([
        ["Chez Le Slip Français, la marque de sous-vêtements, tout change. Pour la direction "
         "du Slip Français, c’est un test."],
        ["Chez La Belle Vie, supermarché en ligne, on publie tout. La Belle Vie a constaté "
         "une baisse des départs. La Belle Vie s’en félicite."],
    ]) == ("Le Slip Français", "La Belle Vie")
