"""The email digest: Jinja2 -> MJML -> HTML, the plain-text part, personalisation."""

from __future__ import annotations

import html as html_lib
import logging
import re
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import pytest
from _render_support import PARIS, hostile_case, make_config, make_history, seed_cases
from markupsafe import escape

from syndicate.corpus import Section
from syndicate.errors import RenderError
from syndicate.render.email import (
    HTML_LIMIT,
    RenderedEmail,
    french_date,
    preheader_for,
    render_email,
    standfirst,
    wrap_text,
)
from syndicate.typography import french

URL_RE = re.compile(r"https?://\S+")


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory):
    return make_config(tmp_path_factory.mktemp("email"))


@pytest.fixture(scope="module")
def history(config):
    return make_history(seed_cases(), config)


@pytest.fixture(scope="module")
def rendered(history, config) -> list[tuple[object, RenderedEmail]]:
    return [(view, render_email(view, config)) for view in history]


def test_seed_corpus_is_the_ten_articles():
    cases = seed_cases()
    assert len(cases) == 10
    assert all(len(case.sections) >= 5 for case in cases)


@pytest.mark.parametrize(("value", "expected"), [
    (date(2026, 11, 22), "22 novembre 2026"),
    (date(2027, 5, 1), "1er mai 2027"),
    (datetime(2026, 8, 15, 23, 59, tzinfo=PARIS), "15 août 2026"),
    (date(2026, 2, 9), "9 février 2026"),
    (date(2026, 12, 31), "31 décembre 2026"),
])
def test_french_date(value, expected):
    assert french_date(value) == expected


def test_html_structure_for_every_seed(rendered):
    for view, email in rendered:
        page = email.html
        assert page.startswith("<!doctype html>")
        assert re.search(r'<html[^>]*\blang="fr"', page)
        assert '<meta name="color-scheme" content="light dark"' in page
        assert '<meta name="supported-color-schemes" content="light dark"' in page
        assert "@media (prefers-color-scheme: dark)" in page
        assert 'name="viewport"' in page
        tables = re.findall(r"<table\b[^>]*>", page)
        assert tables and all('role="presentation"' in t for t in tables)
        assert "<img" not in page  # nothing to invert badly in dark mode, nothing remote
        assert "fonts.googleapis" not in page and "<script" not in page
        size = len(page.encode("utf-8"))
        assert size < HTML_LIMIT, (view.slug, size)
        # The whole article, every paragraph, with French spaces, escaped exactly once.
        assert str(escape(french(view.title))) in page
        for section in view.case.sections:
            assert str(escape(french(section.heading))) in page
            for paragraph in section.paragraphs:
                assert str(escape(french(paragraph))) in page, (view.slug, paragraph[:40])


def test_preheader_is_the_lede(rendered):
    for view, email in rendered:
        assert french(view.case.lede).startswith(email.preheader.rstrip("…"))
        assert len(email.preheader) <= 201
        hidden = re.search(r'<div class="sy-preheader" style="display:none;[^"]*">(.*?)</div>',
                           email.html, re.S)
        assert hidden and html_lib.unescape(hidden.group(1)) == email.preheader
    assert preheader_for("Court.") == "Court."
    long = preheader_for("mot " * 100)
    assert long.endswith("mot…") and len(long) <= 201


def test_related_and_companies_blocks(history, config):
    # An edition with related links and a company already met in an earlier edition
    # (in the seeds, e.g. Luko or Alan).
    view = next(v for v in history if v.related and any(m.earlier for m in v.companies))
    email = render_email(view, config)
    assert "À lire aussi" in email.html and "À lire aussi" in email.text
    for link in view.related:
        assert f'href="{link.url}"' in email.html
        assert link.url in email.text.split()  # whole, never broken by wrapping
    for mention in view.companies:
        assert f'href="{mention.url}"' in email.html
        assert mention.url in email.text
        if mention.earlier:
            phrase = f"{mention.company} apparaît aussi dans\u00a0:"
            assert phrase in email.html and phrase in email.text.replace("\n  ", " ")
            for link in mention.earlier:
                assert f'href="{link.url}"' in email.html and link.url in email.text
    first = history[-1]  # the first edition has nothing earlier to link to
    email = render_email(first, config)
    assert not first.related and "À lire aussi" not in email.html
    assert "apparaît aussi dans" not in email.text


def test_footer(rendered, config):
    for _view, email in rendered:
        for part in (email.html, email.text):
            assert config.site.postal_address in html_lib.unescape(part)
            assert email.unsubscribe_placeholder in part
            assert "Se désabonner" in part
        assert config.site.title in email.text.split("\n-- \n", 1)[1]


