"""Themes: a few tags per case study, guessed from a small lexicon of French stems.

The guess only has to be good enough: themes live in the front matter where operators
correct them. Each theme below lists word beginnings (matched at the start of a word,
case-insensitively, so ``partenari`` finds partenariat, partenariats, partenariale) or,
when a stem starts with ``=``, a whole word matched with its case (``=IA``). A theme's
score is its number of hits per thousand words of the article, hits in the title
counting five times over; the article gets its best themes scoring at least
:data:`THRESHOLD` and at least :data:`RELATIVE` of the best score, at most
:data:`MAX_THEMES`, and always at least one.

To add a theme, add a line here: nothing else knows the list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

LEXICON: dict[str, tuple[str, ...]] = {
    "financement": ("levée", "levées", "lever des fonds", "fonds", "investiss", "capital",
                    "financ", "rentab", "trésorerie", "bootstrap", "autofinanc", "actionna",
                    "dilution", "amorçage", "chiffre d’affaires", "chiffre d'affaires"),
    "relation client": ("client", "relation client", "satisfaction", "fidélis", "service client",
                        "support client", "churn", "prescripteur", "prospect"),
    "organisation du travail": ("réunion", "semaine de quatre jours", "quatre jours",
                                "temps de travail", "asynchron", "organisation", "rythme",
                                "télétravail", "coordination", "planning", "charge mentale",
                                "rituel"),
    "management": ("manag", "dirigeant", "leadership", "gouvernance", "encadrement",
                   "délég", "hiérarch", "immersion", "posture"),
    "produit": ("produit", "fonctionnalit", "roadmap", "prototyp", "=MVP", "module",
                "pivot", "usage", "adoption", "ergonom"),
    "partenariats": ("partenari", "alliance", "co-branding", "collaborations"),
    "crise": ("crise", "incident", "échec", "erreur", "conflit", "résilien", "urgence",
              "choc", "perte"),
    "intelligence artificielle": ("intelligence artificielle", "=IA", "algorithm",
                                  "automatis", "génératif", "générative"),
    "commercial": ("commercia", "vente", "=sales", "leads", "prospection", "conversion"),
    "ressources humaines": ("recrut", "marque employeur", "=RH", "salarié", "talent",
                            "rétention", "attractivité", "candidat"),
}
THRESHOLD = 7.0
RELATIVE = 0.25
MAX_THEMES = 3


@cache
def _patterns() -> dict[str, re.Pattern[str]]:
    compiled: dict[str, re.Pattern[str]] = {}
    for theme, stems in LEXICON.items():
        parts = [
            rf"(?-i:\b{re.escape(stem[1:])}\b)" if stem.startswith("=")
            else rf"\b{re.escape(stem)}"
            for stem in stems
        ]
        compiled[theme] = re.compile("|".join(parts), re.IGNORECASE)
    return compiled


def theme_scores(title: str, paragraphs: Iterable[str]) -> dict[str, float]:
    """Each theme's hits per thousand words (title hits count five times)."""
    body = "\n".join(paragraphs)
    words = max(1, len(title.split()) + len(body.split()))
    return {
        theme: 1000 * (5 * len(pattern.findall(title)) + len(pattern.findall(body))) / words
        for theme, pattern in _patterns().items()
    }


def guess_themes(title: str, paragraphs: Iterable[str]) -> tuple[str, ...]:
    """The article's themes, best first."""
    scores = theme_scores(title, paragraphs)
    ranked = sorted(scores, key=lambda theme: (-scores[theme], theme))
    floor = max(THRESHOLD, RELATIVE * scores[ranked[0]])
    chosen = [theme for theme in ranked[:MAX_THEMES] if scores[theme] >= floor]
    return tuple(chosen or ranked[:1])
