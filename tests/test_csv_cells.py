"""The CSV-injection guard: reversible, and no cell starts a formula."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from syndicate.csv_cells import FORMULA_STARTS, neutralize, restore

# Text biased towards the characters that matter here.
_cells = st.text(alphabet=st.sampled_from([*FORMULA_STARTS, "'", "a", "1", " ", "é", "|"]),
                 max_size=8) | st.text(max_size=20)


@given(_cells)
def test_round_trip(value: str) -> None:
    assert restore(neutralize(value)) == value


@given(_cells)
def test_never_starts_a_formula(value: str) -> None:
    assert neutralize(value)[:1] not in FORMULA_STARTS


def test_examples() -> None:
    assert neutralize("=1+1") == "'=1+1"
    assert neutralize("\r=x") == "'\r=x"
    assert neutralize("'=x") == "''=x"
    assert neutralize("'quoted") == "'quoted"  # a quote alone is not a formula
    assert neutralize("Zoé") == "Zoé"
    assert restore("'quoted") == "'quoted"
    assert restore("''=x") == "'=x"
