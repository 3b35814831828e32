"""The email and the archive pages in a real browser: no horizontal scroll from 320 to
600 px, dark mode applied.

Drives Debian's headless Chromium with Playwright (its wheel ships the driver; the
browser is the system's, through ``executable_path``: ``playwright install`` is never
run). One browser serves the whole module. Skips, saying why, where Chromium or
Playwright is absent.

Set ``SYNDICATE_SCREENSHOTS=<folder>`` to keep the 320 px screenshots for a look.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from _render_support import hostile_case, make_config, make_history, seed_cases

from syndicate.render.archive import (
    INDEX,
    archive_page_path,
    edition_path,
    render_archive,
    year_path,
)
from syndicate.render.email import render_email

pytestmark = pytest.mark.slow

WIDTHS = (320, 414, 600)
#: The archive pages are also looked at on a common phone and a desktop window.
ARCHIVE_WIDTHS = (320, 375, 414, 600, 1280)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One page of Debian's chromium driven by Playwright: open a file at a width (light or
    dark), evaluate, measure, screenshot. The tests use only these few verbs."""

    def __init__(self, binary: str) -> None:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(
            executable_path=binary, args=["--no-sandbox", "--disable-gpu"])
        self.page = self._browser.new_page(viewport={"width": 600, "height": 900})

    def evaluate(self, expression: str) -> object:
        return self.page.evaluate(expression)

    def open(self, path: Path, width: int, *, dark: bool = False) -> None:
        self.page.emulate_media(color_scheme="dark" if dark else "light")
        self.page.set_viewport_size({"width": width, "height": 900})
        self.page.goto(path.as_uri(), wait_until="load", timeout=10_000)

    def overflow(self) -> dict:
        return self.evaluate(
            "({scroll: document.documentElement.scrollWidth, inner: window.innerWidth,"
            " body: document.body.scrollWidth})")  # type: ignore[return-value]

    def screenshot(self, *, full: bool = False) -> bytes:
        # full: the whole page, not just the 900 px viewport
        return bytes(self.page.screenshot(full_page=full, type="png"))

    def close(self) -> None:
        self._browser.close()
        self._playwright.stop()


