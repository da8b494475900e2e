"""``make reliability``: fuzzing, bounded load, injected faults and security checks, written to
``docs/reliability.md`` (a table: test, load or fault, what held, figures) and
``reports/reliability/results.json``.

    python -m tools.reliability.suite                      # everything (about 20 minutes here)
    python -m tools.reliability.suite --load-seconds 60 --fuzz-examples 50   # a quicker pass
    python -m tools.reliability.suite --project-model      # load-test the project's champion
    python -m tools.reliability.suite --fuzz-only          # only the full fuzzing run and its record

Steps: a sandbox workspace runs the tiny pipeline (:mod:`tools.sandbox`), whose packaged
champion every server below loads; then schemathesis fuzzing (tests/serving/test_fuzz.py with
more examples; a full run is recorded in ``docs/reliability-fuzz.json``, see
:mod:`tools.reliability.fuzzing`), the capacity measurement and the bounded load at 70 % of it, the faults
(:mod:`tools.reliability.faults`), the security checks (:mod:`tools.reliability.security`)
and the Prefect failure tests (a transient failure retried then failed; an invalid data drop
failing the retrain run with the champion kept). Exit status 0 when every check held.
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pandas as pd
import psutil

from prodrank.io import write_json, write_text
from prodrank.serving.process import request
from tools.reliability import faults, fuzzing, security
from tools.reliability.faults import Check, Target
from tools.reliability.load import audit_log, capacity, rank_bodies, run_load
from tools.sandbox import FAST_PARAMS, PROJECT_ROOT, executable, make_workspace, run_command, workspace_env

MEMORY_GROWTH_BOUND = 0.10  # RSS at the end of the load may exceed RSS at its start by at most 10 %
# the whole module: its failure cases need the champion its earlier tests promote
PREFECT_TESTS = ["tests/orchestration/test_retrain_flow.py"]
# the fuzzing itself, not the test that compares the served schema with the record this run writes
FUZZ_TESTS = ["tests/serving/test_fuzz.py::test_schema_lists_the_public_operations",
              "tests/serving/test_fuzz.py::test_api_conforms_to_its_schema_and_never_fails"]


def sandbox_target(root: Path, candidates: int) -> tuple[Target, dict[str, str]]:
    """The tiny pipeline in a fresh workspace; its champion is what the servers load."""
    make_workspace(root, {**FAST_PARAMS, "serving.log_dir": str(root / "logs" / "serving")})
    env = workspace_env(root)
    run_command([executable("dvc"), "repro", "-q"], root, env, root / "repro.log")
    return Target(root / "params.yaml", root / ".bentoml", _bodies(root, candidates), root / "reliability"), env


def project_target(workdir: Path, candidates: int) -> Target:
    """The project's own packaged champion and params.yaml (after ``make run``)."""
    home = Path(os.environ.get("BENTOML_HOME", PROJECT_ROOT / ".bentoml"))
    if not (home / "models").is_dir():
        raise SystemExit(f"no BentoML store at {home}: run `make run` first, or leave out --project-model")
    return Target(PROJECT_ROOT / "params.yaml", home, _bodies(PROJECT_ROOT, candidates), workdir)


def _bodies(root: Path, candidates: int) -> list[bytes]:
    catalog = pd.read_parquet(root / "data" / "prepared" / "catalog.parquet")
    queries = pd.read_parquet(root / "data" / "prepared" / "test" / "queries.parquet")["query"].tolist()
    return rank_bodies(catalog, queries, 200, candidates)


def pytest_check(name: str, kind: str, what: str, node_ids: list[str], workdir: Path,
                 env: dict[str, str] | None = None) -> Check:
    """Run project tests as one check; figures from their JUnit report."""
    report = workdir / f"{name.replace(' ', '_')}.xml"
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
                          *node_ids], cwd=PROJECT_ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    suites = ET.parse(report).getroot() if report.exists() else None
    suite = suites.find("testsuite") if suites is not None and suites.tag == "testsuites" else suites
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")} if suite is not None else {}
    figures = {**counts, "seconds": round(time.monotonic() - started, 1)}
    if run.returncode != 0:
        figures["output_tail"] = run.stdout[-1500:]
    return Check(name, kind, run.returncode == 0 and counts.get("tests", 0) > 0 and not counts.get("skipped"), what, figures)


