"""`make schedule` for real: a local Prefect server, the cron deployment served by
``python -m prodrank.orchestration.schedule``, one triggered run that completes, a clean stop.

The project copy has no new data, so the triggered retrain ends ``skipped`` in a second or two;
what is tested here is the deployment, the schedule from params.yaml, the run and the stop."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.test_pipeline import fresh_copy, set_params

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
CRON = "17 4 * * 1"


def wait_for(predicate, seconds: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (value := predicate()) is not None:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the schedule process exited ({proc.returncode}) while waiting for {what}")
        time.sleep(0.5)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


def test_scheduled_deployment_runs_on_a_real_server_and_stops_cleanly(tmp_path, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from prodrank.orchestration import server
    from tools.screenshot import chromium, prefect_ui

    root = fresh_copy(tmp_path / "project")
    port = server.free_port()
    set_params(root, **{"orchestration.server_port": port, "orchestration.schedule_cron": CRON,
                        "orchestration.deployment_name": "nightly-test"})
    home = tmp_path / "prefect-home"
    env = {**os.environ, "PREFECT_HOME": str(home), "PRODRANK_PREFECT": "off", "BENTOML_HOME": str(root / ".bentoml")}
    env.pop("PREFECT_API_URL", None)
    log = open(tmp_path / "schedule.log", "w")
    proc = subprocess.Popen([str(BIN / "python"), "-m", "prodrank.orchestration.schedule", "--keep-server"], cwd=root,
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    try:
        with temporary_settings({PREFECT_API_URL: api}):
            deployment = wait_for(lambda: _deployment(get_client, "prodrank-retrain/nightly-test"), 150,
                                  "the deployment", proc)
            assert [s.schedule.cron for s in deployment.schedules] == [CRON]
            assert deployment.parameters["project_dir"] == str(root)
            run = run_deployment("prodrank-retrain/nightly-test", timeout=180, poll_interval=1)
            assert run.state.is_completed(), run.state
            latest = json.loads((root / "reports" / "retrain" / "latest.json").read_text())
            assert latest["status"] == "skipped" and latest["flow_run_id"] == str(run.id)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ui-settings", timeout=10) as response:
                assert json.loads(response.read())["api_url"] == api  # the UI shows this server's runs
            if chromium() is not None:  # the UI rendered in headless Chromium lists the run
                monkeypatch.setenv("PREFECT_API_URL", api)
                shot = prefect_ui(tmp_path / "runs.png")
                assert shot["rendered"] and run.name in shot["runs_shown"], shot
            os.killpg(proc.pid, signal.SIGTERM)  # what Ctrl-C / `make schedule-stop` do
            assert proc.wait(timeout=60) == 0
            with get_client(sync_client=True) as client:
                assert client.read_deployment(deployment.id).paused  # "Pausing all deployments" on shutdown
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        server.stop(home)  # started by the schedule command (--keep-server), stopped by its PID
        log.close()
    assert "Pausing all deployments" in (tmp_path / "schedule.log").read_text()
    assert not server.healthy(api)


def _deployment(get_client, name: str):
    from prefect.exceptions import ObjectNotFound

    try:
        with get_client(sync_client=True) as client:
            return client.read_deployment_by_name(name)
    except (ObjectNotFound, OSError, RuntimeError):
        return None
    except Exception as err:  # the server may still be starting (connection errors of httpx)
        if "connect" in str(err).lower():
            return None
        raise
