"""Site chrome: the lines of a scraped page that belong to the site, not to an article.

Each rule is a small, named regular expression tried on *short* blocks only (a few
dozen words at most), so that an article paragraph that merely mentions a newsletter
or a date is never taken for chrome. What the rules cannot catch is left to the
structural reading in :mod:`.segment` (a short line that no paragraph follows is not a
heading; of several short lines before a paragraph only one can be its heading).

The reason names are what ``syndicate corpus import --verbose`` prints.
"""

from __future__ import annotations

import re

_MONTHS = (
    "janvier|février|fevrier|mars|avril|mai|juin|juillet|août|aout|septembre|octobre"
    "|novembre|décembre|decembre|jan|fév|fev|avr|juil|sept|oct|nov|déc|dec"
)
_SEP = r"[>»›/|•·]"
_APOS = "[’']"

# (reason, pattern, maximum number of words of a block the rule may apply to)
_RULES: tuple[tuple[str, re.Pattern[str], int], ...] = tuple(
    (reason, re.compile(pattern, re.IGNORECASE), max_words)
    for reason, pattern, max_words in (
        # "Accueil Blog Page 12", "Accueil > Blog > Titre", "Home / Blog"
        ("breadcrumb", rf"^(?:accueil|home|blog)\s*{_SEP}", 40),
        ("breadcrumb", r"^(?:accueil|home)\s+(?:blog|actualités|actus?|articles|ressources"
                       r"|magazine|le mag|news|page\s+\d+)\b", 40),
        ("breadcrumb", r"^[^>»›]{1,120}\s[>»›]\s[^>»›]{1,120}\s[>»›]\s", 40),
        ("breadcrumb", r"^vous êtes ici\s*:", 40),
        ("pagination", r"^(?:page\s+\d+(?:\s+(?:sur|/)\s+\d+)?|page\s+(?:suivante|précédente)"
                       r"|[«‹<]?\s*(?:précédent|suivant|articles? (?:plus )?(?:anciens|récents))"
                       r"\s*[»›>]?)$", 8),
        ("pagination", r"^(?:[«‹<]\s*)?(?:older|newer|previous|next)\s+(?:posts|entries|articles)"
                       r"\s*[»›>]?$", 6),
        ("pagination", r"^(?:[«‹<]\s*)?(?:\d+\s+){2,}(?:…\s*|\.\.\.\s*)?\d*\s*(?:[»›>])?$", 30),
        # "Read more: <titre>", "Read more »", "Continue reading"
        ("read more", r"^(?:read more|continue reading|keep reading|see also|related)\b"
                      r"(?:\s*[:»›>…]|\s*$)", 16),
        # a scene break between paragraphs: "* * *", "***", "---", "⁂", "—", a line of dashes
        # (the reader splits the text there into untitled sections, see segment.py)
        ("break", r"^(?:[*⁂~§•·#—–-]\s*){1,5}$|^(?:[-—–_=~*·•]\s?){3,80}$", 40),
        # bylines, dates, reading time (often glued together with · or |)
        ("byline", r"^(?:par|rédigé par|écrit par|publié par|posté par|by)\s+(?-i:[A-ZÀ-Ý])"
                   r"[\w’'.-]*(?:\s+(?:de\s+|d’|du\s+)?(?-i:[A-ZÀ-Ý])[\w’'.-]*){0,3}\s*"
                   r"(?:[,|·•–—-].*)?$", 16),
        ("byline", r"^(?:auteur|autrice|rédaction)\s*:", 12),
        ("byline", r"^(?:par|rédigé par|écrit par|publié par|posté par)\s+(?:l[’']équipe|la "
                   r"rédaction|notre rédaction|nos experts?|un expert|une experte)\b", 12),
        ("date", rf"^(?:(?:publié|mis à jour|modifié|posté|actualisé|date)\w*\s*(?:le|:)?\s*)?"
                 rf"(?:(?:lun|mar|mer|jeu|ven|sam|dim)\w*\.?\s+)?\d{{1,2}}(?:er)?\s+(?:{_MONTHS})"
                 rf"\.?\s+\d{{4}}\b", 16),
        ("date", r"^(?:(?:publié|mis à jour|modifié|posté)\w*\s*(?:le|:)?\s*)?"
                 r"\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}\b", 16),
        ("date", r"^(?:publié|mis à jour|modifié|posté|actualisé)e?s?\s+(?:le|il y a|:)\s", 16),
        # "Posted on 12 mars 2025 by …" (English CMS), "Sur le terrain | publié le : …",
        # "Dossier publié en mars 2025"
        ("date", r"^(?:posted|published|updated|last updated)\s+(?:on|by|in)\b", 16),
        ("date", rf"(?:^|[|·•–—]\s*)(?:publié|paru|posté|mis à jour|actualisé)e?s?\s+"
                 rf"(?:le|en|il y a)\s*:?\s*(?:\d|{_MONTHS}|lun|mar|mer|jeu|ven|sam|dim)", 16),
        ("date", rf"^(?:\w+\s+){{1,3}}(?:publié|paru|mis à jour)e?s?\s+(?:le|en)\s+"
                 rf"(?:\d|{_MONTHS})", 10),
        # "RH · 18 novembre 2024": a category and a date
        ("date", rf"^[^\W\d][\w &’'-]{{0,30}}\s*[·|•]\s*\d{{1,2}}(?:er)?\s+(?:{_MONTHS})\.?"
                 rf"\s+\d{{4}}$", 8),
        ("date", rf"^(?:{_MONTHS})\.?\s+\d{{4}}$|^il y a \d+ (?:min|minutes?|heures?|h|jours?"
                 rf"|semaines?|mois|ans?)$", 6),
        ("reading time", r"\b\d+\s*(?:min|mins|minutes?|mn)\.?\s*(?:de\s+)?lecture\b", 16),
        ("reading time", r"^(?:temps de )?lecture\s*:?\s*\d+\s*(?:min|minutes?|mn)\b", 16),
        # share buttons and social links
        ("share", r"^(?:partager|partagez|partage|share|tweeter|tweet|envoyer par e-?mail)\b", 14),
        ("share", r"^(?:(?:facebook|twitter|x|linkedin|whatsapp|pinterest|instagram|youtube"
                  r"|email|e-mail|mail|messenger|copier le lien|copier|imprimer|rss)[\s,|·•/]*)+$",
         12),
        # newsletter boxes
        ("newsletter", r"^(?:newsletter|infolettre|la newsletter|notre newsletter)\b", 30),
        ("newsletter", rf"\b(?:inscrivez-vous|abonnez-vous|s{_APOS}inscrire|s{_APOS}abonner"
                       rf"|je m{_APOS}inscris|je m{_APOS}abonne|recevez (?:nos|chaque|tous|"
                       rf"gratuitement|le meilleur)|ne manquez (?:aucun|rien)"
                       rf"|votre (?:adresse )?e-?mail)\b", 45),
        # cookie banners and their buttons
        # (a paragraph about a biscuit maker is not a banner: it must also speak of the site)
        ("cookies", r"^(?=.*\bcookies?\b)(?=.*\b(?:ce site|notre site|le site|site web|votre "
                    r"navigation|votre expérience|consentement|accepter|acceptez|paramétrer"
                    r"|paramètres|traceurs?|refuser)\b)", 70),
        ("cookies", rf"^(?:tout accepter|tout refuser|accepter(?: et fermer| tout)?|refuser"
                    rf"|personnaliser|paramétrer|j{_APOS}accepte|ok|continuer sans accepter"
                    rf"|gérer mes (?:choix|préférences))\W*$", 6),
        ("credit", r"^(?:crédits?(?: photo| image)?|photo|image|illustration|source|visuel)"
                   r"s?\s*:", 20),
        ("credit", r"^(?:photo|image) (?:de|par)\s+\S.*\s(?:sur|via)\s+\S+$", 20),
        # photo captions: a short line ending with its credit, or labelled as a photo
        ("photo caption", r"(?:\(\s*(?:photos?|crédits?(?: photo)?|credit|ph\.|©)\b[^()]*\)"
                          r"|\S\s+(?:©|\((?:c|C)\))\s*(?!\d{4})[\w&.’' -]{1,40}"
                          r"|\b(?:photos?|crédits? photo)\s*:\s*[\w&.’' /-]{1,40})$", 30),
        ("photo caption", rf"^(?:photos?|images?|illustrations?|visuels?)\s+"
                          rf"(?:d{_APOS}illustration|de couverture|d{_APOS}archives?)\s*:", 30),
        # footer
        ("copyright", r"©|\(c\)\s*\d{4}|\bcopyright\b|tous droits réservés|mentions légales"
                      r"|politique de (?:confidentialité|cookies)|conditions générales"
                      r"|plan du site|\bcgu\b|\bcgv\b", 30),
        # navigation widgets and captions
        ("navigation", rf"^(?:lire la suite|lire l{_APOS}article|en savoir plus|voir plus"
                       rf"|voir (?:tous|toutes) (?:les|nos) \w+"
                       rf"|retour(?: au blog| à l{_APOS}accueil| en haut(?: de (?:la )?page)?)?"
                       rf"|charger plus|afficher plus|commentaires?"
                       rf"|\d+ commentaires?|laisser un commentaire|répondre|sommaire"
                       rf"|table des matières|menu|rechercher|recherche|fermer|contact"
                       rf"|nous contacter|publicité|sponsorisé|contenu sponsorisé|annonce"
                       rf"|accueil|blog|le blog|actualités|connexion|se connecter|s{_APOS}inscrire"
                       rf"|à propos(?: de nous| du blog| de l{_APOS}auteur| de l{_APOS}autrice)?"
                       rf"|qui sommes-nous|suivez-nous(?: sur \w+)?|nous suivre"
                       rf"|à la une|en ce moment|tendances?|populaires?|les plus lus"
                       rf"|(?:a|à) lire(?: !)?|à découvrir|découvrez aussi|ressources"
                       rf"|télécharger(?: le pdf| le livre blanc)?)\W*$", 8),
        ("navigation", r"^(?:catégories?|rubriques?|tags?|mots-clés|étiquettes|thèmes?)"
                       r"\s*:", 30),
        ("navigation", r"^(?:catégorie|rubrique|classé dans|publié dans)\s+\S", 6),
        ("navigation", r"^(?:découvrez|téléchargez|consultez|essayez|rejoignez|contactez)"
                       r"(?:-nous)?\s+(?:notre|nos|gratuitement|le|la|les)\b", 12),
        ("navigation", r"^(?:cet article vous a plu|vous avez aimé cet article|votre avis"
                       r"|notez cet article|note des lecteurs|\d+(?:[.,]\d+)?\s*/\s*5\b)", 12),
        ("aside", r"^(?:le saviez-vous|bon à savoir|à retenir|a retenir|en bref"
                  rf"|l{_APOS}essentiel|(?:le )?chiffre(?:-| )clé|(?:les )?chiffres(?:-| )clés"
                  r"|le conseil(?: de la rédaction)?|notre conseil|astuce)\W*$", 6),
    )
)

