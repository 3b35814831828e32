"""Relatedness: French text similarity + shared companies and themes, over a fitted index."""

from __future__ import annotations

import itertools
import math
import pickle
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import cosine_similarity

from syndicate import related
from syndicate.corpus import CaseStudy, Section, load
from syndicate.related import (
    PLAIN_BELOW,
    W_COMPANY,
    W_THEME,
    RankingQuality,
    Related,
    analyze,
    build_index,
    load_or_build,
    name_key,
    ranking_quality,
)

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "syndicate" / "examples" / "corpus"
NBSP, NNBSP = "\u00a0", "\u202f"


def case(
    slug: str,
    text: str,
    *,
    position: int,
    companies: Sequence[str] = (),
    themes: Sequence[str] = (),
    title: str | None = None,
) -> CaseStudy:
    """A case study whose body is ``text`` (its heading is stop words only: no term)."""
    return CaseStudy(
        slug=slug, title=title if title is not None else slug.replace("-", " "), lede=text,
        sections=(Section("Et après", (text,)),), position=position,
        companies=tuple(companies), themes=tuple(themes),
    )


def oracle(
    cases: Sequence[CaseStudy], slug: str, candidates: Collection[str] | None
) -> dict[str, float]:
    """Reference scores computed from scratch, all pairs, in float64: the naive way."""
    ordered = sorted(cases, key=lambda c: (c.position, c.slug))
    terms = [analyze(c.text) for c in ordered]
    if any(terms):
        matrix = TfidfVectorizer(analyzer=lambda t: t, sublinear_tf=True).fit_transform(terms)
        cos = cosine_similarity(matrix)
    else:
        cos = np.zeros((len(ordered), len(ordered)))
    row = next(i for i, c in enumerate(ordered) if c.slug == slug)
    idf_c, idf_t = rarity(ordered, "companies"), rarity(ordered, "themes")
    mine_c = {name_key(n) for n in ordered[row].companies}
    mine_t = {name_key(n) for n in ordered[row].themes}
    scores = {}
    for j, other in enumerate(ordered):
        if j == row or (candidates is not None and other.slug not in candidates):
            continue
        shared_c = sum(idf_c[k] for k in mine_c & {name_key(n) for n in other.companies})
        shared_t = sum(idf_t[k] for k in mine_t & {name_key(n) for n in other.themes})
        scores[other.slug] = cos[row, j] + W_COMPANY * shared_c + W_THEME * shared_t
    return scores


def rarity(cases: Sequence[CaseStudy], field: str) -> dict[str, float]:
    """Each name's idf, the naive way: log((N + 1) / df) / log(N + 1), df counted by hand."""
    n = len(cases)
    keys = [{name_key(name) for name in getattr(c, field)} for c in cases]
    return {key: math.log((n + 1) / sum(key in k for k in keys)) / math.log(n + 1)
            for key in set().union(*keys)}


def check_top_k(
    cases: Sequence[CaseStudy], slug: str, candidates: Collection[str] | None, k: int
) -> tuple[Related, ...]:
    """``related`` against the oracle: the k best candidates, best first, ties in queue order."""
    index = build_index(cases)
    got = index.related(slug, candidates, k=k)
    expected = oracle(cases, slug, candidates)
    positive = {s: v for s, v in expected.items() if v > 1e-9}
    assert len(got) == min(k, len(positive))
    assert all(r.slug in positive for r in got)  # never itself, never outside candidates
    assert len({r.slug for r in got}) == len(got)
    idf_c, idf_t = rarity(cases, "companies"), rarity(cases, "themes")
    for r in got:
        assert r.score == pytest.approx(positive[r.slug], abs=1e-5)
        assert r.score == pytest.approx(
            r.text_similarity + W_COMPANY * sum(idf_c[name_key(n)] for n in r.shared_companies)
            + W_THEME * sum(idf_t[name_key(n)] for n in r.shared_themes), abs=1e-6)
    scores = [r.score for r in got]
    assert scores == sorted(scores, reverse=True)
    if got:  # nothing left out scores better than the last one kept
        left_out = [v for s, v in positive.items() if s not in {r.slug for r in got}]
        assert all(v <= got[-1].score + 1e-5 for v in left_out)
    position = {c.slug: (c.position, c.slug) for c in cases}
    for a, b in itertools.pairwise(got):
        if a.score == b.score:
            assert position[a.slug] < position[b.slug]
    return got


# --------------------------------------------------------------------------- the seed corpus


@pytest.fixture(scope="module")
def seeds() -> tuple[CaseStudy, ...]:
    if not any(CORPUS.glob("*.md")):
        pytest.skip(f"{CORPUS} is empty: the seed case studies have not been imported yet")
    return load(CORPUS).cases


def featuring(cases: Sequence[CaseStudy], company: str) -> list[CaseStudy]:
    return [c for c in cases if name_key(company) in {name_key(n) for n in c.companies}]


