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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prodrank.orchestration import env

env.configure()

from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from prodrank import paths  # noqa: E402
from prodrank.config import Config, load_config  # noqa: E402
from prodrank.orchestration import benchmark, drops, report  # noqa: E402
from prodrank.orchestration.workspace import Snapshot  # noqa: E402
from prodrank.serving.promotion import RETRAIN_RUN_ENV, decide  # noqa: E402

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
        from prefect_dask import DaskTaskRunner

        # workers as threads of the flow's process, not processes: the benchmark evaluations spend
        # their time in torch/numpy kernels, which release the GIL, so they run in parallel anyway;
        # a worker process would import torch, transformers and Prefect again (measured: the test in
        # tests/orchestration/test_task_runners.py ran 26 s instead of 6 s) and, with no Prefect
        # server, start a temporary Prefect server of its own (30 s instead of 1 s for two trivial
        # tasks). A cluster elsewhere: DaskTaskRunner(address=...) (docs/orchestration.md, Scale-out).
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": False,
                                              "dashboard_address": None})
    from prefect.task_runners import ThreadPoolTaskRunner

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
        from prefect.runtime import flow_run

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
    from prodrank.data.ingest import InputFormatError
    from prodrank.data.validate import DataValidationError

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
    from prodrank.serving.registry import save_model

    return save_model(root / paths.RANKER, metrics, cfg)


@task(name="freeze-benchmark", **TASK_OPTIONS)
def freeze_benchmark(cfg: Config, root: Path, reason: str) -> dict[str, Any]:
    return benchmark.freeze(cfg, root, reason=reason)


@task(name="benchmark-evaluation", **TASK_OPTIONS)
def benchmark_evaluation(cfg: Config, tag: str, role: str, out_dir: Path, root: Path) -> dict[str, Any]:
    """One packaged model (files checked against their sha256 first) on the frozen benchmark."""
    from prodrank.serving.registry import RANKER_SUBDIR, model_metadata, verify_files

    info = model_metadata(tag, cfg)
    model_path = Path(info["path"])
    verify_files(model_path, info["metadata"].get("files") or {})
    return benchmark.evaluate(cfg, model_path / RANKER_SUBDIR, out_dir, f"{role} {tag} on the frozen benchmark", root)


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
    from prodrank.orchestration.bento import build

    return build(tag, cfg, root, params)


@task(name="promote", **TASK_OPTIONS)
def promote_challenger(tag: str, cfg: Config, reason: str) -> str | None:
    from prodrank.serving.registry import champion, promote

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


