"""The monitoring Prefect flow, ``prodrank-monitor`` (entrypoint ``flows/monitor.py:monitor``).

One flow run = one drift report (:func:`prodrank.monitoring.monitor.run_monitor`): tasks
``read-and-report`` then, on a drift verdict with ``monitoring.action: trigger``, the retrain flow
as a subflow. The report's verdict table is published as a markdown artifact (key
``prodrank-drift``) beside the files in ``reports/drift/``.

``prodrank monitor`` runs it inside this flow when a Prefect server answers (or
``orchestration.prefect: on`` / ``$PRODRANK_PREFECT=on``), like the pipeline stages; otherwise it
calls :func:`run_monitor` directly (same files, no artifact).
"""
from __future__ import annotations

import logging
import os
from typing import Any

from prodrank.config import Config, load_config
from prodrank.monitoring.report import threshold_text

log = logging.getLogger("prodrank.monitoring")
ARTIFACT_KEY = "prodrank-drift"


def apply_overrides(cfg: Config, overrides: dict[str, Any] | None) -> Config:
    """``cfg`` with ``monitoring.<key>`` replaced for each key of ``overrides`` (validated)."""
    if not overrides:
        return cfg
    from prodrank.config import MonitoringConfig

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
        from prefect.artifacts import create_markdown_artifact

        artifact = create_markdown_artifact(markdown=render_markdown(summary), key=ARTIFACT_KEY,
                                            description=f"drift report {summary['name']}: {summary['verdict']}")
        return str(getattr(artifact, "id", artifact))
    except Exception as err:  # noqa: BLE001 - the files are the record
        log.warning("could not create the Prefect artifact: %s", err)
        return None


def monitor_body(start: str | None = None, end: str | None = None, name: str | None = None,
                 out_dir: str | None = None, compare_model: str | None = None, action: str | None = None,
                 overrides: dict[str, Any] | None = None, params: str = "params.yaml",
                 profile: str | None = None, project_dir: str | None = None) -> dict[str, Any]:
    from prodrank.monitoring.monitor import run_monitor

    if project_dir:
        os.chdir(project_dir)
    cfg = apply_overrides(load_config(params, profile), overrides)
    summary = run_monitor(cfg, ".", start=start, end=end, name=name, out_dir=out_dir, compare_model=compare_model,
                          action=action, params=params, profile=profile)
    summary["artifact"] = _publish(summary)
    return summary


def monitor_flow():
    """The ``prodrank-monitor`` flow object (Prefect imported on first use)."""
    from prodrank.orchestration import env

    prefect = env.import_prefect()
    return prefect.flow(monitor_body, name="prodrank-monitor", persist_result=False, log_prints=True,
                        validate_parameters=False,
                        description="Serving-log window vs reference: Evidently drift report in reports/drift/; "
                                    "on drift, optionally trigger the retrain flow.")


def run(cfg: Config, params: str, profile: str | None, **kwargs: Any) -> dict[str, Any]:
    """``prodrank monitor``: inside the flow when Prefect is on (module doc), else directly."""
    from prodrank.orchestration import env
    from prodrank.orchestration.stageflow import mode

    how = mode(cfg)
    server = None
    if how != "off":
        from prodrank.orchestration.server import discover

        env.configure()
        server = discover(wait_seconds=0)
    if how == "off" or (how == "auto" and server is None):
        from prodrank.monitoring.monitor import run_monitor

        overrides = kwargs.pop("overrides", None)
        return run_monitor(apply_overrides(cfg, overrides), ".", params=params, profile=profile, **kwargs)
    if server is not None:
        os.environ["PREFECT_API_URL"] = server.api_url
    return monitor_flow()(params=params, profile=profile, **kwargs)
