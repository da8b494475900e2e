"""The retrain flow end to end under ``prefect_test_harness``, on a tiny project copy:

1. nothing new → ``skipped``;
2. a good data drop (``--drop``) → the first champion, with its bento, benchmark and reports;
3. the same store made worse on purpose (labels inverted), dropped into ``data/incoming`` →
   rejected on the frozen benchmark, the champion kept, the workspace restored;
4. an invalid drop → the run fails with the GX reason, the champion kept.

Plus the stage flows' retry policy. The tests run in order and share the project."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.orchestration.conftest import make_project, premium_world, world_tables, write_drop

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("retrain")
    root = make_project(base / "project")
    tables = world_tables(root, base / "world")
    return {"root": root,
            "good": write_drop(premium_world(tables), base / "drops" / "premium"),
            "worse": write_drop(premium_world(tables, invert=True), base / "drops" / "premium-inverted")}


@pytest.fixture()
def root(project, monkeypatch, harness) -> Path:
    monkeypatch.chdir(project["root"])
    monkeypatch.setenv("BENTOML_HOME", str(project["root"] / ".bentoml"))
    return project["root"]


def cfg():
    from prodrank.config import load_config

    return load_config("params.yaml")


def stale_stages(root: Path) -> dict:
    """`dvc status` of every stage but ``inputs``, which DVC reports as always changed: it runs on
    every repro to hash the input files, and finds them unchanged."""
    result = subprocess.run([str(BIN / "dvc"), "status", "--json"], cwd=root, capture_output=True, text=True)
    status = json.loads(result.stdout or "{}")
    assert status.pop("inputs", ["always changed"]) == ["always changed"], status
    return status


def test_stage_flow_retries_only_transient_failures(harness, monkeypatch):
    from prodrank import stages
    from prodrank.config import resolve
    from prodrank.orchestration.stageflow import run_stage

    monkeypatch.setenv("PRODRANK_PREFECT", "on")
    monkeypatch.setattr("prodrank.orchestration.stageflow.load_config",
                        lambda params, profile: resolve({"orchestration": {"retries": 2, "retry_delay_seconds": 0}}))
    attempts = []

    def flaky(cfg):
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("transient: disk hiccup")
        return {"ok": len(attempts)}

    monkeypatch.setattr(stages, "validate", flaky)
    assert run_stage("validate", resolve({})) == {"ok": 2}
    attempts.clear()
    monkeypatch.setattr(stages, "validate", lambda cfg: attempts.append(1) or (_ for _ in ()).throw(ValueError("bad input")))
    with pytest.raises(ValueError, match="bad input"):
        run_stage("validate", resolve({}))
    assert len(attempts) == 1  # a permanent error is not retried


def test_nothing_new_is_skipped(root):
    from prodrank.orchestration.retrain import retrain

    summary = retrain(use_serving_logs=False)
    assert summary["status"] == "skipped" and "no new data" in summary["decision"]["reason"]
    assert Path(summary["reports"]["json"]).exists()


def test_a_good_drop_makes_the_first_champion(root, project):
    from prodrank.orchestration.bento import bentos_for_model
    from prodrank.orchestration.retrain import retrain
    from prodrank.serving.registry import champion, model_metadata, read_registry

    summary = retrain(drop=str(project["good"]), use_serving_logs=False)
    assert summary["status"] == "promoted", summary.get("error") or summary["decision"]
    tag = summary["challenger"]["tag"]
    assert champion(cfg()) == tag == summary["champion_after"]
    assert read_registry(cfg())["models"][tag]["stage"] == "champion"
    assert model_metadata(tag, cfg())["labels"]["gate"] == "passed"
    assert summary["bento"]["tag"] in bentos_for_model(tag, cfg())
    drop = summary["data"]["drop"]
    assert drop["dvc_md5"] and (root / drop["dvc_file"]).exists()
    assert cfg().data.interactions.path == drop["files"]["interactions"]
    assert (root / "datasets" / "benchmark" / "benchmark.json").exists() and (root / "datasets" / "benchmark.dvc").exists()
    assert summary["decision"]["challenger_score"] > 0.6  # the premium signal was learnt
    markdown = Path(summary["reports"]["markdown"]).read_text()
    assert "**promoted**" in markdown and tag in markdown
    assert stale_stages(root) == {}
    project["champion"] = tag


def test_a_worse_drop_is_rejected_and_the_champion_kept(root, project):
    from prefect.client.orchestration import get_client

    from prodrank.orchestration.retrain import retrain
    from prodrank.serving.registry import champion, read_registry

    before = (root / "params.yaml").read_text()
    incoming = root / "data" / "incoming"
    shutil.copytree(project["worse"], incoming / "2026-11-26-worse")
    summary = retrain(use_serving_logs=False)
    decision = summary["decision"]
    assert summary["status"] == "rejected", summary.get("error") or decision
    assert decision["delta"] < 0 and "does not beat the champion" in decision["reason"]
    assert champion(cfg()) == project["champion"] == summary["champion_after"]
    challenger = summary["challenger"]["tag"]
    assert challenger != project["champion"] and read_registry(cfg())["models"][challenger]["stage"] == "candidate"
    # the workspace is the champion's again: same params, DVC clean; the drop is kept on record
    assert (root / "params.yaml").read_text() == before
    assert stale_stages(root) == {}
    assert (incoming / ".processed" / "2026-11-26-worse").is_dir() and (root / summary["data"]["drop"]["dvc_file"]).exists()
    report = json.loads(Path(summary["reports"]["json"]).read_text())
    assert report["status"] == "rejected" and report["champion"]["tag"] == project["champion"]
    assert "does not beat" in Path(summary["reports"]["markdown"]).read_text()
    with get_client(sync_client=True) as client:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["retrain-summary"])))
    assert any("rejected" in (a.description or "") for a in artifacts)


def test_an_invalid_drop_fails_the_run_and_keeps_the_champion(root, project):
    from prodrank.orchestration.retrain import retrain
    from prodrank.serving.registry import champion

    folder = root / "data" / "incoming" / "broken"
    shutil.copytree(project["good"], folder)
    catalog = pd.read_parquet(folder / "catalog.parquet")
    catalog.loc[0, "price"] = -1.0  # fails the catalogue suite
    catalog.to_parquet(folder / "catalog.parquet", index=False)
    state = retrain(use_serving_logs=False, return_state=True)
    assert state.is_failed() and "DataValidationError" in state.message
    assert champion(cfg()) == project["champion"]
    latest = json.loads((root / "reports" / "retrain" / "latest.json").read_text())
    assert latest["status"] == "failed" and "price" in latest["error"] and latest["champion_after"] == project["champion"]
    assert (root / "data" / "incoming" / ".rejected" / "broken" / "REJECTED.txt").exists()
    assert stale_stages(root) == {}