def test_seed_luko_case_studies_rank_each_other_high(seeds: tuple[CaseStudy, ...]) -> None:
    luko = featuring(seeds, "Luko")
    assert len(luko) == 2, [c.slug for c in luko]
    index = build_index(seeds)
    first, second = luko
    for this, that in ((first, second), (second, first)):
        top = index.related(this.slug, k=3)
        assert that.slug in [r.slug for r in top]
        match = next(r for r in top if r.slug == that.slug)
        assert "Luko" in match.shared_companies
        assert match.score > match.text_similarity  # the company counted, on top of the text
        # Even among published case studies only, once the other one is published.
        assert index.related(this.slug, candidates={that.slug}, k=3)[0].slug == that.slug


def test_seed_company_mentions_list_the_other_case_studies(seeds: tuple[CaseStudy, ...]) -> None:
    index = build_index(seeds)
    later = featuring(seeds, "Luko")[-1]
    earlier = featuring(seeds, "Luko")[0]
    mentions = index.company_mentions(later.slug)
    luko = next(name for name in mentions if name_key(name) == "luko")
    assert mentions[luko] == (earlier.slug,)
    # Every company of the case study is a key, with the others featuring it in queue order.
    assert {name_key(n) for n in mentions} == {name_key(n) for n in later.companies}
    for name, slugs in mentions.items():
        expected = [c.slug for c in featuring(seeds, name) if c.slug != later.slug]
        assert list(slugs) == expected
    # Not published yet: not mentioned (no spoiler, no dead link).
    assert index.company_mentions(later.slug, candidates=set())[luko] == ()


def test_seed_top_k_matches_the_naive_computation(seeds: tuple[CaseStudy, ...]) -> None:
    published = {c.slug for c in seeds[::2]}
    for c in seeds:
        check_top_k(seeds, c.slug, None, 3)
        check_top_k(seeds, c.slug, published, 3)
        check_top_k(seeds, c.slug, published, 10)


def test_seed_index_is_deterministic(seeds: tuple[CaseStudy, ...]) -> None:
    one, two = build_index(seeds), build_index(list(reversed(seeds)))
    assert one.fingerprint == two.fingerprint
    assert one.slugs == two.slugs == tuple(c.slug for c in seeds)
    for c in seeds:
        assert one.related(c.slug, k=len(seeds)) == two.related(c.slug, k=len(seeds))
        assert one.company_mentions(c.slug) == two.company_mentions(c.slug)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_seed_candidates_and_k_property(seeds: tuple[CaseStudy, ...], data: st.DataObject) -> None:
    index = build_index(seeds)
    slugs = [c.slug for c in seeds]
    this = data.draw(st.sampled_from(slugs))
    candidates = data.draw(st.sets(st.sampled_from([*slugs, "pas-encore-ecrit"])))
    k = data.draw(st.integers(0, 12))
    got = index.related(this, candidates, k=k)
    assert len(got) <= k
    assert all(r.slug in candidates and r.slug != this for r in got)
    assert got == index.related(this, frozenset(candidates), k=k)
    assert got == index.related(this, candidates, k=k + 5)[:k]  # a longer list extends it


def test_the_stemmer_is_the_c_one_and_stems_as_the_python_one(
    seeds: tuple[CaseStudy, ...],
) -> None:
    # Issue 13: the pure-Python Snowball stemmer was most of a cold first publish on the seeds
    # (0.3 s for their 2,500 words); snowballstemmer hands over to PyStemmer's C stemmers when
    # installed. Same algorithm: the same stems (the rankings and the golden run unchanged).
    import re

    import Stemmer
    from snowballstemmer.french_stemmer import FrenchStemmer

    from syndicate import text

    assert isinstance(text._stemmer(), Stemmer.Stemmer)
    python = FrenchStemmer()
    words = {w for c in seeds for w in re.findall(r"[^\W\d_]+", c.text.lower())}
    assert len(words) > 2000
    assert [text.french_stem(w) for w in sorted(words)] == [
        python.stemWord(w) for w in sorted(words)]


# --------------------------------------------------------------------------- small corpora

CRISE = ("La crise de trésorerie a forcé l’équipe à revoir ses dépenses, à renégocier avec "
         "ses fournisseurs et à reporter les recrutements prévus.")
REUNIONS = ("Supprimer les réunions hebdomadaires a libéré du temps pour les commerciaux, qui "
            "passent désormais leurs journées avec les clients.")
SEMAINE = ("La semaine de quatre jours a d’abord inquiété les managers, puis les équipes ont "
           "appris à mieux organiser leur temps de travail.")


def test_analyze_is_french_aware() -> None:
    terms = analyze("Les entreprises françaises l’entreprise, une Entreprise : réussite, reussites")
    assert terms.count(analyze("entreprise")[0]) == 3  # plural, elision and case folded
    assert analyze("réussite") == analyze("reussites")  # accents stripped after stemming
    assert analyze("les une de la l’ qu’il 2021 100K€") == []  # stop words, letters, numbers
    assert analyze("") == []


