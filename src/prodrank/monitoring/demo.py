"""The drift demo (``make demo-drift``): serve → control traffic → monitor (no drift) → drifted
traffic → monitor (drift, on the right checks) → retraining triggered.

    python -m prodrank.monitoring.demo                       # everything, in a fresh workspace
    python -m prodrank.monitoring.demo --scenario price_shift --requests 300
    python -m prodrank.monitoring.demo --workdir /tmp/ws     # keep the workspace there

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
   (:data:`EXPECTED`), which triggers the retrain flow (serving logs as the new data);
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
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

log = logging.getLogger("prodrank.monitoring.demo")

PROJECT_ROOT = Path(__file__).resolve().parents[3]
COPY = ("params.yaml", "dvc.yaml", "bentofile.yaml", "expectations", "src", "flows", "pyproject.toml")
# the check(s) each scenario must flag (others may drift as consequences, e.g. prediction drift)
EXPECTED = {
    "category_shift": {"category"},
    "new_vocabulary": {"query_oov_share"},
    "new_products": {"unseen_product"},
    "price_shift": {"price"},
}
EXPECTED["all"] = set().union(*EXPECTED.values())
FAST_PARAMS = {  # the tiny pipeline in about a minute (as the orchestration tests run it)
    "profile": "tiny",
    "pretrain.enabled": False,
    "evaluate.baselines": ["random", "production"],
    "evaluate.bootstrap_samples": 20,
    "orchestration.prefect": "off",
    "orchestration.build_bento": False,
    "monitoring.action": "trigger",
    "monitoring.catalogs": ["data/prepared/catalog.parquet", "logs/simulator/catalog.parquet"],
    "monitoring.retrain.cooldown_hours": 0,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def set_params(path: Path, updates: dict[str, Any]) -> None:
    params = yaml.safe_load(path.read_text())
    for dotted, value in updates.items():
        node = params
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def make_workspace(directory: Path, port: int) -> Path:
    """The project's sources and configuration in ``directory``, a DVC repository of its own."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in COPY:
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, directory / name, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        elif source.is_file():
            shutil.copy2(source, directory / name)
    set_params(directory / "params.yaml", {**FAST_PARAMS, "serving.port": port})
    if not (directory / ".dvc").exists():
        _run([_exe("dvc"), "init", "--no-scm", "-q"], directory)
    return directory


def _exe(name: str) -> str:
    path = Path(sys.executable).with_name(name)
    return str(path) if path.exists() else name


def workspace_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", BENTOML_HOME=str(root / ".bentoml"),
               PREFECT_HOME=str(root / ".prefect"), PRODRANK_PREFECT="off", BENTOML_DO_NOT_TRACK="true",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", DVC_NO_ANALYTICS="1",
               GX_ANALYTICS_ENABLED="false", PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW="ignore", PRODRANK_PARAMS=str(root / "params.yaml"))
    env.pop("PRODRANK_MODEL_TAG", None)
    env.pop("PREFECT_API_URL", None)
    env.pop("PRODRANK_PROFILE", None)
    return env


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, log_path: Path | None = None) -> None:
    out = open(log_path, "w") if log_path else subprocess.PIPE
    try:
        result = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    finally:
        if log_path:
            out.close()
    if result.returncode != 0:
        tail = log_path.read_text()[-3000:] if log_path else (result.stdout or "")[-3000:]
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n{tail}")


class Server:
    """``prodrank serve`` (= ``bentoml serve``, same PID) in the workspace; stopped by PID."""

    def __init__(self, root: Path, port: int, env: dict[str, str]) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = root / "server.log"
        self._out = open(self.log_path, "wb")
        self.proc = subprocess.Popen([_exe("prodrank"), "serve", "--port", str(port), "--host", "127.0.0.1"],
                                     cwd=root, env=env, stdout=self._out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode}):\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the server was not ready in {timeout:.0f} s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._out.close()
        return self.proc.returncode


