"""The monitoring Prefect flow, ``prodrank-monitor`` (entrypoint ``flows/monitor.py:monitor``).

One flow run = one drift report (:func:`prodrank.monitoring.monitor.run_monitor`): tasks
``read-and-report`` then, on a drift verdict with ``monitoring.action: trigger``, the retrain flow
as a subflow. The report's verdict table is published as a markdown artifact (key
``prodrank-drift``) beside the files in ``reports/drift/``.

``prodrank monitor`` runs it inside this flow when a Prefect server answers (or
``orchestration.prefect: on`` / ``$PRODRANK_PREFECT=on``), like the pipeline stages; otherwise it
calls :func:`run_monitor` directly (same files, no artifact).

This module is where monitoring meets orchestration: both ways of running give the monitor the
retrain flow as its ``retrain`` callable (:func:`retrain_flow`), so the rest of
:mod:`prodrank.monitoring` imports nothing from :mod:`prodrank.orchestration`.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from prodrank.config import Config, MonitoringConfig, load_config
from prodrank.monitoring.monitor import run_monitor
from prodrank.monitoring.report import threshold_text
from prodrank.orchestration import env
from prodrank.orchestration.server import discover
from prodrank.orchestration.stageflow import mode

log = logging.getLogger("prodrank.monitoring")
ARTIFACT_KEY = "prodrank-drift"


def apply_overrides(cfg: Config, overrides: dict[str, Any] | None) -> Config:
    """``cfg`` with ``monitoring.<key>`` replaced for each key of ``overrides`` (validated)."""
    if not overrides:
        return cfg
    data = cfg.monitoring.model_dump()
    data.update(overrides)
    return cfg.model_copy(update={"monitoring": MonitoringConfig.model_validate(data)})


def render_markdown(summary: dict[str, Any]) -> str:
    lines = [f"# Drift report {summary['name']}: **{summary['verdict']}**", "",
             f"- current: {summary['current'].get('requests_used')} of {summary['current'].get('requests_in_window')} "
             f"requests ({summary['current'].get('start') or 'open'} → {summary['current'].get('end') or 'open'}), "
             f"model {', '.join(summary['current'].get('model_versions') or [])}",
             f"- reference: {summary['reference'].get('kind')} ({summary['reference'].get('requests_used')} requests)",
             f"- rule: {summary['rule']}",
             f"- report: `{(summary.get('reports') or {}).get('html')}` / `{(summary.get('reports') or {}).get('json')}`",
             "", "| group | check | method | statistic | threshold | effect | min effect | drift |",
             "|---|---|---|---|---|---|---|---|"]
    for r in summary["checks"]:
        stat = "—" if r["statistic"] is None else f"{r['statistic']:.4g}"
        effect = "—" if r.get("effect") is None else f"{r['effect']:.4g}"
        lines.append(f"| {r['group']} | {r['check']} | {r['method']} | {stat} | {threshold_text(r)} | {effect} | "
                     f"{r.get('min_effect', '—')} | {'**yes**' if r['drift'] else 'no'} |")
    retrain = summary.get("retrain")
    if retrain:
        lines += ["", f"Retrain: {'triggered' if retrain.get('triggered') else 'not triggered'} — "
                      f"{retrain.get('status') or retrain.get('reason')}"]
    return "\n".join(lines) + "\n"


def _publish(summary: dict[str, Any]) -> str | None:
    try:
        # Prefect loads in about a second; only a run inside the flow publishes, and it has loaded it
        from prefect.artifacts import create_markdown_artifact

        artifact = create_markdown_artifact(markdown=render_markdown(summary), key=ARTIFACT_KEY,
                                            description=f"drift report {summary['name']}: {summary['verdict']}")
        return str(getattr(artifact, "id", artifact))
    except Exception as err:  # noqa: BLE001 - the files are the record
        log.warning("could not create the Prefect artifact: %s", err)
        return None


def retrain_flow(*, use_serving_logs: bool, force: bool, params: str, profile: str | None, root: str,
                 reason: str) -> dict[str, Any]:
    """The monitor's retrain callable (:data:`prodrank.monitoring.trigger.RetrainFn`): the
    orchestration's retrain flow on the project at ``root`` (a subflow when the monitor runs as
    ``prodrank-monitor``), summarised from the report it writes. This is the one place where
    monitoring meets orchestration, so the monitor itself does not depend on how retraining runs."""
    env.configure(root)
    # the retrain flow imports Prefect at import time (about a second): only a drift verdict pays it
    from prodrank.orchestration.retrain import retrain

    log.info("retrain flow on %s: %s", root, reason)
    state = retrain(use_serving_logs=use_serving_logs, force=force, params=params, profile=profile,
                    project_dir=root, return_state=True)
    latest = Path(root) / "reports" / "retrain" / "latest.json"
    report = json.loads(latest.read_text()) if latest.exists() else {}
    failed = state.is_failed() or state.is_crashed()
    return {"status": "failed" if failed else report.get("status"), "flow_state": state.name,
            "run_id": report.get("run_id"), "decision": (report.get("decision") or {}).get("reason"),
            "error": report.get("error") if failed else None,
            "report": (report.get("reports") or {}).get("markdown")}


def monitor_body(start: str | None = None, end: str | None = None, name: str | None = None,
                 out_dir: str | None = None, compare_model: str | None = None, action: str | None = None,
                 overrides: dict[str, Any] | None = None, params: str = "params.yaml",
                 profile: str | None = None, project_dir: str | None = None) -> dict[str, Any]:
    """One drift report of the project at ``project_dir`` (default: the working directory, the
    deployment passes it); ``params`` is relative to it."""
    root = Path(project_dir or ".").resolve()
    cfg = apply_overrides(load_config(root / params, profile), overrides)
    summary = run_monitor(cfg, root, start=start, end=end, name=name, out_dir=out_dir, compare_model=compare_model,
                          action=action, params=params, profile=profile, retrain=retrain_flow)
    summary["artifact"] = _publish(summary)
    return summary


def monitor_flow():
    """The ``prodrank-monitor`` flow object (Prefect imported on first use)."""
    prefect = env.import_prefect()
    return prefect.flow(monitor_body, name="prodrank-monitor", persist_result=False, log_prints=True,
                        validate_parameters=False,
                        description="Serving-log window vs reference: Evidently drift report in reports/drift/; "
                                    "on drift, optionally trigger the retrain flow.")


def run(cfg: Config, params: str, profile: str | None, **kwargs: Any) -> dict[str, Any]:
    """``prodrank monitor`` in the working directory: inside the flow when Prefect is on (module
    doc), else directly; either way a drift verdict may start :func:`retrain_flow`."""
    how = mode(cfg)
    server = None
    if how != "off":
        env.configure()
        server = discover(wait_seconds=0)
    if how == "off" or (how == "auto" and server is None):
        overrides = kwargs.pop("overrides", None)
        return run_monitor(apply_overrides(cfg, overrides), ".", params=params, profile=profile,
                           retrain=retrain_flow, **kwargs)
    if server is not None:
        os.environ["PREFECT_API_URL"] = server.api_url
    return monitor_flow()(params=params, profile=profile, **kwargs)
