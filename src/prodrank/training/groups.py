"""Query groups: the unit of training and evaluation (one query with its shown products)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from prodrank.config import TaskConfig
from prodrank.data.labels import task_targets


@dataclass
class QueryGroup:
    query_id: str
    query: str
    product_ids: np.ndarray  # [n] str
    targets: np.ndarray  # [n, T] float in [0, 1], one column per task
    weights: np.ndarray  # [n] float, impressions
    gains: np.ndarray  # [n] float, sum_t score_weight_t * target_t (validation NDCG)
    exposure: np.ndarray | None = None  # [n, K] share of impressions per shown position (position tower)


def build_groups(
    interactions: pd.DataFrame,
    queries: pd.DataFrame,
    tasks: tuple[TaskConfig, ...],
    score_weights: dict[str, float],
    grades: tuple[float, float],
    exposure: np.ndarray | None = None,
) -> list[QueryGroup]:
    """One group per query; ``exposure`` rows follow the interactions rows."""
    texts = queries.set_index("query_id")["query"]
    targets = task_targets(interactions, tasks, grades)
    weights = np.array([score_weights.get(t.name, 0.0 if score_weights else 1.0) for t in tasks])
    gains = targets @ weights
    groups = []
    codes, uniques = pd.factorize(interactions["query_id"], sort=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    pids = interactions["product_id"].to_numpy(dtype=str)
    impressions = interactions["impressions"].to_numpy(dtype=np.float64)
    for idx in np.split(order, bounds):
        qid = uniques[codes[idx[0]]]
        groups.append(QueryGroup(qid, str(texts[qid]), pids[idx], targets[idx], impressions[idx], gains[idx],
                                 None if exposure is None else exposure[idx]))
    return groups


def load_split(prepared_dir: str | Path, split: str) -> dict[str, pd.DataFrame]:
    """A split's queries and interactions, and its per-position counts where the source logs them."""
    directory = Path(prepared_dir) / split
    names = ("queries", "interactions", "positions")
    return {name: pd.read_parquet(directory / f"{name}.parquet") for name in names
            if name != "positions" or (directory / f"{name}.parquet").exists()}
