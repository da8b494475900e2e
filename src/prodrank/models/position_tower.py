"""A position-aware shallow tower for training on position-biased engagement (PAL: Guo et
al., "PAL: a position-bias aware learning framework for CTR prediction", RecSys 2019).

A logged event needs the shopper to look first: p(event at k) = p(seen | k) * p(event | seen).
The tower models p(seen | k) per task from the shown position alone; the ranker's head
models p(event | seen) from the text. Trained together on the logged rates, the tower
takes up what the position explains, so the head learns relevance free of it. At inference
the tower is dropped: products are ranked by the head alone, at no serving cost, and the
tower is never saved with the ranker.

A pair shown at several positions is seen with the impression-weighted mean of their
examination probabilities (``exposure`` holds each pair's share of impressions per
position), which keeps training on the aggregated (query, product) rows.
"""
from __future__ import annotations

import torch
from torch import nn

from prodrank.models.multitask import log1mexp

# sigmoid(2) = 0.88: every position starts as nearly always seen, so the head starts by
# explaining the logged rates as it would without the tower
INITIAL_LOGIT = 2.0


class PositionTower(nn.Module):
    """Position -> per-task examination logit: an embedding per position, one hidden layer."""

    def __init__(self, max_position: int, tasks: tuple[str, ...], hidden: int = 16) -> None:
        super().__init__()
        self.tasks = tasks
        self.embedding = nn.Embedding(max_position, hidden)
        self.out = nn.Linear(hidden, len(tasks))
        nn.init.zeros_(self.out.weight)
        nn.init.constant_(self.out.bias, INITIAL_LOGIT)

    def examination(self) -> torch.Tensor:
        """p(seen | position) per task: [K, T]."""
        return torch.sigmoid(self.out(torch.relu(self.embedding.weight)))

    def log_seen(self, exposure: torch.Tensor) -> torch.Tensor:
        """log p(seen) per pair and task, [B, T], from ``exposure`` [B, K] (rows sum to 1)."""
        return torch.log((exposure @ self.examination()).clamp_min(1e-12))

    def observed(self, log_p: torch.Tensor, log_seen: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log p(event) and log(1 - p(event)) of logged events, [B] each, from the head's
        log p(event | seen) [B] and the pairs' log p(seen) [B]."""
        log_observed = log_p + log_seen
        return log_observed, log1mexp(log_observed)

    def record(self) -> dict[str, list[float]]:
        """Each task's learned examination curve, normalised at position 1 (as the log estimate)."""
        with torch.no_grad():
            curve = self.examination()
            curve = curve / curve[:1]
        return {task: curve[:, t].round(decimals=6).tolist() for t, task in enumerate(self.tasks)}
