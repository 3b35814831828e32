"""Which organisations a case study tells the story of.

No list of known companies: names are read from the text. A *name* is a run of
capitalised words ("The Green Data", "Oui.sncf", "OpenClassrooms"), glued by ``&``
("Octave & Octave", "Alan & Co"), by English function words ("Welcome to the Jungle")
or by ``et`` ("Michel et Augustin", unless each half is cited on its own). A name
becomes a company on *evidence* found around one of its mentions in a section:

* a cue before it: "Chez X", "C’est le cas de X", "la startup lyonnaise X",
  "l’éditeur de logiciels X", "fondatrice de la marque X", "le CEO de X";
* a description after it: "X, startup spécialisée…", "X, la fintech…", "X, basée à…";
* or, weaker, two mentions of it in one section as a plain name (not after "à", "en",
  "sur", "avec"… which introduce places and tools, not after an article: "la SNCF",
  "la HealthTech").

A mention described as a person ("Romain Raffard, fondateur de…", "…de Lydia, Cyril
Chiche,", "confie Guilhamon") is a person, and so are later mentions of that person's
first or last name. Generic acronyms (IA, RH, PDG…) and all-capital names without a
strong cue are never companies. A first name and a surname ("Guillaume Decugis") is a
person whatever the cue, unless an organisation noun names it ("la startup Jean Bouteille").

Some pages name a company without any cue word, in patterns read here too: "Prenez Slack,
par exemple", "Patagonia, par exemple, …", "ce qu’a fait Instagram", "Lush a fermé…"; and
some tell its story in the chapô, which the importer passes as the first section.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache

from ..text import french_stop_words

_APOS = "’'"
# Nouns that introduce an organisation right before its name ("la startup X") or right
# after it in an apposition ("X, plateforme de…"). Not "groupe": on these pages "le groupe X"
# is an acquirer, not the company whose story is told.
_ORG = (
    r"(?:start-?ups?|scale-?ups?|licornes?|jeunes? pousses?|entreprises?|sociétés?|agences?"
    r"|marques?|enseignes?|PME|ETI|éditeur|éditrice|plate-?formes?|fintechs?|insurtechs?"
    r"|healthtechs?|edtechs?|foodtechs?|proptechs?|legaltechs?|regtechs?|greentechs?|cabinets?"
    r"|studios?|structures?|applications?|applis?|néo-? ?banques?|banques?|assureurs?|mutuelles?"
    r"|associations?|coopératives?|maisons?|spécialistes?|solutions?|firmes?|boîtes?"
    r"|fabricants?|distributeurs?|constructeurs?|leaders?|pionniers?|acteurs?|réseaux?"
    r"|collectifs?|fondations?|écoles?|organismes?|filiales?|entités?|plateformes?|géants?"
    r"|champions?|opérateurs?|laboratoires?|marketplaces?|e-commerçants?|pure players?"
    r"|auto-écoles?|courtiers?|comparateurs?|médias?|supermarchés?|épiceries?"
    r"|chaînes?|magasins?|boutiques?|ateliers?|manufactures?|brasseries?"
    r"|cliniques?|éditeurs|éditrices|places? de marché|fournisseurs?|prestataires?"
    r"|franchises?|franchiseurs?|concepteurs?|producteurs?|transporteurs?|loueurs?"
    r"|sous-traitants?|équipementiers?|industriels?|brasseurs?|torréfacteurs?|caves?)"
)
_ROLE = (
    r"(?:co-?fondat(?:eur|rice)s?|fondat(?:eur|rice)s?|créat(?:eur|rice)s?|CEO|PDG|DG|CTO|COO"
    r"|CMO|CFO|DRH|président(?:e)?s?|directeur(?:s| général)?|directrice(?:s| générale)?"
    r"|dirigeant(?:e)?s?|patron(?:ne)?s?|gérant(?:e)?s?|associé(?:e)?s?|responsables?"
    r"|managers?)"
)
_DESCRIPTIVE_WORD = r"(?:(?:de |d[’']|des |du |en )?[a-zà-öø-ÿ][\w-]*)"

# Strong cues: the text right before a mention (same sentence).
_CUE_BEFORE = (
    re.compile(r"\bchez\s+$", re.IGNORECASE),
    re.compile(r"\bc[’']est (?:\w+ )?(?:le|aussi le|notamment le) cas (?:de |d[’'])$",
               re.IGNORECASE),
    re.compile(rf"\b{_ORG}(?P<described>(?:\s+{_DESCRIPTIVE_WORD}){{0,3}})\s+$"),
    re.compile(rf"\b{_ROLE}\s+(?:de |d[’']|du )(?:(?:la |le |l[’'])?{_ORG}"
               rf"(?P<described>(?:\s+{_DESCRIPTIVE_WORD}){{0,3}})\s+)?$"),
    re.compile(r"\b(?:du côté de|au sein de|à l[’']image de|l[’']exemple de|le cas de"
               r"|comme chez)\s+$", re.IGNORECASE),
    re.compile(r"\b(?:fondée?|créée?|lancée?)\s+en\s+\d{4}\s*,\s+$", re.IGNORECASE),
    # no cue word, but the sentence is about it: "Prenez Slack, par exemple", "ce qu’a fait
    # Instagram", "la leçon qu’a tirée Pennylane"
    re.compile(r"\b(?:prenez|prenons|regardez|voyez)\s+(?:le cas de |l[’']exemple de )?$",
               re.IGNORECASE),
    re.compile(r"\bqu[’'](?:a|avait)\s+(?:fait|tirée?s?|choisie?|retenue?s?|réussi|tenté"
               r"|comprise?|vécue?|imaginée?|lancée?|décidée?|menée?)\s+$"),
)
# "sur la plateforme LinkedIn", "via l’application X": a tool being used, not a story.
_USING = (r"utilise|utilisent|utiliser|utilisant|adopte|adoptent|adopter|déploie|déploient"
          r"|intègre|intègrent|migre|migrent|installe|installent")
_TOOL_BEFORE_ORG = re.compile(
    rf"\b(?:sur|via|depuis|grâce à|avec|vers|dans|{_USING})\s+"
    rf"(?:la |le |les |l[’']|leur |son |sa |une |un )?$", re.IGNORECASE)
# Strong cues: the text right after a mention.
_CUE_AFTER = (
    re.compile(rf"^,\s+(?:(?:la|le|une|un|cette) |l[’'])?{_ORG}\b"),
    re.compile(r"^,?\s+(?:basée?|fondée?|créée?|lancée?|implantée?|installée?|située?|née?)"
               r"\s+(?:à|en|au|dans|par|il y a)\b"),
    re.compile(r"^,\s+(?:spécialisée?|positionnée?|présente?|connue?|reconnue?)\s+(?:dans|pour|en|sur)"
               r"\b"),
    re.compile(r"^,\s+qui\s+(?:développe|propose|commercialise|édite|fabrique|conçoit|vend"
               r"|accompagne|emploie|compte)\b"),
    re.compile(r"^,\s+par exemple\b"),  # "Patagonia, par exemple, publie…"
    # the subject of a company's decision: "Lush a fermé ses comptes", "Dotemu a choisi…"
    re.compile(r"^\s+(?:a|avait)\s+(?:(?:aussi|déjà|ainsi|d[’']abord|finalement|notamment"
               r"|donc|pour sa part|elle aussi)\s+)?(?:fermé|lancé|choisi|cessé|décidé|rapatrié"
               r"|supprimé|racheté|abandonné|réduit|investi|recruté|ouvert|levé|misé|opté"
               r"|renoncé|mis en place|bâti|construit|quitté|relocalisé|réorganisé|revu"
               r"|repensé|instauré|externalisé|internalisé)\b"),
)
# A person: described by a role after the name, named after a role "…de X, <Name>",
# or the subject of a reporting verb.
_PERSON_AFTER = re.compile(
    rf"^,\s+(?:(?:l[’']une?|un|une) des |le |la |l[’']|son |sa |notre |leur |ancien(?:ne)? )?"
    rf"(?:{_ROLE}\b|alors (?:à la tête|{_ROLE}\b)|aujourd[’']hui {_ROLE}\b|ex-|\d+ ans\b)")
_PERSON_BEFORE = (
    re.compile(rf"\b{_ROLE}\s+(?:de |d[’']|du )[^,.;:]{{1,60}},\s+$"),
    re.compile(r"\b(?:confie|explique|raconte|résume|souligne|précise|ajoute|indique|témoigne"
               r"|affirme|note|rappelle|estime|poursuit|conclut|reconnaît|analyse|selon|pour"
               r" qui)\s+$"),
    re.compile(r"\b(?:M\.|Mme|Mlle|Monsieur|Madame|Dr|Me)\s+$"),
    re.compile(rf"\b{_ROLE}\s+$"),  # "la cofondatrice Julie Martin"
)
_PLACE_OR_TOOL = re.compile(
    rf"\b(?:à|en|au|aux|vers|depuis|sur|via|avec|dans|sous|entre|outils?|logiciels?|{_USING}"
    rf"|abonnés? à|comptes?)\s+$", re.IGNORECASE)
_DETERMINER = re.compile(
    r"(?:^|[\s(])(?:la|le|les|l[’']|un|une|des|du|ce|cet|cette|ces|son|sa|ses|leur|leurs"
    r"|notre|nos)\s*$", re.IGNORECASE)
_DETERMINER_ELIDED = re.compile(r"(?:^|\s)[lL][’']$")

# Generic acronyms and words that are never company names even with a cue.
GENERIC = frozenset([
    "IA", "AI", "RH", "HR", "PDG", "CEO", "CTO", "COO", "CMO", "CFO", "DG", "DRH", "DAF", "PME",
    "TPE", "ETI", "ONG", "SAV", "UX", "UI", "MVP", "CRM", "ERP", "SaaS", "API", "APIs", "B2B",
    "B2C", "KPI", "KPIs", "OKR", "OKRs", "R&D", "CSE", "VTC", "SCI", "HT", "TTC", "TVA", "CA", "IT",
    "SEO", "SEA", "NFT", "ESN", "ESS", "RSE", "France", "Europe", "Paris", "Lyon", "Internet", "Web"
])
_ENGLISH_GLUE = frozenset({"to", "the", "of", "and", "for", "by", "in"})
_SENTENCE_START_WORDS = frozenset(
    [
        "chez", "pour", "dans", "lorsque", "quand", "si", "après", "avant", "depuis", "mais",
        "même", "puis", "ainsi", "enfin", "alors", "ensuite", "aujourd", "désormais", "cependant",
        "pourtant", "toutefois", "certes", "face", "selon", "grâce", "malgré", "comme", "derrière",
        "parmi", "résultat", "objectif", "bref", "surtout", "reste", "autrement", "finalement",
        "concrètement", "sinon", "donc", "néanmoins", "côté", "mieux", "pire", "seul", "chaque",
        "ici", "outre", "quant", "entre", "autre", "autres", "certains", "certaines", "plusieurs",
        "prenez", "prenons", "regardez", "voyez", "imaginez", "pensez"
    ]
)

_WORD = re.compile(r"&|\w(?:[\w.’'-]*\w)?")
_ELISION = re.compile(
    rf"^(?:[lLdDcCjJmMnNsStT]|[qQ]u|[jJ]usqu|[lL]orsqu|[pP]uisqu|[qQ]uoiqu)[{_APOS}]")
_SENTENCE_END = re.compile(r"(?:[.!?…][»”\"’)]*|[“«(—:])\s*$")


@cache
def _stop_words() -> frozenset[str]:
    return french_stop_words() | _SENTENCE_START_WORDS


@dataclass(frozen=True)
class _Token:
    text: str
    start: int
    end: int

    @property
    def capitalised(self) -> bool:
        first = self.text[0]
        if first.isdigit():  # "360Learning", never "2021" or "100K€"
            return bool(re.match(r"^\d+[A-Z][a-z]", self.text))
        return first.isupper()


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    for match in _WORD.finditer(text):
        word, start = match.group(), match.start()
        elision = _ELISION.match(word)
        if elision and len(word) > elision.end():
            out.append(_Token(word[: elision.end()], start, start + elision.end()))
            word, start = word[elision.end():], start + elision.end()
        out.append(_Token(word, start, start + len(word)))
    return out


@dataclass(frozen=True)
class Mention:
    name: str
    start: int
    end: int
    sentence_start: bool


def _is_sentence_start(text: str, start: int) -> bool:
    return start == 0 or bool(_SENTENCE_END.search(text[:start]))


def mentions(text: str, lowercase_words: frozenset[str] = frozenset()) -> list[Mention]:
    """Every run of capitalised words in ``text`` (a paragraph), as a candidate name.

    ``lowercase_words`` are words seen in lower case elsewhere on the page: capitalised
    at the start of a sentence they are ordinary words ("Objectif : …"), not names.
    """
    tokens = _tokens(text)
    found: list[Mention] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.capitalised or _ELISION.fullmatch(token.text):
            i += 1
            continue
        j = i
        while j + 1 < len(tokens):
            nxt = tokens[j + 1]
            gap = text[tokens[j].end: nxt.start]
            if gap.strip():
                break  # punctuation between the words: separate names
            if nxt.capitalised and not _ELISION.fullmatch(nxt.text):
                j += 1
                continue
            # "Plug in digital": an English glue word, then lower-case English words, in a
            # French text: one name
            if nxt.text in _ENGLISH_GLUE - {"and"} and j + 2 < len(tokens):
                tail = tokens[j + 2]
                if (tail.text.isascii() and tail.text.isalpha() and tail.text.islower()
                        and tail.text not in _stop_words()
                        and not text[nxt.end: tail.start].strip()):
                    j += 2
                    continue
            # glue words: "&", "to the", "et" between capitalised words
            k = j + 1
            while k < len(tokens) and (tokens[k].text == "&" or tokens[k].text in _ENGLISH_GLUE
                                       or tokens[k].text == "et") and not text[
                                           tokens[k - 1].end: tokens[k].start].strip():
                k += 1
            glue = [t.text for t in tokens[j + 1: k]]
            if (k < len(tokens) and glue and tokens[k].capitalised
                    and not text[tokens[k - 1].end: tokens[k].start].strip()
                    and (glue == ["&"] or glue == ["et"] or all(g in _ENGLISH_GLUE for g in glue))):
                j = k
                continue
            break
        first = i
        starts_sentence = _is_sentence_start(text, tokens[i].start)
        if starts_sentence and (tokens[first].text.lower() in _stop_words()
                                or tokens[first].text.lower() in lowercase_words):
            # "Chez Skello": only the sentence's first word owes its capital to its place;
            # the next ones are capitalised on their own ("Chez Le Slip Français")
            first += 1
        if first <= j and len(tokens[first].text) > 1:
            start, end = tokens[first].start, tokens[j].end
            found.append(Mention(text[start:end], start, end, starts_sentence and first == i))
        i = j + 1
    return found


@dataclass
class _Candidate:
    name: str
    first: int  # order of first appearance in the article
    strong: bool = False
    plain_mentions: dict[int, int] = field(default_factory=dict)  # section -> count


def _cue_before(text: str, mention: Mention) -> bool:
    sentence = _sentence_before(text, mention.start)
    for pattern in _CUE_BEFORE:
        match = pattern.search(sentence)
        if match is None:
            continue
        # "la startup lyonnaise X", not "les entreprises travaillent avec X"
        described = match.groupdict().get("described") or ""
        words = re.findall(r"[\w-]+", described)
        if any(w.lower() in _stop_words() - {"de", "d", "des", "du", "en"} for w in words):
            continue
        if words and words[-1].lower() in {"de", "d", "des", "du", "en", "à", "au", "aux"}:
            continue  # "fabricant de jeans installé en Lozère": a place, not the name
        if "described" in match.groupdict() and _TOOL_BEFORE_ORG.search(
                sentence[: match.start()]):
            continue
        return True
    return False


def _cue(text: str, mention: Mention) -> bool:
    after = text[mention.end: mention.end + 80]
    return _cue_before(text, mention) or any(p.search(after) for p in _CUE_AFTER)


def _sentence_before(text: str, start: int) -> str:
    before = text[:start]
    cut = max(before.rfind(". "), before.rfind("! "), before.rfind("? "), before.rfind("… "))
    return before[cut + 2:] if cut >= 0 else before


# Common French first names: "Guillaume Decugis" is a person even "du côté de" him. Not a
# list of people: a first name followed by a capitalised word, nothing more.
_FIRST_NAMES = frozenset(
    """    Adrien Agathe Alexandre Alexandra Alice Aline Amélie Anaïs Andrée André Anne Antoine
    Arnaud Arthur Audrey Aurélie Aurélien Axel Baptiste Benjamin Benoît Bernard Bertrand
    Camille Carole Caroline Catherine Cécile Céline Charles Charlotte Chloé Christian
    Christine Christophe Claire Claude Clément Clémence Corinne Cyril Damien Daniel David
    Delphine Denis Didier Dominique Edouard Édouard Elisa Élise Élodie Emma Emmanuel Emmanuelle
    Éric Estelle Étienne Fabien Fabrice Fanny Florence Florian François Françoise Frédéric
    Gaël Gaëlle Geoffroy Georges Gérard Gilles Grégoire Guillaume Hélène Henri Hugo Inès Isabelle
    Jacques Jean Jeanne Jérôme Joël Julie Julien Juliette Justine Karine Laura Laure Laurence
    Laurent Léa Léo Lucas Lucie Louis Louise Lucile Manon Marc Margaux Marie Marine Mathieu
    Mathilde Matthieu Maxime Mélanie Michel Michèle Nadia Nathalie Nicolas Olivier Pascal
    Pascale Patrick Paul Pauline Philippe Pierre Quentin Raphaël Rémi Romain Sabine Samuel Sandrine
    Sarah Sébastien Simon Sophie Stéphane Stéphanie Sylvain Sylvie Théo Thibault Thierry Thomas
    Valérie Victor Vincent Virginie Xavier Yann Yannick Yves
    """.split()  # noqa: SIM905 (a block of names reads better than a list)
)


def _first_name_person(name: str) -> bool:
    """"Guillaume Decugis", "Anne-Sophie Le Gall": a first name and a surname."""
    words = name.split()
    first = words[0].split("-")[0] if words else ""
    return (2 <= len(words) <= 4 and first in _FIRST_NAMES and "et" not in words
            and "&" not in words)


def _org_cue(text: str, mention: Mention) -> bool:
    """"Chez X", "la startup X": a cue that names an organisation, stronger than a first
    name ("La startup lilloise Jean Bouteille")."""
    sentence = _sentence_before(text, mention.start)
    return any(pattern.search(sentence) for pattern in (_CUE_BEFORE[0], _CUE_BEFORE[2]))


def _person(text: str, mention: Mention) -> bool:
    if _first_name_person(mention.name) and not _org_cue(text, mention):
        return True  # "du côté de Guillaume Decugis": a person, whatever the cue
    if _cue_before(text, mention):  # "Chez Shine, alors que…" is a company
        return False
    after = text[mention.end: mention.end + 60]
    before = text[max(0, mention.start - 100): mention.start]
    return bool(_PERSON_AFTER.search(after)) or any(p.search(before) for p in _PERSON_BEFORE)


def _all_caps(name: str) -> bool:
    letters = [c for c in name if c.isalpha()]
    return bool(letters) and all(c.isupper() for c in letters)


def has_company_story(paragraph: str) -> bool:
    """Whether a paragraph tells a company's story (a strong cue before or after a name)."""
    return any(
        _cue(paragraph, m) and m.name not in GENERIC and not _person(paragraph, m)
        for m in mentions(paragraph)
    )


