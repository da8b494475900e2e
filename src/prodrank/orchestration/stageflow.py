"""Every pipeline stage as a Prefect flow, around the one implementation in :mod:`prodrank.stages`.

``prodrank <stage>`` (what ``dvc repro`` runs) calls :func:`run_stage`. Whether the stage runs
inside a flow is ``orchestration.prefect`` (``$PRODRANK_PREFECT`` overrides it):

``auto`` (default)  in a flow when a Prefect server answers (``$PREFECT_API_URL``, or the one
                    ``make run`` / ``make prefect-server`` started); otherwise directly. A plain
                    ``dvc repro`` with no server pays one refused connection, nothing more.
``on``              always in a flow (with no server: Prefect's temporary server, ~10-20 s a stage).
``off``             never.

A stage flow is named ``prodrank-<stage>`` and holds one task, ``<stage>``, that calls
``prodrank.stages.<stage>(cfg)``. The task retries ``orchestration.retries`` times after
``retry_delay_seconds`` — but only for transient failures (:func:`is_transient`): bad data, a
failed quality gate or a config error fail at once. ``stage_timeout_seconds`` bounds each
attempt. Runs are tagged ``prodrank``, ``stage:<name>``, ``profile:<name>`` and whatever
``$PRODRANK_PREFECT_TAGS`` lists (the retrain flow tags the stages of its ``dvc repro``).
"""
from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from prodrank import stages
from prodrank.config import Config, ConfigError, load_config
from prodrank.data.validate import DataValidationError
from prodrank.evaluation.evaluate import QualityGateError
from prodrank.orchestration import env, server
from prodrank.serving.registry import RegistryError, TamperedModelError

# the pipeline's stages, in dvc.yaml order (what `python flows/stages.py` runs by default); any other
# stage function added to prodrank.stages (e.g. `ablate`) runs as a flow the same way
STAGES = ("inputs", "ingest", "validate", "split", "pretrain", "train", "distill", "evaluate", "package")
NOT_STAGES = frozenset({"read_tables", "write_tables", "evaluate_external"})  # helpers in prodrank.stages
MODE_ENV = "PRODRANK_PREFECT"
TAGS_ENV = "PRODRANK_PREFECT_TAGS"


# bad input, bad config, a failed quality gate, a timeout, a bug: failing again would fail the same way
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError, DataValidationError, QualityGateError, RegistryError, TamperedModelError, ValueError, TypeError,
    KeyError, AttributeError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError, ImportError,
    NotImplementedError, AssertionError, TimeoutError,  # a stage that hit its timeout would hit it again
)


def is_transient(exc: BaseException | None) -> bool:
    """Worth retrying: I/O and connection errors, runtime errors (a killed data-loader worker, a
    device hiccup), memory pressure from a neighbour. Not: bad input, bad config, a failed
    quality gate, a timeout, a bug (TypeError, AttributeError, ...)."""
    if exc is None or not isinstance(exc, Exception | MemoryError):
        return False
    return not isinstance(exc, PERMANENT_ERRORS)


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only after a transient exception."""
    try:
        exc = state.result(raise_on_failure=False)
    except BaseException as err:  # noqa: BLE001 - the state's result may itself raise
        exc = err
    return is_transient(exc if isinstance(exc, BaseException) else None)


def mode(cfg: Config) -> str:
    value = os.environ.get(MODE_ENV, "").strip().lower() or cfg.orchestration.prefect
    if value not in ("auto", "on", "off"):
        raise ValueError(f"${MODE_ENV} must be auto, on or off (got {value!r})")
    return value


def call_stage(stage: str, cfg: Config) -> Any:
    """The stage itself: ``prodrank.stages.<stage>(cfg)``."""
    return _stage_function(stage)(cfg)


def _stage_function(stage: str):
    fn = getattr(stages, stage, None)
    defined_there = getattr(fn, "__module__", None) == stages.__name__  # not an imported helper (atomic_dir, ...)
    if stage.startswith("_") or stage in NOT_STAGES or not callable(fn) or isinstance(fn, type) \
            or not (defined_there or stage in STAGES):
        raise ValueError(f"unknown stage {stage!r}; stages are functions of prodrank.stages, e.g. {list(STAGES)}")
    return fn


def run_stage(stage: str, cfg: Config, params: str = "params.yaml", profile: str | None = None) -> Any:
    """Run a stage: inside its Prefect flow when orchestration is on (see the module doc), else directly.
    Exceptions are the stage's own in both cases, so callers handle errors the same way."""
    how = mode(cfg)
    if how == "off" or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # under torchrun every rank would open its own flow run (and retry on its own): the ranks
        # run plain; torchrun --max-restarts retries them (docs/orchestration.md, Scale-out)
        return call_stage(stage, cfg)
    env.configure()
    found = server.discover(wait_seconds=cfg.orchestration.server_wait_seconds)
    if found is None and how == "auto":
        return call_stage(stage, cfg)
    if found is not None:
        os.environ["PREFECT_API_URL"] = found.api_url
    flow = stage_flow(stage, cfg)
    prefect = env.import_prefect()
    with prefect.tags(*run_tags(stage, cfg)):
        return flow(stage=stage, params=str(params), profile=profile)


def run_tags(stage: str, cfg: Config) -> list[str]:
    extra = [t.strip() for t in os.environ.get(TAGS_ENV, "").split(",") if t.strip()]
    return ["prodrank", f"stage:{stage}", f"profile:{cfg.profile}", *extra]


def _run_name() -> str:
    from prefect.runtime import flow_run  # lazy: prefect; plain stage runs start without it

    params = flow_run.parameters or {}
    return f"{params.get('stage', 'stage')} {datetime.now():%Y-%m-%d %H:%M:%S}"


def stage_task(cfg: Config):
    """The task that runs one stage, with the retry and timeout settings of ``cfg``."""
    prefect = env.import_prefect()
    orch = cfg.orchestration
    return prefect.task(
        _stage_task_body, name="stage", retries=orch.retries, retry_delay_seconds=orch.retry_delay_seconds,
        timeout_seconds=orch.stage_timeout_seconds, retry_condition_fn=retry_transient,
        persist_result=False, cache_policy=_no_cache(), log_prints=True,
        task_run_name="{stage}",
    )


def _no_cache():
    from prefect.cache_policies import NO_CACHE  # lazy: prefect, as above

    return NO_CACHE


def _stage_task_body(stage: str, params: str, profile: str | None) -> Any:
    return call_stage(stage, load_config(params, profile))


def _stage_flow_body(stage: str, params: str = "params.yaml", profile: str | None = None) -> Any:
    cfg = load_config(params, profile)
    return stage_task(cfg)(stage, params, profile)


def stage_flow(stage: str, cfg: Config):
    """``prodrank-<stage>``: a flow holding one retried, time-limited task that runs the stage."""
    _stage_function(stage)
    prefect = env.import_prefect()
    orch = cfg.orchestration
    # the flow's own limit covers every attempt of the task, with its retry delays
    limit = orch.stage_timeout_seconds * (orch.retries + 1) + orch.retry_delay_seconds * orch.retries + 60
    return prefect.flow(
        _stage_flow_body, name=f"prodrank-{stage}", flow_run_name=_run_name, log_prints=True,
        persist_result=False, timeout_seconds=limit, validate_parameters=False,
        description=f"The `{stage}` stage of the prodrank pipeline: prodrank.stages.{stage}(cfg).",
    )