def test_name_key_folds_trivial_variants_only() -> None:
    assert name_key("Société Générale") == name_key(f"  SOCIETE{NBSP}générale ")
    assert name_key(f"L’Oréal{NNBSP}Paris") == name_key("l'oreal paris")
    assert name_key("Alan") != name_key("Alan & Co")
    assert name_key("Qonto") != name_key("Qonto Pro")
    assert name_key("Back-Market") == name_key("Back–Market") != name_key("BackMarket")


def test_company_spelling_variants_are_one_company() -> None:
    cases = [
        case("a", CRISE, position=1, companies=["Société Générale", "Alan"]),
        case("b", REUNIONS, position=2, companies=[f"SOCIETE{NBSP}GENERALE"]),
        case("c", SEMAINE, position=3, companies=["Alan & Co"]),
        case("d", SEMAINE, position=4, companies=["alan", "ALAN"]),
    ]
    index = build_index(cases)
    top = {r.slug: r for r in index.related("a", k=3)}
    assert top["b"].shared_companies == ("Société Générale",)  # spelt as in the queried case
    assert top["c"].shared_companies == ()  # "Alan & Co" is not "Alan"
    assert top["d"].shared_companies == ("Alan",)
    assert index.companies("d") == ("alan",)  # duplicates by key removed, first spelling kept
    assert index.company_mentions("a") == {"Société Générale": ("b",), "Alan": ("d",)}
    assert index.company_mentions("c") == {"Alan & Co": ()}
    check_top_k(cases, "a", None, 3)


def test_shared_company_and_theme_add_their_rarity_to_the_text() -> None:
    # related-2 (judged on 27 case studies, see docs/relatedness.md): a shared company no longer
    # adds a flat 0.2 that outranks any text, but W_COMPANY x its idf; it still ranks a case
    # study above an equally close text, and a company above a theme.
    cases = [
        case("query", CRISE + " " + REUNIONS, position=1, companies=["Luko"], themes=["crise"],
             title=""),
        case("nothing", SEMAINE, position=2, title=""),
        case("theme", SEMAINE, position=3, themes=["Crise"], title=""),
        case("company", SEMAINE, position=4, companies=["luko"], title=""),
        case("same-text", CRISE + " " + REUNIONS, position=5, title=""),
    ]
    got = build_index(cases).related("query", k=4)
    assert [r.slug for r in got] == ["same-text", "company", "theme", "nothing"]
    assert got[0].text_similarity == pytest.approx(1.0, abs=1e-6)
    assert got[1].shared_companies == ("Luko",) and got[1].shared_themes == ()
    assert got[2].shared_themes == ("crise",) and got[2].shared_companies == ()
    assert 0 < got[3].text_similarity < 0.2  # "temps" in common: related, barely
    assert {r.text_similarity for r in got[1:]} == {got[3].text_similarity}
    idf = math.log(6 / 2) / math.log(6)  # "Luko" and "crise" are in 2 of the 5 case studies
    assert got[1].score - got[3].score == pytest.approx(W_COMPANY * idf, abs=1e-6)
    assert got[2].score - got[3].score == pytest.approx(W_THEME * idf, abs=1e-6)


def test_rarer_shared_company_weighs_more() -> None:
    # Same texts everywhere: only the companies differ. "Shine" is in four of the five case
    # studies, "Luko" only in the query and "rare": the rare one says more about what the two
    # have in common.
    cases = [
        case("query", CRISE, position=1, companies=["Shine", "Luko"], title=""),
        case("common", CRISE, position=2, companies=["Shine"], title=""),
        case("rare", CRISE, position=3, companies=["Luko"], title=""),
        case("other", CRISE, position=4, companies=["Shine"], title=""),
        case("more", CRISE, position=5, companies=["Shine"], title=""),
    ]
    got = build_index(cases).related("query", k=4)
    assert [r.slug for r in got] == ["rare", "common", "other", "more"]
    assert got[0].score - got[1].score == pytest.approx(
        W_COMPANY * (math.log(6 / 2) - math.log(6 / 4)) / math.log(6), abs=1e-6)
    assert related.name_idf(np.array([1, 2, 5]), 5).tolist() == pytest.approx(
        [1.0, math.log(3) / math.log(6), math.log(1.2) / math.log(6)])


def test_ties_are_broken_by_queue_position_then_slug() -> None:
    cases = [
        case("query", CRISE, position=1, title="Crise"),
        case("zeta", CRISE, position=4, title="Crise"),
        case("alpha", CRISE, position=3, title="Crise"),
        case("beta", CRISE, position=2, title="Crise"),
        case("same-position-b", CRISE, position=5, title="Crise"),
        case("same-position-a", CRISE, position=5, title="Crise"),
        case("unrelated", REUNIONS, position=0),
    ]
    index = build_index(cases)
    got = index.related("query", k=5)
    assert len({r.score for r in got}) == 1
    assert [r.slug for r in got] == ["beta", "alpha", "zeta", "same-position-a", "same-position-b"]
    assert [r.slug for r in index.related("query", k=2)] == ["beta", "alpha"]
    assert "unrelated" not in [r.slug for r in index.related("query", k=10)]  # score 0: left out