@pytest.fixture(scope="module")
def browser():
    pytest.importorskip("playwright.sync_api",
                        reason="playwright not installed (pip install -e .[test])")
    if CHROMIUM is None:
        pytest.skip("chromium not found on PATH (Debian package `chromium`, installed by .ci/run)")
    chromium = Browser(CHROMIUM)
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The email of the longest seed case study and of a hostile one, archive pages (four
    editions a list page: the index, numbered and year pages have their pagers)."""
    folder = tmp_path_factory.mktemp("browser")
    config = make_config(folder, publish={"archive_page_size": 4})
    cases = seed_cases()
    history = make_history([*cases, hostile_case()], config)
    longest = max(history, key=lambda view: len(view.case.text))
    files = {}
    for label, view in (("email", longest), ("email-hostile", history[0])):
        html, _text = render_email(view, config).personalize(
            f"{config.site.base_url}unsubscribe/" + "T" * 120, "Zoé Müller-Étienne")
        files[label] = folder / f"{label}.html"
        files[label].write_text(html, encoding="utf-8")
    archive = render_archive(history, config)
    year = history[0].published_at.year
    for label, rel in (("edition", edition_path(longest.slug)), ("index", INDEX),
                       ("page", archive_page_path(2)), ("year", year_path(year))):
        files[label] = folder / f"{label}.html"
        files[label].write_text(archive[rel], encoding="utf-8")
    return files


@pytest.mark.parametrize("page", ["email", "email-hostile", "edition", "index", "page", "year"])
def test_no_horizontal_scroll_from_320_to_600(browser, pages, page):
    for width in ARCHIVE_WIDTHS if page in ("edition", "index", "page", "year") else WIDTHS:
        browser.open(pages[page], width)
        sizes = browser.overflow()
        assert sizes["inner"] == width
        assert sizes["scroll"] <= sizes["inner"], (page, width, sizes)
        assert sizes["body"] <= sizes["inner"], (page, width, sizes)


def test_the_measure_does_see_overflow(browser, tmp_path):
    # Control: a fixed 700 px table does overflow at 320 px, and the test says so.
    wide = tmp_path / "wide.html"
    wide.write_text('<!doctype html><meta name="viewport" content="width=device-width">'
                    '<table role="presentation" width="700"><tr><td>x</td></tr></table>',
                    encoding="utf-8")
    browser.open(wide, 320)
    sizes = browser.overflow()
    assert sizes["scroll"] > sizes["inner"]


@pytest.mark.parametrize("page", ["email", "edition", "index"])
def test_dark_mode_changes_the_colours(browser, pages, page):
    # The colour of the title and the first opaque background behind it.
    probe = ("(() => { const h = document.querySelector('h1'); let el = h, bg = '';"
             " while (el) { bg = getComputedStyle(el).backgroundColor;"
             " if (bg && !bg.startsWith('rgba(0, 0, 0, 0)')) break; el = el.parentElement; }"
             " return {ink: getComputedStyle(h).color, card: bg}; })()")
    browser.open(pages[page], 414)
    light = browser.evaluate(probe)
    browser.open(pages[page], 414, dark=True)
    dark = browser.evaluate(probe)
    assert light != dark
    for colours, want_dark_text in ((light, True), (dark, False)):
        ink = _luminance(colours["ink"])
        card = _luminance(colours["card"])
        assert (ink < card) == want_dark_text, colours
        assert _contrast(ink, card) >= 4.5, colours  # WCAG AA for body text


def test_screenshot_at_320(browser, pages):
    keep = os.environ.get("SYNDICATE_SCREENSHOTS")
    for page in ("email", "edition"):
        for dark in (False, True):
            browser.open(pages[page], 320, dark=dark)
            png = browser.screenshot()
            assert png.startswith(b"\x89PNG") and len(png) > 10_000
            if keep:
                Path(keep).mkdir(parents=True, exist_ok=True)
                (Path(keep) / f"{page}-320{'-dark' if dark else ''}.png").write_bytes(png)


def test_archive_screenshots_at_375_and_1280(browser, pages):
    keep = os.environ.get("SYNDICATE_SCREENSHOTS")
    for page in ("index", "edition", "page", "year"):
        for width in (375, 1280):
            for dark in (False, True):
                browser.open(pages[page], width, dark=dark)
                png = browser.screenshot(full=True)
                assert png.startswith(b"\x89PNG") and len(png) > 10_000
                if keep:
                    Path(keep).mkdir(parents=True, exist_ok=True)
                    name = f"{page}-{width}{'-dark' if dark else ''}.png"
                    (Path(keep) / name).write_bytes(png)


def test_edition_blocks_are_compact_on_a_phone(browser, pages):
    # Six company chips used to take 250 px as bold underlined bullets at 375 px; the
    # related links show a one-line excerpt each.
    browser.open(pages["edition"], 375)
    box = browser.evaluate(
        "(() => { const chips = document.querySelector('.chips');"
        " const line = parseFloat(getComputedStyle(document.querySelector('.card-excerpt'))"
        ".lineHeight);"
        " return {chips: chips.getBoundingClientRect().height, count: chips.children.length,"
        " excerpts: [...document.querySelectorAll('.card-excerpt')].map("
        "e => e.getBoundingClientRect().height / line)}; })()")
    assert isinstance(box, dict) and box["count"] >= 6, box
    assert box["chips"] <= 40 * -(-box["count"] // 3), box  # about three chips a row
    assert box["excerpts"] and all(0.9 < lines < 1.1 for lines in box["excerpts"]), box


@pytest.mark.parametrize("dark", [False, True])
def test_subscribe_box_is_readable(browser, pages, dark):
    browser.open(pages["index"], 375, dark=dark)
    colours = browser.evaluate(
        "(() => { const b = getComputedStyle(document.querySelector('.subscribe button'));"
        " const i = getComputedStyle(document.querySelector('.subscribe input'));"
        " return {text: b.color, bg: b.backgroundColor, ink: i.color, field: i.backgroundColor};"
        " })()")
    assert isinstance(colours, dict)
    text, bg = _luminance(colours["text"]), _luminance(colours["bg"])
    ink, field = _luminance(colours["ink"]), _luminance(colours["field"])
    assert _contrast(text, bg) >= 4.5 and _contrast(ink, field) >= 4.5, colours


def _luminance(css: str) -> float:
    """Relative luminance (WCAG) of ``rgb(r, g, b)`` / ``rgba(...)``."""
    values = [float(v) for v in css[css.index("(") + 1: css.index(")")].split(",")[:3]]

    def channel(value: float) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in values)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: float, b: float) -> float:
    light, dark = max(a, b), min(a, b)
    return (light + 0.05) / (dark + 0.05)


# --------------------------------------------------------------------------- the wordmark

_LOGO = ('<svg xmlns="http://www.w3.org/2000/svg" width="220" height="32" viewBox="0 0 220 32">'
         '<text x="0" y="25" font-family="Georgia, serif" font-size="24" font-weight="bold" '
         'fill="{fill}">Études de cas</text></svg>')


@pytest.fixture(scope="module")
def wordmark_pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An edition page and its email with a wordmark drawn for light paper (dark ink), alone
    or with its dark version (light ink); images load from the folder (file: URLs)."""
    folder = tmp_path_factory.mktemp("wordmark")
    (folder / "logo.svg").write_text(_LOGO.format(fill="#1f1d1a"), encoding="utf-8")
    (folder / "logo-dark.svg").write_text(_LOGO.format(fill="#ece7df"), encoding="utf-8")
    files = {}
    for label, site in (("both", {"wordmark": "logo.svg", "wordmark_dark": "logo-dark.svg"}),
                        ("alone", {"wordmark": "logo.svg"})):
        config = make_config(folder / label, site=site, publish={"email_content": "full"})
        history = make_history(seed_cases()[:2], config)
        view = history[-1]
        html, _text = render_email(view, config).personalize(
            f"{config.site.base_url}unsubscribe/T", "Zoé")
        archive = render_archive(history, config)
        for kind, content in (("email", html), ("edition", archive[edition_path(view.slug)])):
            path = folder / f"{label}-{kind}.html"
            path.write_text(content.replace(config.site.base_url, folder.as_uri() + "/"),
                            encoding="utf-8")
            files[f"{label}-{kind}"] = path
    return files


