"""The pair encoder's length bound: the longest pair it can produce is exactly ``max_length``,
and a model with fewer position embeddings is refused when it is built or loaded, not on the
first long request in serving (a 500 found by the reliability load test)."""
from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from prodrank.models.encoder import InputBudget, PairEncoder


def test_max_length_is_the_longest_pair_and_short_encoders_are_refused(tiny_init_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_init_dir)
    budget = InputBudget(6, {"title": 5, "brand": 0, "category": 3, "attributes": 4, "description": 7})
    encoder = PairEncoder(tokenizer, budget)
    long = "word " * 50
    encoder.encode_products({"p": {"title": long, "brand": long, "category": long, "attributes": long,
                                   "description": long}, "short": {"title": "lamp"}})
    batch = encoder.encode([long, "lamp"], ["p", "short"])
    assert batch.input_ids.shape[1] == encoder.max_length
    assert encoder.pair_lengths([long], ["p"]) == [encoder.max_length]
    encoder.check_positions(encoder.max_length)
    with pytest.raises(ValueError, match=f"pairs can be {encoder.max_length} tokens"):
        encoder.check_positions(encoder.max_length - 1)