def test_text_part_is_its_own_rendering(rendered):
    for view, email in rendered:
        text = email.text
        assert "<" not in text.replace("<script>", "")  # no HTML leaked into the text part
        head = text.split("\n\n")
        assert any(view.title.split()[0] in block for block in head[:3])
        flat = text.replace("\n\n", " ").replace("\n", " ")
        assert french(" ".join(view.case.lede.split())) in flat
        for section in view.case.sections:
            heading = french(section.heading)
            assert f"{heading}\n{'-' * len(heading)}" in text
            for paragraph in section.paragraphs:
                assert french(paragraph) in flat
        for line in text.splitlines():
            if len(line) > 72:
                # Only a URL (never broken) may push a line past 72 columns.
                assert URL_RE.search(line), line
                assert len(URL_RE.sub("", line).rstrip()) <= 72, line
        assert "\n\n\n\n" not in text and text.endswith("\n")


def test_french_typography_is_kept(rendered):
    typographic = "’“”…€%\u00a0"
    seen = set()
    for view, email in rendered:
        source = view.case.text
        for char in typographic:
            if char in source:
                seen.add(char)
                assert char in email.html and char in email.text, (view.slug, char)
    assert {"’", "“", "€", "…"} <= seen  # the seeds do exercise these


def test_non_breaking_spaces_are_kept(config):
    sentence = ("Résultat\u00a0: «\u00a0oui\u00a0», vraiment\u202f? Oui\u202f! 17\u00a0% "
                "et 100\u00a0K€ — l’essentiel\u202f; fin.")
    case = replace(hostile_case(), title="Titre\u00a0: test", lede=sentence,
                   sections=(Section("Partie", (sentence * 3,)),))
    email = render_email(make_history([case], config)[0], config)
    # Kept, except inside « » where French typography wants the narrow one (U+202F).
    typeset = sentence.replace("«\u00a0oui\u00a0»", "«\u202foui\u202f»")
    assert french(sentence) == typeset
    assert typeset in email.html and "Titre\u00a0: test" in email.html
    assert typeset in email.text.replace("\n", " ")
    assert "&nbsp;" not in email.html.split("<body", 1)[1].split("<!--[if mso")[0]


def test_template_strings_use_french_spacing(rendered):
    _view, email = rendered[0]
    assert "Lire en ligne\u00a0:" in email.text
    assert "N°\u00a0" in email.html and "N°\u00a0" in email.text


def test_summary_mode(history, tmp_path):
    config = make_config(tmp_path, publish={"email_content": "summary"})
    view = history[0]
    email = render_email(view, config)
    # A button says what it does, without quotation marks.
    assert re.search(rf'<a href="{re.escape(view.url)}"[^>]*>\s*Lire la suite\s*</a>', email.html)
    assert "«" not in re.search(r"<a [^>]*>\s*Lire la suite[^<]*</a>", email.html).group(0)
    assert f"\nLire la suite\u00a0: {view.url}" in email.text
    head, rest = standfirst(view.case.lede)
    assert str(escape(french(head))) in email.html and str(escape(french(rest))) in email.html
    for section in view.case.sections:
        assert str(escape(section.heading)) not in email.html
        assert section.heading not in email.text
    full = render_email(view, make_config(tmp_path / "full"))
    assert len(email.html) < len(full.html)


def test_subject_template(history, tmp_path):
    view = history[0]
    config = make_config(tmp_path, publish={"subject": "{site} n°{number} — {title} ({date})"})
    subject = render_email(view, config).subject
    assert subject == (f"Études de cas n°{view.number} — {view.title} "
                       f"({french_date(view.published_at)})")
    assert render_email(view, make_config(tmp_path / "d")).subject == view.title


def test_hostile_corpus_text_is_escaped(config, tmp_path):
    case = hostile_case()
    view = make_history([case], config)[0]
    email = render_email(view, config)
    page = email.html
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "<mj-" not in page and "</mj-" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "{{ config }}" in page and "{{ 7*7 }}" in page and "{% raw %}" in page
    assert "Chapô avec &lt;b&gt;balises&lt;/b&gt;, {{ 7*7 }}, {% raw %}" in page  # not evaluated
    assert "Acme &lt;i&gt;SA&lt;/i&gt;" in page
    text = email.text
    assert "<script>alert(1)</script>" in text.replace("\n", " ")
    assert "{{ self.__init__ }}" in text.replace("\n", " ")
    assert "«\u202fguillemets\u202f»\u202f!" in text.replace("\n", " ")  # French spaces
    # Corpus text that looks like a placeholder is not one: only this render's nonce is.
    html, personal_text = email.personalize("https://etudes.example.org/unsubscribe/TOKEN", "Zoé")
    assert "https://unsubscribe-x.invalid/" in personal_text.replace("\n", " ")
    assert "https://unsubscribe-x.invalid/" in html


