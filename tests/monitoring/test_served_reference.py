"""The evaluation reference (in-process predictions) against the same model served over HTTP:
control traffic replayed from the data set's queries through the server must not be drift,
whatever small numerical differences batching and the HTTP path introduce."""
from __future__ import annotations

import json
import time
from urllib.request import Request, urlopen

import numpy as np
import pandas as pd
import pytest

from prodrank.config import load_config
from prodrank.evaluation.evaluate import load_eval_pairs, other_splits
from prodrank.models.runtime import load_scorer
from prodrank.monitoring.flow import apply_overrides
from prodrank.monitoring.monitor import dataset_pairs, run_monitor

pytestmark = pytest.mark.slow


def evaluation_predictions(serving_data) -> pd.DataFrame:
    """What the evaluate stage writes: the test split and the other splits' queries scored
    in-process by the model."""
    prepared = serving_data["prepared"]
    test = load_eval_pairs(prepared, "test")[0].assign(split="evaluated")
    pairs = pd.concat([test, other_splits(prepared, "test", set(test["query_id"]))], ignore_index=True)
    ranker = load_scorer(serving_data["student_dir"], "onnx")  # the model the `server` fixture serves
    scored = ranker.score(pairs["query"].tolist(), pairs["product_id"].tolist(), serving_data["products"])
    return pairs[["query_id", "query", "product_id", "position", "split"]].assign(
        score=scored["score"], **{f"p_{t}": scored[t] for t in ranker.tasks})


def post(url: str, body: dict) -> dict:
    request = Request(f"{url}/rank", data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    with urlopen(request, timeout=30) as response:  # noqa: S310 - the test's own loopback server
        return json.loads(response.read())


def test_control_replayed_through_the_server_is_no_drift_against_the_evaluation_reference(server, serving_data,
                                                                                         tmp_path):
    root = tmp_path
    (root / "data").mkdir()
    (root / "data" / "prepared").symlink_to(serving_data["prepared"])
    (root / "reports" / "evaluation").mkdir(parents=True)
    evaluation_predictions(serving_data).to_parquet(root / "reports" / "evaluation" / "predictions.parquet")
    pairs = dataset_pairs(serving_data["prepared"]).sort_values(["query_id", "position"])
    weight = pairs.groupby("query_id")["impressions"].sum()
    drawn = np.random.default_rng(0).choice(weight.index.to_numpy(), size=600, p=(weight / weight.sum()).to_numpy())
    candidates = {qid: g.drop_duplicates("product_id") for qid, g in pairs.groupby("query_id")}
    start = pd.Timestamp.now(tz="UTC")
    for qid in drawn:
        group = candidates[qid]
        products = [{"id": pid, **{k: v for k, v in serving_data["products"][pid].items() if v is not None}}
                    for pid in group["product_id"]]
        post(server["url"], {"query": str(group["query"].iloc[0]), "candidates": products})
    time.sleep(1.5)  # the server's log thread flushes after each batch
    cfg = apply_overrides(load_config(server["params"]), {
        "log_dir": str(server["log_dir"]), "catalogs": [str(serving_data["prepared"] / "catalog.parquet")],
        "min_requests": 500})
    summary = run_monitor(cfg, root, start=start.isoformat(), out_dir=str(tmp_path / "reports" / "drift"),
                          compare_model="none")
    rows = {r["check"]: r for r in summary["checks"] if r["group"] in ("input", "prediction")}
    assert summary["reference"]["kind"] == "evaluation" and summary["current"]["requests_used"] == 600
    assert summary["verdict"] == "no drift", json.dumps(rows, indent=1, default=str)
    assert rows["top1_score"]["statistic"] is not None and rows["top1_score"]["threshold_source"] == "calibrated"
