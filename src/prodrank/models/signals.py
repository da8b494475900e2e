"""Lexical pair signals: what a cross-encoder reads from query and product together, and two
separately encoded vectors cannot.

The two-tower student compares a query vector with a product vector. Whether every word of
"cordless drill under 60" appears in the product, and whether its price is under 60, are facts
of the pair, not of either side: the teacher reads them token by token, and on validation the
student's largest gaps to it were exactly on price-limit queries and on separating close grades
(docs/experiments.md). A few exact-match signals per pair, computed from word sets cached per
product, give the student's head those facts for a few microseconds a pair::

    <field>_match     [F]  share of the query's words found in the field (title, brand, ...)
    any_match         [1]  share found in any field
    all_match         [1]  1 when every query word is found somewhere
    price_limit       [1]  1 when the query states a price limit ("under 60", "below $25")
    within_limit      [1]  1 when it does and the product's price is known and within it
    over_limit        [1]  1 when it does and the price is known and above it

A query without words (after the price phrase is removed) matches nothing. Unknown prices set
neither limit flag, so they score as "no information", never as cheap or dear.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from prodrank.data.schema import CATALOG_TEXT_FIELDS

WORD = re.compile(r"[a-z0-9]+")
# "under 60", "below $25", "less than 100", "up to 50", "cheaper than 30"
PRICE_LIMIT = re.compile(r"\b(?:under|below|less than|up to|cheaper than|max)\s*\$?\s*(\d+(?:\.\d+)?)\b")
SIGNAL_NAMES = (*(f"{f}_match" for f in CATALOG_TEXT_FIELDS), "any_match", "all_match",
                "price_limit", "within_limit", "over_limit")


def words(text: Any) -> frozenset[str]:
    """Lower-cased alphanumeric words, with a plural 's' dropped ("drills" matches "drill")."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return frozenset()
    return frozenset(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
                     for w in WORD.findall(str(text).lower()))


class QueryTerms(NamedTuple):
    words: frozenset[str]
    price_limit: float | None


class ProductTerms(NamedTuple):
    fields: tuple[frozenset[str], ...]  # one word set per CATALOG_TEXT_FIELDS entry
    price: float | None


def query_terms(query: str) -> QueryTerms:
    """The query's words and stated price limit; the limit's phrase is not a word to match."""
    text = query.lower()
    match = PRICE_LIMIT.search(text)
    if match is None:
        return QueryTerms(words(text), None)
    return QueryTerms(words(text[: match.start()] + " " + text[match.end():]), float(match.group(1)))


def product_terms(product: Mapping[str, Any]) -> ProductTerms:
    price = product.get("price")
    price = None if price is None or not math.isfinite(float(price)) else float(price)
    return ProductTerms(tuple(words(product.get(f)) for f in CATALOG_TEXT_FIELDS), price)


def pair_signals(query: QueryTerms, product: ProductTerms) -> list[float]:
    """One pair's signals, in SIGNAL_NAMES order (module doc)."""
    n = len(query.words)
    per_field = [len(query.words & f) / n if n else 0.0 for f in product.fields]
    found = frozenset().union(*(query.words & f for f in product.fields)) if n else frozenset()
    limit, price = query.price_limit, product.price
    known = limit is not None and price is not None
    return [*per_field, len(found) / n if n else 0.0, float(n > 0 and len(found) == n),
            float(limit is not None), float(known and price <= limit), float(known and price > limit)]


def signal_matrix(queries: Sequence[QueryTerms], products: Sequence[ProductTerms],
                  query_index: np.ndarray, product_index: np.ndarray) -> np.ndarray:
    """[B, S] float32 signals of pairs (queries[query_index[i]], products[product_index[i]])."""
    out = np.empty((len(query_index), len(SIGNAL_NAMES)), dtype=np.float32)
    for row, (q, p) in enumerate(zip(query_index.tolist(), product_index.tolist(), strict=True)):
        out[row] = pair_signals(queries[q], products[p])
    return out
