"""Monitoring benchmark: false-alarm rate and detection power of the drift checks, many windows.

    python benchmarks/bench_monitoring.py --quick                  # 500-request windows, few of them
    python benchmarks/bench_monitoring.py                          # the full table (docs/monitoring.md)
    python benchmarks/bench_monitoring.py --workspace /tmp/ws      # reuse a workspace where the pipeline ran

The monitoring settings are the project's (``--params``); the model is the tiny profile's (its scores barely spread, the case that broke fixed thresholds),
trained in a fresh workspace as ``make demo-drift`` does (or ``--workspace``: any folder where
``dvc repro`` ran, whatever its profile). Traffic is the simulator's (``prodrank.monitoring.simulate``):
each session's query with its candidate set, scored *in-process* once per distinct query and
world (the served log's format, scores rounded as the service logs them), then windows of
``--sizes`` requests drawn with replacement from the world's sessions. Each window is monitored
against the evaluation reference exactly as ``prodrank monitor`` decides (features, drift table,
calibrated checks, verdict), without rendering the HTML report.

- **control**: the world the model was trained on; a drift verdict is a false alarm. Rate with
  its one-sided 95 % Clopper-Pearson upper bound.
- **scenarios**: category shift, new vocabulary, new products, price shift, at the demo's
  magnitudes and at half of them; a drift verdict is a detection. Power with its one-sided 95 %
  lower bound, and how often the scenario's own check (``simulate.EXPECTED_CHECKS``) fired.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from prodrank.config import Config, load_config
from prodrank.monitoring import features as F
from prodrank.monitoring.calibrate import Calibrator
from prodrank.monitoring.logwindow import Window
from prodrank.monitoring.monitor import build_context, reference_window
from prodrank.monitoring.report import check_group, drift_checks, enabled_checks
from prodrank.monitoring.simulate import (
    DEFAULT_CATALOG_OUT,
    DRIFT_KEYS,
    EXPECTED_CHECKS,
    SCENARIOS,
    prepare,
    write_catalog,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: tools/ lives beside benchmarks/
from tools.sandbox import (  # noqa: E402
    FAST_PARAMS,
    PROJECT_ROOT,
    executable,
    make_workspace,
    run_command,
    workspace_env,
)

MODEL_TAG = "bench-in-process"


@dataclass
class World:
    """One (drifted) world's traffic: each session's query, and each query's logged request."""

    name: str
    magnitude: str
    session_query: np.ndarray
    records: list[dict | None]


@dataclass
class Cell:
    """Windows of one world at one size, and how many of them the monitor called drift."""

    world: str
    magnitude: str
    size: int
    windows: int = 0
    alarms: int = 0
    expected_hits: int = 0
    checks: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def rate(self) -> float:
        return self.alarms / self.windows if self.windows else float("nan")

    def bounds(self) -> tuple[float, float]:
        """One-sided 95 % Clopper-Pearson lower and upper bounds of the alarm rate."""
        k, n = self.alarms, self.windows
        lower = 0.0 if k == 0 else float(stats.beta.ppf(0.05, k, n - k + 1))
        upper = 1.0 if k == n else float(stats.beta.ppf(0.95, k + 1, n - k))
        return lower, upper


def ensure_workspace(path: Path | None) -> Path:
    """A folder where the pipeline ran: ``path`` if it holds a model and evaluation predictions,
    otherwise a new tiny workspace (about 1-3 minutes of ``dvc repro``)."""
    if path is not None and (path / "models" / "ranker").is_dir() and \
            (path / "reports" / "evaluation" / "predictions.parquet").is_file():
        return path
    root = (path or Path(tempfile.mkdtemp(prefix="prodrank-bench-monitoring-"))).resolve()
    print(f"training the tiny pipeline in {root} ...", flush=True)
    make_workspace(root, dict(FAST_PARAMS))
    run_command([executable("dvc"), "repro", "-q"], root, workspace_env(root), root / "repro.log")
    return root


