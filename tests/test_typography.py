"""French typography at render time (syndicate.typography): tricky strings and properties."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from syndicate.render.templates import template_environment
from syndicate.typography import NBSP, NNBSP, french, french_html

N, NN = NBSP, NNBSP


@pytest.mark.parametrize(("text", "expected"), [
    ("Pourquoi ?", f"Pourquoi{NN}?"),
    ("Pourquoi?", f"Pourquoi{NN}?"),
    ("Attention !", f"Attention{NN}!"),
    ("d’abord ; ensuite", f"d’abord{NN}; ensuite"),
    ("Titre : sous-titre", f"Titre{N}: sous-titre"),
    ("Titre: sous-titre", f"Titre{N}: sous-titre"),
    ("la liste :\n- un", f"la liste{N}:\n- un"),
    ("« citation »", f"«{NN}citation{NN}»"),
    ("«citation»", f"«{NN}citation{NN}»"),
    ("«\u00a0citation\u00a0»", f"«{NN}citation{NN}»"),  # the narrow one inside « »
    ("50 %", f"50{N}%"),
    ("50%", f"50{N}%"),
    ("40,5 % du total", f"40,5{N}% du total"),
    ("1 200 €", f"1{NN}200{N}€"),
    ("100K€", "100K€"),  # not a number right before the sign
    ("3 000 salariés", f"3{NN}000 salariés"),
    ("en 2024 300 salariés", "en 2024 300 salariés"),  # two numbers, not 2 024 300
    ("Quoi ?!", f"Quoi{NN}?!"),  # one space before the run
    ("Quoi ? !", f"Quoi{NN}?{NN}!"),
    ("Vraiment !!!", f"Vraiment{NN}!!!"),
    ("C++ ?", f"C++{NN}?"),
    ("à 10:30 ou 1:3", "à 10:30 ou 1:3"),
    ("std::vector et a?b", "std::vector et a?b"),
    ("index.php?id=3", "index.php?id=3"),
    ("https://x.fr/a?b=c", "https://x.fr/a?b=c"),
    ("Voir https://x.fr/a?b=c&d=e:f !", f"Voir https://x.fr/a?b=c&d=e:f{NN}!"),
    ("Lien (https://x.fr/q?x=1).", "Lien (https://x.fr/q?x=1)."),
    ("www.x.fr/?q=a:b ; fin", f"www.x.fr/?q=a:b{NN}; fin"),
    ("mailto:a@b.fr", "mailto:a@b.fr"),
    ("Écrire à contact@x.fr ?", f"Écrire à contact@x.fr{NN}?"),
    ("le code `a ? b : c` ici", "le code `a ? b : c` ici"),
    ("super ;) et :-) ou :D", "super ;) et :-) ou :D"),
    ("? en tête", "? en tête"),
    ("ligne\n: suite", "ligne\n: suite"),
    (f"déjà{N}: fait{NN}? oui{NN}!", f"déjà{N}: fait{NN}? oui{NN}!"),
    ("trop   ?", f"trop{NN}?"),
    ("", ""),
])
def test_tricky_strings(text, expected):
    assert french(text) == expected
    assert french(expected) == expected


def test_the_title_that_broke_before_the_colon():
    title = "La semaine de quatre jours : ce que révèlent les tests"
    assert french(title) == title.replace(" :", f"{N}:")


# --------------------------------------------------------------------------- properties

_ALPHABET = st.sampled_from(
    [*"ab Z1209 :;!?%€«».,'’/@-\n", N, NN, "http://", "www.", "`", "10:30", ":)"]
)
_TEXT = st.lists(_ALPHABET, max_size=40).map("".join)


def _without_spaces(text: str) -> str:
    return re.sub(f"[ {N}{NN}]", "", text)


@settings(max_examples=400, deadline=None)
@given(_TEXT)
@example("« a » : b ? ! 1 000 € 5 %")
def test_idempotent(text):
    once = french(text)
    assert french(once) == once


@settings(max_examples=400, deadline=None)
@given(_TEXT)
@example("http://x.fr/a?b ; « c »:d")
def test_only_spaces_change(text):
    # Removing every space (plain, NBSP, NNBSP) gives back the same characters: the pass
    # only inserts or swaps spaces, never a letter, a mark, a line break.
    out = french(text)
    assert _without_spaces(out) == _without_spaces(text)
    assert out.count("\n") == text.count("\n")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_text(text):
    out = french(text)
    assert french(out) == out
    assert _without_spaces(out) == _without_spaces(text)


# --------------------------------------------------------------------------- HTML


def test_html_text_nodes_only():
    markup = ('<p title="a : b ?" data-x="50 %">Quoi ?<code>a ? b : c</code> &amp; x&nbsp;: '
              '<a href="https://x.fr/?q=1">lien !</a><script>if (a ? b : c) {}</script>'
              '<pre>« pre »</pre> fin !</p><style>a:hover{}</style>')
    out = french_html(markup)
    assert out == (f'<p title="a : b ?" data-x="50 %">Quoi{NN}?<code>a ? b : c</code> &amp; '
                   f'x&nbsp;: <a href="https://x.fr/?q=1">lien{NN}!</a>'
                   f'<script>if (a ? b : c) {{}}</script><pre>« pre »</pre> fin{NN}!</p>'
                   f'<style>a:hover{{}}</style>')
    assert french_html(out) == out


def test_html_entities_are_characters():
    # "&nbsp;:" is already right; "&lt;" is not a ";" to space.
    assert french_html("<p>x&nbsp;: a &lt;b&gt; c</p>") == "<p>x&nbsp;: a &lt;b&gt; c</p>"
    assert french_html("<p>A &amp; B ?</p>") == f"<p>A &amp; B{NN}?</p>"


def test_fr_filter_in_templates():
    env = template_environment(None)
    html = env.from_string('<a title="{{ t }}">{{ t | fr }}</a>').render(t="Quoi ? <b>")
    assert html == f'<a title="Quoi ? &lt;b&gt;">Quoi{NN}? &lt;b&gt;</a>'
    safe = env.from_string("{{ m | fr }}").render(m=_markup('<i title="a : b">a : b</i>'))
    assert safe == f'<i title="a : b">a{N}: b</i>'


def _markup(text: str) -> object:
    import markupsafe

    return markupsafe.Markup(text)
