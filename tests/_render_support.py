"""Shared fixtures for the email, archive, mail and browser tests.

Case studies come from the sample corpus (``syndicate/examples/corpus/``) when it
holds any, else from the seed page (``tests/data/seeds/000_*.txt``, ten articles) split
with the page's own layout (title, one-paragraph lede, then headed sections); company
names are the known ones found in each text. Templates are the shipped ones. Views are
built like the pipeline does: related links and "apparaît aussi dans" only point to
earlier editions.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from syndicate import corpus as corpus_mod
from syndicate.app import parse_config
from syndicate.config import Config
from syndicate.corpus import CaseStudy, Section
from syndicate.render.model import CompanyMention, EditionView, Link
from syndicate.render.urls import company_url, edition_url
from syndicate.text import one_line_excerpt, slugify

ROOT = Path(__file__).resolve().parents[1]
SEEDS = next((p for p in (ROOT / "tests" / "data" / "seeds", Path("/work/shared/seeds"))
              if p.is_dir()), ROOT / "tests" / "data" / "seeds")
PARIS = ZoneInfo("Europe/Paris")
KNOWN_COMPANIES = (
    "The Green Data", "Cozy Cloud", "Loom", "Skello", "Legalstart", "Alan", "Olvid", "Luko",
    "Shine", "Qonto", "Doctolib", "BlaBlaCar", "Back Market", "PayFit", "Malt", "Swile",
    "Lydia", "Ledger", "Pennylane", "Spendesk", "Aircall", "Contentsquare", "Algolia",
)


def _split_page(text: str) -> list[tuple[str, str, list[tuple[str, list[str]]]]]:
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text) if b.strip()]

    def short(block: str) -> bool:
        return len(block) < 160 and not block.endswith((".", "»", "”", "!"))

    articles: list[tuple[str, str, list[tuple[str, list[str]]]]] = []
    i = 0
    while i < len(blocks):
        is_title = (short(blocks[i]) and i + 2 < len(blocks) and not short(blocks[i + 1])
                    and short(blocks[i + 2]))
        if is_title:
            articles.append((blocks[i], blocks[i + 1], []))
            i += 2
            continue
        if articles and short(blocks[i]):
            articles[-1][2].append((blocks[i], []))
        elif articles and articles[-1][2] and not short(blocks[i]):
            articles[-1][2][-1][1].append(" ".join(blocks[i].split("\n")))
        i += 1
    return [a for a in articles if a[2] and all(p for _h, p in a[2])]


def seed_cases() -> tuple[CaseStudy, ...]:
    corpus_dir = ROOT / "syndicate" / "examples" / "corpus"
    if any(corpus_dir.glob("*.md")):
        return corpus_mod.load(corpus_dir).cases
    page = next(SEEDS.glob("000_*.txt"))
    cases = []
    for position, (title, lede, sections) in enumerate(
            _split_page(page.read_text(encoding="utf-8")), 1):
        body = " ".join([lede] + [p for _h, ps in sections for p in ps])
        companies = tuple(c for c in KNOWN_COMPANIES if re.search(rf"\b{re.escape(c)}\b", body))
        cases.append(CaseStudy(
            slug=slugify(title), title=title, lede=lede,
            sections=tuple(Section(h, tuple(ps)) for h, ps in sections),
            position=position, companies=companies, themes=("stratégie",),
        ))
    return tuple(cases)


def hostile_case() -> CaseStudy:
    return CaseStudy(
        slug="texte-hostile",
        title="Un titre <script>alert('t')</script> & {{ config }}",
        lede="Chapô avec <b>balises</b>, {{ 7*7 }}, {% raw %} et https://unsubscribe-x.invalid/.",
        sections=(
            Section("Intertitre <img src=x onerror=alert(1)>", (
                "Paragraphe <script>alert(1)</script> puis {{ self.__init__ }} "
                "et « guillemets »\u00a0!",
                "Second paragraphe : </mj-text></mj-column> <mj-raw>x</mj-raw> fin.",
            )),
        ),
        position=99,
        companies=("Acme <i>SA</i>", "Shine"),
    )


def make_config(tmp_path: Path, *, site: dict | None = None, publish: dict | None = None,
                channels: list | None = None) -> Config:
    data = {
        "site": {
            "title": "Études de cas",
            "base_url": "https://etudes.example.org/",
            "postal_address": "Études de cas, 10 rue de l’Exemple, 75011 Paris, France",
            "email": "redaction@etudes.example.org",
            **(site or {}),
        },
        "storage": {
            "database": str(tmp_path / "var" / "syndicate.db"),
            "corpus": str(tmp_path / "corpus"),
            "public": str(tmp_path / "public"),
        },
        "publish": {**(publish or {})},
        "channels": channels or [],
    }
    (tmp_path / "config").mkdir(parents=True, exist_ok=True)
    return parse_config(data, tmp_path / "config" / "syndicate.toml")


def make_history(cases: tuple[CaseStudy, ...] | list[CaseStudy], config: Config, *,
                 start: datetime | None = None, related: int = 3) -> tuple[EditionView, ...]:
    """One edition per case, weekly from ``start``; newest first, like ``job.history``."""
    start = start or datetime(2026, 11, 3, 8, 0, tzinfo=PARIS)
    base = config.site.base_url
    views: list[EditionView] = []
    for number, case in enumerate(cases, 1):
        earlier = [v.case for v in views]

        def link(c: CaseStudy) -> Link:
            return Link(c.slug, c.title, edition_url(base, c.slug), one_line_excerpt(c.lede))

        mentions = tuple(
            CompanyMention(company, company_url(base, company),
                           tuple(link(c) for c in reversed(earlier) if company in c.companies))
            for company in case.companies
        )
        views.append(EditionView(
            number=number, case=case, url=edition_url(base, case.slug),
            published_at=start + timedelta(weeks=number - 1),
            related=tuple(link(c) for c in list(reversed(earlier))[:related]),
            companies=mentions,
        ))
    return tuple(reversed(views))


def make_job(config: Config, ledger, history: tuple[EditionView, ...], index: int = 0, *,
             email=None, now=None):
    """The DeliveryJob for ``history[index]`` (its history: that edition and older ones).

    Claims the edition in ``ledger`` (with its date of record) unless already there.
    """
    from syndicate.channels import Bookkeeping, DeliveryJob
    from syndicate.render.email import render_email

    view = history[index]
    edition = ledger.get_edition(view.slug) or ledger.claim_edition(
        slot=f"test:{view.number}", slug=view.slug, title=view.title, url=view.url,
        published_at=view.published_at,
    )
    extra = {"now": now} if now is not None else {}
    return DeliveryJob(edition, view, history[index:], email or render_email(view, config),
                       Bookkeeping(ledger, edition, **extra), **extra)
