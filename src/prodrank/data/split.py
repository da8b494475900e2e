"""Train / validation / test split by query, randomly or by time.

Splitting by query (never by row) keeps a query's text out of every split but one, so
the model is always scored on queries it never trained on. Queries are grouped by their
normalised text first: "Red Sofa", "red  sofa" and "red-sofa" are the same query for leakage
purposes, by the same key the ``splits`` suite checks.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from prodrank.config import SplitConfig
from prodrank.data.schema import SPLITS
from prodrank.data.text import leakage_key


def assign_splits(queries: pd.DataFrame, cfg: SplitConfig, seed: int) -> pd.Series:
    """Map each query_id to "train", "valid" or "test"."""
    keys = queries["query"].map(leakage_key)
    unique_keys = pd.Index(keys.unique())
    if cfg.method == "time":
        if "timestamp" not in queries.columns or queries["timestamp"].isna().all():
            raise ValueError("split.method 'time' needs a timestamp column in the queries table")
        first_seen = queries.assign(key=keys).groupby("key")["timestamp"].min()
        ordered = first_seen.sort_values(kind="stable").index
        position = pd.Series(np.arange(len(ordered)) / len(ordered), index=ordered)
    else:
        rng = np.random.default_rng(seed)
        position = pd.Series(rng.permutation(len(unique_keys)) / len(unique_keys), index=unique_keys)
    # time: oldest queries train, newest test; random: a seeded permutation of the same cut
    train_end = 1.0 - cfg.valid_fraction - cfg.test_fraction
    bucket = np.where(position < train_end, SPLITS[0], np.where(position < train_end + cfg.valid_fraction, SPLITS[1], SPLITS[2]))
    by_key = pd.Series(bucket, index=position.index)
    return pd.Series(by_key.loc[keys].to_numpy(), index=queries["query_id"].to_numpy(), name="split")


def split_tables(tables: dict[str, pd.DataFrame], cfg: SplitConfig, seed: int) -> dict[str, dict[str, pd.DataFrame]]:
    """Split every query-keyed table; the catalogue is shared and not split."""
    assignment = assign_splits(tables["queries"], cfg, seed)
    out: dict[str, dict[str, pd.DataFrame]] = {}
    for split in SPLITS:
        ids = set(assignment.index[assignment == split])
        out[split] = {
            name: frame[frame["query_id"].isin(ids)].reset_index(drop=True)
            for name, frame in tables.items()
            if name != "catalog" and "query_id" in frame.columns
        }
        if out[split]["queries"].empty:
            raise ValueError(f"split {split!r} has no queries: too few queries for the configured fractions")
    return out
