"""A drift verdict triggers retraining (``monitoring.action: trigger``).

``monitoring.retrain.via``:

``flow``     the ``retrain`` callable the caller gives (:data:`RetrainFn`): monitoring does not
             know how retraining runs, so it imports nothing from orchestration. ``prodrank
             monitor`` and the ``prodrank-monitor`` flow pass the orchestration's retrain flow
             (:func:`prodrank.monitoring.flow.retrain_flow`), which decides itself whether a new
             model is promoted (docs/orchestration.md).
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

RetrainFn = Callable[..., dict[str, Any]]
"""Starts retraining. Called with the keywords ``use_serving_logs``, ``force``, ``params``,
``profile``, ``root`` (the project root, a string) and ``reason``; returns at least ``status``."""


def _state(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def cooldown_reason(cfg: Config, last: str | None, now: pd.Timestamp) -> str | None:
    """Why no trigger now (the last one is younger than ``cooldown_hours``), or None."""
    hours = cfg.monitoring.retrain.cooldown_hours
    if not last or hours <= 0:
        return None
    age_h = (now - pd.Timestamp(last)).total_seconds() / 3600
    if age_h >= hours:
        return None
    return f"cooldown: the last trigger was {age_h:.1f} h ago (< monitoring.retrain.cooldown_hours = {hours})"


def trigger_retrain(cfg: Config, root: Path, summary: dict[str, Any], retrain: RetrainFn | None = None,
                    params: str = "params.yaml", profile: str | None = None,
                    state_dir: Path | None = None) -> dict[str, Any]:
    """Start retraining unless in cooldown; returns what happened. ``retrain`` runs it when
    ``monitoring.retrain.via`` is ``flow`` (module doc); without one, the trigger fails (and says so)."""
    settings = cfg.monitoring.retrain
    state_path = (state_dir or root / cfg.monitoring.reports_dir) / STATE_FILE
    now = pd.Timestamp.now(tz="UTC")
    last = _state(state_path).get("last_trigger")
    if wait := cooldown_reason(cfg, last, now):
        return {"triggered": False, "reason": wait, "last_trigger": last}
    reason = f"drift in {', '.join(summary['drifted_checks'])} (report {summary['name']})"
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps({"last_trigger": now.isoformat(), "report": summary["name"], "reason": reason},
                                     indent=2) + "\n")
    started = time.perf_counter()
    out: dict[str, Any] = {"triggered": True, "via": settings.via, "reason": reason, "at": now.isoformat()}
    log.info("drift verdict: triggering retraining (%s) — %s", settings.via, reason)
    try:
        if settings.via == "command":
            out.update(run_command(list(settings.command), root))
        elif retrain is None:
            raise RuntimeError("monitoring.retrain.via is 'flow' but the caller gave no retrain callable")
        else:
            result = retrain(use_serving_logs=settings.use_serving_logs, force=settings.force, params=params,
                             profile=profile, root=str(root), reason=reason)
            out.update(status=(result or {}).get("status"), result=result)
    except Exception as err:  # noqa: BLE001 - the report records the failure; the monitor itself succeeded
        out.update(status="failed", error=f"{type(err).__name__}: {err}")
        log.error("retrain trigger failed: %s", out["error"])
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def run_command(command: list[str], root: Path) -> dict[str, Any]:
    """``monitoring.retrain.command`` in ``root``; ``prodrank`` is this environment's console script."""
    if command and command[0] == "prodrank":
        exe = Path(sys.executable).with_name("prodrank")
        command = [str(exe) if exe.exists() else "prodrank", *command[1:]]
    result = subprocess.run(command, cwd=root, capture_output=True, text=True)
    return {"status": "completed" if result.returncode == 0 else "failed", "command": command,
            "returncode": result.returncode, "output_tail": (result.stdout + result.stderr)[-2000:]}
