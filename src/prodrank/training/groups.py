"""Query groups: the unit of training and evaluation (one query with its shown products)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from prodrank.config import TaskConfig
from prodrank.data.schema import CATALOG_TEXT_FIELDS, PRODUCT_FEATURES


@dataclass
class QueryGroup:
    query_id: str
    query: str
    product_ids: np.ndarray  # [n] str
    targets: np.ndarray  # [n, T] float in [0, 1], one column per task
    weights: np.ndarray  # [n] float, impressions
    gains: np.ndarray  # [n] float, sum_t score_weight_t * target_t (validation NDCG)


def task_targets(frame: pd.DataFrame, tasks: tuple[TaskConfig, ...], grade_range: tuple[float, float]) -> np.ndarray:
    """Targets in [0, 1]: event rates for binary tasks, min-max scaled grades for graded ones."""
    columns = []
    for task in tasks:
        if task.label not in frame.columns:
            raise KeyError(f"task {task.name!r}: label column {task.label!r} not in data {list(frame.columns)}")
        values = frame[task.label].to_numpy(dtype=np.float64)
        if task.kind == "binary":
            columns.append(np.clip(values / frame["impressions"].to_numpy(dtype=np.float64), 0.0, 1.0))
        else:
            low, high = grade_range
            columns.append(np.clip((values - low) / max(high - low, 1e-12), 0.0, 1.0))
    return np.stack(columns, axis=1)


def grade_range(frame: pd.DataFrame, tasks: tuple[TaskConfig, ...]) -> tuple[float, float]:
    graded = [t.label for t in tasks if t.kind == "graded"]
    if not graded:
        return (0.0, 1.0)
    values = frame[graded].to_numpy(dtype=np.float64)
    return float(np.nanmin(values)), float(np.nanmax(values))


def build_groups(
    interactions: pd.DataFrame,
    queries: pd.DataFrame,
    tasks: tuple[TaskConfig, ...],
    score_weights: dict[str, float],
    grades: tuple[float, float],
) -> list[QueryGroup]:
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
        groups.append(QueryGroup(qid, str(texts[qid]), pids[idx], targets[idx], impressions[idx], gains[idx]))
    return groups


def product_fields(catalog: pd.DataFrame) -> dict[str, dict[str, str | float | None]]:
    """product id -> {text field: text, product feature: number}, None where unknown."""
    present = [f for f in (*CATALOG_TEXT_FIELDS, *PRODUCT_FEATURES) if f in catalog.columns]
    frame = catalog[["product_id", *present]].astype(object).where(catalog[["product_id", *present]].notna(), None)
    return {row[0]: dict(zip(present, row[1:], strict=True)) for row in frame.itertuples(index=False)}


def load_split(prepared_dir: str | Path, split: str) -> dict[str, pd.DataFrame]:
    directory = Path(prepared_dir) / split
    return {name: pd.read_parquet(directory / f"{name}.parquet") for name in ("queries", "interactions")}