# A heading that announces a list of other articles: the short lines (and teaser
# paragraphs) under it are titles of other articles, never part of this one.
_LIST_MARKER = re.compile(
    rf"^(?:(?:nos |les |voir les |tous les )?(?:(?:derniers|dernières|autres|meilleurs"
    rf"|précédents|prochains|nouveaux)\s+|plus\s+d{_APOS}\s*)"
    rf"(?:articles?|publications|billets|posts|actualités|actus|contenus|études de cas)"
    rf"|articles? (?:similaires|récents|liés|populaires|associés|recommandés|connexes|suivants?)"
    rf"|(?:(?:à|a) )?lire (?:aussi|également|ensuite)|vous (?:aimerez|pourriez aimer|"
    rf"aimerez peut-être) (?:aussi|également)?|sur le même (?:sujet|thème)"
    rf"|dans la même (?:catégorie|rubrique)|(?:nos )?articles? (?:à|a) (?:lire|découvrir)"
    rf"|pour aller plus loin|recommandés? pour vous|ça peut vous intéresser)\b",
    re.IGNORECASE,
)


def _words(text: str) -> int:
    return len(text.split())


def chrome_reason(text: str) -> str | None:
    """The kind of site chrome ``text`` is (``"breadcrumb"``, ``"byline"``...), or None."""
    words = _words(text)
    for reason, pattern, max_words in _RULES:
        if words <= max_words and pattern.search(text):
            return reason
    return None