def extract_companies(sections: Sequence[Sequence[str]],
                      lowercase_words: Iterable[str] = ()) -> tuple[str, ...]:
    """The companies whose story the sections (lists of paragraphs) tell, in order of
    first appearance, without duplicates."""
    lower = frozenset(lowercase_words)
    candidates: dict[str, _Candidate] = {}
    people: set[str] = set()
    order = 0
    all_mentions: list[tuple[int, str, Mention]] = []
    for index, paragraphs in enumerate(sections):
        for paragraph in paragraphs:
            for mention in mentions(paragraph, lower):
                all_mentions.append((index, paragraph, mention))
    for _index, paragraph, mention in all_mentions:
        if _person(paragraph, mention):
            people.add(mention.name)
            people.update(part for part in mention.name.split() if len(part) > 2)
    for index, paragraph, mention in all_mentions:
        name = mention.name
        if name in GENERIC or _person(paragraph, mention):
            continue
        candidate = candidates.get(name)
        if candidate is None:
            candidate = candidates[name] = _Candidate(name, order)
            order += 1
        if _cue(paragraph, mention):
            candidate.strong = True
            continue
        before = paragraph[max(0, mention.start - 40): mention.start]
        if (mention.sentence_start or _all_caps(name) or _PLACE_OR_TOOL.search(before)
                or _DETERMINER.search(before) or _DETERMINER_ELIDED.search(before)):
            continue
        candidate.plain_mentions[index] = candidate.plain_mentions.get(index, 0) + 1
    candidates = _fold_articles(candidates)
    # a person's name ("confie Guilhamon") needs a strong cue of its own to be a company
    chosen = [
        c for c in candidates.values()
        if c.strong or (c.name not in people
                        and any(n >= 2 for n in c.plain_mentions.values()))
    ]
    return tuple(_split_and_merge(chosen, candidates))


