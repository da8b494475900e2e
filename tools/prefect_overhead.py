"""Measure what running a stage as a Prefect flow costs: ``python -m tools.prefect_overhead``.

Each sample is a fresh process, as under ``dvc repro``, running ``prodrank.orchestration.stageflow.run_stage``
on a stage whose body does nothing (so only the wrapping is timed):

- ``plain``  ``PRODRANK_PREFECT=off``: interpreter start, prodrank imports, config load;
- ``flow``   ``PRODRANK_PREFECT=auto`` against the running server: + ``import prefect``, the flow and
             task runs, their states and logs sent to the server, the flush at exit.

The difference is the per-stage overhead. ``--dvc`` also times a no-op ``dvc repro`` in the
current project (nothing changed: no stage starts, so Prefect adds nothing there). Needs a
server (``make prefect-server``) for the ``flow`` samples; without one only ``plain`` is timed.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from prodrank.orchestration import env, server

SNIPPET = """
import sys
from prodrank import stages
from prodrank.config import load_config
from prodrank.orchestration.stageflow import run_stage
stages.validate = lambda cfg: None   # the stage body does nothing: only the wrapping is timed
run_stage("validate", load_config(sys.argv[1]), sys.argv[1])
"""


def sample(mode: str, params: str) -> float:
    env = {**os.environ, "PRODRANK_PREFECT": mode}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", SNIPPET, params], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.prefect_overhead", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--dvc", action="store_true", help="also time a no-op `dvc repro`")
    args = parser.parse_args(argv)
    env.configure()
    found = server.discover()
    modes = ["plain", "flow"] if found else ["plain"]
    if not found:
        print("no Prefect server answers (make prefect-server): timing the plain runs only", file=sys.stderr)
    times: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(args.runs):  # interleaved, so load changes hit both alike
        for m in modes:
            times[m].append(sample("off" if m == "plain" else "auto", args.params))
    for m, values in times.items():
        print(f"{m:6s} median {statistics.median(values):5.2f} s  min {min(values):5.2f} s  "
              f"max {max(values):5.2f} s  (n={len(values)})")
    if found:
        diff = [f - p for f, p in zip(times["flow"], times["plain"], strict=True)]
        print(f"per-stage Prefect overhead: median {statistics.median(diff):.2f} s (min {min(diff):.2f} s), "
              f"server {found.ui_url}")
    if args.dvc:
        exe = Path(sys.executable).with_name("dvc")
        bin_path = {"PATH": str(exe.parent) + os.pathsep + os.environ.get("PATH", "")}
        noop = []
        for _ in range(args.runs):
            started = time.perf_counter()
            result = subprocess.run([str(exe), "repro"], env={**os.environ, **bin_path}, capture_output=True, text=True)
            noop.append(time.perf_counter() - started)
            if [line for line in result.stdout.splitlines() if line.startswith("Running stage")
                    and "'inputs'" not in line]:  # inputs runs on every repro, by design
                print("dvc repro ran a stage: the workspace was not up to date; this sample is not a no-op",
                      file=sys.stderr)
        print(f"no-op dvc repro: median {statistics.median(noop):.2f} s  max {max(noop):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
