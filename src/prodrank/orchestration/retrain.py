"""The retrain flow: new data → GX → DVC → ``dvc repro`` → champion vs challenger → promote or keep.

Steps (each a Prefect task, so each shows in the UI with its logs and duration):

1. **find new data** — an explicit drop folder, else the newest drop in
   ``orchestration.incoming_dir``, else new serving logs (:mod:`prodrank.orchestration.drops`).
   Nothing new and not ``force``: the run ends ``skipped`` (and says so in its report).
2. **validate** the drop with the Great Expectations suites (``expectations/``); an invalid drop
   is moved to ``<incoming>/.rejected/`` and the run fails with the GX report as its reason.
3. **version** it: copy to ``datasets/drops/<id>/``, ``dvc add``, point ``params.yaml``'s
   ``data`` at it.
4. **dvc repro** — the pipeline itself, with DVC's caching and lineage; its stages show as
   their own flow runs (tagged ``retrain-run:<id>``) when a Prefect server is up.
5. **quality gate** of the challenger on its own test split (``metrics/evaluate.json``).
6. **package** the challenger into the BentoML store (a ``candidate``).
7. **compare** champion and challenger on the frozen benchmark
   (:mod:`prodrank.orchestration.benchmark`) — a subflow on the configured task runner
   (threads, or a local Dask cluster), the two evaluations in parallel.
8. **decide** (:func:`decide`): promote only if the gate passed and the challenger beats the
   champion on ``orchestration.promotion_metric`` by at least ``promotion_margin`` (and by more
   than zero).
9. promote: ``bentoml build`` the challenger's bento, then mark it champion
   (``prodrank.serving.registry.promote``; the old champion stays for ``prodrank rollback``).
   Otherwise: restore the workspace to the champion's (:mod:`prodrank.orchestration.workspace`).
10. **report** — ``reports/retrain/<run>.json`` / ``.md`` and a Prefect markdown artifact.

Any failure restores the workspace and leaves the champion as it was; the report says why and
the flow run ends Failed with that reason. One retrain at a time (a lock file).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prodrank.orchestration import env

env.configure()

from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.runtime import flow_run  # noqa: E402
from prefect.task_runners import ThreadPoolTaskRunner  # noqa: E402

from prodrank import paths  # noqa: E402
from prodrank.config import Config, load_config  # noqa: E402
from prodrank.data.ingest import InputFormatError  # noqa: E402
from prodrank.data.validate import DataValidationError  # noqa: E402
from prodrank.orchestration import benchmark, bento, drops, report  # noqa: E402
from prodrank.orchestration.stageflow import STAGES  # noqa: E402
from prodrank.orchestration.workspace import Snapshot  # noqa: E402
from prodrank.serving.promotion import RETRAIN_RUN_ENV, decide  # noqa: E402
from prodrank.serving.registry import (  # noqa: E402
    champion,
    dvc_data_version,
    metrics_summary,
    model_metadata,
    promote,
    save_model,
    served_dir,
    verify_files,
)

log = logging.getLogger("prodrank.orchestration.retrain")

LOCK_FILE = ".lock"


class RetrainError(RuntimeError):
    """The retrain run failed; the champion and the workspace were kept."""


class RetrainBusyError(RetrainError):
    """Another retrain holds the lock."""


# -- helpers -----------------------------------------------------------------------------------
@contextlib.contextmanager
def exclusive(root: Path) -> Iterator[None]:
    directory = root / report.REPORT_DIR
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / LOCK_FILE, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RetrainBusyError(f"another retrain is running (lock {directory / LOCK_FILE})") from None
        yield


def make_task_runner(cfg: Config):
    """ThreadPoolTaskRunner (default) or, with ``task_runner: dask``, a local Dask cluster of
    ``max_workers`` single-threaded workers (prefect-dask; the cluster lives as long as the flow)."""
    workers = cfg.orchestration.max_workers
    if cfg.orchestration.task_runner == "dask":
        from prefect_dask import DaskTaskRunner  # lazy: an optional package, for task_runner: dask only

        # workers as threads of the flow's process, not processes: the benchmark evaluations spend
        # their time in torch/numpy kernels, which release the GIL, so they run in parallel anyway;
        # a worker process would import torch, transformers and Prefect again (measured: the test in
        # tests/orchestration/test_task_runners.py ran 26 s instead of 6 s) and, with no Prefect
        # server, start a temporary Prefect server of its own (30 s instead of 1 s for two trivial
        # tasks). A cluster elsewhere: DaskTaskRunner(address=...) (docs/orchestration.md, Scale-out).
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": False,
                                              "dashboard_address": None})
    return ThreadPoolTaskRunner(max_workers=workers)


_PROGRESS = re.compile(r"\d+%\|.*\||\r")


def repro_failure(repro: dict[str, Any]) -> str:
    """A short reason from ``dvc repro``'s output: the failed stage and its error lines."""
    tail = repro.get("tail") or []
    stage = next((m.group(1) for line in reversed(tail) if (m := re.search(r"failed to reproduce '([^']+)'", line))), None)
    errors = [line for line in tail if re.search(r"error|exception|failed", line, re.IGNORECASE)][-8:]
    head = f"dvc repro failed at stage {stage!r}" if stage else "dvc repro failed"
    return f"{head} (exit {repro.get('returncode')}):\n" + "\n".join(errors or tail[-10:])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _flow_run_id() -> str | None:
    try:
        return flow_run.id
    except Exception:  # noqa: BLE001
        return None


