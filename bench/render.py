"""How long publishing one edition takes, on the seed corpus and on a generated large one.

Run from the repository root::

    python -m bench.render                 # seed corpus + 10,000 generated case studies
    python -m bench.render --n 2000 --repeat 5 --sections relatedness

Prints one table: each figure is the best of up to ``--repeat`` runs (expensive steps stop
repeating after a few seconds), and figures that have a baseline show ``baseline / figure``,
the baseline being measured in the same run on the same corpus, so the ratio holds whatever the
machine.

Sections are functions registered with :func:`section`; each gets the run context and one corpus
and yields :class:`Figure` rows. Add one by writing::

    @section("feeds")
    def feeds(ctx: Context, corpus: BenchCorpus) -> Iterator[Figure]:
        yield ctx.measure(corpus, "feeds: render RSS + Atom + JSON", lambda: ...)
"""

from __future__ import annotations

import argparse
import math
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/render.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import cosine_similarity

from bench._corpus import SEED_CORPUS, generate_corpus
from syndicate import related, text
from syndicate.corpus import CaseStudy, load

# An expensive step (fitting 10,000 case studies) is not repeated beyond this many seconds.
REPEAT_BUDGET_S = 15.0


def _cold_stems() -> None:
    """Forget every memoised stem: a fit happens in a fresh process."""
    related._stem.cache_clear()
    text.french_stem.cache_clear()


@dataclass(frozen=True)
class BenchCorpus:
    label: str
    cases: Sequence[CaseStudy]


@dataclass(frozen=True)
class Figure:
    """One measured figure: seconds per operation, best of ``runs`` runs.

    ``baseline`` names another figure of the same corpus; the table shows how many times faster
    this one is.
    """

    corpus: str
    name: str
    seconds: float
    runs: int
    baseline: str | None = None
    note: str = ""


@dataclass
class Context:
    repeat: int
    workdir: Path
    # Results a section wants to hand to a later one (e.g. the fitted index), per corpus label.
    shared: dict[tuple[str, str], Any] = field(default_factory=dict)

    def measure(
        self,
        corpus: BenchCorpus,
        name: str,
        func: Callable[[], object],
        *,
        per: int = 1,
        baseline: str | None = None,
        note: str = "",
        setup: Callable[[], object] | None = None,
    ) -> Figure:
        """Time ``func()`` (which does ``per`` operations) up to ``repeat`` times; keep the best.

        ``setup`` runs before each run, untimed (e.g. emptying an in-memory cache).
        """
        best = float("inf")
        runs = 0
        started = time.perf_counter()
        while runs < self.repeat:
            if setup is not None:
                setup()
            t0 = time.perf_counter()
            func()
            best = min(best, time.perf_counter() - t0)
            runs += 1
            if time.perf_counter() - started > REPEAT_BUDGET_S:
                break
        return Figure(corpus.label, name, best / per, runs, baseline, note)


SECTIONS: dict[str, Callable[[Context, BenchCorpus], Iterator[Figure]]] = {}


def section(name: str) -> Callable[[Callable[[Context, BenchCorpus], Iterator[Figure]]],
                                    Callable[[Context, BenchCorpus], Iterator[Figure]]]:
    """Register a benchmark section (run in registration order)."""

    def register(func: Callable[[Context, BenchCorpus], Iterator[Figure]]
                 ) -> Callable[[Context, BenchCorpus], Iterator[Figure]]:
        SECTIONS[name] = func
        return func

    return register


# --------------------------------------------------------------------------- relatedness

NAIVE = "relatedness: naive, from scratch per edition"


def naive_related(
    cases: Sequence[CaseStudy], slug: str, candidates: set[str], k: int = 3
) -> list[tuple[str, float]]:
    """The baseline: what an edition costs if relatedness is recomputed from scratch.

    Analyse and fit TF-IDF on the whole corpus, cosine of this case study against all others,
    shared companies and themes by set intersection weighted by their rarity, sort. (The full
    all-pairs cosine matrix is not even attempted: 10,000² floats are 800 MB; one row against
    all is the cheapest honest from-scratch computation.)
    """
    terms = [related.analyze(c.text) for c in cases]
    matrix = TfidfVectorizer(analyzer=lambda t: t, sublinear_tf=True).fit_transform(terms)
    row = next(i for i, c in enumerate(cases) if c.slug == slug)
    cos = cosine_similarity(matrix[row], matrix).ravel()
    companies = [{related.name_key(n) for n in c.companies} for c in cases]
    themes = [{related.name_key(n) for n in c.themes} for c in cases]
    idf_c, idf_t = _naive_idf(companies), _naive_idf(themes)
    scored = []
    for j, other in enumerate(cases):
        if j == row or other.slug not in candidates:
            continue
        score = (cos[j]
                 + related.W_COMPANY * sum(idf_c[k] for k in companies[row] & companies[j])
                 + related.W_THEME * sum(idf_t[k] for k in themes[row] & themes[j]))
        if score > 0:
            scored.append((-score, other.position, other.slug))
    return [(s, -neg) for neg, _p, s in sorted(scored)[:k]]


