"""Query text keys: the canonical query an id is made from, and the looser leakage key.

Two keys on purpose. :func:`canonical_query` is the query a source's ``query_id`` hashes
(lowercase, whitespace collapsed): it keeps punctuation, so "t-shirt" and "t shirt" stay two
queries with two ids. :func:`leakage_key` is what the split groups by and the ``splits``
suite checks (NFKC, casefolded, punctuation dropped), so near-duplicates such as "Red Sofa",
"red  sofa" and "red-sofa" never land in two splits.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Any


def canonical_query(text: str) -> str:
    """Lowercase, collapse runs of whitespace to one space and strip."""
    return " ".join(str(text).lower().split())


def leakage_key(text: Any) -> str | None:
    """Text key for leakage checks: NFKC, casefolded, punctuation and extra spaces removed; None for a non-string."""
    if not isinstance(text, str):
        return None
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[^\w]+", " ", text).split())
