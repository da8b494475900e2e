"""A position-aware shallow tower for training on position-biased engagement (PAL: Guo et
al., "PAL: a position-bias aware learning framework for CTR prediction", RecSys 2019).

A logged event needs the shopper to look first: p(event at k) = p(seen | k) * p(event | seen).
The tower models p(seen | k) per task from the shown position alone; the ranker's head
models p(event | seen) from the text. Trained together on the logged rates, the tower
takes up what the position explains, so the head learns relevance free of it. At inference
the tower is dropped: products are ranked by the head alone, at no serving cost, and the
tower is never saved with the ranker.

With the shown position as its only input, a shallow tower is one learned logit per
position and task. It starts at the examination curve estimated from the log
(training/propensity.py) rather than at "always seen": a few hundred steps at the head's
learning rate move a logit by well under one unit, so a tower started flat stays nearly
flat and corrects nothing (measured: 0.96 at position 10 where the world has 0.10).

A pair shown at several positions is seen with the impression-weighted mean of their
examination probabilities (``exposure`` holds each pair's share of impressions per
position), which keeps training on the aggregated (query, product) rows.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from prodrank.models.multitask import log1mexp


class PositionTower(nn.Module):
    """Position -> per-task examination logit, started at an examination curve."""

    def __init__(self, initial: np.ndarray, tasks: tuple[str, ...]) -> None:
        """``initial``: [K] examination probabilities in (0, 1], position 1 first."""
        super().__init__()
        self.tasks = tasks
        start = torch.as_tensor(np.clip(initial, 1e-3, 1 - 1e-3), dtype=torch.float32)
        self.logits = nn.Parameter(torch.logit(start)[:, None].repeat(1, len(tasks)))  # [K, T]

    def examination(self) -> torch.Tensor:
        """p(seen | position) per task: [K, T]."""
        return torch.sigmoid(self.logits)

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
