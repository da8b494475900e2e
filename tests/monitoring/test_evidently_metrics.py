"""Evidently 0.7's ranking metrics, read the way the drift report reads them, against the
project's own metric code (prodrank.metrics): NDCG@k, MRR@k and HitRate@k per task, for k below,
at and above Evidently's default table length (10) and beyond the lists' length."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prodrank.config import resolve
from prodrank.metrics import ndcg_at_k, reciprocal_rank
from prodrank.monitoring.report import (
    QUALITY_METRICS,
    drop_p_value,
    per_request_quality,
    quality_checks,
    quality_snapshot,
    topk_value,
)


def ranking_data(seed: int = 0, n_requests: int = 60, tasks=("click", "purchase")) -> pd.DataFrame:
    """Requests of 4..16 results, ranks 1..n, sparse binary feedback (some requests none)."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(n_requests):
        n = int(rng.integers(4, 17))
        for rank in range(1, n + 1):
            row = {"request_id": f"r{r:03d}", "product_id": f"p{r:03d}-{rank}", "rank": rank}
            for i, task in enumerate(tasks):
                row[f"target_{task}"] = int(rng.random() < 0.25 / (1 + i) * (1.5 if rank <= 3 else 1.0))
            rows.append(row)
    return pd.DataFrame(rows)


def project_values(frame: pd.DataFrame, task: str, k: int) -> dict[str, float]:
    """Means over requests with at least one relevant result (the project's convention)."""
    ndcg, rr, hit = [], [], []
    for _, g in frame.groupby("request_id"):
        gains = g[f"target_{task}"].to_numpy(dtype=float)
        if gains.sum() == 0:
            continue
        scores = -g["rank"].to_numpy(dtype=float)
        ndcg.append(ndcg_at_k(gains, scores, k))
        first = 1 / reciprocal_rank(gains, scores)
        rr.append(1 / first if first <= k else 0.0)
        hit.append(float(first <= k))
    return {"ndcg": float(np.mean(ndcg)), "mrr": float(np.mean(rr)), "hitrate": float(np.mean(hit))}


@pytest.mark.parametrize("k", [1, 3, 5, 10])
def test_evidently_ranking_metrics_match_the_project_metrics(k):
    frame = ranking_data()
    _, values = quality_snapshot(frame, None, ("click", "purchase"), k)
    for task in ("click", "purchase"):
        expected = project_values(frame, task, k)
        for metric in ("ndcg", "mrr", "hitrate"):
            assert values[task][metric]["current"] == pytest.approx(expected[metric], abs=1e-9), (task, metric, k)
            assert values[task][metric]["reference"] is None


def test_k_above_ten_and_beyond_the_longest_list():
    frame = ranking_data(seed=1)
    longest = int(frame["rank"].max())
    for k in (12, longest, longest + 5):  # beyond the list: the metric over the whole list
        _, values = quality_snapshot(frame, None, ("click",), k)
        expected = project_values(frame, "click", min(k, longest))
        for metric in ("ndcg", "mrr", "hitrate"):
            assert values["click"][metric]["current"] == pytest.approx(expected[metric], abs=1e-9), (metric, k)


def test_reference_values_are_read_from_the_reference_table():
    cur, ref = ranking_data(seed=2), ranking_data(seed=3)
    _, values = quality_snapshot(cur, ref, ("click",), 5)
    assert values["click"]["ndcg"]["reference"] == pytest.approx(project_values(ref, "click", 5)["ndcg"], abs=1e-9)
    assert values["click"]["ndcg"]["current"] == pytest.approx(project_values(cur, "click", 5)["ndcg"], abs=1e-9)


def test_the_off_by_one_rank_label_is_not_used():
    """Evidently labels NDCG's row for k=5 as rank 6 (and HitRate's as 5): read by position."""
    frame = ranking_data(seed=4)
    snapshot, _ = quality_snapshot(frame, None, ("click",), 5)
    tables = {type(m).__name__: r.value for m, r in
              ((snapshot.context.get_metric(mid).to_metric(), snapshot.metric_results[mid])
               for mid in snapshot._top_level_metrics)}
    ndcg, hit = tables["NDCG"], tables["HitRate"]
    assert int(ndcg["rank"].iloc[0]) == 2 and int(hit["rank"].iloc[0]) == 1  # the gotcha, as installed
    assert topk_value(ndcg, 5) == pytest.approx(project_values(frame, "click", 5)["ndcg"], abs=1e-9)
    assert topk_value(ndcg, 5) == ndcg["value"].iloc[4] and topk_value(hit, 5) == hit["value"].iloc[4]
    assert topk_value({"value": {"0": 0.1, "1": 0.2}}, 2) == 0.2 and topk_value(pd.DataFrame({"value": []}), 3) is None


@pytest.mark.parametrize("k", [1, 5, 10, 30])
def test_per_request_values_average_to_the_project_metrics(k):
    frame = ranking_data(seed=7, n_requests=80)
    values = per_request_quality(frame, "click", k)
    expected = project_values(frame, "click", k)
    for metric in ("ndcg", "mrr", "hitrate"):
        assert values[metric].mean() == pytest.approx(expected[metric], abs=1e-12), metric


def test_a_quality_drop_must_be_large_and_significant():
    mon = resolve({}).monitoring
    ref = ranking_data(seed=8, n_requests=400)
    worse = ref.copy()  # the same feedback on the results shown in reverse order
    worse["rank"] = worse.groupby("request_id")["rank"].transform("max") + 1 - worse["rank"]
    noise = ranking_data(seed=9, n_requests=400)
    for current, expect in ((worse, True), (noise, False)):
        _, values = quality_snapshot(current, ref, ("click",), 5)
        cur_v, ref_v = per_request_quality(current, "click", 5), per_request_quality(ref, "click", 5)
        p = {"click": {m: drop_p_value(cur_v[m], ref_v[m]) for m in QUALITY_METRICS}}
        rows = {r["check"]: r for r in quality_checks(values, mon, {"click": 400}, True, p)}
        assert rows["click.ndcg@5"]["drift"] is expect, rows["click.ndcg@5"]
    assert drop_p_value(np.array([0.5, 0.5]), np.array([0.9, 0.9])) == 0.0
