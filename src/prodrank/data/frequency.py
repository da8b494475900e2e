"""Traffic buckets of queries, one rule for every source (the simulated world and real logs).

Queries are sorted by traffic (descending, ties by ``query_id``). A query whose cumulative
traffic share *before* it is below :data:`HEAD_SHARE` is ``head``, below :data:`TORSO_SHARE`
``torso``, else ``tail``; so the query crossing a boundary belongs to the upper bucket and the
top query is always head.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

HEAD_SHARE = 0.5  # queries making the top 50 % of traffic
TORSO_SHARE = 0.8  # ... the next 30 %; the rest is tail


def frequency_buckets(traffic: pd.Series) -> pd.Series:
    """Map per-query traffic (index = query_id) to ``head`` / ``torso`` / ``tail``."""
    if traffic.empty:
        return pd.Series([], index=traffic.index, dtype=object)
    frame = pd.DataFrame({"qid": traffic.index.astype(str), "t": traffic.to_numpy(dtype=float)})
    frame = frame.sort_values(["t", "qid"], ascending=[False, True], kind="mergesort")
    total = frame["t"].sum()
    before = (frame["t"].cumsum() - frame["t"]) / (total if total > 0 else 1.0)
    buckets = np.where(before < HEAD_SHARE, "head", np.where(before < TORSO_SHARE, "torso", "tail"))
    return pd.Series(buckets, index=frame["qid"].to_numpy()).reindex(traffic.index.astype(str))
