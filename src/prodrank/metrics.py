"""Ranking metrics per query, on numpy arrays.

Conventions (tested against hand-computed values in tests/unit/test_metrics.py):
- items are ranked by descending score; ties keep the input order (a stable sort), so
  callers that want tie-neutral results shuffle first (the random baseline does);
- NDCG uses exponential gains 2^g - 1 and log2(rank + 1) discounts; the ideal ordering
  sorts the same gains; a query whose gains are all zero has no defined NDCG (NaN) and is
  left out of means. ``gain="linear"`` uses g itself, for gains that are already a scale of
  their own (serving's int8 check grades items by their fp32 rank);
- MRR, average precision and recall@k treat gain > 0 as relevant; NaN with no relevant item.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

Gain = Literal["exponential", "linear"]


def _order(scores: np.ndarray) -> np.ndarray:
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def dcg_at_k(gains_in_rank_order: np.ndarray, k: int, gain: Gain = "exponential") -> float:
    g = np.asarray(gains_in_rank_order, dtype=np.float64)[:k]
    numerators = 2.0**g - 1.0 if gain == "exponential" else g
    return float((numerators / np.log2(np.arange(2, g.size + 2))).sum())


def ndcg_at_k(gains: np.ndarray, scores: np.ndarray, k: int, gain: Gain = "exponential") -> float:
    gains = np.asarray(gains, dtype=np.float64)
    ideal = dcg_at_k(np.sort(gains)[::-1], k, gain)
    if ideal <= 0:
        return float("nan")
    return dcg_at_k(gains[_order(scores)], k, gain) / ideal


def reciprocal_rank(gains: np.ndarray, scores: np.ndarray) -> float:
    relevant = np.asarray(gains)[_order(scores)] > 0
    if not relevant.any():
        return float("nan")
    return 1.0 / (int(np.argmax(relevant)) + 1)


def average_precision(gains: np.ndarray, scores: np.ndarray) -> float:
    relevant = np.asarray(gains)[_order(scores)] > 0
    if not relevant.any():
        return float("nan")
    hits = np.cumsum(relevant)
    precision_at_hit = hits[relevant] / (np.flatnonzero(relevant) + 1)
    return float(precision_at_hit.mean())


def recall_at_k(gains: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Share of the relevant items ranked in the top k."""
    relevant = np.asarray(gains)[_order(scores)] > 0
    if not relevant.any():
        return float("nan")
    return float(relevant[:k].sum() / relevant.sum())


def per_query_metrics(gains: np.ndarray, scores: np.ndarray, ks: tuple[int, ...]) -> dict[str, float]:
    metrics = {f"ndcg@{k}": ndcg_at_k(gains, scores, k) for k in ks}
    metrics.update({f"recall@{k}": recall_at_k(gains, scores, k) for k in ks})
    metrics["mrr"] = reciprocal_rank(gains, scores)
    metrics["map"] = average_precision(gains, scores)
    return metrics


def grouped_ndcg(query_ids: np.ndarray, gains: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Mean NDCG@k over queries with at least one positive gain (NaN if there are none)."""
    values = []
    query_ids = np.asarray(query_ids)
    order = np.argsort(query_ids, kind="stable")
    sorted_ids = query_ids[order]
    boundaries = np.flatnonzero(sorted_ids[1:] != sorted_ids[:-1]) + 1
    for idx in np.split(order, boundaries):
        value = ndcg_at_k(gains[idx], scores[idx], k)
        if not np.isnan(value):
            values.append(value)
    return float(np.mean(values)) if values else float("nan")