def test_personalize(rendered):
    _view, email = rendered[0]
    url = "https://etudes.example.org/unsubscribe/abc.DEF_123?x=1&y=2"
    html, text = email.personalize(url, "Zoé <b>Martin</b>")
    for part in (html, text):
        assert email.unsubscribe_placeholder not in part
        assert email.name_placeholder not in part
    assert 'href="https://etudes.example.org/unsubscribe/abc.DEF_123?x=1&amp;y=2"' in html
    assert f"Se désabonner\u00a0: {url}" in text
    assert "Bonjour Zoé &lt;b&gt;Martin&lt;/b&gt;," in html
    assert "Bonjour Zoé <b>Martin</b>," in text
    html, text = email.personalize(url, None)
    assert "Bonjour," in html and "Bonjour,\n" in text
    html, text = email.personalize(url, "  Jean\r\nBcc: x@example.org ")
    assert "Bonjour Jean Bcc: x@example.org," in text  # control characters flattened


def test_each_render_has_its_own_nonce(history, config):
    one = render_email(history[0], config)
    two = render_email(history[0], config)
    assert one.unsubscribe_placeholder != two.unsubscribe_placeholder
    assert one.name_placeholder != two.name_placeholder
    assert one.html.replace(one.unsubscribe_placeholder, "U").replace(one.name_placeholder, "N") \
        == two.html.replace(two.unsubscribe_placeholder, "U").replace(two.name_placeholder, "N")


def test_json_round_trip(rendered):
    _view, email = rendered[0]
    again = RenderedEmail.from_json(email.to_json())
    assert again == email
    assert again.personalize("https://x.example/u/1", "A") == email.personalize(
        "https://x.example/u/1", "A")


def test_oversized_article_falls_back_to_summary(config, caplog):
    paragraph = "Une phrase assez longue pour remplir l’article, encore et encore. " * 8
    big = replace(hostile_case(), slug="tres-long", title="Très long", sections=tuple(
        Section(f"Partie {i}", (paragraph, paragraph)) for i in range(60)))
    view = make_history([big], config)[0]
    with caplog.at_level(logging.WARNING, logger="syndicate.render.email"):
        email = render_email(view, config)
    assert len(email.html.encode("utf-8")) < HTML_LIMIT
    assert "Lire la suite" in email.html and "Partie 3" not in email.html
    assert "Partie 3" not in email.text  # both parts tell the same story
    assert "Gmail clips" in caplog.text


def test_operator_templates_override_file_by_file(history, tmp_path):
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "email.txt.j2").write_text("{{ edition.title }} / {{ unsubscribe_url }}\n",
                                         encoding="utf-8")
    config = make_config(tmp_path)
    config = replace(config, storage=config.storage.model_copy(update={"templates": folder}))
    email = render_email(history[0], config)
    assert email.text == f"{history[0].title} / {email.unsubscribe_placeholder}\n"
    assert "<mjml" not in email.html and 'lang="fr"' in email.html  # shipped MJML template


def test_template_errors_are_render_errors(history, tmp_path):
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "email.txt.j2").write_text("ligne 1\n{{ edition.title\n", encoding="utf-8")
    config = make_config(tmp_path)
    config = replace(config, storage=config.storage.model_copy(update={"templates": folder}))
    with pytest.raises(RenderError, match=r"email\.txt\.j2:2"):
        render_email(history[0], config)
    (folder / "email.txt.j2").write_text("{{ edition.no_such_thing }}\n", encoding="utf-8")
    with pytest.raises(RenderError, match="no_such_thing"):
        render_email(history[0], config)


def test_wrap_text_never_breaks_urls_or_nbsp():
    url = "https://etudes.example.org/" + "tres-long-chemin-" * 6
    text = f"Voir {url} et aussi « une citation\u00a0» avant\u00a0: la suite du texte " * 3
    wrapped = wrap_text(text)
    assert url in wrapped.split()
    for line in wrapped.splitlines():
        assert len(line) <= 72 or url in line
        assert not line.startswith(("\u00a0", ":", "»"))
    assert wrap_text("a " * 50, 20, "  ").splitlines()[1].startswith("  a")


def test_no_external_reference_to_this_machine(rendered):
    for _view, email in rendered:
        assert "127.0.0.1" not in email.html and str(Path.home()) not in email.html