def expected_checks(scenario: str, overrides: dict[str, float] | None = None) -> set[str]:
    found = set(EXPECTED.get(scenario, set()))
    for knob, value in (overrides or {}).items():
        if value:
            found |= EXPECTED[knob]
    return found


def phases(cfg, root: Path, url: str, scenario: str = "all", requests: int = 300, rate: float = 50.0,
           seed: int = 0, catalog_out: Path | None = None, trigger_fn=None, stop_server=None,
           reference_from_control: bool = False, overrides: dict[str, float] | None = None,
           out_dir: Path | None = None, params: str = "params.yaml") -> dict[str, Any]:
    """Control traffic → monitor → drifted traffic → monitor (+ trigger), against a running server.
    With ``reference_from_control`` a first control window is the reference (``monitoring.reference:
    log``); otherwise the configured reference (the evaluation predictions) is used."""
    from prodrank.monitoring.flow import apply_overrides
    from prodrank.monitoring.monitor import format_summary, run_monitor
    from prodrank.monitoring.simulate import DEFAULT_CATALOG_OUT, simulate_traffic

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
                          else None, trigger_fn=trigger_fn, params=params)
    out["steps"]["monitor_control"] = {"seconds": round(time.perf_counter() - t0, 1)}
    print(format_summary(control), flush=True)
    d_start, d_end = traffic("drift_traffic", scenario, seed + 2, overrides)
    if stop_server is not None:
        stop_server()  # SIGTERM drains the request log: every record is on disk
    t0 = time.perf_counter()
    drifted = run_monitor(mon_cfg, root, start=d_start, end=d_end, name=f"2-{scenario}",
                          out_dir=str(out_dir) if out_dir else None, trigger_fn=trigger_fn, params=params)
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
    from prodrank.config import load_config

    started = time.perf_counter()
    root = Path(workdir or tempfile.mkdtemp(prefix="prodrank-demo-drift-")).resolve()
    port = free_port()
    summary: dict[str, Any] = {"workspace": str(root), "steps": {}}

    def step(name: str, t0: float) -> None:
        summary["steps"][name] = round(time.perf_counter() - t0, 1)
        print(f"[{name}] done in {summary['steps'][name]}s", flush=True)

    t0 = time.perf_counter()
    make_workspace(root, port)
    env = workspace_env(root)
    step("workspace", t0)
    print(f"workspace: {root} (tiny profile; server on 127.0.0.1:{port})", flush=True)
    t0 = time.perf_counter()
    _run([_exe("dvc"), "repro", "-q"], root, env, root / "repro.log")
    step("dvc_repro", t0)
    # this process acts inside the workspace from here on (the monitor, the retrain flow)
    for key in ("BENTOML_HOME", "PREFECT_HOME", "PRODRANK_PREFECT", "PRODRANK_PARAMS"):
        os.environ[key] = env[key]
    os.environ.pop("PREFECT_API_URL", None)
    cfg = load_config(root / "params.yaml")
    t0 = time.perf_counter()
    server = Server(root, port, env)
    try:
        server.wait_ready()
        step("serve", t0)
        previous = Path.cwd()
        os.chdir(root)
        try:
            result = phases(cfg, root, server.url, scenario=scenario, requests=requests, rate=rate, seed=seed,
                            stop_server=server.stop, overrides=overrides, params="params.yaml",
                            reference_from_control=reference == "log")
        finally:
            os.chdir(previous)
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
    from prodrank.monitoring.report import _jsonable

    dest.mkdir(parents=True, exist_ok=True)
    for key in ("control", "drift"):
        for path in (summary.get(key) or {}).get("reports", {}).values():
            if Path(path).exists():
                shutil.copy2(path, dest / Path(path).name)
    (dest / "summary.json").write_text(json.dumps(_jsonable(summary), indent=2, default=str) + "\n")
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
    from prodrank.monitoring.simulate import SCENARIOS, parse_overrides

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
    publish(summary, Path(args.out))
    print(Path(args.out, "summary.md").read_text())
    return 0 if summary.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
