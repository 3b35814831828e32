"""Cost of ``[analytics]`` on the fan-out: messages per second made by the per-edition
template, without analytics, with counted links (aggregate: rewritten once per edition) and
with ``per_subscriber`` (each link signed per message and spliced into the template, like
the unsubscribe URL).

    python -m bench.analytics            # 2,000 messages of a ~40 KB email with 30 links

Prints each rate and its ratio to the run without analytics, measured in the same run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from syndicate.mail import MessageTemplate
from syndicate.render.email import RenderedEmail
from syndicate.render.links import add_pixel, rewrite_links, tracked_links
from syndicate.tokens import CLICK, OPEN, TrackToken, link_digest, make_track_token

BASE = "https://bench.example.org/"
SECRET = b"bench-secret-0123456789abcdef"
UNSUB = "UNSUB-PLACEHOLDER-0123456789"
NAME = "NAME-PLACEHOLDER-0123456789"
PARAGRAPH = ("Quand l’équipe fondatrice a décidé de refuser une nouvelle levée de fonds, elle "
             "savait que la croissance serait plus lente. ") * 6


def sample_email(links: int = 30) -> RenderedEmail:
    html, text = ["<html><body>"], []
    for i in range(links):
        url = f"{BASE}entreprises/societe-{i}/"
        html.append(f'<p>{PARAGRAPH}<a href="{url}">Société {i}</a></p>')
        text.append(f"{PARAGRAPH}\nSociété {i} : {url}\n")
    html.append(f'<p>Bonjour{NAME}, <a href="{UNSUB}">Se désabonner</a></p></body></html>')
    text.append(f"Bonjour{NAME}\nSe désabonner : {UNSUB}\n")
    return RenderedEmail("Sujet", "".join(html), "\n".join(text), "", UNSUB, NAME)


def urls(links: list[str], delivery: int | None) -> dict[str, str]:
    """What ``Mailing`` signs: one click URL per link, the pixel (as in _mailing.py)."""
    def mark(link: int, digest: str) -> TrackToken:
        return TrackToken(1, link, digest, 1_700_000_000, delivery)

    out = {str(i): BASE + "r/" + make_track_token(SECRET, CLICK, mark(i, link_digest(u)))
           for i, u in enumerate(links)}
    out["p"] = BASE + "o/" + make_track_token(SECRET, OPEN, mark(-1, ""))
    return out


def tracked(email: RenderedEmail, links: list[str], by_key: dict[str, str]) -> RenderedEmail:
    email = rewrite_links(email, links, lambda i: by_key[str(i)])
    return add_pixel(email, by_key["p"])


def template(email: RenderedEmail, placeholders: dict[str, str] | None = None
             ) -> MessageTemplate:
    return MessageTemplate(email, from_addr="lettre@bench.example.org",
                           list_id="Bench <list.bench.example.org>", placeholders=placeholders)


def rate(n: int, make: Callable[[int], bytes]) -> float:
    start = time.perf_counter()
    for i in range(n):
        make(i)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="messages per run")
    n = parser.parse_args().n
    email = sample_email()
    links = tracked_links(email, BASE)
    plain, aggregate = template(email), template(tracked(email, links, urls(links, None)))
    marks = {key: f"NONCE{key}X" for key in urls(links, None)}
    spliced = template(tracked(email, links, marks), marks)

    def message(tpl: MessageTemplate, i: int, values: dict[str, str] | None = None) -> bytes:
        return tpl.render(to=f"r{i}@bench.example.org", unsubscribe_url=f"{BASE}unsubscribe/t{i}",
                          message_id=f"<m{i}@bench.example.org>", name="Marie", values=values)

    base = rate(n, lambda i: message(plain, i))
    runs = {
        "analytics off": base,
        "clicks + pixel, aggregate": rate(n, lambda i: message(aggregate, i)),
        "clicks + pixel, per_subscriber": rate(
            n, lambda i: message(spliced, i, urls(links, i))),
    }
    print(f"{len(email.html) // 1024} KB HTML, {len(links)} counted links, {n} messages")
    for label, value in runs.items():
        print(f"{label:32} {value:9.0f} msg/s   x{value / base:.2f}")


if __name__ == "__main__":
    main()