def load_check(target: Target, seconds: float, capacity_seconds: float) -> Check:
    root = target.workdir / "load"
    server = faults.start_server(target, root)
    try:
        server.wait_ready()
        # every distinct body once: the product cache fills here, so the memory bound below
        # measures growth in the steady state, not the cache's first fill (bounded by product_cache_size)
        warm_up = [request(server.url, "POST", "/rank", body)[0] for body in target.bodies]
        if warm_up.count(200) != len(warm_up):
            raise RuntimeError(f"warm-up requests failed: {sorted(set(warm_up))}")
        sustainable = capacity(server.url, target.bodies, capacity_seconds)
        rate = 0.7 * sustainable
        result = run_load(server.url, target.bodies, rate, seconds, concurrency=4, server_pid=server.pid)
        stop_code = server.stop()
    except BaseException:
        server.stop()
        raise
    summary = result.summary()
    audit = audit_log(root / "logs", result.acknowledged, result.acknowledged_feedback)
    rss = summary["rss_mb"]
    growth = (rss["end"] - rss["start"]) / rss["start"] if rss["start"] else None
    held = (summary["errors"] == 0 and audit["missing_requests"] == 0 and audit["missing_feedback"] == 0
            and audit["duplicated_requests"] == 0 and audit["unreadable_lines"] == 0 and stop_code == 0
            and growth is not None and growth <= MEMORY_GROWTH_BOUND)
    return Check(f"load: {seconds:.0f} s at 70 % of capacity", "load", held,
                 f"no error; every request and feedback logged once; RSS growth <= {MEMORY_GROWTH_BOUND:.0%}",
                 {"capacity_req_s": round(sustainable, 2), **summary, "rss_growth": round(growth, 4) if growth is not None else None,
                  "log": audit, "clean_stop_exit": stop_code})


def fuzz_check(examples: int, workdir: Path) -> Check:
    """The fuzz tests with ``examples`` per operation. A full run is recorded with the digest of the
    schema it fuzzed, held or not, so ``make test`` knows which schema the last full run vouches for."""
    workdir.mkdir(parents=True, exist_ok=True)  # the sandbox's own folder is made by the first server
    digest_file = workdir / "fuzzed_schema.sha256"
    digest_file.unlink(missing_ok=True)
    check = pytest_check("API fuzzing (schemathesis)", "fuzz",
                         f"zero 5xx and zero responses violating the OpenAPI schema over {examples} examples per operation",
                         FUZZ_TESTS, workdir, {"PRODRANK_FUZZ_EXAMPLES": str(examples), fuzzing.DIGEST_ENV: str(digest_file)})
    if examples >= fuzzing.FULL_EXAMPLES and digest_file.exists():
        fuzzing.write_record(digest_file.read_text().strip(), examples, check.figures, check.held, utc_now())
        print(f"[reliability] recorded the full fuzzing run in {fuzzing.RECORD.relative_to(PROJECT_ROOT)}", flush=True)
    return check


def fuzz_only(examples: int) -> int:
    """Only the fuzzing, against the tests' own server (no sandbox pipeline); docs/reliability.md is
    left as it is, the fuzzing record is refreshed."""
    with tempfile.TemporaryDirectory(prefix="prodrank-fuzz-") as workdir:
        check = fuzz_check(examples, Path(workdir))
    print(f"[reliability] {check.test}: {'held' if check.held else 'DID NOT HOLD'} ({_figures(check.figures)})",
          flush=True)
    if not check.held:
        print(check.figures.get("output_tail", ""), flush=True)
    return 0 if check.held else 1


def utc_now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def render(checks: list[Check], meta: dict[str, Any], workspace: Path) -> str:
    """The results table; the temporary workspace is named ``<workspace>``, not by its path."""
    lines = [
        "# Reliability and security",
        "",
        f"Generated by `make reliability` (`python -m tools.reliability.suite {meta['args']}`) on "
        f"{meta['finished_at']}. Hardware: {meta['hardware']}; load average {meta['load_average_at_start']} when it "
        "started (other jobs share the CPU when it is above 0). Every server is a real `bentoml serve` on 127.0.0.1.",
        f"Model under load: {meta['load_model']}. Raw figures: `reports/reliability/results.json`.",
        "",
        f"**{sum(c.held for c in checks if not c.skipped)} of {sum(not c.skipped for c in checks)} checks held**"
        + (f"; {sum(bool(c.skipped) for c in checks)} skipped" if any(c.skipped for c in checks) else "") + ".",
        "",
        "| test | load or fault | what must hold | held | figures |",
        "|---|---|---|---|---|",
    ]
    for check in checks:
        held = "skipped: " + check.skipped if check.skipped else ("yes" if check.held else "**NO**")
        figures = _figures(check.figures).replace(str(workspace), "<workspace>")
        lines.append(f"| {check.test} | {check.kind} | {check.what} | {held} | {figures} |")
    lines += ["", "Fast versions of these checks run in `make test` (tests/serving/test_fuzz.py, "
              "tests/serving/test_hardening.py, tests/unit/test_io.py, tests/unit/test_security.py).", "",
              *FUZZING_NOTES]
    return "\n".join(lines)


