"""Fast tests of the orchestration pieces: task logic through ``.fn`` and plain functions, no
Prefect server (the stage runner is off: tests/orchestration/conftest.py)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prodrank.config import ConfigError, load_config, resolve
from prodrank.orchestration import drops, report, server, stageflow
from prodrank.orchestration.workspace import Snapshot, uncached_outputs
from tests.conftest import PROJECT_ROOT

CFG = load_config(PROJECT_ROOT / "params.yaml")


# -- the decision ------------------------------------------------------------------------------
def decide(**kw):
    from prodrank.serving.promotion import decide as run

    args = {"metric": "click.ndcg@10", "margin": 0.01, "gate": {"passed": True, "problems": []},
            "challenger_tag": "m:new", "champion_tag": "m:old", "challenger_score": 0.60, "champion_score": 0.50}
    return run(**{**args, **kw})


def test_decide_promotes_only_a_better_challenger_that_passed_the_gate():
    assert decide()["promote"] and decide()["delta"] == pytest.approx(0.10)
    assert "beats the champion" in decide()["reason"]
    worse = decide(challenger_score=0.45)
    assert not worse["promote"] and "does not beat" in worse["reason"]
    assert not decide(challenger_score=0.505)["promote"]  # better, but by less than the margin
    assert decide(challenger_score=0.51)["promote"]  # exactly the margin
    assert not decide(margin=0.0, challenger_score=0.50)["promote"]  # a tie never replaces the champion
    gate = decide(gate={"passed": False, "problems": ["click.ndcg@10 = 0.1 is below the minimum 0.2"]})
    assert not gate["promote"] and "quality gate" in gate["reason"] and "below the minimum" in gate["reason"]


def test_decide_edge_cases():
    assert decide(champion_tag=None, champion_score=None)["promote"]
    assert not decide(challenger_tag="m:old")["promote"]  # the challenger is the champion
    assert not decide(challenger_score=None)["promote"]
    assert not decide(challenger_tag=None)["promote"]


# -- stages as flows -----------------------------------------------------------------------------
def test_transient_failures_are_retried_and_permanent_ones_are_not():
    from prodrank.data.validate import DataValidationError
    from prodrank.evaluation.evaluate import QualityGateError
    from prodrank.serving.registry import RegistryError

    for exc in (OSError("disk hiccup"), ConnectionError("reset"), RuntimeError("DataLoader worker exited"), MemoryError()):
        assert stageflow.is_transient(exc), exc
    for exc in (DataValidationError("bad"), QualityGateError("gate"), ConfigError("cfg"), RegistryError("x"),
                ValueError("v"), FileNotFoundError("f"), TimeoutError("t"), TypeError("bug"), KeyboardInterrupt()):
        assert not stageflow.is_transient(exc), exc

    class State:
        def __init__(self, exc):
            self.exc = exc

        def result(self, raise_on_failure=True):
            return self.exc

    assert stageflow.retry_transient(None, None, State(OSError()))
    assert not stageflow.retry_transient(None, None, State(ValueError()))


def test_stage_runs_directly_when_prefect_is_off_or_no_server_answers(monkeypatch, tmp_path):
    from prodrank import stages

    calls = []
    monkeypatch.setattr(stages, "validate", lambda cfg: calls.append(cfg.profile) or "done")
    assert stageflow.run_stage("validate", CFG) == "done"  # PRODRANK_PREFECT=off (conftest)
    monkeypatch.setenv("PRODRANK_PREFECT", "auto")
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))  # no state file: no server
    assert stageflow.run_stage("validate", CFG) == "done"
    assert calls == ["default", "default"]
    monkeypatch.setenv("PRODRANK_PREFECT", "sometimes")
    with pytest.raises(ValueError, match="auto, on or off"):
        stageflow.run_stage("validate", CFG)
    with pytest.raises(ValueError, match="unknown stage"):
        stageflow.call_stage("deploy", CFG)


def test_stage_flow_takes_retries_and_timeout_from_params():
    cfg = resolve({"orchestration": {"retries": 3, "retry_delay_seconds": 2, "stage_timeout_seconds": 60}})
    flow = stageflow.stage_flow("train", cfg)
    assert flow.name == "prodrank-train"
    task = stageflow.stage_task(cfg)
    assert (task.retries, task.retry_delay_seconds, task.timeout_seconds) == (3, 2, 60)
    assert task.retry_condition_fn is stageflow.retry_transient
    assert flow.timeout_seconds >= 4 * 60


def test_orchestration_params_are_validated():
    cfg = resolve({"orchestration": {"schedule_cron": "*/5 * * * *", "promotion_margin": 0.02}})
    assert cfg.orchestration.schedule_cron == "*/5 * * * *" and cfg.orchestration.task_runner == "thread"
    for bad in ({"schedule_cron": "every day"}, {"promotion_margin": -1}, {"retries": -1}, {"task_runner": "ray"},
                {"server_port": 0}, {"promotion_metric": "ndcg"}, {"prefect": "maybe"}):
        with pytest.raises(ConfigError, match="orchestration"):
            resolve({"orchestration": bad})


def test_thread_runner_by_default_and_a_local_dask_cluster_on_request():
    from prefect_dask import DaskTaskRunner

    from prodrank.orchestration.retrain import make_task_runner

    assert type(make_task_runner(CFG)).__name__ == "ThreadPoolTaskRunner"
    dask = make_task_runner(resolve({"orchestration": {"task_runner": "dask", "max_workers": 3}}))
    assert isinstance(dask, DaskTaskRunner)  # the cluster itself starts with the flow (test_task_runners.py)
    assert dask.cluster_kwargs["n_workers"] == 3 and dask.cluster_kwargs["threads_per_worker"] == 1


# -- data drops ----------------------------------------------------------------------------------
def tiny_tables() -> dict[str, pd.DataFrame]:
    catalog = pd.DataFrame({"product_id": ["p1", "p2", "p3"], "title": ["red sofa", "blue lamp", "green drill"]})
    queries = pd.DataFrame({"query_id": ["q1", "q2"], "query": ["red sofa", "lamp"]})
    interactions = pd.DataFrame({"query_id": ["q1", "q1", "q2"], "product_id": ["p1", "p2", "p2"],
                                 "impressions": [4, 2, 2], "position": [1.0, 2.5, 1.0],
                                 "clicks": [3, 1, 2], "add_to_carts": [2, 0, 1], "purchases": [1, 0, 0]})
    return {"catalog": catalog, "queries": queries, "interactions": interactions}


def test_export_impressions_round_trips_through_the_interactions_adapter(tmp_path):
    from prodrank.data.ingest import load_interactions

    tables = tiny_tables()
    rows = drops.export_impressions(tables)
    assert len(rows) == 8 and rows["clicked"].sum() == 6 and rows["purchased"].sum() == 1
    sofa_p2 = rows[(rows["query"] == "red sofa") & (rows["product_id"] == "p2")]
    assert sorted(sofa_p2["position"]) == [2, 3]  # whole positions around the mean 2.5
    rows.to_parquet(tmp_path / "interactions.parquet", index=False)
    tables["catalog"].to_parquet(tmp_path / "catalog.parquet", index=False)
    back = load_interactions(tmp_path / "interactions.parquet", tmp_path / "catalog.parquet")["interactions"]
    back = back.sort_values(["impressions"], ascending=False).reset_index(drop=True)
    expected = tables["interactions"].sort_values(["impressions"], ascending=False).reset_index(drop=True)
    for column in ("impressions", "clicks", "add_to_carts", "purchases", "position"):
        assert back[column].tolist() == expected[column].tolist(), column


def test_export_impressions_keeps_the_positions_table(tmp_path):
    """With a positions table each impression is exported at the position it was shown, so a
    drop re-ingested from the current data keeps the per-position counts."""
    from prodrank.data.ingest import load_interactions

    (tmp_path / "log.csv").write_text("query,product_id,position,clicked,added_to_cart,purchased,timestamp\n"
                                      "red sofa,p1,1,1,1,1,2026-01-02\nred sofa,p1,9,0,0,0,2026-01-01\n"
                                      "red sofa,p2,2,1,0,0,2026-01-03\nlamp,p2,1,1,1,0,2026-01-04\n")
    tables = tiny_tables()
    tables["catalog"].to_parquet(tmp_path / "catalog.parquet", index=False)
    logged = load_interactions(tmp_path / "log.csv", tmp_path / "catalog.parquet")
    drops.export_impressions(logged).to_parquet(tmp_path / "interactions.parquet", index=False)
    again = load_interactions(tmp_path / "interactions.parquet", tmp_path / "catalog.parquet")
    for name in ("interactions", "positions", "queries"):
        pd.testing.assert_frame_equal(again[name], logged[name])


def test_whole_positions_keep_each_mean_position_and_the_funnel():
    inter = pd.DataFrame({"query_id": ["q1", "q1", "q2"], "product_id": ["p1", "p2", "p1"],
                          "impressions": [10, 3, 1], "position": [2.3, 7 / 3, 4.0],
                          "clicks": [8, 2, 1], "add_to_carts": [5, 1, 1], "purchases": [4, 1, 0]})
    rows = drops.whole_positions(inter)
    assert (rows["position"] % 1 == 0).all() and (rows["impressions"] > 0).all()
    assert (rows["clicks"] <= rows["impressions"]).all() and (rows["add_to_carts"] <= rows["clicks"]).all()
    assert (rows["purchases"] <= rows["add_to_carts"]).all()
    summed = (rows.assign(position=rows["position"] * rows["impressions"])
              .groupby(["query_id", "product_id"]).sum().reset_index())
    for column in ("impressions", "clicks", "add_to_carts", "purchases"):
        assert summed[column].tolist() == inter[column].tolist(), column
    assert np.allclose(summed["position"] / summed["impressions"], inter["position"])
    assert rows.loc[rows["product_id"].eq("p1") & rows["query_id"].eq("q1"), "position"].tolist() == [2, 3]


def test_inspect_and_find_drops(tmp_path):
    incoming = tmp_path / "data" / "incoming"
    for name in ("2026-01-01", "2026-02-01"):
        folder = incoming / name
        folder.mkdir(parents=True)
        pd.DataFrame({"query": ["a"], "product_id": ["p1"], "grade": [3], "title": ["A"]}).to_csv(folder / "judgments.csv")
    (incoming / ".copying").mkdir()  # half-copied: ignored
    (incoming / "notes.txt").write_text("not a drop")
    assert [p.name for p in drops.pending_drops(incoming)] == ["2026-01-01", "2026-02-01"]
    drop, notes = drops.find_new_data(CFG, tmp_path)
    assert drop.name == "2026-02-01" and drop.kind == "judgments" and "catalog" not in drop.files
    assert (incoming / drops.SUPERSEDED / "2026-01-01").is_dir() and "superseded" in notes[0]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "interactions.csv").write_text("query,product_id\n")
    with pytest.raises(ValueError, match="catalog"):
        drops.inspect_drop(bad)
    (bad / "interactions.csv").unlink()
    with pytest.raises(ValueError, match="expected interactions"):
        drops.inspect_drop(bad)


def test_no_new_data_is_reported(tmp_path):
    from prodrank.orchestration.retrain import find_new_data

    drop, notes = find_new_data.fn(CFG, tmp_path, None, None)
    assert drop is None and any("no data drop" in n for n in notes)


def test_validation_rejects_a_bad_drop_and_sets_it_aside(tmp_path, monkeypatch):
    from prodrank.data.validate import DataValidationError
    from prodrank.orchestration.retrain import validate_data

    monkeypatch.chdir(PROJECT_ROOT)  # the GX suites in expectations/
    folder = tmp_path / "incoming" / "broken"
    folder.mkdir(parents=True)
    tables = tiny_tables()
    tables["catalog"].loc[1, "price"] = -5.0  # a negative price fails the catalogue suite
    drops.export_impressions(tables).to_parquet(folder / "interactions.parquet", index=False)
    tables["catalog"].to_parquet(folder / "catalog.parquet", index=False)
    with pytest.raises(DataValidationError):
        validate_data.fn(drops.inspect_drop(folder), CFG, tmp_path / "validation")
    rejected = tmp_path / "incoming" / drops.REJECTED / "broken"
    assert rejected.is_dir() and "DataValidationError" in (rejected / "REJECTED.txt").read_text()
    assert (tmp_path / "validation" / "summary.json").exists()


def test_a_drop_without_a_configured_product_feature_is_rejected_before_training(tmp_path, monkeypatch):
    from prodrank.data.ingest import InputFormatError
    from prodrank.orchestration.retrain import validate_data

    monkeypatch.chdir(PROJECT_ROOT)
    folder = tmp_path / "incoming" / "no-ratings"
    folder.mkdir(parents=True)
    tables = tiny_tables()
    tables["catalog"]["price"] = [10.0, 20.0, 30.0]  # prices, but no rating column
    drops.export_impressions(tables).to_parquet(folder / "interactions.parquet", index=False)
    tables["catalog"].to_parquet(folder / "catalog.parquet", index=False)
    cfg = resolve({"train": {"product_features": ["price", "rating"]}})
    with pytest.raises(InputFormatError, match=r"no value of \['rating'\], which train.product_features reads"):
        validate_data.fn(drops.inspect_drop(folder), cfg, tmp_path / "validation")
    assert (tmp_path / "incoming" / drops.REJECTED / "no-ratings" / "REJECTED.txt").exists()
    # the same files serve a price-only ranker
    (tmp_path / "incoming" / "ok").mkdir()
    for name in ("interactions.parquet", "catalog.parquet"):
        (tmp_path / "incoming" / drops.REJECTED / "no-ratings" / name).rename(tmp_path / "incoming" / "ok" / name)
    counts = validate_data.fn(drops.inspect_drop(tmp_path / "incoming" / "ok"),
                              resolve({"train": {"product_features": ["price"]}}), tmp_path / "validation")
    assert counts["catalog"] == 3


def test_serving_logs_become_impressions_with_their_feedback(tmp_path):
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    records = [
        {"kind": "request", "request_id": "r1", "timestamp": "2026-11-25T10:00:00+00:00", "model_version": "m:1",
         "query": "red sofa", "top_k": 2, "candidate_ids": ["p1", "p2", "p3"], "positions": [1, 2, None]},
        {"kind": "feedback", "request_id": "r1", "timestamp": "2026-11-25T10:00:05+00:00", "model_version": "m:1",
         "product_id": "p2", "event": "click", "position": 2},
        {"kind": "feedback", "request_id": "r1", "timestamp": "2026-11-25T10:00:09+00:00", "model_version": "m:1",
         "product_id": "p2", "event": "purchase", "position": 2},
        {"kind": "request", "request_id": "r2", "timestamp": "2026-11-25T11:00:00+00:00", "model_version": "m:1",
         "query": "lamp", "top_k": None, "candidate_ids": ["p2"], "positions": [1]},
    ]
    (log_dir / "requests-20261125T100000000000Z-1-0.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    rows, window = drops.log_impressions(log_dir)
    assert len(rows) == 3  # p3 was cut by top_k: not shown, not an impression
    p2 = rows[(rows["session_id"] == "r1") & (rows["product_id"] == "p2")].iloc[0]
    assert (p2["clicked"], p2["added_to_cart"], p2["purchased"], p2["position"]) == (1, 0, 1, 2.0)
    assert window["requests"] == 2 and window["feedback"] == 2 and window["until"].startswith("2026-11-25T11:00")
    later, _ = drops.log_impressions(log_dir, since="2026-11-25T10:30:00+00:00")
    assert later["session_id"].tolist() == ["r2"]


def test_update_params_keeps_comments_and_layout(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text((PROJECT_ROOT / "params.yaml").read_text())
    previous = drops.update_params(path, {"data.source": "interactions",
                                          "data.interactions.path": "datasets/drops/x/interactions.parquet",
                                          "data.interactions.catalog": "datasets/drops/x/catalog.parquet"})
    assert previous["data.source"] == "synthetic"
    text = path.read_text()
    assert "# synthetic | judgments | interactions" in text and "profiles:" in text
    cfg = load_config(path)
    assert cfg.data.source == "interactions" and cfg.data.interactions.catalog == "datasets/drops/x/catalog.parquet"


# -- workspace, reports, server ------------------------------------------------------------------
def test_uncached_outputs_come_from_dvc_yaml():
    found = uncached_outputs(PROJECT_ROOT / "dvc.yaml")
    assert "metrics/evaluate.json" in found and "reports/validation/summary.json" in found
    assert "models/ranker" not in found and "data/raw" not in found


def test_snapshot_restores_params_lock_and_uncached_outputs(tmp_path):
    (tmp_path / "dvc.yaml").write_text("stages:\n  s:\n    cmd: x\n    metrics:\n      - metrics/m.json:\n          cache: false\n")
    (tmp_path / "params.yaml").write_text("a: 1\n")
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "m.json").write_text('{"v": 1}')
    snap = Snapshot(tmp_path)
    (tmp_path / "params.yaml").write_text("a: 2\n")
    (tmp_path / "metrics" / "m.json").write_text('{"v": 2}')
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")  # created by the run: removed again
    snap.restore()
    snap.discard()
    assert (tmp_path / "params.yaml").read_text() == "a: 1\n" and json.loads((tmp_path / "metrics/m.json").read_text()) == {"v": 1}
    assert not (tmp_path / "dvc.lock").exists() and not snap.dir.exists()


def test_report_files_and_markdown(tmp_path):
    summary = {"run_id": "20260101T000000Z", "status": "rejected", "started_at": "s", "finished_at": "f",
               "champion_before": "m:old", "champion_after": "m:old", "notes": ["a note"],
               "decision": {"promote": False, "reason": "challenger does not beat the champion", "metric": "click.ndcg@10",
                            "margin": 0.0, "champion_score": 0.5, "challenger_score": 0.4, "delta": -0.1},
               "challenger": {"tag": "m:new", "quality_gate": {"passed": True, "problems": []},
                              "benchmark": {"methods": {"prodrank": {"click": {"ndcg@10": 0.4}}}}},
               "champion": {"tag": "m:old", "benchmark": {"methods": {"prodrank": {"click": {"ndcg@10": 0.5}}}}},
               "data": {"drop": {"id": "d-1", "kind": "interactions", "dvc_md5": "abc.dir", "origin": {"type": "folder"}}}}
    written = report.write(summary, tmp_path)
    markdown = Path(written["markdown"]).read_text()
    assert "**rejected**" in markdown and "does not beat" in markdown and "| click | ndcg@10 | 0.5000 | 0.4000 | -0.1000 |" in markdown
    assert json.loads(Path(written["json"]).read_text())["status"] == "rejected"
    assert json.loads((tmp_path / report.REPORT_DIR / "latest.json").read_text())["run_id"] == summary["run_id"]
    assert report.publish_artifact(summary) is None  # outside a flow run


def test_server_discovery_without_a_server(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    port = server.free_port()
    assert not server.healthy(server.api_url("127.0.0.1", port), timeout=0.5)
    assert server.discover() is None
    monkeypatch.setenv("PREFECT_API_URL", server.api_url("127.0.0.1", port))
    assert server.discover() is None
    assert not server.stop(tmp_path)


def test_benchmark_is_checked_against_its_manifest(tmp_path):
    from prodrank.orchestration import benchmark

    prepared = tmp_path / "data" / "prepared"
    (prepared / "test").mkdir(parents=True)
    tables = tiny_tables()
    tables["catalog"].to_parquet(prepared / "catalog.parquet", index=False)
    tables["queries"].assign(frequency="head").to_parquet(prepared / "test" / "queries.parquet", index=False)
    tables["interactions"].to_parquet(prepared / "test" / "interactions.parquet", index=False)
    info = benchmark.freeze(CFG, tmp_path, Path("data/prepared"), version=False)
    assert info["n_queries"] == 2 and info["n_pairs"] == 3
    pairs, queries, catalog = benchmark.load(CFG, tmp_path)
    assert len(pairs) == 3 and set(catalog["product_id"]) == {"p1", "p2"}
    frame = pd.read_parquet(benchmark.benchmark_dir(CFG, tmp_path) / "interactions.parquet")
    frame.assign(clicks=np.zeros(len(frame), dtype=int)).to_parquet(
        benchmark.benchmark_dir(CFG, tmp_path) / "interactions.parquet", index=False)
    with pytest.raises(benchmark.BenchmarkError, match="changed"):
        benchmark.load(CFG, tmp_path)
    assert benchmark.score({"methods": {"prodrank": {"click": {"ndcg@10": 0.7}}}}, "click.ndcg@10") == 0.7
    assert benchmark.score(None, "click.ndcg@10") is None


def test_prefect_home_defaults_to_the_project(monkeypatch, tmp_path):
    from prodrank.orchestration import env

    monkeypatch.delenv("PREFECT_HOME", raising=False)
    assert env.prefect_home(tmp_path) == tmp_path.resolve() / ".prefect"
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "elsewhere"))
    assert env.prefect_home(tmp_path) == (tmp_path / "elsewhere").resolve()
    assert os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"


def test_cli_has_retrain_and_rollback(monkeypatch, capsys):
    from prodrank import cli
    from prodrank.serving import registry

    args = cli.build_parser().parse_args(["retrain", "--drop", "d", "--no-logs", "--no-bento", "--force"])
    assert (args.drop, args.use_serving_logs, args.build, args.force) == ("d", False, False, True)
    assert cli.build_parser().parse_args(["retrain"]).use_serving_logs is None
    state = {"champion": "m:2"}
    monkeypatch.setattr(registry, "champion", lambda cfg=None: state["champion"])
    monkeypatch.setattr(registry, "rollback", lambda cfg=None: state.update(champion="m:1") or "m:1")
    monkeypatch.setattr("prodrank.orchestration.bento.bentos_for_model", lambda tag, cfg: ["prodrank:b1"])
    monkeypatch.chdir(PROJECT_ROOT)
    assert cli.main(["rollback"]) == 0
    out = capsys.readouterr().out
    assert "m:2 -> m:1" in out and "prodrank:b1" in out
    monkeypatch.setattr(registry, "rollback", lambda cfg=None: (_ for _ in ()).throw(registry.RegistryError("nothing to roll back to")))
    assert cli.main(["rollback"]) == 2
    assert "nothing to roll back to" in capsys.readouterr().err


def test_serving_logs_drop_adds_new_impressions_to_the_current_data(tmp_path):
    cfg = resolve({"orchestration": {"min_log_impressions": 2}, "serving": {"log_dir": "logs/serving"}})
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    for name, frame in tiny_tables().items():
        frame.to_parquet(raw / f"{name}.parquet", index=False)
    assert drops.drop_from_serving_logs(cfg, tmp_path) is None  # no log folder yet
    log_dir = tmp_path / "logs" / "serving"
    log_dir.mkdir(parents=True)
    request = {"kind": "request", "request_id": "r1", "timestamp": "2026-11-25T10:00:00+00:00", "model_version": "m:1",
               "query": "red sofa", "top_k": None, "candidate_ids": ["p1", "p3"], "positions": [2, 1]}
    click = {"kind": "feedback", "request_id": "r1", "timestamp": "2026-11-25T10:00:03+00:00", "model_version": "m:1",
             "product_id": "p1", "event": "click", "position": 2}
    (log_dir / "requests-20261125T100000000000Z-1-0.jsonl").write_text(json.dumps(request) + "\n" + json.dumps(click) + "\n")
    drop = drops.drop_from_serving_logs(cfg, tmp_path)
    assert drop.kind == "interactions" and drop.path.parent == tmp_path / "data" / "incoming"
    rows = pd.read_parquet(drop.files["interactions"])
    assert len(rows) == 8 + 2 and rows["clicked"].sum() == 6 + 1
    # re-ingested, the served impressions count at the positions they were served at
    positions = drops.load_drop(drop)["positions"]
    served = positions[positions["position"] == 2][["product_id", "impressions", "clicks"]]
    assert served.values.tolist() == [["p1", 1, 1], ["p2", 1, 1]]  # p2: the current data, mean 2.5
    assert positions.loc[positions["product_id"] == "p3", ["position", "impressions"]].values.tolist() == [[1, 1]]
    assert drop.origin["type"] == "serving_logs" and drop.origin["new_impressions"] == 2
    assert drop.origin["log_until"].startswith("2026-11-25T10:00:03")
    # once that drop is the current data set, its watermark hides the logs it already holds
    accepted = tmp_path / "datasets" / "drops" / "logs-1"
    accepted.mkdir(parents=True)
    (accepted / drops.MANIFEST).write_text(json.dumps({"origin": drop.origin}))
    current = resolve({"orchestration": {"min_log_impressions": 2}, "serving": {"log_dir": "logs/serving"},
                       "data": {"source": "interactions", "interactions": {
                           "path": str(accepted / "interactions.parquet"), "catalog": str(accepted / "catalog.parquet")}}})
    assert drops.drop_from_serving_logs(current, tmp_path) is None