def test_candidates_restrict_and_never_return_the_case_itself() -> None:
    cases = [case(s, CRISE, position=i) for i, s in enumerate(["a", "b", "c", "d"], 1)]
    index = build_index(cases)
    assert [r.slug for r in index.related("b")] == ["a", "c", "d"]
    assert [r.slug for r in index.related("b", candidates=["d", "b", "inconnu"])] == ["d"]
    assert index.related("b", candidates=[]) == ()
    assert index.related("b", candidates=["b"]) == ()
    assert index.related("b", k=0) == ()
    with pytest.raises(ValueError, match="k must be"):
        index.related("b", k=-1)
    with pytest.raises(TypeError, match="collection of slugs"):
        index.related("b", candidates="d")
    with pytest.raises(TypeError, match="collection of slugs"):
        index.company_mentions("b", candidates="d")
    with pytest.raises(KeyError, match="inconnu"):
        index.related("inconnu")
    with pytest.raises(KeyError, match="inconnu"):
        index.company_mentions("inconnu")


def test_empty_and_single_document_corpora() -> None:
    empty = build_index([])
    assert len(empty) == 0 and "a" not in empty
    with pytest.raises(KeyError):
        empty.related("a")
    one = build_index([case("seul", CRISE, position=1, companies=["Luko"])])
    assert one.related("seul", k=3) == ()
    assert one.company_mentions("seul") == {"Luko": ()}
    # Nothing but stop words anywhere: no text signal, companies still count.
    blank = build_index([case("x", "le la les", position=1, companies=["Shine"], title="de"),
                         case("y", "un une des", position=2, companies=["shine"], title="du")])
    # Shared by both (idf log(3/2)/log(3), never 0): still related.
    assert [(r.slug, r.score, r.text_similarity) for r in blank.related("x")] == [
        ("y", pytest.approx(W_COMPANY * math.log(1.5) / math.log(3)), 0.0)]


def test_duplicate_slugs_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        build_index([case("a", CRISE, position=1), case("a", REUNIONS, position=2)])


def test_index_is_immutable() -> None:
    index = build_index([case("a", CRISE, position=1), case("b", CRISE, position=2)])
    with pytest.raises(AttributeError):
        index.slugs = ()  # type: ignore[misc]
    with pytest.raises(TypeError):  # plain kernels: tuples
        index._store.arrays["norms"][0] = 42.0  # type: ignore[index]
    with pytest.raises(TypeError):
        index._store.arrays["norms"] = ()  # type: ignore[index]


def test_numeric_index_is_immutable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(related, "PLAIN_BELOW", 0)
    index = build_index([case("a", CRISE, position=1), case("b", CRISE, position=2)])
    assert index.numeric
    related.save_index(index, tmp_path / "index.rel")
    for one in (index, related.load_index(tmp_path / "index.rel")):
        with pytest.raises((TypeError, ValueError), match="read-only"):
            one._store.arrays["norms"][0] = 42.0


# --------------------------------------------------------------------------- cache


def corpus_of(texts: Sequence[str]) -> list[CaseStudy]:
    return [case(f"cas-{i}", text, position=i, companies=["Luko"] if i % 2 else [])
            for i, text in enumerate(texts, 1)]


def answers(index: related.RelatednessIndex) -> list[object]:
    return [(index.related(s, k=5), index.company_mentions(s)) for s in index.slugs]