def _stage_env(run_id: str) -> dict[str, str]:
    """Environment of ``dvc repro``: the venv first on PATH (dvc.yaml calls ``prodrank``), stage
    flows tagged with this run, and this flow's Prefect API if it is a real server."""
    bin_dir = str(Path(sys.executable).parent)
    extra = {"PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
             "PRODRANK_PREFECT_TAGS": ",".join(filter(None, [os.environ.get("PRODRANK_PREFECT_TAGS"), "retrain",
                                                              f"retrain-run:{run_id}"])),
             # the package stage then only stores the challenger: this flow decides on the benchmark
             RETRAIN_RUN_ENV: run_id}
    return {**os.environ, **extra}


# -- tasks ---------------------------------------------------------------------------------------
TASK_OPTIONS: dict[str, Any] = {"persist_result": False, "cache_policy": NO_CACHE, "log_prints": True}


@task(name="find-new-data", **TASK_OPTIONS)
def find_new_data(cfg: Config, root: Path, drop: str | None, use_serving_logs: bool | None):
    return drops.find_new_data(cfg, root, drop, use_serving_logs)


@task(name="validate-data", **TASK_OPTIONS)
def validate_data(drop: drops.Drop, cfg: Config, reports_dir: Path) -> dict[str, int]:
    """GX suites on the drop; an invalid drop is set aside with the reason."""
    try:
        rows = drops.validate_drop(drop, cfg, reports_dir)
    except (DataValidationError, InputFormatError) as err:
        if drop.path.parent.name != drops.REJECTED and drop.path.exists():
            drops.set_aside(drop.path, drops.REJECTED, f"{type(err).__name__}: {err}")
        raise
    log.info("data drop %s valid: %s", drop.name, rows)
    return rows


@task(name="version-data", **TASK_OPTIONS)
def version_data(drop: drops.Drop, cfg: Config, root: Path, rows: dict[str, int], run_id: str, params: str,
                 profile: str | None) -> tuple[drops.VersionedDrop, dict[str, Any]]:
    versioned = drops.version_drop(drop, cfg, root, rows, run_id)
    updates = drops.data_params(versioned)
    previous = drops.update_params(root / params, updates)
    drops.check_params_select(root / params, profile, versioned)
    log.info("data drop %s versioned as %s (dvc md5 %s); params.yaml now reads it", drop.name, versioned.dvc_file,
             versioned.md5)
    return versioned, {"set": updates, "previous": previous}


