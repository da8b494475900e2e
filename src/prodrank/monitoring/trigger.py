"""A drift verdict triggers retraining (``monitoring.action: trigger``).

``monitoring.retrain.via``:

``flow``     the orchestration's retrain flow, ``prodrank.orchestration.retrain.retrain`` (a
             subflow when the monitor runs as a Prefect flow), with
             ``use_serving_logs=monitoring.retrain.use_serving_logs`` and ``force``; the flow decides
             itself whether a new model is promoted (docs/orchestration.md).
``command``  ``monitoring.retrain.command`` in the project root (default ``prodrank retrain --logs``).

At most one trigger per ``cooldown_hours`` (state in ``<reports_dir>/trigger.json``), so an
hourly monitor over a drifted week does not start a retrain every hour. The outcome (run id,
status, the retrain report's path) goes into the drift report's JSON.
"""
from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from prodrank.config import Config

log = logging.getLogger("prodrank.monitoring")
STATE_FILE = "trigger.json"


def _state(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def trigger_retrain(cfg: Config, root: Path, summary: dict[str, Any], params: str = "params.yaml",
                    profile: str | None = None, run: Callable[..., dict[str, Any]] | None = None,
                    state_dir: Path | None = None) -> dict[str, Any]:
    """Start retraining unless in cooldown; returns what happened. ``run`` replaces the retrain
    call (tests; it receives the same keyword arguments as the flow)."""
    settings = cfg.monitoring.retrain
    state_path = (state_dir or root / cfg.monitoring.reports_dir) / STATE_FILE
    now = pd.Timestamp.now(tz="UTC")
    last = _state(state_path).get("last_trigger")
    if last and settings.cooldown_hours > 0:
        age_h = (now - pd.Timestamp(last)).total_seconds() / 3600
        if age_h < settings.cooldown_hours:
            return {"triggered": False, "reason": f"cooldown: the last trigger was {age_h:.1f} h ago "
                    f"(< monitoring.retrain.cooldown_hours = {settings.cooldown_hours})", "last_trigger": last}
    reason = f"drift in {', '.join(summary['drifted_checks'])} (report {summary['name']})"
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps({"last_trigger": now.isoformat(), "report": summary["name"], "reason": reason},
                                     indent=2) + "\n")
    started = time.perf_counter()
    out: dict[str, Any] = {"triggered": True, "via": settings.via, "reason": reason, "at": now.isoformat()}
    log.info("drift verdict: triggering retraining (%s) — %s", settings.via, reason)
    try:
        if run is not None:
            result = run(use_serving_logs=settings.use_serving_logs, force=settings.force, params=params,
                         profile=profile, root=str(root), reason=reason)
            out.update(status=(result or {}).get("status"), result=result)
        elif settings.via == "flow":
            out.update(_run_flow(settings.use_serving_logs, settings.force, params, profile, root))
        else:
            out.update(_run_command(list(settings.command), root))
    except Exception as err:  # noqa: BLE001 - the report records the failure; the monitor itself succeeded
        out.update(status="failed", error=f"{type(err).__name__}: {err}")
        log.error("retrain trigger failed: %s", out["error"])
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def _run_flow(use_serving_logs: bool, force: bool, params: str, profile: str | None, root: Path) -> dict[str, Any]:
    import os

    from prodrank.orchestration import env

    env.configure(root)
    previous = Path.cwd()
    os.chdir(root)  # the retrain flow works on the current directory's project
    try:
        from prodrank.orchestration.retrain import retrain

        state = retrain(use_serving_logs=use_serving_logs, force=force, params=params, profile=profile,
                        return_state=True)
    finally:
        os.chdir(previous)
    latest = root / "reports" / "retrain" / "latest.json"
    report = json.loads(latest.read_text()) if latest.exists() else {}
    failed = state.is_failed() or state.is_crashed()
    return {"status": "failed" if failed else report.get("status"), "flow_state": state.name,
            "run_id": report.get("run_id"), "decision": (report.get("decision") or {}).get("reason"),
            "error": report.get("error") if failed else None,
            "report": (report.get("reports") or {}).get("markdown")}


def _run_command(command: list[str], root: Path) -> dict[str, Any]:
    if command and command[0] == "prodrank":  # the venv's console script
        exe = Path(sys.executable).with_name("prodrank")
        command = [str(exe) if exe.exists() else "prodrank", *command[1:]]
    result = subprocess.run(command, cwd=root, capture_output=True, text=True)
    return {"status": "completed" if result.returncode == 0 else "failed", "command": command,
            "returncode": result.returncode, "output_tail": (result.stdout + result.stderr)[-2000:]}