def served_records(cfg: Config, ranker, root: Path, name: str, magnitude: str, knobs: dict[str, float]) -> World:
    """The world with drift ``knobs``: every query scored once, as the service would log its request."""
    traffic = prepare(cfg, "control", knobs)
    write_catalog(traffic.catalog, root / DEFAULT_CATALOG_OUT)  # the monitor looks new products up there
    world, pools = traffic.world, traffic.world.pools
    keys = ("title", "brand", "category", "attributes", "description", "price", "rating")
    fields = {item["id"]: {k: item.get(k) for k in keys} for item in traffic.payload}  # the request's fields
    ids_of = [[str(world.catalog.product_id[pools.product[p]]) for p in pairs] for pairs in traffic.candidates]
    queries = [str(traffic.query_text[q]) for q, ids in enumerate(ids_of) for _ in ids]
    flat_ids = [pid for ids in ids_of for pid in ids]
    scored = ranker.score(queries, flat_ids, {pid: fields[pid] for pid in set(flat_ids)})
    records: list[dict | None] = []
    offset = 0
    for q, ids in enumerate(ids_of):
        part = slice(offset, offset + len(ids))
        offset += len(ids)
        if not ids:
            records.append(None)
            continue
        score = np.round(scored["score"][part], 6)
        positions = np.empty(len(ids), np.int64)
        positions[np.argsort(-score, kind="stable")] = np.arange(1, len(ids) + 1)
        records.append({"query": str(traffic.query_text[q]), "candidate_ids": ids, "positions": positions.tolist(),
                        "scores": {"score": score.tolist(),
                                   **{f"p_{t}": np.round(scored[t][part], 6).tolist() for t in ranker.tasks}},
                        "prices": [fields[p].get("price") for p in ids], "ratings": [fields[p].get("rating") for p in ids]})
    return World(name, magnitude, traffic.session_query, records)


def window(world: World, size: int, rng: np.random.Generator) -> pd.DataFrame:
    """``size`` requests: sessions drawn with replacement, each its query's logged request."""
    usable = np.array([s for s in range(len(world.session_query)) if world.records[world.session_query[s]] is not None])
    rows = [world.records[world.session_query[s]] for s in rng.choice(usable, size=size)]
    frame = pd.DataFrame(rows)
    frame.insert(0, "request_id", [f"{i:032x}" for i in range(size)])
    frame.insert(1, "timestamp", pd.Timestamp("2026-11-01", tz="UTC"))
    frame.insert(2, "model_version", MODEL_TAG)
    return frame


class Monitor:
    """The monitor's decision for many windows against one reference (calibration shared)."""

    def __init__(self, cfg: Config, root: Path, example: pd.DataFrame) -> None:
        self.mon = cfg.monitoring
        current = Window(example, pd.DataFrame())
        reference, _, self.ctx = reference_window(cfg, root, lambda: build_context(cfg, root, current), current)
        self.tasks = reference.tasks
        self.checks = enabled_checks(self.mon, self.tasks)
        self.reference = F.drift_frame(reference, self.tasks)
        self.calibrator = Calibrator(self.reference, self.mon.calibration_resamples, self.mon.seed)

    def drifted(self, requests: pd.DataFrame) -> list[str]:
        """The drifted checks of the groups that count, or [] when the verdict is no drift."""
        current = F.drift_frame(F.from_log(requests, None, self.ctx, self.mon.gap_k), self.tasks)
        results = drift_checks(self.reference, current, self.checks, self.mon, self.calibrator)
        counted = [r.check for r in results if r.drift and check_group(r.check) in self.mon.trigger_on]
        return counted if len(counted) >= self.mon.min_drifted_checks else []


def run_cell(monitor: Monitor, world: World, size: int, windows: int, seed: int) -> Cell:
    cell = Cell(world.name, world.magnitude, size)
    rng = np.random.default_rng([seed, size, hash(world.name + world.magnitude) % 2**32])
    expected = EXPECTED_CHECKS.get(world.name, set())
    started = time.perf_counter()
    for _ in range(windows):
        drifted = monitor.drifted(window(world, size, rng))
        cell.windows += 1
        cell.alarms += bool(drifted)
        cell.expected_hits += bool(expected & set(drifted))
        cell.checks.update(drifted)
    cell.seconds = time.perf_counter() - started
    return cell