def is_list_marker(text: str) -> bool:
    """Whether ``text`` heads a list of other articles ("Derniers articles", "Lire aussi")."""
    text = text.strip()
    match = _LIST_MARKER.match(text)
    if match is None:
        return False
    # "À lire aussi : <un titre>" on one line may be long; a bare marker is short
    inline = text[match.end():].lstrip().startswith(":")
    return _words(text) <= (40 if inline else 12)


def is_inline_list(text: str) -> bool:
    """Whether ``text`` is a whole "À lire aussi : <un titre>" widget on one line: it
    names its article itself, so the lines after it are not a list."""
    text = text.strip()
    match = _LIST_MARKER.match(text)
    return (match is not None and is_list_marker(text)
            and text[match.end():].lstrip().startswith(":")
            and bool(text[match.end():].lstrip()[1:].strip()))


# Chrome headings of a box whose text is chrome too, by kind of box:
# * "site": "À propos" over the blog's blurb, "Newsletter" over its pitch: the box goes on
#   while paragraphs follow;
# * "aside": "Le saviez-vous ?" over one fact set in an article: the box is one paragraph,
#   the article goes on after it;
# * "comments": readers' names, dates and words, as many as there are: the box goes on
#   until a list of other articles (or the end of the page).
_BOX_HEADINGS = (
    ("comments", re.compile(r"^(?:commentaires?|\d+ commentaires?|laisser un commentaire"
                            r"|(?:ajouter|écrire|publier) un commentaire|réagir|réactions?"
                            r"|\d+ réactions?)\W*$", re.IGNORECASE)),
    ("site", re.compile(
        rf"^(?:à propos(?: de nous| du blog| de l{_APOS}auteur| de l{_APOS}autrice)?"
        rf"|qui sommes-nous|newsletter|infolettre|(?:la|notre) newsletter"
        rf"|suivez-nous(?: sur \w+)?|nous suivre|l{_APOS}auteur|l{_APOS}autrice)\W*$",
        re.IGNORECASE)),
    ("aside", re.compile(
        rf"^(?:le saviez-vous|bon à savoir|à retenir|a retenir|en bref|l{_APOS}essentiel"
        rf"|(?:le )?chiffre(?:-| )clé|(?:les )?chiffres(?:-| )clés|le conseil(?: de la rédaction)?"
        rf"|notre conseil|astuce)\W*$",
        re.IGNORECASE)),
)


def box_kind(text: str) -> str | None:
    """``"site"``, ``"aside"`` or ``"comments"`` if ``text`` heads a box of chrome text."""
    text = text.strip()
    for kind, pattern in _BOX_HEADINGS:
        if pattern.match(text):
            return kind
    return None


def is_box_heading(text: str) -> bool:
    """Whether ``text`` heads a box of site text ("À propos", "Newsletter", "Commentaires")."""
    return box_kind(text) is not None
