"""The drift demo (``make demo-drift``): serve → control traffic → monitor (no drift) → drifted
traffic → monitor (drift, on the right checks) → retraining triggered.

    python -m tools.monitoring.demo_drift                       # everything, in a fresh workspace
    python -m tools.monitoring.demo_drift --scenario price_shift --requests 300
    python -m tools.monitoring.demo_drift --workdir /tmp/ws     # keep the workspace there

Steps (each printed with its duration):

1. **workspace**: a copy of the project (params, dvc.yaml, expectations, src, flows) in a new
   folder with its own DVC repository, BentoML store and Prefect home, on the ``tiny`` profile
   (fast settings: no domain pretraining, cheap baselines) — nothing in the project changes;
2. ``dvc repro``: the tiny pipeline; its packaged model becomes the champion;
3. ``prodrank serve`` on a free loopback port;
4. control traffic (``simulate-traffic --scenario control``), then ``monitor`` on that window
   against the evaluation-time predictions: expected **no drift**;
5. drifted traffic (``--scenario all`` by default), server stopped (SIGTERM drains the log), then
   ``monitor --action trigger`` on that window: expected **drift** on the scenario's checks
   (:data:`~prodrank.monitoring.simulate.EXPECTED_CHECKS`), which triggers the retrain flow
   (serving logs as the new data; :func:`prodrank.monitoring.flow.retrain_flow`);
6. the summary: ``reports/drift/demo/summary.json`` and ``summary.md`` in the project, with the
   two reports copied beside them.

Exit status 0 when every expectation held, 1 otherwise (the summary says which failed).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from prodrank.config import Config, load_config
from prodrank.io import jsonable
from prodrank.monitoring.flow import apply_overrides, retrain_flow
from prodrank.monitoring.monitor import format_summary, run_monitor
from prodrank.monitoring.simulate import (
    DEFAULT_CATALOG_OUT,
    EXPECTED_CHECKS,
    SCENARIOS,
    parse_overrides,
    simulate_traffic,
)
from prodrank.monitoring.trigger import RetrainFn
from prodrank.serving.process import ServerProcess, free_port
from tools.sandbox import FAST_PARAMS, PROJECT_ROOT, executable, make_workspace, run_command, workspace_env

DEMO_PARAMS = {
    **FAST_PARAMS,
    "monitoring.action": "trigger",
    "monitoring.catalogs": ["data/prepared/catalog.parquet", "logs/simulator/catalog.parquet"],
    "monitoring.retrain.cooldown_hours": 0,
}


def expected_checks(scenario: str, overrides: dict[str, float] | None = None) -> set[str]:
    found = set(EXPECTED_CHECKS.get(scenario, set()))
    for knob, value in (overrides or {}).items():
        if value:
            found |= EXPECTED_CHECKS[knob]
    return found


def phases(cfg: Config, root: Path, url: str, retrain: RetrainFn, scenario: str = "all", requests: int = 300,
           rate: float = 50.0, seed: int = 0, catalog_out: Path | None = None,
           stop_server: Callable[[], None] | None = None, reference_from_control: bool = False,
           overrides: dict[str, float] | None = None, out_dir: Path | None = None,
           params: str = "params.yaml") -> dict[str, Any]:
    """Control traffic → monitor → drifted traffic → monitor (+ ``retrain`` on drift), against a
    running server. With ``reference_from_control`` a first control window is the reference
    (``monitoring.reference: log``); otherwise the configured reference (the evaluation
    predictions) is used. ``params`` is relative to ``root``, the project the retrain runs on."""
    catalog_out = catalog_out or root / DEFAULT_CATALOG_OUT
    out: dict[str, Any] = {"scenario": scenario, "expected_checks": sorted(expected_checks(scenario, overrides)),
                           "steps": {}}

    def now() -> str:
        return pd.Timestamp.now(tz="UTC").isoformat()

    def traffic(name: str, scen: str, s: int, drift: dict[str, float] | None = None) -> tuple[str, str]:
        start = now()
        t0 = time.perf_counter()
        stats = simulate_traffic(cfg, url, scenario=scen, requests=requests, rate=rate, duration=600, seed=s,
                                 overrides=drift, catalog_out=catalog_out)
        time.sleep(1.5)  # the server's log thread flushes after each batch; feedback may trail its request
        out["steps"][name] = {"seconds": round(time.perf_counter() - t0, 1), **stats}
        print(f"[{name}] {scen}: {stats['ok']} requests answered, feedback {stats['feedback']}, "
              f"{stats['seconds']:.1f}s", flush=True)
        return start, now()

    mon_cfg = cfg
    if reference_from_control:
        ref_start, ref_end = traffic("reference_traffic", "control", seed + 100)
        mon_cfg = apply_overrides(cfg, {"reference": "log", "reference_start": ref_start, "reference_end": ref_end})
    c_start, c_end = traffic("control_traffic", "control", seed + 1)
    t0 = time.perf_counter()
    control = run_monitor(mon_cfg, root, start=c_start, end=c_end, name="1-control", out_dir=str(out_dir) if out_dir
                          else None, retrain=retrain, params=params)
    out["steps"]["monitor_control"] = {"seconds": round(time.perf_counter() - t0, 1)}
    print(format_summary(control), flush=True)
    d_start, d_end = traffic("drift_traffic", scenario, seed + 2, overrides)
    if stop_server is not None:
        stop_server()  # SIGTERM drains the request log: every record is on disk
    t0 = time.perf_counter()
    drifted = run_monitor(mon_cfg, root, start=d_start, end=d_end, name=f"2-{scenario}",
                          out_dir=str(out_dir) if out_dir else None, retrain=retrain, params=params)
    out["steps"]["monitor_drift"] = {"seconds": round(time.perf_counter() - t0, 1)}
    print(format_summary(drifted), flush=True)
    expected = expected_checks(scenario, overrides)
    retrain = drifted.get("retrain") or {}
    out["control"] = {k: control[k] for k in ("name", "verdict", "drifted_checks", "reports")}
    out["drift"] = {k: drifted[k] for k in ("name", "verdict", "drifted_checks", "drifted_by_group", "reports")}
    out["retrain"] = retrain
    out["expectations"] = {
        "control: no drift": control["verdict"] == "no drift",
        "control: retrain not triggered": not (control.get("retrain") or {}).get("triggered"),
        "drift: verdict drift": drifted["verdict"] == "drift",
        f"drift: flagged {sorted(expected)}": expected <= set(drifted["drifted_checks"]),
        "drift: retrain triggered": bool(retrain.get("triggered")),
    }
    out["ok"] = all(out["expectations"].values())
    return out


def run_demo(workdir: Path | None, scenario: str, requests: int, rate: float, seed: int,
             overrides: dict[str, float] | None = None, reference: str = "evaluation") -> dict[str, Any]:
    """The whole demo (module doc) in ``workdir`` (default: a new temporary folder)."""
    started = time.perf_counter()
    root = Path(workdir or tempfile.mkdtemp(prefix="prodrank-demo-drift-")).resolve()
    port = free_port()
    summary: dict[str, Any] = {"workspace": str(root), "steps": {}}

    def step(name: str, t0: float) -> None:
        summary["steps"][name] = round(time.perf_counter() - t0, 1)
        print(f"[{name}] done in {summary['steps'][name]}s", flush=True)

    t0 = time.perf_counter()
    make_workspace(root, {**DEMO_PARAMS, "serving.port": port})
    env = workspace_env(root)
    step("workspace", t0)
    print(f"workspace: {root} (tiny profile; server on 127.0.0.1:{port})", flush=True)
    t0 = time.perf_counter()
    run_command([executable("dvc"), "repro", "-q"], root, env, root / "repro.log")
    step("dvc_repro", t0)
    # this process's stores are the workspace's from here on (the monitor, the retrain flow)
    for key in ("BENTOML_HOME", "PREFECT_HOME", "PRODRANK_PREFECT", "PRODRANK_PARAMS"):
        os.environ[key] = env[key]
    os.environ.pop("PREFECT_API_URL", None)
    cfg = load_config(root / "params.yaml")
    t0 = time.perf_counter()
    server = ServerProcess.start(env, root / "server.log", port=port, cwd=root)
    try:
        server.wait_ready()
        step("serve", t0)
        result = phases(cfg, root, server.url, retrain_flow, scenario=scenario, requests=requests, rate=rate,
                        seed=seed, stop_server=server.stop, overrides=overrides, params="params.yaml",
                        reference_from_control=reference == "log")
    finally:
        server.stop()
    steps = summary["steps"]
    summary.update({k: v for k, v in result.items() if k != "steps"})
    summary["traffic"] = {k: v for k, v in result["steps"].items() if k.endswith("_traffic")}
    summary["steps"] = {**steps, **{k: v.get("seconds") for k, v in result["steps"].items()}}
    summary["total_seconds"] = round(time.perf_counter() - started, 1)
    return summary


def publish(summary: dict[str, Any], dest: Path) -> None:
    """Copy the two reports and write summary.json / summary.md into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for key in ("control", "drift"):
        for path in (summary.get(key) or {}).get("reports", {}).values():
            if Path(path).exists():
                shutil.copy2(path, dest / Path(path).name)
    (dest / "summary.json").write_text(json.dumps(jsonable(summary), indent=2, default=str) + "\n")
    lines = [f"# Drift demo: {'PASSED' if summary.get('ok') else 'FAILED'}", "",
             f"workspace: `{summary.get('workspace')}` · scenario `{summary.get('scenario')}` · "
             f"{summary.get('total_seconds')} s", "", "| expectation | held |", "|---|---|"]
    lines += [f"| {k} | {'yes' if v else '**no**'} |" for k, v in (summary.get("expectations") or {}).items()]
    lines += ["", f"- control: {summary['control']['verdict']} ({', '.join(summary['control']['drifted_checks']) or '-'})",
              f"- drift: {summary['drift']['verdict']} ({', '.join(summary['drift']['drifted_checks'])})",
              f"- retrain: {json.dumps({k: v for k, v in (summary.get('retrain') or {}).items() if k != 'result'}, default=str)}",
              "", "| step | seconds |", "|---|---|", *[f"| {k} | {v} |" for k, v in summary["steps"].items()]]
    (dest / "summary.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", help="workspace folder (default: a new /tmp/prodrank-demo-drift-*)")
    parser.add_argument("--scenario", default="all", choices=[s for s in SCENARIOS if s != "control"])
    parser.add_argument("--drift", action="append", metavar="KNOB=VALUE", help="extra world.drift knob")
    parser.add_argument("--requests", type=int, default=800, help="requests per traffic phase (>= monitoring.min_requests)")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference", choices=["evaluation", "log"], default="evaluation",
                        help="evaluation: the test-split predictions (default); log: a first control window")
    parser.add_argument("--out", default=str(PROJECT_ROOT / "reports" / "drift" / "demo"),
                        help="where the summary and the two reports are copied")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "urllib3", "great_expectations", "prefect", "bentoml"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    summary = run_demo(Path(args.workdir) if args.workdir else None, args.scenario, args.requests, args.rate,
                       args.seed, parse_overrides(args.drift), args.reference)
    out = Path(args.out).resolve()
    publish(summary, out)
    print((out / "summary.md").read_text())
    return 0 if summary.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