def table(cells: list[Cell]) -> str:
    lines = ["| traffic | magnitude | requests/window | windows | drift verdicts | rate | 95 % bound | "
             "own check fired | checks that fired (windows) | s/window |", "|---|---|---|---|---|---|---|---|---|---|"]
    for c in cells:
        lower, upper = c.bounds()
        bound = f"≤ {upper:.3f}" if c.world == "control" else f"≥ {lower:.3f}"
        own = "—" if c.world == "control" else f"{c.expected_hits}/{c.windows}"
        fired = ", ".join(f"{k} {v}" for k, v in c.checks.most_common(4)) or "—"
        lines.append(f"| {c.world} | {c.magnitude} | {c.size} | {c.windows} | {c.alarms} | {c.rate():.3f} | {bound} | "
                     f"{own} | {fired} | {c.seconds / max(1, c.windows):.2f} |")
    return "\n".join(lines)


def acceptance(cells: list[Cell]) -> list[str]:
    """The targets: false alarms <= 0.05 per window (95 % bound <= 0.10); power >= 0.95 at the demo
    magnitude with 500-request windows."""
    failed = []
    for c in cells:
        if c.world == "control" and (c.rate() > 0.05 or c.bounds()[1] > 0.10):
            failed.append(f"control at {c.size}: rate {c.rate():.3f}, bound {c.bounds()[1]:.3f}")
        if c.world != "control" and c.magnitude == "demo" and c.size == 500 and c.rate() < 0.95:
            failed.append(f"{c.world} (demo magnitude) at 500: power {c.rate():.3f}")
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, help="a folder where the pipeline ran (default: train a tiny one)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000], help="requests per window")
    parser.add_argument("--control-windows", type=int, default=120)
    parser.add_argument("--drift-windows", type=int, default=20, help="windows per scenario, magnitude and size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--params", type=Path, default=PROJECT_ROOT / "params.yaml",
                        help="the monitoring settings to measure (default: the project's)")
    parser.add_argument("--quick", action="store_true", help="500-request windows: 40 control, 5 per scenario")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.control_windows, args.drift_windows = [500], 40, 5
    started = time.perf_counter()
    root = ensure_workspace(args.workspace)
    os.environ.update({k: v for k, v in workspace_env(root).items() if k in ("BENTOML_HOME", "PREFECT_HOME")})
    cfg = load_config(root / "params.yaml")
    # the model and data are the workspace's; the monitoring settings are the ones under test
    cfg = cfg.model_copy(update={"monitoring": load_config(args.params, profile=cfg.profile).monitoring})
    from prodrank.models.ranker import load_ranker  # torch: seconds to import

    ranker = load_ranker(root / "models" / "ranker")
    worlds = [served_records(cfg, ranker, root, "control", "—", {})]
    for name in (s for s in SCENARIOS if s in DRIFT_KEYS):
        for magnitude, factor in (("demo", 1.0), ("half", 0.5)):
            knobs = {k: v * factor for k, v in SCENARIOS[name].items()}
            worlds.append(served_records(cfg, ranker, root, name, magnitude, knobs))
    print(f"scored {len(worlds)} worlds in {time.perf_counter() - started:.0f}s", flush=True)
    monitor = Monitor(cfg, root, window(worlds[0], max(args.sizes), np.random.default_rng(args.seed)))
    cells = []
    for size in args.sizes:
        for world in worlds:
            windows = args.control_windows if world.name == "control" else args.drift_windows
            cells.append(run_cell(monitor, world, size, windows, args.seed))
            print(table(cells[-1:]).splitlines()[-1], flush=True)
    print(f"\nprofile {cfg.profile}; false_alarm_rate {cfg.monitoring.false_alarm_rate}; "
          f"{cfg.monitoring.calibration_resamples} resamples; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; {time.perf_counter() - started:.0f}s in all\n")
    print(table(cells))
    failed = acceptance(cells)
    print("\nacceptance: " + ("held" if not failed else "FAILED: " + "; ".join(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