_SHOWN_WORDMARKS = (
    "[...document.querySelectorAll('img')].filter(i => i.getBoundingClientRect().height > 0"
    " && getComputedStyle(i).display !== 'none').map(i => ({src: i.currentSrc,"
    " loaded: i.naturalWidth, bg: getComputedStyle(i).backgroundColor,"
    " pad: parseFloat(getComputedStyle(i).paddingLeft),"
    " paper: (() => { let el = i.parentElement, bg = ''; while (el) {"
    " bg = getComputedStyle(el).backgroundColor;"
    " if (bg && !bg.startsWith('rgba(0, 0, 0, 0)')) break; el = el.parentElement; }"
    " return bg; })()}))")


@pytest.mark.parametrize("kind", ["email", "edition"])
def test_the_dark_wordmark_is_the_one_shown_in_dark_mode(browser, wordmark_pages, kind):
    keep = os.environ.get("SYNDICATE_SCREENSHOTS")
    for dark in (False, True):
        for width in (375, 1280):
            browser.open(wordmark_pages[f"both-{kind}"], width, dark=dark)
            shown = browser.evaluate(_SHOWN_WORDMARKS)
            assert isinstance(shown, list) and len(shown) == 1, shown
            want = "/logo-dark.svg" if dark else "/logo.svg"
            assert shown[0]["src"].endswith(want) and shown[0]["loaded"] > 0, shown
            if keep:
                Path(keep).mkdir(parents=True, exist_ok=True)
                name = f"wordmark-both-{kind}-{width}{'-dark' if dark else ''}.png"
                (Path(keep) / name).write_bytes(browser.screenshot())


@pytest.mark.parametrize("kind", ["email", "edition"])
def test_a_wordmark_alone_sits_on_a_light_plate_in_dark_mode(browser, wordmark_pages, kind):
    keep = os.environ.get("SYNDICATE_SCREENSHOTS")
    for dark in (False, True):
        for width in (375, 1280):
            browser.open(wordmark_pages[f"alone-{kind}"], width, dark=dark)
            shown = browser.evaluate(_SHOWN_WORDMARKS)
            assert isinstance(shown, list) and len(shown) == 1, shown
            (logo,) = shown
            assert logo["loaded"] > 0
            # the plate has the light paper's colour: invisible on the light masthead, a
            # light ground for the dark ink in dark mode
            assert _luminance(logo["bg"]) > 0.8, logo
            assert (logo["bg"] == logo["paper"]) != dark, logo
            assert (logo["pad"] > 0) == dark, logo
            if keep:
                Path(keep).mkdir(parents=True, exist_ok=True)
                name = f"wordmark-alone-{kind}-{width}{'-dark' if dark else ''}.png"
                (Path(keep) / name).write_bytes(browser.screenshot())