def _naive_idf(names: Sequence[set[str]]) -> dict[str, float]:
    """Each name's rarity, as :func:`syndicate.related.name_idf` defines it, in plain Python."""
    df: dict[str, int] = {}
    for keys in names:
        for key in keys:
            df[key] = df.get(key, 0) + 1
    n = len(names)
    return {key: math.log((n + 1) / d) / math.log(n + 1) for key, d in df.items()}


def import_seconds(module: str) -> float:
    """Cumulative import time of ``module`` in a fresh interpreter (``python -X importtime``)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    for line in result.stderr.splitlines():
        parts = [part.strip() for part in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1]) / 1e6
    raise RuntimeError(f"no import time reported for {module}")


def _editions(cases: Sequence[CaseStudy], count: int) -> list[tuple[str, frozenset[str]]]:
    """``count`` editions spread along the queue, each with the slugs published before it."""
    ordered = sorted(cases, key=lambda c: (c.position, c.slug))
    picks = np.unique(np.linspace(1, len(ordered) - 1, num=min(count, len(ordered) - 1),
                                  dtype=int)).tolist()
    return [(ordered[i].slug, frozenset(c.slug for c in ordered[:i])) for i in picks]


@section("relatedness")
def relatedness(ctx: Context, corpus: BenchCorpus) -> Iterator[Figure]:
    cases = corpus.cases
    if len(cases) < 2:
        return
    editions = _editions(cases, 200)
    cache_dir = ctx.workdir / f"cache-{len(cases)}"
    index = related.build_index(cases)
    ctx.shared[(corpus.label, "related_index")] = index

    if ("", "import") not in ctx.shared:  # once: it does not depend on the corpus
        ctx.shared[("", "import")] = True
        runs = [import_seconds("syndicate.related") for _ in range(ctx.repeat)]
        yield Figure(corpus.label, "relatedness: import syndicate.related (new process)",
                     min(runs), len(runs), note="with the syndicate package; no sklearn")
    # Stems are memoised per process; a fit happens in a fresh one, so start cold (both here and
    # in the baseline).
    yield ctx.measure(corpus, "relatedness: fit index (once per corpus change)",
                      lambda: related.build_index(cases), setup=_cold_stems)
    yield ctx.measure(corpus, "relatedness: corpus fingerprint (cache key)",
                      lambda: related.corpus_fingerprint(cases))
    related.save_index(index, cache_dir / "bench.rel")
    yield ctx.measure(corpus, "relatedness: load cached index (.rel)",
                      lambda: related.load_index(cache_dir / "bench.rel"))

    def queries() -> None:
        for slug, published in editions:
            index.related(slug, published, k=3)

    def mentions() -> None:
        for slug, published in editions:
            index.company_mentions(slug, published)

    yield ctx.measure(corpus, "relatedness: query top 3 among published", queries,
                      per=len(editions), baseline=NAIVE, note=f"mean of {len(editions)} editions")
    yield ctx.measure(corpus, "relatedness: company mentions among published", mentions,
                      per=len(editions))

    slug, published = editions[len(editions) // 2]

    def edition() -> None:
        fresh = related.load_or_build(cases, cache_dir)
        fresh.related(slug, published, k=3)
        fresh.company_mentions(slug, published)

    related.load_or_build(cases, cache_dir)  # write the cache file, as the first edition would
    yield ctx.measure(corpus, "relatedness per edition, new process (fingerprint+load+query)",
                      edition, setup=related.clear_memory_cache, baseline=NAIVE,
                      note="import not included")
    reloaded = pickle.loads(pickle.dumps(cases))  # equal case studies, other objects

    def edition_reloaded() -> None:
        fresh = related.load_or_build(reloaded, cache_dir)
        fresh.related(slug, published, k=3)
        fresh.company_mentions(slug, published)

    yield ctx.measure(corpus, "relatedness per edition, long-running, corpus reloaded",
                      edition_reloaded, setup=lambda: related.load_or_build(cases, cache_dir),
                      baseline=NAIVE, note="in memory")
    yield ctx.measure(corpus, "relatedness per edition, long-running, same corpus", edition,
                      baseline=NAIVE, note="in memory")
    related.clear_memory_cache()

    expected = [(r.slug, r.score) for r in index.related(slug, published, k=3)]
    got = naive_related(cases, slug, set(published))
    # The baseline must compute the same thing, or the ratio means nothing.
    assert [s for s, _ in got] == [s for s, _ in expected] and np.allclose(
        [v for _, v in got], [v for _, v in expected], atol=1e-5), (got, expected)
    yield ctx.measure(corpus, NAIVE, lambda: naive_related(cases, slug, set(published)),
                      setup=_cold_stems, note="fit + cosine vs all")


# --------------------------------------------------------------------------- one edition

EDITION_NAIVE = "edition: naive (refit relatedness, full views of every edition)"


def _bench_config(workdir: Path) -> Any:
    """The shipped config, with the ledger/public folders in the bench's temp dir."""
    from syndicate.app import parse_config

    root = Path(__file__).resolve().parents[1]
    data = tomllib.loads((root / "config" / "syndicate.toml").read_text(encoding="utf-8"))
    data["storage"] = {
        "database": str(workdir / "var" / "syndicate.db"),
        "corpus": str(root / "syndicate" / "examples" / "corpus"),
        "public": str(workdir / "public"),
    }
    return parse_config(data, root / "config" / "syndicate.toml")