def test_cache_round_trip_rebuild_on_change_and_on_corruption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    related.clear_memory_cache()
    cases = corpus_of([CRISE, REUNIONS, SEMAINE, CRISE + " " + SEMAINE])
    fresh = build_index(cases)
    built = load_or_build(cases, tmp_path)
    (cached_file,) = tmp_path.glob("related-*.rel")
    assert built.fingerprint in cached_file.name
    assert answers(built) == answers(fresh)
    assert load_or_build(cases, tmp_path) is built  # in memory

    # A new process: memory empty, the file is read, nothing is refitted.
    related.clear_memory_cache()

    def no_fit(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached index should have been used")

    monkeypatch.setattr(related, "build_index", no_fit)
    loaded = load_or_build(cases, tmp_path)
    assert loaded is not built and answers(loaded) == answers(fresh)
    monkeypatch.undo()

    # Any change to the corpus is a new key: refitted, and the old file removed.
    related.clear_memory_cache()
    edited = [*cases[:-1], case("cas-4", REUNIONS, position=4)]
    rebuilt = load_or_build(edited, tmp_path)
    assert rebuilt.fingerprint != built.fingerprint
    assert [p.name for p in tmp_path.glob("related-*.rel")] == [
        f"related-{rebuilt.fingerprint}.rel"]
    assert answers(rebuilt) == answers(build_index(edited))

    # A corrupt file is not an error: refitted and rewritten.
    related.clear_memory_cache()
    (path,) = tmp_path.glob("related-*.rel")
    path.write_bytes(b"not an index file")
    assert answers(load_or_build(edited, tmp_path)) == answers(rebuilt)
    related.clear_memory_cache()
    assert answers(related.load_index(path)) == answers(rebuilt)


def test_memory_cache_needs_no_fingerprint_for_an_equal_corpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    related.clear_memory_cache()
    cases = corpus_of([CRISE, REUNIONS, SEMAINE])
    built = load_or_build(cases, tmp_path)
    reloaded = pickle.loads(pickle.dumps(cases))  # equal, but other objects (a reload)
    assert reloaded == cases and reloaded[0] is not cases[0]

    def no_fingerprint(*args: object) -> None:
        raise AssertionError("an equal corpus should be recognised without hashing it")

    monkeypatch.setattr(related, "corpus_fingerprint", no_fingerprint)
    assert load_or_build(reloaded, tmp_path) is built
    monkeypatch.undo()
    # Reordered input: fingerprinted, same key, the same index (queue order is the index's).
    assert load_or_build(list(reversed(cases)), tmp_path) is built
    related.clear_memory_cache()


def test_caller_key_and_unwritable_cache(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    related.clear_memory_cache()
    cases = corpus_of([CRISE, REUNIONS])
    one = load_or_build(cases, tmp_path, fingerprint="files:abc")
    assert one.fingerprint != related.corpus_fingerprint(cases)
    assert load_or_build(cases, tmp_path, fingerprint="files:abc") is one
    related.clear_memory_cache()
    assert answers(load_or_build(cases, tmp_path, fingerprint="files:abc")) == answers(one)
    assert len(list(tmp_path.glob("related-*.rel"))) == 1
    # A cache that cannot be written does not stop an edition: logged, index still returned.
    related.clear_memory_cache()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with caplog.at_level("WARNING", logger="syndicate.related"):
        index = load_or_build(cases, blocker / "cache")
    assert answers(index) == answers(one)
    assert "cannot write the relatedness cache" in caplog.text
    related.clear_memory_cache()


def test_fingerprint_covers_what_relatedness_depends_on() -> None:
    base = corpus_of([CRISE, REUNIONS])
    key = related.corpus_fingerprint(base)
    assert key == related.corpus_fingerprint(list(reversed(base)))
    variants = [
        [base[0], case("cas-2", REUNIONS + " Fin.", position=2)],
        [base[0], case("cas-2", REUNIONS, position=3)],
        [base[0], case("cas-2", REUNIONS, position=2, companies=["Shine"])],
        [base[0], case("cas-2", REUNIONS, position=2, themes=["crise"])],
        [base[0], case("cas-3", REUNIONS, position=2)],
        base[:1],
    ]
    keys = {related.corpus_fingerprint(v) for v in variants}
    assert key not in keys and len(keys) == len(variants)


# --------------------------------------------------------------------------- properties

WORDS = ("crise", "trésorerie", "réunion", "commerciaux", "semaine", "quatre", "jours", "client",
         "fournisseur", "recrutement", "levée", "fonds", "rentabilité", "produit", "marché",
         "équipe", "manager", "dirigeant", "partenariat", "pivot", "erreur", "investisseur")
COMPANIES = ("Luko", "luko", "LUKO", "Shine", "Alan", "Alan & Co", "Société Générale",
             f"Societe{NBSP}Generale", "Qonto")

corpora = st.lists(
    st.tuples(
        st.lists(st.sampled_from(WORDS), max_size=12),
        st.lists(st.sampled_from(COMPANIES), max_size=3),
        st.lists(st.sampled_from(("crise", "Crise", "produit")), max_size=2),
        st.integers(0, 5),
    ),
    min_size=1, max_size=8,
).map(lambda rows: [
    case(f"cas-{i}", " ".join(words), position=pos, companies=comp, themes=themes, title="")
    for i, (words, comp, themes, pos) in enumerate(rows)
])


@settings(max_examples=60, deadline=None)
@given(cases=corpora, data=st.data())
def test_property_top_k_is_the_naive_top_k(cases: list[CaseStudy], data: st.DataObject) -> None:
    slugs = [c.slug for c in cases]
    this = data.draw(st.sampled_from(slugs))
    candidates = data.draw(st.none() | st.sets(st.sampled_from(slugs)))
    k = data.draw(st.integers(0, 6))
    got = check_top_k(cases, this, candidates, k)
    assert got == build_index(list(reversed(cases))).related(this, candidates, k=k)


# --------------------------------------------------------------------------- judged quality


def test_ranking_quality_is_precision_recall_and_mrr() -> None:
    rankings = {"a": ["b", "x", "c", "d"], "b": ["x", "y", "z", "a"]}
    expected = {"a": ["c", "d"], "b": ["a"]}
    got = ranking_quality(rankings, expected, k=3)
    # a: top 3 = b, x, c -> one hit of 3 shown, of 2 expected, first at rank 3.
    # b: no hit in the top 3, the expected one at rank 4.
    assert (got.queries, got.k) == (2, 3)
    assert got.precision == pytest.approx((1 / 3 + 0) / 2)
    assert got.recall == pytest.approx((1 / 2 + 0) / 2)
    assert got.mrr == pytest.approx((1 / 3 + 1 / 4) / 2)
    perfect = ranking_quality({"a": ["c", "d"]}, {"a": ["d", "c"]}, k=2)
    assert (perfect.precision, perfect.recall, perfect.mrr) == (1.0, 1.0, 1.0)
    # No answer for a query is the worst answer, not a query left out.
    assert ranking_quality({}, {"a": ["c"]}).precision == 0.0
    assert ranking_quality({}, {}) == RankingQuality(0.0, 0.0, 0.0, 0, 3)
    with pytest.raises(ValueError, match="no expected neighbour"):
        ranking_quality({"a": ["b"]}, {"a": []})
    with pytest.raises(ValueError, match="k must be"):
        ranking_quality({}, {}, k=0)


@pytest.fixture(scope="module")
def judged() -> tuple[tuple[CaseStudy, ...], dict[str, Any]]:
    from bench.relatedness import judged_corpus, load_judgements

    return judged_corpus(), load_judgements()


def test_judgement_list_covers_every_case_study(
    judged: tuple[tuple[CaseStudy, ...], dict[str, Any]],
) -> None:
    cases, judgements = judged
    sample = {p.stem for p in CORPUS.glob("*.md")}
    assert len(sample) == 10 and sample <= set(judgements)  # every sample case study
    assert {c.slug for c in cases} == set(judgements)  # and every hold-out article, nothing else
    for slug, judgement in judgements.items():
        assert judgement.set == ("seed" if slug in sample else "holdout"), slug
        assert 2 <= len(judgement.neighbours) <= 3, slug
        assert slug not in judgement.neighbours
        assert set(judgement.neighbours) <= set(judgements), slug
        assert all(len(reason.split()) >= 3 for reason in judgement.reasons), slug


# The figures reported in docs/relatedness.md for the shipped method (related-2): a floor,
# so that a change to the ranking that makes it worse for readers fails here. Raise them when
# the ranking improves; never lower them without saying why in the commit.
REPORTED_PRECISION_AT_3 = {"seed": 13 / 30, "holdout": 28 / 51}  # 0.433, 0.549


def test_shipped_ranking_keeps_its_judged_precision(
    judged: tuple[tuple[CaseStudy, ...], dict[str, Any]],
) -> None:
    from bench.relatedness import methods, quality_by_set

    cases, judgements = judged
    index = build_index(cases)
    got = quality_by_set(
        lambda slug: [r.slug for r in index.related(slug, None, k=len(cases))], judgements)
    before = quality_by_set(next(iter(methods(embedding=False).values()))(cases), judgements)
    for name, floor in REPORTED_PRECISION_AT_3.items():
        assert got[name].precision >= floor - 1e-9, (name, got[name])
        assert got[name].precision > before[name].precision, (name, got[name], before[name])
        assert got[name].mrr >= before[name].mrr, name


# --------------------------------------------------------------------------- benchmark corpus


def seed_like() -> list[CaseStudy]:
    return [
        case("crise", CRISE + " " + SEMAINE, position=1, companies=["Luko", "Pennylane"],
             themes=["crise"]),
        case("reunions", REUNIONS, position=2, companies=["Shine"]),
        case("semaine", SEMAINE + " " + REUNIONS, position=3, companies=["Shine", "Welcome"]),
    ]


def test_generated_corpus_is_shaped_like_the_seeds_and_deterministic() -> None:
    from bench._corpus import generate_corpus

    cases = generate_corpus(40, seed=3, source=seed_like(), companies=50)
    assert cases == generate_corpus(40, seed=3, source=seed_like(), companies=50)
    assert cases != generate_corpus(40, seed=4, source=seed_like(), companies=50)
    assert [c.position for c in cases] == list(range(1, 41))
    assert len({c.slug for c in cases}) == 40
    for c in cases:
        assert 5 <= len(c.sections) <= 7 and all(len(s.paragraphs) == 2 for s in c.sections)
        assert 3 <= len(c.companies) <= 6 and len(set(c.companies)) == len(c.companies)
        assert 1 <= len(c.themes) <= 3
        assert c.content_hash == c.computed_hash()
        assert any(f"Chez {name}, " in c.text for name in c.companies)
    assert {"Luko", "Shine"} <= {n for c in cases for n in c.companies}  # seed companies reused
    index = build_index(cases)
    assert all(len(index.related(c.slug, k=3)) == 3 for c in cases[:5])


@pytest.mark.slow  # a subprocess: the bench times the module's import in a fresh interpreter
def test_bench_runs_and_its_baseline_agrees(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench import render
    from syndicate.corpus import save

    for c in seed_like():
        save(c, tmp_path)
    args = ["--corpus", str(tmp_path), "--n", "30", "--repeat", "1"]
    assert render.main([*args, "--sections", "relatedness"]) == 0
    out = capsys.readouterr().out
    assert "seed (3)" in out and "generated (30)" in out
    assert out.count("× faster") == 8  # 4 figures compared with the baseline, per corpus
    assert render.NAIVE in out
    assert render.main([*args, "--sections", "edition"]) == 0
    out = capsys.readouterr().out
    # One whole edition against its naive baseline: seed at 2 published, generated at 20, 29.
    assert out.count("EDITION: render one edition") == 3 and out.count("× faster") == 3



def test_a_loaded_index_folds_no_name_and_answers_as_fitted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 13: loading the cache must not fold every company and theme name again.
    cases = corpus_of([CRISE, REUNIONS, SEMAINE])
    built = build_index(cases)
    path = tmp_path / "index.rel"
    related.save_index(built, path)
    folded: list[str] = []
    real = related.name_key

    def counted(name: str) -> str:
        folded.append(name)
        return real(name)

    monkeypatch.setattr(related, "name_key", counted)
    loaded = related.load_index(path)
    assert answers(loaded) == answers(built)
    assert folded == []


# --------------------------------------------------------------------------- two kernels
#
# Issue 13: a small corpus is indexed in plain Python (no NumPy import), a large one with
# NumPy; both must give the same rankings and the same scores.


def kernel_index(cases: Sequence[CaseStudy], numeric: bool,
                 monkeypatch: pytest.MonkeyPatch) -> related.RelatednessIndex:
    monkeypatch.setattr(related, "PLAIN_BELOW", 0 if numeric else 10 ** 9)
    index = build_index(cases)
    monkeypatch.undo()
    assert index.numeric == numeric
    return index


def same_answers(one: related.RelatednessIndex, two: related.RelatednessIndex,
                 cases: Sequence[CaseStudy]) -> None:
    published = {c.slug for c in cases[::3]}
    for c in cases:
        for candidates in (None, published, set()):
            a = one.related(c.slug, candidates, k=10)
            b = two.related(c.slug, candidates, k=10)
            assert [(r.slug, r.shared_companies, r.shared_themes) for r in a] == [
                (r.slug, r.shared_companies, r.shared_themes) for r in b]
            for x, y in zip(a, b, strict=True):
                assert x.score == pytest.approx(y.score, abs=1e-12)
                assert x.text_similarity == pytest.approx(y.text_similarity, abs=1e-12)
            assert one.company_mentions(c.slug, candidates) == two.company_mentions(
                c.slug, candidates)
        assert one.companies(c.slug) == two.companies(c.slug)


def test_plain_and_numpy_kernels_agree_on_the_seeds(
    seeds: tuple[CaseStudy, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not build_index(seeds).numeric  # the seeds take the plain kernels
    plain, numeric = (kernel_index(seeds, flag, monkeypatch) for flag in (False, True))
    same_answers(plain, numeric, seeds)
    a, b = plain.to_arrays(), numeric.to_arrays()
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_plain_and_numpy_kernels_agree_on_a_generated_corpus(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from bench._corpus import generate_corpus

    cases = generate_corpus(300, seed=5)
    plain, numeric = (kernel_index(cases, flag, monkeypatch) for flag in (False, True))
    same_answers(plain, numeric, cases)
    # The scores are the oracle's (scikit-learn's TF-IDF), for a few queries.
    published = {c.slug for c in cases[::2]}
    expected = oracle(cases, cases[7].slug, published)
    for r in numeric.related(cases[7].slug, published, k=5):
        assert r.score == pytest.approx(expected[r.slug], abs=1e-5)
    # Either kernel reads the file the other wrote.
    related.save_index(plain, tmp_path / "plain.rel")
    monkeypatch.setattr(related, "PLAIN_BELOW", 0)
    from_plain = related.load_index(tmp_path / "plain.rel")
    assert from_plain.numeric
    same_answers(from_plain, plain, cases[:40])


def test_numpy_products_by_blocks_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    # The NumPy kernels go a block of rows at a time (bounded temporaries); each row's sum
    # must not depend on the block, or rankings with near-ties could move.
    from bench._corpus import generate_corpus
    from syndicate.related import _numeric

    cases = generate_corpus(60, seed=2)
    index = kernel_index(cases, True, monkeypatch)
    expected = [index.scores(c.slug) for c in cases[:5]]
    for block in (1, 2, 7):
        monkeypatch.setattr(_numeric, "BLOCK_ROWS", block)
        rebuilt = kernel_index(cases, True, monkeypatch)
        assert rebuilt.to_arrays()["norms"].tobytes() == index.to_arrays()["norms"].tobytes()
        assert [index.scores(c.slug) for c in cases[:5]] == expected


def test_numpy_update_after_edits_equals_a_full_fit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from bench._corpus import generate_corpus
    from syndicate import corpus
    from syndicate.related import _numeric

    cases = generate_corpus(80, seed=9)
    related.save_index(kernel_index(cases, True, monkeypatch), tmp_path / "before.rel")
    monkeypatch.setattr(related, "PLAIN_BELOW", 0)
    before = related.load_index(tmp_path / "before.rel")  # mapped: its pages are released
    monkeypatch.undo()
    monkeypatch.setattr(_numeric, "_CHUNK", 7)  # rows copied in several slices
    edited = list(cases)
    edited[3] = corpus.replace(cases[3], lede="Un paragraphe entièrement nouveau : photosynthèse.")
    edited[50] = corpus.replace(cases[50], lede=cases[50].lede + " Une phrase ajoutée.")
    edited[10] = corpus.replace(cases[10], position=1000)  # moved to the end of the queue
    del edited[20]  # removed
    for changed in (edited, [*edited, corpus.replace(cases[20], slug="nouveau", position=5)]):
        monkeypatch.setattr(related, "PLAIN_BELOW", 0)
        updated = related.update_index(before, changed)
        assert updated is not None and updated.numeric
        fitted = build_index(changed)
        monkeypatch.setattr(related, "PLAIN_BELOW", PLAIN_BELOW)
        a, b = updated.to_arrays(), fitted.to_arrays()
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        same_answers(updated, fitted, changed[::7])


def test_the_seed_publish_path_imports_no_numpy(project: Any) -> None:
    # Issue 13: a 10-case-study corpus must not pay NumPy's import (nor scikit-learn's or
    # SciPy's): a publish-next, first (fitted) then again (from the cache file).
    import subprocess
    import sys

    probe = (
        "import sys\nfrom syndicate.cli import cli\n"
        f"cli.main(['--config', {str(project.config_path)!r}, 'publish-next'],"
        " prog_name='syndicate', standalone_mode=False)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('numpy', 'scipy', 'sklearn')))\n")
    for _run in range(2):
        out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                             text=True, cwd=project.root).stdout
        assert out.splitlines()[-1] == "[]"
    assert list((project.var / "cache").glob("related-*.rel"))


def test_a_mapped_index_answers_a_small_query_without_numpy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Issue 13: at 10,000 case studies a publish reads the rows of the edition and of the
    # editions published before it: while those are few, the plain kernels read them from
    # the map, and NumPy (0.11-0.15 s to import) is not imported.
    import subprocess
    import sys

    from bench._corpus import generate_corpus
    from syndicate.related import _index

    cases = generate_corpus(PLAIN_BELOW + 20, seed=4)
    path = tmp_path / "index.rel"
    related.save_index(build_index(cases), path)
    slugs = [c.slug for c in cases]
    probe = ("import sys\nfrom pathlib import Path\nfrom syndicate import related\n"
             f"index = related.load_index(Path({str(path)!r}))\n"
             f"answer = index.related({slugs[-1]!r}, candidates={slugs[:30]!r})\n"
             f"index.company_mentions({slugs[-1]!r}, candidates={slugs[:30]!r})\n"
             "print(index.numeric, 'numpy' in sys.modules, [r.slug for r in answer])\n")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True).stdout.strip().split(maxsplit=2)
    assert out[:2] == ["True", "False"]
    loaded = related.load_index(path)
    assert out[2] == repr([r.slug for r in loaded.related(slugs[-1], candidates=slugs[:30])])
    # The same answers whichever kernels read the map.
    monkeypatch.setattr(_index, "numpy_imported", lambda: False)  # as in a fresh process
    monkeypatch.setattr(_index, "PLAIN_VALUES", 0)
    numeric = [(loaded.related(s, k=5), loaded.company_mentions(s)) for s in slugs[::50]]
    monkeypatch.setattr(_index, "PLAIN_VALUES", 10 ** 12)
    plain = [(loaded.related(s, k=5), loaded.company_mentions(s)) for s in slugs[::50]]
    assert [[(r.slug, r.shared_companies) for r in a] for a, _ in numeric] == [
        [(r.slug, r.shared_companies) for r in a] for a, _ in plain]
    assert [m for _, m in numeric] == [m for _, m in plain]
    for (a, _), (b, _) in zip(numeric, plain, strict=True):
        assert [r.score for r in a] == pytest.approx([r.score for r in b], abs=1e-12)


def test_names_with_control_characters_round_trip(tmp_path: Path) -> None:
    # The names of a row are stored as one line joined by U+001F/U+001E; a name holding one
    # of those characters must come back as spelt (that row is stored as JSON instead).
    odd = ["Alan\x1fCo", "Qon\x1eto", "Sh\x1dine", "[Luko]"]  # (str.strip strips them)
    cases = [case("a", CRISE, position=1, companies=odd, themes=["cri\x1fse"]),
             case("b", CRISE, position=2, companies=[*odd, "Alan"], themes=["cri\x1fse"]),
             case("c", CRISE, position=3, companies=["[Luko]"])]
    index = build_index(cases)
    related.save_index(index, tmp_path / "index.rel")
    for one in (index, related.load_index(tmp_path / "index.rel")):
        assert one.companies("a") == tuple(odd)
        top = one.related("a", k=2)
        assert top[0].slug == "b" and top[0].shared_companies == tuple(odd)
        assert top[0].shared_themes == ("cri\x1fse",)
        assert one.company_mentions("c") == {"[Luko]": ("a", "b")}
