"""The two query keys: the canonical query an id hashes, and the looser leakage key."""
from __future__ import annotations

from prodrank.data.text import canonical_query, leakage_key


def test_canonical_query_lowercases_and_collapses_whitespace_only():
    assert canonical_query("  Cordless   DRILL\t18v ") == "cordless drill 18v"
    assert canonical_query("T-Shirt!") == "t-shirt!"


def test_leakage_key_also_drops_punctuation_and_unifies_unicode():
    assert leakage_key("  Cordless   DRILL! ") == leakage_key("cordless drill")
    assert leakage_key("red-sofa") == leakage_key("Red  Sofa") == "red sofa"
    assert leakage_key("ＦＵＬＬ width") == "full width"
    assert leakage_key(None) is None


def test_keys_differ_on_purpose():
    assert canonical_query("t-shirt") != canonical_query("t shirt")
    assert leakage_key("t-shirt") == leakage_key("t shirt")
