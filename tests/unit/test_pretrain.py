"""Domain-pretraining corpus: engaged query–product pairs, batch mix and token types."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from transformers import AutoTokenizer

from prodrank.config import PretrainConfig
from prodrank.training.pretrain import (
    DomainCorpus,
    domain_corpus,
    engaged_pairs,
    mask_tokens,
    minilm_path,
    segment_ids,
)


def test_engaged_pairs_keep_each_querys_most_engaged_product(prepared_dir):
    catalog = pd.read_parquet(prepared_dir / "catalog.parquet")
    pairs = engaged_pairs(prepared_dir, "train", catalog, "clicks")
    queries = pd.read_parquet(prepared_dir / "train" / "queries.parquet")
    # the exact product has 8 clicks, the same-kind one 2: one pair per query, the exact one
    assert len(pairs) == len(queries)
    assert "red sofa [SEP] acme red sofa . acme . Furniture . color: red . a red sofa for your home" in pairs
    assert not any(p.startswith("red sofa [SEP] acme blue sofa") for p in pairs)


def test_engaged_pairs_skip_queries_without_engagement(prepared_dir):
    catalog = pd.read_parquet(prepared_dir / "catalog.parquet")
    rows = pd.read_parquet(prepared_dir / "train" / "interactions.parquet")
    rows.loc[rows["query_id"] == "Q00", "clicks"] = 0
    rows.to_parquet(prepared_dir / "train" / "interactions.parquet", index=False)
    pairs = engaged_pairs(prepared_dir, "train", catalog, "clicks")
    assert not any(p.startswith("red sofa [SEP]") for p in pairs)


def test_domain_corpus_mixes_pairs_into_training_and_heldout_only_when_asked(prepared_dir):
    singles, heldout = domain_corpus(prepared_dir, PretrainConfig(eval_texts=16), "clicks", seed=0)
    assert singles.pairs == [] and not any("[SEP]" in t for t in heldout)
    mixed, heldout = domain_corpus(prepared_dir, PretrainConfig(eval_texts=16, pair_share=0.25), "clicks", seed=0)
    assert len(mixed.pairs) == 24 and mixed.texts == singles.texts
    assert sum("[SEP]" in t for t in heldout) == 4  # 25 % of 16
    test_queries = set(pd.read_parquet(prepared_dir / "test" / "queries.parquet")["query"])
    valid_queries = set(pd.read_parquet(prepared_dir / "valid" / "queries.parquet")["query"])
    # the toy splits share valid and test; training pairs must still come from train queries only
    assert not {p.split(" [SEP] ")[0] for p in mixed.pairs} & (test_queries | valid_queries)


def test_corpus_sample_draws_pairs_at_the_configured_share():
    corpus = DomainCorpus(texts=[f"t{i}" for i in range(10)], pairs=[f"q [SEP] p{i}" for i in range(10)], pair_share=0.3)
    batch = corpus.sample(np.random.default_rng(0), 20_000)
    assert len(batch) == 20_000
    assert abs(sum("[SEP]" in t for t in batch) / len(batch) - 0.3) < 0.015
    no_pairs = DomainCorpus(texts=["a", "b"], pairs=[], pair_share=0.5)
    drawn = no_pairs.sample(np.random.default_rng(0), 8)
    assert len(drawn) == 8 and set(drawn) <= {"a", "b"}


def test_segment_ids_match_the_cross_encoders_token_types():
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    encoded = tokenizer(["red sofa [SEP] acme red sofa", "a lamp"], padding=True, return_tensors="pt")
    as_pair = tokenizer("red sofa", "acme red sofa", return_tensors="pt")
    types = segment_ids(encoded["input_ids"], tokenizer.sep_token_id)
    # "[SEP]" written in the text is the special token, and the types match a tokenizer pair:
    # [CLS] red sofa [SEP] -> 0, acme red sofa [SEP] -> 1
    assert torch.equal(encoded["input_ids"][0], as_pair["input_ids"][0])
    assert torch.equal(types[0], as_pair["token_type_ids"][0])
    # a single text stays segment 0
    assert int(types[1][encoded["attention_mask"][1].bool()].sum()) == 0


def test_masking_never_picks_the_separator_written_in_a_pair():
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    encoded = tokenizer(["red sofa [SEP] acme red sofa"] * 200, return_tensors="pt")
    sep = encoded["input_ids"][0].tolist().index(tokenizer.sep_token_id)  # the written one, not the last
    for whole_words in (True, False):
        cfg = PretrainConfig(mask_prob=0.5, whole_word_masking=whole_words)
        _, labels = mask_tokens(encoded, tokenizer, cfg, np.random.default_rng(0))
        assert (labels[:, sep] == -100).all()
        assert (labels[:, 1] != -100).any()  # the words around it are masked
