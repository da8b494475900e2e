"""The fixed benchmark that champion and challenger are compared on.

A frozen copy of the test split (``data/prepared/test`` plus the catalogue rows it needs) in
``<datasets_dir>/benchmark/`` with ``benchmark.json`` (sha256 of every file, query and pair
counts, the DVC version of the data it came from, when), versioned with ``dvc add``
(``datasets/benchmark.dvc``). It is frozen once and never changes on its own:

- the first time the retrain flow runs, from the test split of the data in the workspace (the
  champion's data, whose test queries the champion never trained on); or, when there is no
  prepared data yet, from the first challenger's test split (at its promotion);
- ``orchestration.benchmark_max_queries`` > 0 keeps a seeded sample of that many queries.

To re-freeze (e.g. after moving to a new catalogue), delete ``datasets/benchmark*`` and run the
retrain flow; the next report records the new benchmark's sha256. Its files are checked
against ``benchmark.json`` before every use.

Caveat: a later data drop that contains the benchmark's queries lets the challenger train on
them; the benchmark is fixed, not necessarily unseen. Serving-log drops of a live store do
repeat queries — keep that in mind when reading a close margin.
"""
from __future__ import annotations

import json
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prodrank import paths
from prodrank.config import Config
from prodrank.evaluation.evaluate import run_evaluation
from prodrank.io import sha256_file
from prodrank.orchestration.drops import dvc_file_md5, run_dvc
from prodrank.serving.registry import dvc_data_version

log = logging.getLogger(__name__)

MANIFEST = "benchmark.json"
TABLE_FILES = ("catalog.parquet", "queries.parquet", "interactions.parquet", "relevance.parquet")


class BenchmarkError(RuntimeError):
    """The benchmark is missing or its files changed since it was frozen."""


def benchmark_dir(cfg: Config, root: Path = Path(".")) -> Path:
    return root / cfg.orchestration.datasets_dir / "benchmark"


def manifest(cfg: Config, root: Path = Path(".")) -> dict[str, Any] | None:
    path = benchmark_dir(cfg, root) / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def freeze(cfg: Config, root: Path = Path("."), prepared_dir: Path = paths.PREPARED, reason: str = "",
           version: bool = True) -> dict[str, Any]:
    """Copy the test split of ``prepared_dir`` into the benchmark folder and ``dvc add`` it."""
    source = root / prepared_dir
    test = source / "test"
    if not (test / "interactions.parquet").exists():
        raise BenchmarkError(f"cannot freeze a benchmark: {test}/interactions.parquet is missing")
    queries = pd.read_parquet(test / "queries.parquet")
    interactions = pd.read_parquet(test / "interactions.parquet")
    relevance = pd.read_parquet(test / "relevance.parquet") if (test / "relevance.parquet").exists() else None
    limit = cfg.orchestration.benchmark_max_queries
    if limit and queries["query_id"].nunique() > limit:
        keep = np.random.default_rng(cfg.seed).choice(np.sort(queries["query_id"].unique()), limit, replace=False)
        queries = queries[queries["query_id"].isin(keep)]
        interactions = interactions[interactions["query_id"].isin(keep)]
        relevance = relevance[relevance["query_id"].isin(keep)] if relevance is not None else None
    catalog = pd.read_parquet(source / "catalog.parquet")
    catalog = catalog[catalog["product_id"].isin(set(interactions["product_id"]))]
    target = benchmark_dir(cfg, root)
    tmp = target.with_name(".benchmark.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tables = {"catalog.parquet": catalog, "queries.parquet": queries, "interactions.parquet": interactions}
    if relevance is not None:
        tables["relevance.parquet"] = relevance
    for name, frame in tables.items():
        frame.reset_index(drop=True).to_parquet(tmp / name, index=False)
    info = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "reason": reason,
        "source": str(prepared_dir / "test"),
        "source_data_version": dvc_data_version(root / "dvc.lock"),
        "profile": cfg.profile,
        "n_queries": int(queries["query_id"].nunique()),
        "n_pairs": int(len(interactions)),
        "files": {name: sha256_file(tmp / name) for name in tables},
    }
    (tmp / MANIFEST).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    if version:
        rel = target.relative_to(root) if target.is_absolute() else target
        run_dvc(["add", "-q", str(rel)], root)
        info["dvc_md5"] = dvc_file_md5(root / (str(rel) + ".dvc"))
    log.info("benchmark frozen: %d queries, %d pairs from %s", info["n_queries"], info["n_pairs"], source / "test")
    return info


def load(cfg: Config, root: Path = Path(".")) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(pairs, queries, catalog) of the benchmark, after checking every file's sha256."""
    info = manifest(cfg, root)
    directory = benchmark_dir(cfg, root)
    if info is None:
        raise BenchmarkError(f"no benchmark in {directory} (the retrain flow freezes one)")
    changed = [name for name, digest in info["files"].items()
               if not (directory / name).exists() or sha256_file(directory / name) != digest]
    if changed:
        raise BenchmarkError(f"benchmark files changed since it was frozen: {changed}; restore them "
                             f"(`dvc checkout {directory}`) or re-freeze deliberately")
    queries = pd.read_parquet(directory / "queries.parquet")
    pairs = pd.read_parquet(directory / "interactions.parquet").merge(queries[["query_id", "query"]], on="query_id")
    if (directory / "relevance.parquet").exists():
        pairs = pairs.merge(pd.read_parquet(directory / "relevance.parquet"), on=["query_id", "product_id"], how="left")
    pairs = pairs.sort_values(["query_id", "product_id"], kind="stable").reset_index(drop=True)
    return pairs, queries, pd.read_parquet(directory / "catalog.parquet")


def evaluate(cfg: Config, ranker_dir: Path, out_dir: Path, title: str, root: Path = Path(".")) -> dict[str, Any]:
    """The model alone (no baselines, no gate) on the benchmark; writes ``metrics.json`` and
    ``report.md`` into ``out_dir``; returns the evaluation summary."""
    pairs, queries, catalog = load(cfg, root)
    return run_evaluation(cfg, pairs, queries, catalog, pairs.iloc[:0], Path(ranker_dir), out_dir / "metrics.json",
                          out_dir, None, (), title, apply_gate=False)


def score(summary: dict[str, Any] | None, metric: str) -> float | None:
    """``<task>.<metric>`` of the model in an evaluation summary (None if not computed)."""
    if not summary:
        return None
    target, name = metric.split(".", 1)
    value = ((summary.get("methods") or {}).get("prodrank") or {}).get(target, {}).get(name)
    return float(value) if isinstance(value, int | float) else None