def test_lede_is_a_roman_standfirst_then_a_paragraph(rendered):
    for view, email in rendered:
        head, rest = standfirst(view.case.lede)
        assert len(head) <= 240 or "." not in head[:-1]
        assert head and " ".join(f"{head} {rest}".split()) == " ".join(view.case.lede.split())
        page = email.html
        assert "font-style:italic" not in page and "font-size:19px;line-height:1.5" not in page
        assert re.search(rf'<p [^>]*font-size:18px[^>]*>{re.escape(str(escape(french(head))))}</p>',
                         page)
        if rest:
            assert f">{escape(french(rest))}</p>" in page
            assert f"\n\n{french(rest)[:20]}" in email.text
    # A short lede is all standfirst; a long first sentence stays whole.
    assert standfirst("Court. Deux.") == ("Court. Deux.", "")
    long = "Une phrase " + "très " * 60 + "longue. Puis une autre."
    assert standfirst(long) == (long[: long.index(" Puis")], "Puis une autre.")
    initial = "Chez M. Dupont, tout va."
    assert standfirst(f"{initial} Puis " + "x " * 150)[0] == initial


def test_a_configured_wordmark_and_its_dark_version_in_the_masthead(tmp_path):
    both = make_config(tmp_path, site={"wordmark": "logo.png",
                                       "wordmark_dark": "https://cdn.example.org/dark.png"})
    email = render_email(make_history(seed_cases()[:1], both)[0], both)
    base = both.site.base_url
    body = email.html.split("<body", 1)[1]
    light = re.search(r'<img class="sy-wordmark-light" src="([^"]+)" alt="([^"]+)"', body)
    dark = re.search(r'<img class="sy-wordmark-dark" src="([^"]+)" alt=""[^>]*'
                     r'style="display:none;mso-hide:all;', body)
    assert light and light.groups() == (f"{base}logo.png", both.site.title)
    assert dark and dark.group(1) == "https://cdn.example.org/dark.png"
    assert body.index(light.group(0)) < body.index('role="main"')
    head = email.html.split("<body", 1)[0]
    # Apple Mail / iOS (prefers-color-scheme) and Outlook ([data-ogsc]) swap them
    dark_css = head[head.index("prefers-color-scheme: dark"):]
    assert ".sy-wordmark-light { display: none !important; }" in dark_css
    assert "[data-ogsc] .sy-wordmark-dark { display: inline-block !important;" in head
    alone = make_config(tmp_path / "alone", site={"wordmark": "logo.png"})
    email = render_email(make_history(seed_cases()[:1], alone)[0], alone)
    plate = re.search(r'<img class="sy-wordmark" src="[^"]+logo.png" alt="[^"]+"[^>]*'
                      r'background-color:#f4f1ea;', email.html)
    assert plate and "sy-wordmark-dark" not in email.html
    assert "[data-ogsc] .sy-wordmark { padding: 4px 8px !important; }" in email.html


def test_masthead_wordmark_and_main_landmark(rendered, config):
    _view, email = rendered[0]
    page = email.html
    # The wordmark (the site title, large) comes first in the body, before the main landmark.
    body = page.split("<body", 1)[1]
    wordmark = re.search(r'font-size:26px[^>]*><a [^>]*>([^<]+)</a>', body)
    assert wordmark and wordmark.group(1) == config.site.title
    assert page.count('role="main"') == 1
    main_at = body.index('role="main"')
    assert body.index(wordmark.group(0)) < main_at < body.index("<h1")
    assert main_at < body.index("Se désabonner")


def test_preheader_is_hidden_without_low_contrast(rendered):
    for _view, email in rendered:
        page = email.html
        hidden = re.search(r'<div class="sy-preheader" style="([^"]*)">', page)
        assert hidden, "hidden preheader"
        style = hidden.group(1)
        assert "display:none" in style and "mso-hide:all" in style
        # SpamAssassin's HTML_FONT_LOW_CONTRAST: no text coloured like the background.
        assert "color" not in style and "opacity" not in style
        assert "mj-preview" not in page and "color:transparent" not in page


def test_body_label_is_the_title_not_its_escapes(config):
    # MRML writes the body's aria-label with Rust escapes (\\u{a0}); they are undone.
    case = replace(hostile_case(), title="Quatre jours : 32 % de mieux ? Oui \\o/")
    email = render_email(make_history([case], config)[0], config)
    label = re.search(r'<div aria-label="([^"]*)"', email.html)
    assert label and html_lib.unescape(label.group(1)) == french(case.title)
    assert "\\u{" not in email.html
