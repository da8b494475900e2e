"""Split by query: no query (by normalised text) in two splits; fractions; time order."""
import numpy as np
import pandas as pd
import pytest

from prodrank.config import SplitConfig
from prodrank.data.split import assign_splits, split_tables


def queries(n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "query_id": [f"Q{i}" for i in range(n)],
        "query": [f"query {i}" for i in range(n)],
        "timestamp": pd.date_range("2026-01-01", periods=n, freq="h"),
    })


def test_random_split_fractions_and_determinism():
    q = queries(1000)
    a = assign_splits(q, SplitConfig(valid_fraction=0.1, test_fraction=0.2), seed=1)
    b = assign_splits(q, SplitConfig(valid_fraction=0.1, test_fraction=0.2), seed=1)
    assert a.equals(b)
    counts = a.value_counts()
    assert counts["train"] == 700 and counts["valid"] == 100 and counts["test"] == 200


def test_same_text_differently_cased_stays_in_one_split():
    q = pd.DataFrame({"query_id": ["A", "B", *[f"Q{i}" for i in range(50)]],
                      "query": ["Red Sofa", "red   sofa", *[f"q {i}" for i in range(50)]]})
    splits = assign_splits(q, SplitConfig(), seed=3)
    assert splits["A"] == splits["B"]


def test_time_split_puts_newest_queries_in_test():
    q = queries(100)
    s = assign_splits(q, SplitConfig(method="time", valid_fraction=0.1, test_fraction=0.2), seed=0)
    order = s.loc[q["query_id"]].to_numpy()
    assert (order[:70] == "train").all() and (order[70:80] == "valid").all() and (order[80:] == "test").all()


def test_time_split_without_timestamps_is_a_clear_error():
    with pytest.raises(ValueError, match="needs a timestamp"):
        assign_splits(queries(10).drop(columns="timestamp"), SplitConfig(method="time"), seed=0)


def test_split_tables_keeps_rows_with_their_query():
    q = queries(40)
    inter = pd.DataFrame({"query_id": np.repeat(q["query_id"], 3), "product_id": ["P1", "P2", "P3"] * 40})
    out = split_tables({"queries": q, "interactions": inter, "catalog": pd.DataFrame({"product_id": ["P1"]})},
                       SplitConfig(), seed=0)
    total = sum(len(out[s]["interactions"]) for s in out)
    assert total == 120
    for name in out:
        assert set(out[name]["interactions"]["query_id"]) == set(out[name]["queries"]["query_id"])
