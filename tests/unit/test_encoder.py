"""The pair encoder's length bound: the longest pair it can produce is exactly ``max_length``,
and a model with fewer position embeddings is refused when it is built or loaded, not on the
first long request in serving (a 500 found by the reliability load test)."""
from __future__ import annotations

import math

import pytest
import torch
from transformers import AutoTokenizer

from prodrank.models.encoder import InputBudget, PairEncoder
from prodrank.models.features import ProductFeatures


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


def test_sides_encode_each_distinct_query_and_product_alone_once(tiny_init_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_init_dir)
    encoder = PairEncoder(tokenizer, InputBudget(4, {"title": 6}), with_sides=True)
    encoder.encode_products({"a": {"title": "red lamp"}, "b": {"title": "blue cordless drill with case"}})
    batch = encoder.encode(["lamp", "drill", "lamp", "lamp"], ["a", "b", "b", "a"])
    sides = batch.sides
    assert sides.query_index.tolist() == [0, 1, 0, 0] and sides.product_index.tolist() == [0, 1, 1, 0]
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    for row, text in enumerate(["lamp", "drill"]):
        ids = sides.query_ids[row][sides.query_mask[row].bool()].tolist()
        assert ids == [cls, *tokenizer(text, add_special_tokens=False)["input_ids"], sep]
    # the product alone is exactly the pair's second segment, after [CLS]
    pair = batch.input_ids[1][batch.attention_mask[1].bool() & batch.token_type_ids[1].bool()].tolist()
    alone = sides.product_ids[1][sides.product_mask[1].bool()].tolist()
    assert alone == [cls, *pair]
    plain = PairEncoder(tokenizer, InputBudget(4, {"title": 6}))
    plain.encode_products({"a": {"title": "red lamp"}})
    assert plain.encode(["lamp"], ["a"]).sides is None


def test_a_product_changed_under_the_same_id_is_encoded_again(tiny_init_dir):
    """The cache is by id, but an entry is reused only for the content it was made from: a
    library user who scores a product, then changes its title or price, gets the new one."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_init_dir)
    features = ProductFeatures(("price",), (0.0,), (1.0,))
    encoder = PairEncoder(tokenizer, InputBudget(4, {"title": 6}), features=features)
    encoder.encode_products({"p": {"title": "red lamp", "price": 10.0, "description": float("nan")}})
    first = encoder.encode(["lamp"], ["p"])
    cached = encoder._product_cache["p"]
    encoder.encode_products({"p": {"title": "red lamp", "price": 10.0, "description": float("nan")}})
    assert encoder._product_cache["p"] is cached  # same content (NaN included): not encoded again
    encoder.encode_products({"p": {"title": "blue cordless drill", "price": 10.0}})
    assert not torch.equal(encoder.encode(["lamp"], ["p"]).input_ids, first.input_ids)
    encoder.encode_products({"p": {"title": "blue cordless drill", "price": 99.0}})
    assert encoder.encode(["lamp"], ["p"]).features[0, 0].item() == pytest.approx(math.log1p(99.0))
