"""The drift report on synthetic logs: no drift between two windows of the same traffic, drift
on the shifted checks; the JSON summary's shape; the HTML is one self-contained file; the
decision rule per method; configuration; the retrain trigger (stubbed and by command)."""
from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta

import pytest

from prodrank.cli import main
from prodrank.config import ConfigError, DriftCheck, resolve
from prodrank.monitoring.flow import apply_overrides, render_markdown, retrain_flow
from prodrank.monitoring.monitor import dataset_pairs, format_summary, run_monitor
from prodrank.monitoring.report import is_drift
from prodrank.monitoring.trigger import trigger_retrain
from prodrank.serving.request_log import RequestLog
from tools.monitoring.synthetic_log import write_log
from tools.screenshot import chromium, render

START = datetime(2026, 11, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """Hour 0: reference; hour 1: same traffic; hour 2: shifted (longer queries, prices, ratings, scores)."""
    directory = tmp_path_factory.mktemp("drift-log")
    write_log(directory, 1200, START, 3600, seed=1)
    write_log(directory, 1200, START + HOUR, 3600, seed=2)
    write_log(directory, 1200, START + 2 * HOUR, 3600, seed=3, shift=0.6)
    return directory


def config(logs, **monitoring):
    cfg = resolve({})
    return apply_overrides(cfg, {"reference": "log", "reference_end": (START + HOUR).isoformat(), "log_dir": str(logs),
                                 "catalogs": [], "min_requests": 100, **monitoring})


@pytest.fixture(scope="module")
def reports(logs, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    cfg = config(logs)
    same = run_monitor(cfg, ".", end=(START + 2 * HOUR).isoformat(), out_dir=str(out))
    shifted = run_monitor(cfg, ".", start=(START + 2 * HOUR).isoformat(), out_dir=str(out), name="shifted")
    return same, shifted, out


def test_same_traffic_is_no_drift_and_shifted_traffic_drifts_on_the_shifted_checks(reports):
    same, shifted, _ = reports
    assert same["verdict"] == "no drift" and same["drifted_checks"] == []
    assert shifted["verdict"] == "drift"
    assert {"query_chars", "query_tokens", "price", "rating", "score", "top1_score"} <= set(shifted["drifted_checks"])
    assert "candidate_count" not in shifted["drifted_checks"] and "category" not in shifted["drifted_checks"]
    assert "unseen_product" not in {r["check"] for r in shifted["checks"] if r["statistic"] is not None}  # no catalogue


def test_json_summary_states_each_check_with_statistic_and_threshold(reports):
    _, shifted, out = reports
    data = json.loads((out / "shifted.json").read_text())
    assert data["drift"] is True and data["verdict"] == "drift"
    by_check = {r["check"]: r for r in data["checks"]}
    for name in ("query_chars", "query_tokens", "query_oov_share", "candidate_count", "price", "score", "p_click",
                 "p_add_to_cart", "p_purchase", "top1_score", "score_gap"):
        row = by_check[name]
        assert {"drift", "statistic", "threshold", "effect", "min_effect", "method", "group", "level"} <= set(row)
        assert row["threshold_source"] == "calibrated" and row["null"]["resamples"] == 300
        # wasserstein: a distance, held to the calibrated threshold, with an effect in the column's units
        assert row["drift"] == (row["statistic"] > row["threshold"] and row["effect"] >= row["min_effect"])
    assert by_check["price"]["level"] == "candidate" and by_check["query_chars"]["level"] == "request"
    quality = {r["check"] for r in data["checks"] if r["group"] == "quality"}
    assert {"click.ndcg@5", "click.mrr@5", "click.hitrate@5"} <= quality
    assert data["quality"]["comparable_with_reference"] is True
    assert data["current"]["requests_used"] == 1200 and data["reference"]["kind"] == "log"
    assert data["reports"]["html"].endswith("shifted.html")
    assert json.loads((out / "latest.json").read_text())["name"] == "shifted"
    assert data["calibration"]["false_alarm_rate"] == 0.01 and data["calibration"]["checks"] >= 11
    assert "DRIFT" in format_summary(shifted) and "cal., effect" in format_summary(shifted)
    assert "| price |" in render_markdown(shifted)


def test_html_is_one_self_contained_file(reports):
    _, _, out = reports
    html = (out / "shifted.html").read_text()
    assert len(html) > 1_000_000  # Evidently's JS is inlined
    assert not re.search(r"<(script|link)[^>]+(src|href)=[\"']https?://", html)  # nothing fetched from a network
    assert "prodrank drift report" in html and "query_chars" in html


def test_sampled_window_gives_the_same_verdict(logs, tmp_path):
    cfg = config(logs, max_requests=300)
    summary = run_monitor(cfg, ".", start=(START + 2 * HOUR).isoformat(), out_dir=str(tmp_path))
    assert summary["current"]["sampled"] and summary["current"]["requests_used"] == 300
    assert summary["verdict"] == "drift" and {"query_chars", "price"} <= set(summary["drifted_checks"])


def test_too_few_requests_is_no_verdict(logs, tmp_path):
    summary = run_monitor(config(logs, min_requests=5000), ".", start=(START + 2 * HOUR).isoformat(),
                          out_dir=str(tmp_path))
    assert summary["verdict"] == "insufficient data" and summary["drift"] is False


def test_trigger_calls_the_retrain_once_per_cooldown(logs, tmp_path):
    calls = []

    def fake_retrain(**kwargs):
        calls.append(kwargs)
        return {"status": "promoted"}

    cfg = config(logs, action="trigger")
    first = run_monitor(cfg, ".", start=(START + 2 * HOUR).isoformat(), out_dir=str(tmp_path), retrain=fake_retrain,
                        params="p.yaml")
    assert first["retrain"]["triggered"] and first["retrain"]["status"] == "promoted"
    assert calls[0]["use_serving_logs"] is True and calls[0]["params"] == "p.yaml"
    second = run_monitor(cfg, ".", start=(START + 2 * HOUR).isoformat(), out_dir=str(tmp_path), retrain=fake_retrain)
    assert not second["retrain"]["triggered"] and "cooldown" in second["retrain"]["reason"] and len(calls) == 1
    report_only = run_monitor(config(logs), ".", start=(START + 2 * HOUR).isoformat(), out_dir=str(tmp_path / "r"),
                              retrain=fake_retrain)
    assert report_only["retrain"] == {"triggered": False, "reason": "monitoring.action is 'report'"}
    no_drift = run_monitor(cfg, ".", end=(START + 2 * HOUR).isoformat(), out_dir=str(tmp_path / "n"),
                           retrain=fake_retrain)
    assert no_drift["retrain"] is None and len(calls) == 1


def test_trigger_without_a_retrain_callable_records_the_failure(logs, tmp_path):
    """Monitoring does not know how to retrain: with ``via: flow`` the caller must give the callable."""
    out = trigger_retrain(config(logs, action="trigger"), tmp_path, {"drifted_checks": ["price"], "name": "w"})
    assert out["triggered"] and out["status"] == "failed" and "no retrain callable" in out["error"]


def test_retrain_flow_runs_the_orchestration_flow_on_the_given_root(tmp_path, monkeypatch):
    """The callable ``prodrank monitor`` gives the monitor: the retrain flow on ``root`` (no chdir
    in the monitor), summarised from the report the flow writes."""
    from prodrank.orchestration import retrain as orchestration  # imports Prefect: only this test pays it

    class Completed:
        name = "Completed"

        def is_failed(self) -> bool:
            return False

        def is_crashed(self) -> bool:
            return False

    calls = []
    monkeypatch.setattr(orchestration, "retrain", lambda **kwargs: calls.append(kwargs) or Completed())
    latest = tmp_path / "reports" / "retrain" / "latest.json"
    latest.parent.mkdir(parents=True)
    latest.write_text(json.dumps({"status": "promoted", "run_id": "r1", "decision": {"reason": "better"}}))
    out = retrain_flow(use_serving_logs=True, force=False, params="p.yaml", profile="tiny", root=str(tmp_path),
                       reason="drift in price")
    assert calls == [{"use_serving_logs": True, "force": False, "params": "p.yaml", "profile": "tiny",
                      "project_dir": str(tmp_path), "return_state": True}]
    assert out["status"] == "promoted" and out["run_id"] == "r1" and out["decision"] == "better"


def test_trigger_by_command(logs, tmp_path):
    marker = tmp_path / "retrain-ran"
    cfg = config(logs, action="trigger", retrain={"via": "command", "cooldown_hours": 0,
                                                   "command": [sys.executable, "-c", f"open({str(marker)!r}, 'w')"]})
    summary = run_monitor(cfg, tmp_path, start=(START + 2 * HOUR).isoformat(), out_dir=str(tmp_path / "out"))
    assert summary["retrain"]["status"] == "completed" and marker.exists()


def test_decision_rule_per_method():
    assert is_drift("wasserstein", 0.12, 0.1) and not is_drift("wasserstein", 0.05, 0.1)
    assert is_drift("ks", 0.01, 0.05) and not is_drift("ks", 0.2, 0.05)
    assert not is_drift("psi", float("nan"), 0.1)


def test_config_names_a_bad_method_and_merges_checks_key_by_key():
    with pytest.raises(ConfigError, match="monitoring.checks.price.method"):
        resolve({"monitoring": {"checks": {"price": {"method": "nope"}}}})
    cfg = resolve({"monitoring": {"checks": {"price": {"threshold": 0.3}}}})
    assert cfg.monitoring.checks.price == DriftCheck(method="wasserstein", threshold=0.3)
    assert resolve({}).monitoring.checks.price.threshold is None  # calibrated by default
    assert cfg.monitoring.checks.brand.method == "jensenshannon"


def test_evaluation_reference_takes_inputs_from_all_splits_and_predictions_from_the_test_split(tmp_path):
    """The default reference: query/candidate features weighted over the whole data set, scores
    from the evaluation predictions; a current window of the same queries shows no input drift."""
    import numpy as np
    import pandas as pd

    from tests.conftest import make_prepared

    prepared = make_prepared(tmp_path / "data" / "prepared")
    catalog = pd.read_parquet(prepared / "catalog.parquet")
    test = pd.read_parquet(prepared / "test" / "interactions.parquet").merge(
        pd.read_parquet(prepared / "test" / "queries.parquet")[["query_id", "query"]], on="query_id")
    rng = np.random.default_rng(0)
    preds = test[["query_id", "query", "product_id", "position"]].assign(score=rng.random(len(test)))
    for task in ("click", "add_to_cart", "purchase"):
        preds[f"p_{task}"] = preds["score"] / 2
    (tmp_path / "reports" / "evaluation").mkdir(parents=True)
    preds.to_parquet(tmp_path / "reports" / "evaluation" / "predictions.parquet", index=False)
    pairs = dataset_pairs(prepared)  # live traffic: the data set's queries, by their impressions
    weight = pairs.groupby("query_id")["impressions"].sum()
    drawn = rng.choice(weight.index.to_numpy(), size=600, p=(weight / weight.sum()).to_numpy())
    text = dict(zip(pairs["query_id"], pairs["query"], strict=False))
    price = dict(zip(catalog["product_id"], catalog["price"], strict=True))
    rating = dict(zip(catalog["product_id"], catalog["rating"], strict=True))
    writer = RequestLog(tmp_path / "logs", fsync_seconds=0.1)
    for i, qid in enumerate(drawn):
        q = {"query": text[qid]}
        ids = pairs[pairs["query_id"] == qid].drop_duplicates("product_id").sort_values("position")["product_id"].tolist()
        score = rng.random(len(ids)) / 3 + 0.2
        writer.write({"kind": "request", "request_id": f"{i:032x}", "timestamp": f"2026-11-01T00:{i // 60:02d}:"
                      f"{i % 60:02d}.000000+00:00", "model_version": "m:1", "query": q["query"], "top_k": None,
                      "candidate_ids": ids, "positions": list(range(1, len(ids) + 1)),
                      "scores": {"score": score.tolist(), **{f"p_{t}": (score / 2).tolist()
                                                             for t in ("click", "add_to_cart", "purchase")}},
                      "truncated_ids": [], "prices": [price[p] for p in ids],
                      "ratings": [rating[p] for p in ids], "latency_ms": 1.0})
    writer.close()
    cfg = apply_overrides(resolve({}), {"log_dir": str(tmp_path / "logs"), "min_requests": 100,
                                        "catalogs": ["data/prepared/catalog.parquet"]})
    summary = run_monitor(cfg, tmp_path, out_dir=str(tmp_path / "out"))
    assert summary["reference"]["kind"] == "evaluation" and summary["reference"]["inputs"].startswith("all splits")
    by = {r["check"]: r for r in summary["checks"]}
    assert "(unknown)" not in by["category"]["reference_top"] and by["unseen_product"]["statistic"] == 0
    for name in ("query_chars", "candidate_count", "category", "price", "rating"):  # the same query mix
        assert not by[name]["drift"], by[name]
    assert by["score"]["drift"]  # live scores (0.2..0.53) vs evaluation scores (0..1)
    assert summary["quality"]["comparable_with_reference"] is False


def test_html_renders_offline_in_headless_chromium(reports, tmp_path):
    """Evidently's inlined JS draws the widgets with every network request blocked."""
    if chromium() is None:
        pytest.skip("no Chromium (apt-get install -y chromium); docs/monitoring.md has the script")
    _, _, out = reports
    result = render(out / "shifted.html", tmp_path / "shot.png", height=1200)
    assert result["rendered"], result
    assert result["png_bytes"] > 20_000


def test_cli_monitor_and_its_exit_status(logs, tmp_path, monkeypatch, capsys):
    import yaml

    from tests.conftest import PROJECT_ROOT

    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["monitoring"].update({"log_dir": str(logs), "catalogs": [], "min_requests": 100})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.setenv("PRODRANK_PREFECT", "off")
    monkeypatch.chdir(tmp_path)
    ref_end = (START + HOUR).isoformat()
    args = ["monitor", "--reference", "log", "--reference-end", ref_end, "--out", str(tmp_path / "r")]
    assert main([*args, "--end", (START + 2 * HOUR).isoformat(), "--name", "same", "--fail-on-drift"]) == 0
    assert "NO DRIFT" in capsys.readouterr().out
    assert main([*args, "--start", (START + 2 * HOUR).isoformat(), "--name", "shifted", "--fail-on-drift"]) == 3
    capsys.readouterr()
    assert main([*args, "--last", "30m", "--end", (START + 3 * HOUR).isoformat(), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "drift" and data["current"]["requests_used"] == 600
    assert (tmp_path / "r" / "shifted.json").exists() and (tmp_path / "r" / "20261101T023000Z--20261101T030000Z.json").exists()
