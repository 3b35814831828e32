"""The leaves ``syndicate.text`` and ``syndicate.fs``: one slug rule, one French analysis.

Company pages are public URLs (``entreprises/<slug>/``): readers, search engines and other
sites link to them, so the slug of every company of the seed corpus is pinned here.
"""

from __future__ import annotations

import ast
import re
import threading
from pathlib import Path

import snowballstemmer

from syndicate import corpus
from syndicate.fs import write_atomic, write_atomic_bytes
from syndicate.render import company_url
from syndicate.render.archive import company_path
from syndicate.text import company_slug, french_stem, french_stop_words, slugify, strip_accents

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "syndicate"

# Every company of the seed corpus and the slug of its page, as published before the slug
# rule moved to syndicate.text. Changing one breaks readers' links.
COMPANY_SLUGS = {
    'Agicap': 'agicap', 'Alan': 'alan', 'Alan & Co': 'alan-co', 'Bergamotte': 'bergamotte',
    'Brigad': 'brigad', 'Cashbee': 'cashbee', 'Contournement': 'contournement',
    'Cozy Cloud': 'cozy-cloud', 'Cubyn': 'cubyn', 'Equify': 'equify', 'Faguo': 'faguo',
    'FoodChéri': 'foodcheri', 'Germinal': 'germinal', 'Heetch': 'heetch',
    'In Principo': 'in-principo', 'Intuiti': 'intuiti', 'Klaxoon': 'klaxoon', 'LDLC': 'ldlc',
    'Legalstart': 'legalstart', 'Livementor': 'livementor', 'Loom': 'loom', 'Luko': 'luko',
    'Lydia': 'lydia', 'ManoMano': 'manomano', 'Michel et Augustin': 'michel-et-augustin',
    'Octave & Octave': 'octave-octave', 'Olvid': 'olvid', 'OpenClassrooms': 'openclassrooms',
    'Ornikar': 'ornikar', 'Oui.sncf': 'oui-sncf', 'Partoo': 'partoo', 'PayFit': 'payfit',
    'Pennylane': 'pennylane', 'Qonto': 'qonto', 'QuiToque': 'quitoque', 'Shine': 'shine',
    'Skello': 'skello', 'Slite': 'slite', 'Spendesk': 'spendesk', 'Superprof': 'superprof',
    'Swile': 'swile', 'The Green Data': 'the-green-data', 'Tilkee': 'tilkee', 'Waalaxy': 'waalaxy',
    'Welcome to the Jungle': 'welcome-to-the-jungle', 'Yelda': 'yelda',
}


def seed_cases() -> list[corpus.CaseStudy]:
    return list(corpus.load(ROOT / "syndicate" / "examples" / "corpus"))


def test_every_company_url_of_the_seed_corpus_is_unchanged() -> None:
    companies = {name for case in seed_cases() for name in case.companies}
    assert companies == set(COMPANY_SLUGS)  # a new seed company: pin its slug here
    base = "https://cas.example.org/"
    for name, slug in COMPANY_SLUGS.items():
        assert company_slug(name) == slug
        # the link (feeds, emails, pages) and the file (archive channel) agree
        assert company_url(base, name) == f"{base}entreprises/{slug}/"
        assert company_path(name) == f"entreprises/{slug}/index.html"


def test_the_golden_company_pages_are_named_by_company_slug() -> None:
    pages = {p.name for p in (ROOT / "tests" / "golden" / "public" / "entreprises").iterdir()
             if p.is_dir()}
    assert pages and pages <= set(COMPANY_SLUGS.values())