FUZZING_NOTES = [
    "## What the fuzzing holds the API to",
    "",
    "- **Blank text.** `query`, `id` and `title` must contain a character that is not blank. Blank has one "
    "definition (`BLANK_RANGES` in `prodrank.serving.schemas`): every character that Python's `str.isspace`, "
    "ECMA-262's `\\s` or Unicode's White_Space counts as whitespace, plus U+180E. The OpenAPI `pattern` spells it as "
    "an explicit character class and the validators match that same pattern, so JSON Schema validators, "
    "schemathesis and the service agree on every character (tests/serving/test_validation.py checks each one).",
    "- **Too large or too long.** 413 exactly when the body is over `serving.max_body_bytes` (documented in "
    "the OpenAPI schema as `x-max-body-bytes`), whatever the body holds, since it is refused before parsing. "
    "A body within that limit that breaks the schema gets 422, more candidates than `serving.max_candidates` "
    "(`maxItems`) included. The fuzz test accepts a 413 only for a body over the documented limit.",
    "- **The fuzzing keeps up with the schema.** A full run (200 examples per operation) writes "
    "`docs/reliability-fuzz.json`: its result and the sha256 of the OpenAPI schema of `POST /rank` and "
    "`POST /feedback` it fuzzed. A test in `make test` fails when the served schema's digest differs, or the "
    "recorded run did not hold; `make reliability RELIABILITY_ARGS=--fuzz-only` (about 2 minutes) refreshes it.",
    "",
]


def _figures(figures: dict[str, Any]) -> str:
    shown = []
    for key, value in figures.items():
        if key in {"output_tail"}:
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        shown.append(f"{key}: {value}")
    return "; ".join(shown).replace("|", "/")


def hardware() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine()) if Path("/proc/cpuinfo").exists() else platform.machine()
    memory = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} vCPU {cpu}, {memory:.0f} GB RAM, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--load-seconds", type=float, default=300.0)
    parser.add_argument("--capacity-seconds", type=float, default=30.0)
    parser.add_argument("--fuzz-examples", type=int, default=fuzzing.FULL_EXAMPLES)
    parser.add_argument("--candidates", type=int, default=20, help="candidates per /rank request")
    parser.add_argument("--project-model", action="store_true",
                        help="load and kill tests against the project's champion (make run) instead of the sandbox's")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the sandbox here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "reliability.md")
    parser.add_argument("--json", type=Path, default=PROJECT_ROOT / "reports" / "reliability" / "results.json")
    parser.add_argument("--fuzz-only", action="store_true",
                        help="only the fuzzing and its record (docs/reliability-fuzz.json); no sandbox")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.fuzz_only:
        return fuzz_only(args.fuzz_examples)
    root = (args.workdir or Path(tempfile.mkdtemp(prefix="prodrank-reliability-"))).resolve()
    checks: list[Check] = []

    def step(name: str, run) -> None:
        started = time.monotonic()
        print(f"[reliability] {name} ...", flush=True)
        found = run()
        for check in found if isinstance(found, list) else [found]:
            checks.append(check)
            state = f"skipped ({check.skipped})" if check.skipped else ("held" if check.held else "DID NOT HOLD")
            print(f"[reliability]   {check.test}: {state}", flush=True)
        print(f"[reliability] {name}: {time.monotonic() - started:.0f} s", flush=True)

    load_at_start = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"[reliability] sandbox workspace {root} (tiny pipeline) ...", flush=True)
    sandbox, env = sandbox_target(root, args.candidates)
    loaded = project_target(root / "project-model", args.candidates) if args.project_model else sandbox
    step("fuzzing", lambda: fuzz_check(args.fuzz_examples, sandbox.workdir))
    step("load", lambda: load_check(loaded, args.load_seconds, args.capacity_seconds))
    rate = checks[-1].figures.get("capacity_req_s", 1.0) * 0.7
    step("server killed mid-load", lambda: faults.server_killed_mid_load(loaded, rate))
    step("tampered model", lambda: faults.tampered_model(sandbox))
    step("unwritable log folder", lambda: faults.unwritable_log_dir(sandbox))
    step("disk full", lambda: faults.disk_full(sandbox))
    step("dvc stage and training killed", lambda: faults.dvc_stage_killed(root, env))
    step("Prefect task failure", lambda: pytest_check(
        "Prefect task failure", "fault", "a transient stage failure is retried, then the run fails cleanly; "
        "an invalid data drop fails the retrain run and the champion stays (one promotion, one rejection too)",
        PREFECT_TESTS, sandbox.workdir))
    step("secrets", lambda: security.no_secrets_in_repo(PROJECT_ROOT))
    step("API key", lambda: security.api_key(sandbox))
    step("safetensors", lambda: security.pickle_free_weights(loaded))
    step("loopback", lambda: security.loopback_only(sandbox))
    step("limits", lambda: security.limits(sandbox))
    meta = {"args": " ".join(argv if argv is not None else sys.argv[1:]).replace(str(root), "<workspace>"),
            "finished_at": utc_now(),
            "hardware": hardware(), "load_average_at_start": load_at_start,
            "load_model": "the project's champion (`make run`, default profile)" if args.project_model
            else "the sandbox's tiny-profile champion"}
    write_text(render(checks, meta, root), args.out)
    write_json({"meta": meta, "checks": [c.as_dict() for c in checks]}, args.json)
    failed = [c.test for c in checks if not c.held and not c.skipped]
    print(f"[reliability] written {args.out} and {args.json}; "
          + (f"DID NOT HOLD: {', '.join(failed)}" if failed else "every check held"), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
