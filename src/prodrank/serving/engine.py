"""The scoring core of the service, independent of BentoML (the service, the tests and
the benchmark all use it).

Speed, on CPU:
- the served model is the distilled student on ONNX Runtime (:mod:`prodrank.models.runtime`),
  or any saved ranker in torch; both are a :class:`~prodrank.models.ranker.BatchScorer`;
- a request is one batched scoring call: :meth:`BatchScorer.score` sorts its pairs by token
  length, cuts them into batches of ``serving.max_batch_size`` and pads each batch only
  to its own longest pair (one pass per request would pad every pair to the request's
  longest: measured ~17 % slower for MiniLM at rank@100);
- threads set explicitly (``serving.threads``, one inter-op thread);
- products are tokenised once and cached by (id, content hash): a product whose text
  changes between requests is re-tokenised, never served stale; the cache is bounded;
- optional int8 (``serving.quantize``), whose accuracy cost :func:`compare_rankings`
  measures against fp32.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from prodrank.data.schema import CATALOG_TEXT_FIELDS
from prodrank.metrics import ndcg_at_k
from prodrank.models.ranker import BatchScorer

log = logging.getLogger(__name__)

WARMUP_QUERY = "red cotton bath towel set"
WARMUP_TITLES = ("bath towel", "red cotton bath towel set of 6, extra absorbent, quick dry",
                 "stainless steel kettle 1.7 l", "led desk lamp with usb charging port and dimmer",
                 "garden hose 50 ft", "memory foam pillow", "cordless drill 18 v with two batteries and case",
                 "blue sofa")


@dataclass
class RankOutcome:
    """Scores in request order plus the served order."""

    ids: list[str]  # request order
    scores: dict[str, np.ndarray]  # "score" and each task, request order
    truncated: np.ndarray  # bool, request order
    order: np.ndarray  # indices into ids, best first, cut to top_k
    tasks: tuple[str, ...] = field(default_factory=tuple)

    def results(self) -> list[dict[str, Any]]:
        out = []
        for rank, i in enumerate(self.order, start=1):
            item = {"id": self.ids[i], "rank": rank, "score": float(self.scores["score"][i])}
            item.update({f"p_{t}": float(self.scores[t][i]) for t in self.tasks})
            item["truncated"] = bool(self.truncated[i])
            out.append(item)
        return out

    def positions(self) -> list[int | None]:
        """1-based shown position of each candidate in request order (None: cut by top_k)."""
        pos: list[int | None] = [None] * len(self.ids)
        for rank, i in enumerate(self.order, start=1):
            pos[int(i)] = rank
        return pos


class RankingEngine:
    """Scores one ranking request as one batched forward pass."""

    def __init__(self, ranker: BatchScorer, *, threads: int = 2, max_batch_size: int = 32, max_query_chars: int = 500, max_field_chars: int = 5000,
                 product_cache_size: int = 50_000) -> None:
        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set in this process (only allowed once)
            pass
        self.threads = threads
        self.ranker = ranker
        self.max_batch_size = max_batch_size
        self.max_query_chars = max_query_chars
        self.max_field_chars = max_field_chars
        self.ranker.use_product_cache(product_cache_size)
        self._lock = threading.Lock()  # the pair encoder's cache is not thread-safe

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.ranker.tasks

    def _prepare(self, candidates: Sequence[Mapping[str, Any]]) -> tuple[list[str], dict[str, dict], np.ndarray]:
        keys, products, cut = [], {}, np.zeros(len(candidates), dtype=bool)
        for i, cand in enumerate(candidates):
            fields = dict(cand["fields"])
            for name in CATALOG_TEXT_FIELDS:
                value = fields.get(name)
                if value is not None and len(value) > self.max_field_chars:
                    fields[name], cut[i] = value[: self.max_field_chars], True
            digest = hashlib.blake2b(json.dumps(fields, sort_keys=True).encode(), digest_size=8).hexdigest()
            key = f"{cand['id']}\x1f{digest}"
            keys.append(key)
            products[key] = fields
        return keys, products, cut

    def rank(self, query: str, candidates: Sequence[Mapping[str, Any]], top_k: int | None = None) -> RankOutcome:
        """``candidates``: [{"id": str, "fields": {title, brand, category, attributes, description, price, rating}}]."""
        query_cut = len(query) > self.max_query_chars
        query = query[: self.max_query_chars]
        keys, products, cut = self._prepare(candidates)
        with self._lock:
            if torch.get_num_threads() != self.threads:  # set per process, but be explicit per call
                torch.set_num_threads(self.threads)
            scores = self.ranker.score([query] * len(keys), keys, products, batch_size=self.max_batch_size)
        truncated = scores.pop("truncated") | cut | query_cut
        order = np.lexsort((np.arange(len(keys)), -scores["score"]))  # best first, ties in request order
        if top_k is not None:
            order = order[:top_k]
        return RankOutcome([c["id"] for c in candidates], scores, truncated, order, self.tasks)

    def warm_up(self) -> RankOutcome:
        """Score a fixed request; raises if the outputs are not finite probabilities."""
        candidates = [{"id": f"warmup-{i}", "fields": {"title": t, "brand": "acme", "category": "home",
                                                       "attributes": None, "description": None}}
                      for i, t in enumerate(WARMUP_TITLES)]
        outcome = self.rank(WARMUP_QUERY, candidates)
        for task in self.tasks:
            p = outcome.scores[task]
            if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
                raise RuntimeError(f"warm-up: p_{task} outside [0, 1]: {p}")
        if not np.all(np.isfinite(outcome.scores["score"])):
            raise RuntimeError("warm-up: non-finite ranking score")
        return outcome


def compare_rankings(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray], k: int = 10,
                     gains: Sequence[np.ndarray] | None = None) -> dict[str, float]:
    """Accuracy cost of an approximation (int8) against the fp32 reference, per request:
    Pearson and Spearman correlation of scores, top-k overlap, and NDCG@k of the candidate's
    ranking using the reference's scores rank-transformed as graded gains ("how much of the
    fp32 ranking it keeps"); with true ``gains``, NDCG@k of both and their difference.
    Both NDCGs use linear gains (:func:`prodrank.metrics.ndcg_at_k` with ``gain="linear"``):
    exponential gains of fp32 ranks would weigh the top item alone; so the true-gain NDCG here
    is not the evaluation report's exponential-gain NDCG."""
    from scipy.stats import pearsonr, spearmanr

    rows: dict[str, list[float]] = {"pearson": [], "spearman": [], f"top{k}_overlap": [], f"self_ndcg@{k}": []}
    if gains is not None:
        rows.update({f"ndcg@{k}_reference": [], f"ndcg@{k}_candidate": []})
    for i, (ref, cand) in enumerate(zip(reference, candidate, strict=True)):
        if len(ref) < 2:
            continue
        rows["pearson"].append(float(pearsonr(ref, cand)[0]))
        rows["spearman"].append(float(spearmanr(ref, cand)[0]))
        kk = min(k, len(ref))
        top_ref, top_cand = set(np.argsort(-ref)[:kk]), set(np.argsort(-cand)[:kk])
        rows[f"top{k}_overlap"].append(len(top_ref & top_cand) / kk)
        ref_gain = np.argsort(np.argsort(ref)).astype(float)  # rank of each item under fp32 (0 = worst)
        rows[f"self_ndcg@{k}"].append(ndcg_at_k(ref_gain, cand, k, gain="linear"))
        if gains is not None:
            g = np.asarray(gains[i], dtype=float)
            rows[f"ndcg@{k}_reference"].append(ndcg_at_k(g, ref, k, gain="linear"))
            rows[f"ndcg@{k}_candidate"].append(ndcg_at_k(g, cand, k, gain="linear"))
    out = {name: float(np.nanmean(v)) if v else float("nan") for name, v in rows.items()}
    if gains is not None:
        out[f"ndcg@{k}_change"] = out[f"ndcg@{k}_candidate"] - out[f"ndcg@{k}_reference"]
    out["requests"] = float(len(rows["pearson"]))
    return out
