"""The archive pages' subscribe box, end to end: static page -> the web app's form
(prefilled, with its own signed token) -> POST -> a pending subscriber and a queued
confirmation, on a real waitress server and a real SQLite ledger."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

import pytest
import requests
from _render_support import make_history, seed_cases
from _web_support import Site, site_factory

from syndicate.fs import write_atomic
from syndicate.render.archive import INDEX, edition_path, render_archive

if TYPE_CHECKING:
    from conftest import Project


class _Forms(HTMLParser):
    """Every form of a page: its method, action and fields (name -> value)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"method": values.get("method", "get").lower(),
                               "action": values.get("action", ""), "fields": {}})
        elif tag == "input" and self.forms and values.get("name"):
            self.forms[-1]["fields"][values["name"]] = values.get("value", "")


def forms(html: str) -> list[dict[str, Any]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


@pytest.fixture
def make_site(project: Project) -> Iterator[Any]:
    yield from site_factory(project)


@pytest.mark.parametrize("page", ["index", "edition"])
def test_subscribe_box_leads_to_a_pending_subscriber(make_site, clock, page):
    site: Site = make_site(now=clock)
    history = make_history(seed_cases()[:2], site.config)
    for path, html in render_archive(history, site.config).items():
        write_atomic(site.config.public_dir / path, html)
    path = INDEX if page == "index" else edition_path(history[0].slug)
    static = requests.get(site.url(path.removesuffix("index.html")), timeout=5)
    assert static.status_code == 200
    (box,) = forms(static.text)  # the static page's only form: no token, a GET
    assert box["method"] == "get" and box["action"] == site.url("subscribe")
    assert set(box["fields"]) == {"email"}

    # The reader types an address and presses the button: the app's own form, prefilled.
    served = requests.get(box["action"], params={"email": " lea@example.org "}, timeout=5)
    assert served.status_code == 200
    (form,) = forms(served.text)
    assert form["method"] == "post" and form["fields"]["email"] == "lea@example.org"
    assert form["fields"]["form_token"]
    assert site.status("lea@example.org") is None  # a GET records nothing

    # A bot posting the served form at once is still refused (form_min_age).
    fields = {**form["fields"], "website": ""}
    too_soon = requests.post(site.url("subscribe"), data=fields, timeout=5,
                             headers={"Origin": site.base.rstrip("/")})
    assert too_soon.status_code == 400 and site.status("lea@example.org") is None

    clock.advance(seconds=10)  # a person reads the page, then confirms
    sent = requests.post(site.url("subscribe"), data=fields, timeout=5,
                         headers={"Origin": site.base.rstrip("/")})
    assert sent.status_code == 200 and "Vérifiez votre boîte" in sent.text
    assert site.status("lea@example.org") == "pending"
    assert site.ledger.count_confirmations("pending") == 1


def test_prefilled_address_is_escaped_and_changes_nothing(make_site, clock):
    # ?email= is reflected into the form: escaped like any value, and a GET (or a
    # scanner following the link) records nothing.
    site: Site = make_site(now=clock)
    hostile = '"><script>alert(1)</script>@x.org'
    answer = requests.get(site.url("subscribe"), params={"email": hostile}, timeout=5)
    assert answer.status_code == 200
    assert "<script>alert(1)</script>" not in answer.text
    (form,) = [f for f in forms(answer.text) if f["method"] == "post"]
    assert form["fields"]["email"] == hostile  # shown back exactly, as text
    assert site.ledger.count_subscribers() == 0
    assert site.ledger.count_confirmations() == 0