def run_retrain(drop: str | None = None, use_serving_logs: bool | None = None, force: bool = False,
                build: bool | None = None, params: str = "params.yaml", profile: str | None = None,
                root: Path | None = None) -> dict[str, Any]:
    root = (root or Path.cwd()).resolve()
    cfg = load_config(root / params, profile)
    flow_run_id = _flow_run_id()
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + (f"-{flow_run_id[:8]}" if flow_run_id else "")
    run_dir = root / report.REPORT_DIR / run_id
    orch = cfg.orchestration
    summary: dict[str, Any] = {"run_id": run_id, "flow_run_id": flow_run_id, "started_at": _now(), "status": "running",
                               "profile": cfg.profile, "params": params, "notes": [], "decision": None,
                               "data": {}, "champion": None, "challenger": None, "bento": None, "error": None}
    with exclusive(root):
        snapshot: Snapshot | None = None
        try:
            from prodrank.serving.registry import champion, dvc_data_version, model_metadata

            champion_before = champion(cfg)
            summary["champion_before"] = summary["champion_after"] = champion_before
            new, notes = find_new_data(cfg, root, drop, use_serving_logs)
            summary["notes"] += notes
            if new is None and not force:
                summary.update(status="skipped", decision={"promote": False, "reason": "no new data: " + "; ".join(notes),
                                                           "metric": orch.promotion_metric, "margin": orch.promotion_margin},
                               workspace="unchanged")
                return summary
            if benchmark.manifest(cfg, root) is None and champion_before is not None \
                    and (root / paths.PREPARED / "test" / "interactions.parquet").exists():
                summary["benchmark"] = freeze_benchmark(cfg, root, "first retrain: the champion's test split")
                current, packaged = dvc_data_version(root / "dvc.lock"), \
                    model_metadata(champion_before, cfg)["metadata"].get("data_version")
                if current and packaged and current.get("md5") != packaged.get("md5"):
                    summary["notes"].append("the benchmark was frozen from data/prepared "
                                            f"{current.get('md5')}, not the champion's {packaged.get('md5')}")
            snapshot = Snapshot(root)
            if new is not None:
                summary["data"]["drop"] = new.describe()
                rows = validate_data(new, cfg, run_dir / "validation")
                versioned, changes = version_data(new, cfg, root, rows, run_id, params, profile)
                if new.path.exists() and new.path.parent == root / orch.incoming_dir:
                    drops.set_aside(new.path, drops.PROCESSED)
                summary["data"]["drop"] = {**new.describe(), **versioned.describe()}
                summary["data"]["params"] = changes
            from prodrank.orchestration.stageflow import STAGES

            repro = dvc_repro.with_options(timeout_seconds=orch.stage_timeout_seconds * len(STAGES))(root, run_dir, run_id)
            summary["repro"] = {k: repro[k] for k in ("returncode", "seconds", "ran")}
            summary["data"]["prepared_version"] = dvc_data_version(root / "dvc.lock")
            metrics = read_gate(root, repro["started"])
            if repro["returncode"] != 0 and not (metrics and not (metrics.get("quality_gate") or {}).get("passed")):
                raise RetrainError(repro_failure(repro))
            if metrics is None:
                metrics = json.loads((root / paths.METRICS / "evaluate.json").read_text())
            gate = metrics.get("quality_gate") or {}
            challenger_tag = package_challenger(root, metrics, cfg) if gate.get("passed") else None
            from prodrank.serving.registry import metrics_summary

            summary["challenger"] = {"tag": challenger_tag, "quality_gate": gate, "test_split": metrics_summary(metrics)}
            results: dict[str, Any] = {"champion": None, "challenger": None}
            if challenger_tag is not None:
                if benchmark.manifest(cfg, root) is None:
                    summary["benchmark"] = freeze_benchmark(cfg, root, "first promotion: the challenger's test split")
                compare_flow = compare.with_options(task_runner=make_task_runner(cfg))
                results = compare_flow(cfg, champion_before, challenger_tag, run_dir, root)
            summary.setdefault("benchmark", benchmark.manifest(cfg, root))
            metric = orch.promotion_metric
            decision = decide(metric, orch.promotion_margin, gate, challenger_tag, champion_before,
                              benchmark.score(results["challenger"], metric), benchmark.score(results["champion"], metric))
            summary["decision"] = decision
            summary["challenger"]["benchmark"] = results["challenger"]
            summary["champion"] = {"tag": champion_before, "benchmark": results["champion"]}
            log.info("decision: %s — %s", "promote" if decision["promote"] else "keep the champion", decision["reason"])
            if decision["promote"]:
                if build if build is not None else orch.build_bento:
                    summary["bento"] = {"tag": build_bento(challenger_tag, cfg, root, params)}
                else:
                    summary["bento"] = {"tag": None, "note": "not built (orchestration.build_bento: false)"}
                summary["champion_after"] = promote_challenger(challenger_tag, cfg, decision["reason"])
                summary["status"] = "promoted"
                summary["workspace"] = "kept: the pipeline outputs are the new champion's"
                summary["commit"] = ["params.yaml", "dvc.lock",
                                     *([summary["data"]["drop"]["dvc_file"]] if "dvc_file" in summary["data"].get("drop", {}) else []),
                                     *([f"{orch.datasets_dir}/benchmark.dvc"] if (root / orch.datasets_dir / "benchmark.dvc").exists() else [])]
            else:
                restore_workspace(snapshot)
                summary["status"] = "unchanged" if challenger_tag is not None and challenger_tag == champion_before \
                    else "rejected"
                summary["workspace"] = "restored to the champion's (params.yaml, dvc.lock, outputs)"
            return summary
        except BaseException as err:
            summary["status"] = "failed"
            summary["error"] = f"{type(err).__name__}: {err}"
            if summary.get("decision") is None or summary["decision"].get("promote"):
                summary["decision"] = {"metric": orch.promotion_metric, "margin": orch.promotion_margin,
                                       **(summary.get("decision") or {}), "promote": False,
                                       "reason": f"run failed, champion kept: {type(err).__name__}: {str(err)[:500]}"}
            summary["champion_after"] = summary.get("champion_before")
            if snapshot is not None:
                try:
                    snapshot.restore()
                    summary["workspace"] = "restored to the champion's after the failure"
                except Exception as restore_err:  # noqa: BLE001
                    summary["workspace"] = f"restore failed: {restore_err}"
            raise
        finally:
            if snapshot is not None:
                snapshot.discard()
            summary["finished_at"] = _now()
            try:
                from prodrank.serving.registry import champion as _champion

                summary["champion_after"] = _champion(cfg)
            except Exception:  # noqa: BLE001
                pass
            summary["reports"] = report.paths_for(summary["run_id"], root)
            report.write(summary, root)
            summary["artifact"] = report.publish_artifact(summary)