_ARTICLE = re.compile(r"^(?:Le |La |Les |L[’'])(?=\w)")


def _fold_articles(candidates: dict[str, _Candidate]) -> dict[str, _Candidate]:
    """Fold "Slip Français" (read in "du Slip Français", or "Belle Vie" in "La Belle Vie"
    starting a sentence) into "Le Slip Français" when the full name is a candidate too."""
    full = {_ARTICLE.sub("", name): name for name in candidates if _ARTICLE.match(name)}
    folded: dict[str, _Candidate] = {}
    for name, candidate in candidates.items():
        target = folded.setdefault(full.get(name, name), _Candidate(full.get(name, name),
                                                                    candidate.first))
        target.first = min(target.first, candidate.first)
        target.strong = target.strong or candidate.strong
        for index, count in candidate.plain_mentions.items():
            target.plain_mentions[index] = target.plain_mentions.get(index, 0) + count
    return folded


def _split_and_merge(chosen: list[_Candidate],
                     candidates: dict[str, _Candidate]) -> list[str]:
    """Undo "X et Y" when X or Y is cited on its own; drop exact repeats."""
    names: list[str] = []
    for candidate in sorted(chosen, key=lambda c: c.first):
        parts = [candidate.name]
        if " et " in candidate.name:
            halves = candidate.name.split(" et ")
            if any(h in candidates for h in halves):
                parts = halves
        for part in parts:
            if part not in names:
                names.append(part)
    return names
