"""The retrain flow's parallel part, ``prodrank-compare`` (champion and challenger evaluated on the
frozen benchmark at the same time), on a real local Dask cluster (``task_runner: dask``) gives the
same results as on threads (the default). Two tiny trained rankers (different seeds) packaged in a
temporary BentoML store, a benchmark frozen from the handmade data set (tests/conftest.py), under
``prefect_test_harness``."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from prodrank.config import resolve
from tests.conftest import make_prepared
from tests.serving.conftest import TRAIN  # the serving tests' tiny ranker: 4 training steps, about a second


@pytest.fixture(scope="module")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="module")
def packaged(tmp_path_factory, tiny_init_dir) -> dict:
    """A project root with a frozen benchmark and two packaged models; BENTOML_HOME points into it
    for the whole module (the Dask workers inherit it from this process)."""
    from prodrank.orchestration.benchmark import freeze
    from prodrank.serving.registry import save_model
    from prodrank.training.finetune import finetune

    root = tmp_path_factory.mktemp("compare")
    prepared = make_prepared(root / "data" / "prepared")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENTOML_HOME", str(root / ".bentoml"))
        cfg = resolve({"train": TRAIN, "evaluate": {"bootstrap_samples": 20}})
        freeze(cfg, root, Path("data/prepared"), reason="test", version=False)
        tags = []
        for seed in (0, 1):
            out = root / f"seed{seed}"
            finetune(cfg.model_copy(update={"seed": seed}), prepared, tiny_init_dir, out / "ranker", out / "plots",
                     out / "metrics.json", out / "ckpt")
            tags.append(save_model(out / "ranker", {"quality_gate": {"passed": True, "problems": []}}, cfg))
        assert tags[0] != tags[1]
        yield {"root": root, "cfg": cfg, "champion": tags[0], "challenger": tags[1]}


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_compare_on_a_local_dask_cluster_equals_the_thread_runner(harness, packaged):
    from prodrank.orchestration.retrain import compare, make_task_runner
    from prodrank.serving.registry import metrics_summary

    root, cfg = packaged["root"], packaged["cfg"]
    results = {}
    # prefect-dask logs the cluster it creates; Prefect's own loggers do not propagate to pytest's
    records = Records()
    dask_log = logging.getLogger("prefect.task_runner.dask")
    dask_log.addHandler(records)
    try:
        for runner in ("thread", "dask"):
            run_cfg = cfg.model_copy(update={"orchestration": cfg.orchestration.model_copy(
                update={"task_runner": runner, "max_workers": 2})})
            flow = compare.with_options(task_runner=make_task_runner(run_cfg))
            results[runner] = flow(run_cfg, packaged["champion"], packaged["challenger"], root / "runs" / runner, root)
    finally:
        dask_log.removeHandler(records)
    assert any("LocalCluster" in m for m in records.messages), records.messages
    for role in ("champion", "challenger"):
        thread, dask = metrics_summary(results["thread"][role]), metrics_summary(results["dask"][role])
        assert thread.pop("quality_gate") == dask.pop("quality_gate")
        assert thread["n_queries"] == dask["n_queries"] == 8 and "click.ndcg@10" in thread
        # same models, same benchmark; only the float summation order of torch's kernels may differ
        assert dask == pytest.approx(thread, abs=1e-6), role
        assert (root / "runs" / "dask" / role / "metrics.json").exists()
    assert results["dask"]["champion"] != results["dask"]["challenger"]  # two models, both evaluated
