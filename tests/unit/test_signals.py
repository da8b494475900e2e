"""The lexical pair signals of the two-tower student, computed by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from prodrank.data.schema import CATALOG_TEXT_FIELDS
from prodrank.models.signals import (
    SIGNAL_NAMES,
    pair_signals,
    product_terms,
    query_terms,
    signal_matrix,
    words,
)


def signals(query: str, product: dict) -> dict[str, float]:
    return dict(zip(SIGNAL_NAMES, pair_signals(query_terms(query), product_terms(product)), strict=True))


DRILL = {"title": "Cordless Drills 18V", "brand": "Makita", "category": "Power Tools", "attributes": None,
         "description": float("nan"), "price": 59.0}


def test_words_are_lowercased_alphanumerics_with_plural_s_dropped():
    assert words("Cordless DRILLS, 18V-kit!") == {"cordless", "drill", "18v", "kit"}
    assert words("glass bus") == {"glass", "bus"}  # "ss" and short words keep their s
    assert words(None) == frozenset() and words(float("nan")) == frozenset()


@pytest.mark.parametrize("query, limit", [("drill under 60", 60.0), ("drill below $25.50", 25.5),
                                          ("drill less than 100", 100.0), ("drill", None), ("under armour", None)])
def test_price_limit_is_parsed_and_its_phrase_is_not_a_word(query, limit):
    terms = query_terms(query)
    assert terms.price_limit == limit
    if limit is not None:
        assert terms.words == {"drill"}


def test_signals_of_a_pair_by_hand():
    got = signals("makita cordless drill saw under 60", DRILL)
    assert got["title_match"] == pytest.approx(2 / 4) and got["brand_match"] == pytest.approx(1 / 4)
    assert got["category_match"] == 0 and got["attributes_match"] == 0 and got["description_match"] == 0
    assert got["any_match"] == pytest.approx(3 / 4) and got["all_match"] == 0
    assert (got["price_limit"], got["within_limit"], got["over_limit"]) == (1, 1, 0)
    assert signals("cordless drill under 50", DRILL)["over_limit"] == 1
    assert signals("makita drill", DRILL)["all_match"] == 1
    assert len(SIGNAL_NAMES) == len(CATALOG_TEXT_FIELDS) + 5


def test_unknown_price_and_empty_query_carry_no_information():
    unknown = signals("drill under 60", {**DRILL, "price": math.nan})
    assert (unknown["price_limit"], unknown["within_limit"], unknown["over_limit"]) == (1, 0, 0)
    empty = signals("!!", DRILL)
    assert all(v == 0 for v in empty.values())


def test_signal_matrix_indexes_pairs():
    queries = [query_terms("makita drill"), query_terms("saw under 10")]
    products = [product_terms(DRILL), product_terms({"title": "Hand Saw", "price": 9.0})]
    out = signal_matrix(queries, products, np.array([0, 1, 1]), np.array([0, 0, 1]))
    assert out.shape == (3, len(SIGNAL_NAMES)) and out.dtype == np.float32
    assert out[0].tolist() == pair_signals(queries[0], products[0])
    assert out[2, SIGNAL_NAMES.index("all_match")] == 1 and out[2, SIGNAL_NAMES.index("within_limit")] == 1
    assert out[1, SIGNAL_NAMES.index("over_limit")] == 1
