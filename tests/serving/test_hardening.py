"""The reliability suite's fault and security scenarios (tools/reliability), run small
against real `bentoml serve` processes with the tiny model: a SIGKILL mid-load loses no
acknowledged record, a tampered model stops the server at start, an unwritable or full log
folder does not stop serving, and the optional API key. `make reliability` runs them bigger."""
from __future__ import annotations

import pandas as pd
import pytest

from tests.serving.conftest import package_model
from tools.reliability import faults, security
from tools.reliability.faults import Target
from tools.reliability.load import audit_log, rank_bodies

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def target(tmp_path_factory, serving_data) -> Target:
    root = tmp_path_factory.mktemp("hardening")
    packaged = package_model(root / "model", serving_data["ranker_dir"],
                             catalog=serving_data["prepared"] / "catalog.parquet")
    catalog = pd.read_parquet(serving_data["prepared"] / "catalog.parquet")
    bodies = rank_bodies(catalog, ["red sofa", "blue drill", "lamp", "cordless drill 18v"], 50, candidates=8)
    return Target(packaged["params"], packaged["home"], bodies, root / "work")


def test_sigkill_mid_load_loses_no_acknowledged_record(target):
    check = faults.server_killed_mid_load(target, rate=20.0, seconds=20.0, kill_at=3.0)
    figures = check.figures
    assert figures["load"]["ok"] > 10 and figures["acknowledged_feedback"] > 0, figures
    assert figures["load"]["status"].get("connection", 0) > 0, figures  # requests met the dead server
    assert figures["files"] >= 2, figures  # ... and the restarted one, on the same port, took the load again
    assert check.held, figures
    assert figures["missing_requests"] == 0 and figures["unreadable_lines"] == 0


def test_tampered_model_stops_the_server_at_start(target):
    check = faults.tampered_model(target)
    assert check.held, check.figures
    assert check.figures["exit_code"] not in (None, 0) and check.figures["seconds_to_exit"] < 60


def test_unwritable_log_folder_keeps_serving(target):
    check = faults.unwritable_log_dir(target, requests=5)
    assert check.held, check.figures
    assert "Errno" in check.figures["last_error"]


def test_full_disk_keeps_serving_and_logging_resumes(target):
    check = faults.disk_full(target, requests=30)
    if check.skipped:
        pytest.skip(check.skipped)
    assert check.held, check.figures
    assert check.figures["log_errors"] > 0 and check.figures["resumed"]


def test_api_key_when_required(target):
    check = security.api_key(target)
    assert check.held, check.figures


def test_audit_counts_missing_duplicated_and_torn_records(tmp_path):
    from prodrank.serving.request_log import RequestLog

    log = RequestLog(tmp_path)
    for rid in ["a", "b", "b"]:
        log.write({"kind": "request", "request_id": rid, "timestamp": "2026-01-01T00:00:00+00:00"})
    log.write({"kind": "feedback", "request_id": "a", "product_id": "p", "event": "click",
               "timestamp": "2026-01-01T00:00:01+00:00"})
    log.close()
    with open(next(tmp_path.glob("requests-*.jsonl")), "ab") as fh:
        fh.write(b'{"kind": "request", "request_')  # a torn line
    audit = audit_log(tmp_path, ["a", "b", "c"], [("a", "p", "click"), ("b", "q", "click")])
    assert audit["missing_requests"] == 1 and audit["duplicated_requests"] == 1
    assert audit["missing_feedback"] == 1 and audit["unreadable_lines"] == 1 and audit["lines"] == 5