def _defined(name: str) -> list[str]:
    """Every module of the package defining a top-level function ``name``."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(node, ast.FunctionDef) and node.name == name for node in tree.body):
            found.append(str(path.relative_to(ROOT)))
    return found


def test_one_slug_rule_and_one_french_analysis() -> None:
    for name in ("slugify", "company_slug", "write_atomic", "write_atomic_bytes"):
        expected = "syndicate/fs.py" if name.startswith("write") else "syndicate/text.py"
        assert _defined(name) == [expected], name
    # Only syndicate.text talks to the stemmer and the stop-word list.
    users = [
        str(path.relative_to(ROOT)) for path in sorted(PACKAGE.rglob("*.py"))
        if re.search(r"^\s*(?:import|from) (?:snowballstemmer|stop_words)\b",
                     path.read_text(encoding="utf-8"), re.M)
    ]
    assert users == ["syndicate/text.py"]


def test_french_stem_is_snowball_french_on_every_word_of_the_seed_corpus() -> None:
    snowball = snowballstemmer.stemmer("french")
    words = {w.lower() for case in seed_cases() for w in re.findall(r"[^\W\d_]+", case.text)}
    assert len(words) > 1000
    assert {w: french_stem(w) for w in words} == {w: snowball.stemWord(w) for w in words}
    assert french_stem("réussite") == "réussit" and strip_accents("réussit") == "reussit"
    assert {"le", "la", "des", "nous"} <= french_stop_words()


def test_french_stem_from_several_threads_gives_the_same_stems() -> None:
    # The web app and the daemon analyse from several threads; the Snowball stemmer keeps
    # the word being stemmed in attributes, so it is used under a lock.
    words = sorted({w.lower() for case in seed_cases() for w in re.findall(r"\w{4,}", case.text)})
    expected = {w: snowballstemmer.stemmer("french").stemWord(w) for w in words}
    french_stem.cache_clear()
    results: list[dict[str, str]] = []

    def stem_all() -> None:
        results.append({w: french_stem(w) for w in words})

    threads = [threading.Thread(target=stem_all) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 4 and all(r == expected for r in results)


def test_slugify_keeps_the_corpus_slugs() -> None:
    # Imported case studies are named by slugify(title): the seed files were.
    for case in seed_cases():
        assert case.path is not None and case.path.stem == case.slug
        assert case.slug.startswith(slugify(case.title)[:40])


def test_atomic_writes_replace_whole_files(tmp_path: Path) -> None:
    target = tmp_path / "a" / "page.html"
    write_atomic(target, "é")
    assert target.read_text(encoding="utf-8") == "é" and target.stat().st_mode & 0o777 == 0o644
    write_atomic_bytes(target, b"new", mode=0o600)
    assert target.read_bytes() == b"new" and target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["page.html"]  # no temp file left


# --------------------------------------------------------------------------- reserved slugs

GOLDEN_PUBLIC = Path(__file__).resolve().parent / "golden" / "public"


def test_reserved_slugs_are_the_names_and_routes_the_issue_lists():
    from syndicate.text import reserved_slug

    for name in ("page", "entreprises", "2026", "1999", "sitemap", "sitemap-pages",
                 "sitemap-2027", "feed", "feed-json", "static", "admin", "r", "subscribe",
                 "unsubscribe", "confirm"):
        assert reserved_slug(name), name
    for name in ("page-2", "2026-2", "pages", "sitemap-des-entreprises", "feedback", "feed-2",
                 "r-d", "admin-2", "entreprises-du-nord", "20260", "semaine-de-quatre-jours"):
        assert not reserved_slug(name), name
    assert all(not reserved_slug(slugify(name)) for name in (f"{n}-2" for n in
               ("page", "2026", "subscribe")))


def test_every_archive_entry_and_web_route_is_reserved(tmp_path: Path):
    """The list follows the real archive (tests/golden/public: every folder and file that is
    not an edition) and the web app's URL map, so a new folder or route can not be missed."""
    from _render_support import make_config

    from syndicate.text import reserved_slug
    from syndicate.web.app import create_app

    names = []
    for entry in GOLDEN_PUBLIC.iterdir():
        if entry.name == "index.html":
            continue
        page = entry / "index.html"
        if page.is_file() and 'content="article"' in page.read_text(encoding="utf-8"):
            continue  # an edition
        names.append(entry.name.split(".")[0])
    assert {"page", "entreprises", "2026", "sitemap", "feed", "atom"} <= set(names)
    assert [n for n in names if not reserved_slug(n)] == []
    app = create_app(make_config(tmp_path), secret=b"s" * 32)
    routes = {rule.rule.strip("/").split("/")[0] for rule in app.url_map.iter_rules()}
    routes -= {"", "<path:path>"}
    assert {"subscribe", "unsubscribe", "confirm"} <= routes
    assert [r for r in routes if not reserved_slug(r)] == []