def _published_before(cases: Sequence[CaseStudy], count: int) -> tuple[list[Any], CaseStudy]:
    """The first ``count`` case studies of the queue as published editions, and the next one."""
    from datetime import UTC, datetime, timedelta

    from syndicate.views import Published

    ordered = sorted(cases, key=lambda c: (c.position, c.slug))
    count = min(count, len(ordered) - 1)
    start = datetime(2020, 1, 7, 7, tzinfo=UTC)
    published = [
        Published(i + 1, c.slug, start + timedelta(days=7 * i))
        for i, c in enumerate(ordered[:count])
    ]
    return published, ordered[count]


@section("edition")
def edition(ctx: Context, corpus: BenchCorpus) -> Iterator[Figure]:
    """Rendering one edition the way the pipeline does (views, email, feeds, archive)."""
    from datetime import UTC, datetime

    from syndicate.corpus import Corpus

    cases = corpus.cases
    if len(cases) < 2:
        return
    config = _bench_config(ctx.workdir / corpus.label.split()[0])
    loaded = Corpus(Path("."), tuple(cases))
    now = datetime(2026, 11, 24, 7, tzinfo=UTC)
    for published_count in sorted({min(len(cases) - 1, 20), len(cases) - 1}):
        published, case = _published_before(cases, published_count)
        yield from _edition_figures(ctx, corpus, config, loaded, published, case, now)


def _edition_figures(
    ctx: Context, corpus: BenchCorpus, config: Any, loaded: Any, published: list[Any],
    case: CaseStudy, now: Any,
) -> Iterator[Figure]:
    from syndicate.render.archive import render_archive
    from syndicate.render.email import render_email
    from syndicate.render.feeds import render_feeds
    from syndicate.views import ViewBuilder

    label = f"{len(published)} published"
    related.load_or_build(loaded.cases, config.database.parent / "cache")  # warm cache
    builder = ViewBuilder(config, loaded, published)
    view = builder.view(len(published) + 1, case, now)
    history = builder.history(view)
    feed_views = history[: config.publish.feed_size]
    # Warm the template caches: an edition in a running process reuses them.
    render_email(view, config)
    render_feeds(feed_views, config)

    yield ctx.measure(corpus, f"views: this edition + history ({label})",
                      lambda: ViewBuilder(config, loaded, published).history(
                          builder.view(len(published) + 1, case, now)))
    yield ctx.measure(corpus, "email: Jinja2 -> MJML -> HTML + text",
                      lambda: render_email(view, config))
    yield ctx.measure(corpus, f"feeds: RSS + Atom + JSON ({len(feed_views)} items)",
                      lambda: render_feeds(feed_views, config))
    yield ctx.measure(corpus, f"archive: page, index, company pages ({label})",
                      lambda: render_archive(history, config, changed=view,
                                             expand=builder.expand))

    def whole() -> None:
        b = ViewBuilder(config, loaded, published)
        v = b.view(len(published) + 1, case, now)
        h = b.history(v)
        render_email(v, config)
        render_feeds(h[: config.publish.feed_size], config)
        render_archive(h, config, changed=v, expand=b.expand)

    def naive() -> None:
        related.clear_memory_cache()
        b = ViewBuilder(config, loaded, published)
        b.index = related.build_index(loaded.cases)
        v = b.view(len(published) + 1, case, now)
        h = b.history(v, full=len(published) + 1)
        render_email(v, config)
        render_feeds(h[: config.publish.feed_size], config)
        render_archive(h, config, changed=v, expand=b.expand)

    naive_name = f"{EDITION_NAIVE} ({label})"
    yield ctx.measure(corpus, f"EDITION: render one edition, whole ({label})", whole,
                      baseline=naive_name, note="target: < 50 ms seed, < 1 s at 10,000")
    yield from _ledger_figures(ctx, corpus, config, loaded, published, case, now, label,
                               baseline="views: this edition + history")
    yield ctx.measure(corpus, naive_name, naive, setup=_cold_stems)


