"""The multi-task cross-encoder ranker: BERT encoder + multi-task head, and its on-disk format.

A saved ranker is one self-contained directory, loadable without any training state::

    encoder/            Hugging Face BertModel (config.json, model.safetensors)
    tokenizer/          the tokenizer files
    head.safetensors    multi-task head weights
    ranker.json         head config (tasks, architecture, chaining, score weights),
                        input budget, product-feature statistics, format version
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F
from transformers import AutoTokenizer, BertModel

from prodrank.models.encoder import BoundedCache, EncodedBatch, EncodedSides, InputBudget, PairEncoder
from prodrank.models.features import ProductFeatures
from prodrank.models.multitask import HeadConfig, HeadOutput, MultiTaskHead

FORMAT_VERSION = 1


def mean_pooling(tokens: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the real (unpadded) token vectors, [N, L, H] -> [N, H]: the pooling
    all-MiniLM-L6-v2 was trained with as a bi-encoder."""
    mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
    return (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)


class CrossEncoderRanker(nn.Module):
    def __init__(self, encoder: BertModel, head_config: HeadConfig) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = MultiTaskHead(head_config)

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.head.config.tasks

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Bi-encoder embedding of texts encoded alone: [N, L] -> [N, H]."""
        tokens = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pooling(tokens, attention_mask)

    def similarity(self, sides: EncodedSides) -> torch.Tensor:
        """Cosine of each pair's query and product embeddings, computed by the same encoder: [B]."""
        queries = self.embed(sides.query_ids, sides.query_mask)
        products = self.embed(sides.product_ids, sides.product_mask)
        return F.cosine_similarity(queries[sides.query_index], products[sides.product_index], dim=-1)

    def forward(self, batch: EncodedBatch) -> HeadOutput:
        hidden = self.encoder(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            token_type_ids=batch.token_type_ids,
        ).last_hidden_state[:, 0]
        if batch.features is not None:  # price, rating ...: what the text cannot say
            hidden = torch.cat([hidden, batch.features.to(hidden.dtype)], dim=-1)
        similarity = self.similarity(batch.sides) if self.head.config.similarity_prior else None
        return self.head(hidden, similarity)


class BatchScorer:
    """Scores (query, product) pairs in length-sorted batches; subclasses run one batch.

    Pairs are sorted by token length and each batch is padded only to its own longest
    pair: padding to a fixed max length costs ~4x on CPU. Results come back in input order.
    """

    pair_encoder: PairEncoder
    runtime: str  # "torch" or "onnx", as /metadata reports it
    quantized: bool  # int8 weights

    @property
    def tasks(self) -> tuple[str, ...]:
        raise NotImplementedError

    def score_batch(self, batch: EncodedBatch) -> dict[str, np.ndarray]:
        """{"score": [B], "<task>": p_task [B]} for one encoded batch."""
        raise NotImplementedError

    def use_product_cache(self, size: int) -> None:
        """Keep at most ``size`` products' encodings (a long-running service must not grow)."""
        self.pair_encoder.use_product_cache(BoundedCache(size))

    def score(
        self,
        queries: Sequence[str],
        product_ids: Sequence[str],
        products: Mapping[str, Mapping[str, str | float | None]],
        batch_size: int = 64,
    ) -> dict[str, np.ndarray]:
        """Score pairs; returns {"score": [N], "<task>": p_task [N], "truncated": [N]}."""
        self.pair_encoder.encode_products(products)
        lengths = self.pair_encoder.pair_lengths(queries, product_ids)
        order = np.argsort(lengths, kind="stable")
        n = len(order)
        out = {name: np.zeros(n, dtype=np.float64) for name in ("score", *self.tasks)}
        truncated = np.zeros(n, dtype=bool)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            batch = self.pair_encoder.encode([queries[i] for i in idx], [product_ids[i] for i in idx])
            for name, values in self.score_batch(batch).items():
                out[name][idx] = values
            truncated[idx] = batch.truncated.numpy()
        out["truncated"] = truncated
        return out


@dataclass
class LoadedRanker(BatchScorer):
    """A ranker in torch: the reference runtime (and the one training uses)."""

    model: CrossEncoderRanker
    pair_encoder: PairEncoder
    quantized: bool = False
    runtime = "torch"

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.model.tasks

    def score(self, *args, **kwargs) -> dict[str, np.ndarray]:
        self.model.eval()  # no dropout, whatever mode training left the model in
        return super().score(*args, **kwargs)

    @torch.inference_mode()
    def score_batch(self, batch: EncodedBatch) -> dict[str, np.ndarray]:
        device = next(self.model.parameters()).device
        output = self.model(batch.to(device))
        out = {"score": self.model.head.ranking_score(output).double().cpu().numpy()}
        out.update({task: p.double().cpu().numpy() for task, p in output.probabilities().items()})
        return out


def save_ranker(model: CrossEncoderRanker, pair_encoder: PairEncoder, directory: str | Path) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.encoder.save_pretrained(directory / "encoder", safe_serialization=True)
    pair_encoder.tokenizer.save_pretrained(directory / "tokenizer")
    head_state = {k: v.detach().contiguous() for k, v in model.head.state_dict().items()}
    save_file(head_state, str(directory / "head.safetensors"))
    meta = {
        "format_version": FORMAT_VERSION,
        "head": model.head.config.to_dict(),
        "input_budget": pair_encoder.budget.to_dict(),
        "product_features": pair_encoder.features.to_dict() if pair_encoder.features else None,
    }
    (directory / "ranker.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def load_ranker(directory: str | Path) -> LoadedRanker:
    directory = Path(directory)
    meta_path = directory / "ranker.json"
    if not meta_path.exists():
        raise FileNotFoundError(f"{directory} is not a saved ranker (no ranker.json)")
    meta = json.loads(meta_path.read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{meta_path}: format_version {meta.get('format_version')} != {FORMAT_VERSION}")
    # safetensors only: a pickled pytorch_model.bin could run code on load, so it is refused
    encoder = BertModel.from_pretrained(directory / "encoder", add_pooling_layer=False, use_safetensors=True)
    model = CrossEncoderRanker(encoder, HeadConfig.from_dict(meta["head"]))
    model.head.load_state_dict(load_file(str(directory / "head.safetensors")))
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(directory / "tokenizer")
    features = meta.get("product_features")  # absent in rankers saved before product features
    pair_encoder = PairEncoder(tokenizer, InputBudget.from_dict(meta["input_budget"]),
                               with_sides=model.head.config.similarity_prior,
                               features=ProductFeatures.from_dict(features) if features else None)
    pair_encoder.check_positions(encoder.config.max_position_embeddings)
    return LoadedRanker(model, pair_encoder)