@task(name="dvc-repro", **TASK_OPTIONS)
def dvc_repro(root: Path, run_dir: Path, run_id: str) -> dict[str, Any]:
    """``dvc repro`` in the project; its output goes to ``<run_dir>/repro.log`` and the run's log."""
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    cmd = [drops.dvc_exe(), "repro"]
    with open(run_dir / "repro.log", "w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=_stage_env(run_id), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True)
        tail: list[str] = []
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                line = line.rstrip()
                if line and not _PROGRESS.search(line):  # progress bars stay in repro.log only
                    log.info("dvc | %s", line)
                    tail = [*tail[-60:], line]
            code = proc.wait()
        except BaseException:  # a timeout or cancellation: stop dvc and its stage
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
    return {"returncode": code, "seconds": round(time.time() - started, 1), "started": started, "tail": tail,
            "ran": [line.split("'")[1] for line in tail if line.startswith("Running stage '")]}


@task(name="quality-gate", **TASK_OPTIONS)
def read_gate(root: Path, since: float) -> dict[str, Any] | None:
    """The challenger's evaluation (``metrics/evaluate.json``) if written by this run's repro."""
    path = root / paths.METRICS / "evaluate.json"
    if not path.exists() or path.stat().st_mtime < since - 1:
        return None
    return json.loads(path.read_text())


@task(name="package-challenger", **TASK_OPTIONS)
def package_challenger(root: Path, metrics: dict[str, Any], cfg: Config) -> str:
    """The challenger in the BentoML store (``save_model`` is idempotent: the package stage may
    have stored it already)."""
    return save_model(root / paths.RANKER, metrics, cfg, root / paths.PREPARED / "catalog.parquet",
                      student_dir=root / paths.STUDENT)


@task(name="freeze-benchmark", **TASK_OPTIONS)
def freeze_benchmark(cfg: Config, root: Path, reason: str) -> dict[str, Any]:
    return benchmark.freeze(cfg, root, reason=reason)


@task(name="benchmark-evaluation", **TASK_OPTIONS)
def benchmark_evaluation(cfg: Config, tag: str, role: str, out_dir: Path, root: Path) -> dict[str, Any]:
    """One packaged model (files checked against their sha256 first) on the frozen benchmark."""
    info = model_metadata(tag, cfg)
    model_path = Path(info["path"])
    verify_files(model_path, info["metadata"].get("files") or {})
    return benchmark.evaluate(cfg, served_dir(model_path, cfg.serving.model), out_dir, f"{role} {tag} on the frozen benchmark", root)


@flow(name="prodrank-compare", persist_result=False, validate_parameters=False, log_prints=True)
def compare(cfg: Config, champion_tag: str | None, challenger_tag: str, run_dir: Path, root: Path
            ) -> dict[str, dict[str, Any] | None]:
    """Champion and challenger on the same benchmark, in parallel on the flow's task runner."""
    futures = {"challenger": benchmark_evaluation.submit(cfg, challenger_tag, "challenger", run_dir / "challenger", root)}
    if champion_tag is not None and champion_tag != challenger_tag:
        futures["champion"] = benchmark_evaluation.submit(cfg, champion_tag, "champion", run_dir / "champion", root)
    results: dict[str, dict[str, Any] | None] = {"champion": None}
    results.update({role: future.result() for role, future in futures.items()})
    if champion_tag == challenger_tag:
        results["champion"] = results["challenger"]
    return results


@task(name="build-bento", **TASK_OPTIONS)
def build_bento(tag: str, cfg: Config, root: Path, params: str) -> str:
    return bento.build(tag, cfg, root, params)


@task(name="promote", **TASK_OPTIONS)
def promote_challenger(tag: str, cfg: Config, reason: str) -> str | None:
    promote(tag, cfg, reason=reason)
    return champion(cfg)


@task(name="restore-workspace", **TASK_OPTIONS)
def restore_workspace(snapshot: Snapshot) -> None:
    snapshot.restore()


# -- the flow ------------------------------------------------------------------------------------
@flow(name="prodrank-retrain", persist_result=False, log_prints=True,
      description="New data → GX → DVC → dvc repro → champion vs challenger on the frozen benchmark → promote.")
def retrain(drop: str | None = None, use_serving_logs: bool | None = None, force: bool = False,
            build: bool | None = None, params: str = "params.yaml", profile: str | None = None,
            project_dir: str | None = None) -> dict[str, Any]:
    """Retrain on new data and promote the challenger only if it is better (module doc).

    drop: a drop folder to use instead of looking in ``incoming_dir``; use_serving_logs: override
    ``orchestration.serving_logs``; force: run the pipeline even without new data (e.g. after a
    code change); build: override ``orchestration.build_bento``; project_dir: the project root
    (the process changes into it; default: the current directory, which must be the root — the
    scheduled deployment passes it). Returns the summary also written to ``reports/retrain/<run>.json``.
    """
    if project_dir:
        os.chdir(project_dir)
    return run_retrain(drop=drop, use_serving_logs=use_serving_logs, force=force, build=build, params=params,
                       profile=profile)


@dataclass
class RetrainSummary:
    """One retrain run, as ``reports/retrain/<run>.json`` records it (:meth:`as_dict`)."""

    run_id: str
    flow_run_id: str | None
    started_at: str
    profile: str
    params: str
    status: str = "running"  # skipped | promoted | rejected | unchanged | failed
    notes: list[str] = field(default_factory=list)
    decision: dict[str, Any] | None = None
    data: dict[str, Any] = field(default_factory=dict)
    champion_before: str | None = None
    champion_after: str | None = None
    champion: dict[str, Any] | None = None
    challenger: dict[str, Any] | None = None
    benchmark: dict[str, Any] | None = None
    repro: dict[str, Any] | None = None
    bento: dict[str, Any] | None = None
    workspace: str | None = None
    commit: list[str] | None = None
    error: str | None = None
    finished_at: str | None = None
    reports: dict[str, str] | None = None
    artifact: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_retrain(drop: str | None = None, use_serving_logs: bool | None = None, force: bool = False,
                build: bool | None = None, params: str = "params.yaml", profile: str | None = None,
                root: Path | None = None) -> dict[str, Any]:
    root = (root or Path.cwd()).resolve()
    cfg = load_config(root / params, profile)
    flow_run_id = _flow_run_id()
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + (f"-{flow_run_id[:8]}" if flow_run_id else "")
    summary = RetrainSummary(run_id, flow_run_id, _now(), cfg.profile, params)
    with exclusive(root):
        snapshot: Snapshot | None = None
        try:
            summary.champion_before = summary.champion_after = champion(cfg)
            new, notes = find_new_data(cfg, root, drop, use_serving_logs)
            summary.notes += notes
            if new is None and not force:
                summary.status, summary.workspace = "skipped", "unchanged"
                summary.decision = {"promote": False, "reason": "no new data: " + "; ".join(notes),
                                    "metric": cfg.orchestration.promotion_metric, "margin": cfg.orchestration.promotion_margin}
            else:
                freeze_from_champion(cfg, root, summary)
                snapshot = Snapshot(root)
                retrain_on(new, cfg, root, params, profile, build, snapshot, summary)
        except BaseException as err:
            record_failure(cfg, summary, snapshot, err)
            raise
        finally:
            finish(cfg, root, summary, snapshot)
    return summary.as_dict()


def retrain_on(new: drops.Drop | None, cfg: Config, root: Path, params: str, profile: str | None, build: bool | None,
               snapshot: Snapshot, summary: RetrainSummary) -> None:
    """The drop (if any) into the data, the pipeline, the comparison, then promote or restore."""
    if new is not None:
        take_drop(new, cfg, root, params, profile, summary)
    challenger_tag, gate = build_challenger(cfg, root, summary)
    decision = compare_and_decide(cfg, root, challenger_tag, gate, summary)
    if decision["promote"]:
        promote_and_build(cfg, root, params, challenger_tag, build, summary)
    else:
        restore_workspace(snapshot)
        summary.status = "unchanged" if challenger_tag is not None and challenger_tag == summary.champion_before \
            else "rejected"
        summary.workspace = "restored to the champion's (params.yaml, dvc.lock, outputs)"


def freeze_from_champion(cfg: Config, root: Path, summary: RetrainSummary) -> None:
    """On the first retrain with a champion, freeze the benchmark from the current test split
    (the champion's data, whose test queries it never trained on)."""
    if benchmark.manifest(cfg, root) is not None or summary.champion_before is None \
            or not (root / paths.PREPARED / "test" / "interactions.parquet").exists():
        return
    summary.benchmark = freeze_benchmark(cfg, root, "first retrain: the champion's test split")
    current = dvc_data_version(root / "dvc.lock")
    packaged = model_metadata(summary.champion_before, cfg)["metadata"].get("data_version")
    if current and packaged and current.get("md5") != packaged.get("md5"):
        summary.notes.append(f"the benchmark was frozen from data/prepared {current.get('md5')}, "
                             f"not the champion's {packaged.get('md5')}")


def take_drop(new: drops.Drop, cfg: Config, root: Path, params: str, profile: str | None,
              summary: RetrainSummary) -> None:
    """Validate and version the drop, point params.yaml at it, set it aside as processed."""
    summary.data["drop"] = new.describe()
    rows = validate_data(new, cfg, root / report.REPORT_DIR / summary.run_id / "validation")
    versioned, changes = version_data(new, cfg, root, rows, summary.run_id, params, profile)
    if new.path.exists() and new.path.parent == root / cfg.orchestration.incoming_dir:
        drops.set_aside(new.path, drops.PROCESSED)
    summary.data["drop"] = {**new.describe(), **versioned.describe()}
    summary.data["params"] = changes


def build_challenger(cfg: Config, root: Path, summary: RetrainSummary) -> tuple[str | None, dict[str, Any]]:
    """``dvc repro``, the challenger's quality gate, and the challenger in the store (when it passed)."""
    run_dir = root / report.REPORT_DIR / summary.run_id
    repro = dvc_repro.with_options(timeout_seconds=cfg.orchestration.stage_timeout_seconds * len(STAGES))(
        root, run_dir, summary.run_id)
    summary.repro = {k: repro[k] for k in ("returncode", "seconds", "ran")}
    summary.data["prepared_version"] = dvc_data_version(root / "dvc.lock")
    metrics = read_gate(root, repro["started"])
    if repro["returncode"] != 0 and not (metrics and not (metrics.get("quality_gate") or {}).get("passed")):
        raise RetrainError(repro_failure(repro))
    if metrics is None:
        metrics = json.loads((root / paths.METRICS / "evaluate.json").read_text())
    gate = metrics.get("quality_gate") or {}
    challenger_tag = package_challenger(root, metrics, cfg) if gate.get("passed") else None
    summary.challenger = {"tag": challenger_tag, "quality_gate": gate, "test_split": metrics_summary(metrics)}
    return challenger_tag, gate


def compare_and_decide(cfg: Config, root: Path, challenger_tag: str | None, gate: dict[str, Any],
                       summary: RetrainSummary) -> dict[str, Any]:
    """Champion and challenger on the frozen benchmark (frozen now if there is none), then :func:`decide`."""
    results: dict[str, Any] = {"champion": None, "challenger": None}
    if challenger_tag is not None:
        if benchmark.manifest(cfg, root) is None:
            summary.benchmark = freeze_benchmark(cfg, root, "first promotion: the challenger's test split")
        compare_flow = compare.with_options(task_runner=make_task_runner(cfg))
        results = compare_flow(cfg, summary.champion_before, challenger_tag, root / report.REPORT_DIR / summary.run_id, root)
    summary.benchmark = summary.benchmark or benchmark.manifest(cfg, root)
    metric = cfg.orchestration.promotion_metric
    decision = decide(metric, cfg.orchestration.promotion_margin, gate, challenger_tag, summary.champion_before,
                      benchmark.score(results["challenger"], metric), benchmark.score(results["champion"], metric))
    summary.decision = decision
    assert summary.challenger is not None  # set by build_challenger
    summary.challenger["benchmark"] = results["challenger"]
    summary.champion = {"tag": summary.champion_before, "benchmark": results["champion"]}
    log.info("decision: %s — %s", "promote" if decision["promote"] else "keep the champion", decision["reason"])
    return decision


def promote_and_build(cfg: Config, root: Path, params: str, challenger_tag: str, build: bool | None,
                      summary: RetrainSummary) -> None:
    """Build the challenger's bento (unless switched off), promote it, list what to commit."""
    orch = cfg.orchestration
    if build if build is not None else orch.build_bento:
        summary.bento = {"tag": build_bento(challenger_tag, cfg, root, params)}
    else:
        summary.bento = {"tag": None, "note": "not built (orchestration.build_bento: false)"}
    assert summary.decision is not None  # set by compare_and_decide
    summary.champion_after = promote_challenger(challenger_tag, cfg, summary.decision["reason"])
    summary.status = "promoted"
    summary.workspace = "kept: the pipeline outputs are the new champion's"
    drop = summary.data.get("drop", {})
    summary.commit = ["params.yaml", "dvc.lock", *([drop["dvc_file"]] if "dvc_file" in drop else []),
                      *([f"{orch.datasets_dir}/benchmark.dvc"] if (root / orch.datasets_dir / "benchmark.dvc").exists() else [])]


def record_failure(cfg: Config, summary: RetrainSummary, snapshot: Snapshot | None, err: BaseException) -> None:
    """The champion stays; the workspace is restored; the report says why."""
    summary.status = "failed"
    summary.error = f"{type(err).__name__}: {err}"
    if summary.decision is None or summary.decision.get("promote"):
        summary.decision = {"metric": cfg.orchestration.promotion_metric, "margin": cfg.orchestration.promotion_margin,
                            **(summary.decision or {}), "promote": False,
                            "reason": f"run failed, champion kept: {type(err).__name__}: {str(err)[:500]}"}
    summary.champion_after = summary.champion_before
    if snapshot is not None:
        try:
            snapshot.restore()
            summary.workspace = "restored to the champion's after the failure"
        except Exception as restore_err:  # noqa: BLE001
            summary.workspace = f"restore failed: {restore_err}"


def finish(cfg: Config, root: Path, summary: RetrainSummary, snapshot: Snapshot | None) -> None:
    """Drop the snapshot, record the final champion, write the reports and the Prefect artifact."""
    if snapshot is not None:
        snapshot.discard()
    summary.finished_at = _now()
    try:
        summary.champion_after = champion(cfg)
    except Exception:  # noqa: BLE001 - the report is written whatever the store says
        pass
    summary.reports = report.paths_for(summary.run_id, root)
    report.write(summary.as_dict(), root)
    summary.artifact = report.publish_artifact(summary.as_dict())