def _ledger_figures(
    ctx: Context, corpus: BenchCorpus, config: Any, loaded: Any, published: list[Any],
    case: CaseStudy, now: Any, label: str, baseline: str,
) -> Iterator[Figure]:
    """The history as the pipeline builds it: the published text read from the ledger's
    snapshots (``case.json``, ``companies.json``), not from the corpus."""
    from syndicate.ledger import Ledger
    from syndicate.render.archive import render_archive
    from syndicate.snapshots import LedgerTexts, published_drift, snapshot_artefacts
    from syndicate.views import ViewBuilder, published_of

    by_slug = loaded.by_slug()
    database = ctx.workdir / f"ledger-{corpus.label.split()[0]}-{len(published)}.db"
    with Ledger(database) as ledger:
        for p in published:  # setup, untimed: one claim and one snapshot per edition
            edition = ledger.claim_edition(slot=f"bench:{p.number}", slug=p.slug,
                                           title=by_slug[p.slug].title, url=p.slug,
                                           published_at=p.published_at)
            ledger.store_artefacts(edition.id, snapshot_artefacts(by_slug[p.slug]))
            ledger.set_edition_status(edition.id, "done")
        editions = ledger.editions()

        def history() -> tuple[Any, ...]:
            texts = LedgerTexts(ledger, loaded, editions)
            builder = ViewBuilder(config, loaded, published_of(editions), texts=texts)
            return builder.history(builder.view(len(published) + 1, case, now))

        yield ctx.measure(corpus, f"views: history from the ledger's snapshots ({label})",
                          history, note=f"what the pipeline runs; compare: {baseline}")

        def archive() -> None:
            texts = LedgerTexts(ledger, loaded, editions)
            builder = ViewBuilder(config, loaded, published_of(editions), texts=texts)
            view = builder.view(len(published) + 1, case, now)
            render_archive(builder.history(view), config, changed=view, expand=builder.expand)

        yield ctx.measure(corpus, f"views + archive from the ledger's snapshots ({label})",
                          archive)
        yield ctx.measure(corpus, f"status / corpus check: published files changed? ({label})",
                          lambda: published_drift(ledger, by_slug))


# --------------------------------------------------------------------------- table


def _duration(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def render_table(figures: Sequence[Figure]) -> str:
    by_name = {(f.corpus, f.name): f for f in figures}
    rows = [("corpus", "measure", "time", "runs", "vs baseline", "note")]
    for f in figures:
        ratio = ""
        if f.baseline is not None and (f.corpus, f.baseline) in by_name:
            base = by_name[(f.corpus, f.baseline)].seconds
            ratio = f"{base / f.seconds:,.0f}× faster" if f.seconds > 0 else "∞"
        rows.append((f.corpus, f.name, _duration(f.seconds), str(f.runs), ratio, f.note))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    right = {2, 3, 4}
    lines = []
    for number, row in enumerate(rows):
        cells = [cell.rjust(w) if i in right else cell.ljust(w)
                 for i, (cell, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def corpora(args: argparse.Namespace) -> Iterator[BenchCorpus]:
    seeds = load(args.corpus).cases if any(args.corpus.glob("*.md")) else ()
    if seeds:
        yield BenchCorpus(f"seed ({len(seeds)})", seeds)
    else:
        print(f"note: {args.corpus} is empty, no seed corpus figures", file=sys.stderr)
    if args.n > 0:
        started = time.perf_counter()
        cases = generate_corpus(args.n, seed=args.seed, source=seeds or None)
        words = statistics.mean(c.words for c in cases[:1000])
        print(f"generated {len(cases)} case studies (~{words:.0f} words each) in "
              f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
        yield BenchCorpus(f"generated ({args.n})", cases)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000,
                        help="size of the generated corpus (0: seed corpus only)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best kept)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the generated corpus")
    parser.add_argument("--corpus", type=Path, default=SEED_CORPUS, help="seed corpus folder")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run (default: {','.join(SECTIONS)})")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.sections.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="syndicate-bench-") as workdir:
        ctx = Context(repeat=max(1, args.repeat), workdir=Path(workdir))
        for corpus in corpora(args):
            for name in chosen:
                figures.extend(SECTIONS[name](ctx, corpus))
    related.clear_memory_cache()
    print(render_table(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
