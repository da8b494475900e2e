"""Fixtures for the orchestration tests: an isolated Prefect home, a tiny project copy, and data
drops made from the tiny synthetic world (one good, one made worse on purpose)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.e2e.test_pipeline import fresh_copy, set_params, sh

BIN = Path(sys.executable).parent

# the retrain test's pipeline: the tiny profile, without domain pretraining, 15 training steps
# (enough for premium_world's signal: benchmark NDCG@10 ~0.7 vs ~0.5 for the inverted store)
# and the cheap baselines only, so one `dvc repro` of a new drop takes well under a minute
FAST_PARAMS = {
    "profile": "tiny",
    "pretrain.enabled": False,
    "profiles.tiny.train.max_steps": 15,
    # text only: these tests check the flow's decisions, and in 15 steps the price and rating
    # inputs (random weights at the start) left the inverted-label challenger below random on
    # its own split, so it failed its gate before the benchmark comparison under test. The
    # feature path is covered by tests/model and tests/serving.
    "train.product_features": [],
    # the trained ranker serves: its 15 steps learn the drops' signal every time, while the tiny
    # two-tower student distilled from it in seconds sometimes ranks like random on these drops,
    # failing its gate before the decision under test. The student path is covered by tests/e2e,
    # tests/model and tests/serving.
    "serving.model": "teacher",
    "evaluate.baselines": ["random", "production"],
    "evaluate.bootstrap_samples": 20,
}


@pytest.fixture(scope="package", autouse=True)
def _prefect_home(tmp_path_factory):
    """Every orchestration test gets a throw-away PREFECT_HOME (never ~/.prefect or the project's),
    analytics off, and stages that never look for a server unless a test says so."""
    home = tmp_path_factory.mktemp("prefect-home")
    saved = {k: os.environ.get(k) for k in ("PREFECT_HOME", "PRODRANK_PREFECT", "PREFECT_API_URL")}
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PRODRANK_PREFECT"] = "off"
    os.environ.pop("PREFECT_API_URL", None)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def make_project(destination: Path, **params) -> Path:
    """A copy of the working tree (tests.e2e.test_pipeline.fresh_copy) with FAST_PARAMS."""
    root = fresh_copy(destination)
    set_params(root, **{**FAST_PARAMS, **params})
    return root


def world_tables(project: Path, out: Path) -> dict[str, pd.DataFrame]:
    """The tiny synthetic world (`prodrank generate`), canonical tables."""
    from prodrank.stages import read_tables

    sh([str(BIN / "prodrank"), "generate", "--out", str(out)], project)
    return read_tables(out)


def premium_world(tables: dict[str, pd.DataFrame], invert: bool = False, seed: int = 0) -> dict[str, pd.DataFrame]:
    """A store where half the catalogue is "premium" (the word leads the title) and shoppers
    click, add and buy premium products only: a signal the tiny model learns in a few dozen
    steps. With ``invert`` they take everything but the premium products: the same catalogue
    and queries, made worse on purpose (a model trained on it ranks the benchmark upside down)."""
    catalog = tables["catalog"].copy()
    premium = np.random.default_rng(seed).random(len(catalog)) < 0.5
    catalog["title"] = np.where(premium, "premium " + catalog["title"].astype(str), catalog["title"])
    good = tables["interactions"]["product_id"].map(dict(zip(catalog["product_id"], premium, strict=True))).fillna(False)
    good = good.to_numpy(dtype=bool) ^ invert
    inter = tables["interactions"].copy()
    inter["impressions"] = 10
    inter["clicks"] = np.where(good, 6, 0)
    inter["add_to_carts"] = np.where(good, 3, 0)
    inter["purchases"] = np.where(good, 1, 0)
    return {**without_positions(tables), "catalog": catalog, "interactions": inter}


def without_positions(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The tables less the per-position counts, which no longer add up to interactions counts
    made up anew (a drop exported from them takes the counts from the interactions table)."""
    return {name: frame for name, frame in tables.items() if name != "positions"}


def judged_clicks(tables: dict[str, pd.DataFrame], invert: bool = False) -> dict[str, pd.DataFrame]:
    """Replace the logged counts by ones that follow the true relevance (10 impressions; clicks
    3 x grade, add-to-carts for grade >= 2, a purchase for grade 3), so the signal is clean. With
    ``invert`` the grade is flipped (3 - grade): a data set made worse on purpose."""
    grade = tables["interactions"][["query_id", "product_id"]].merge(
        tables["relevance"], on=["query_id", "product_id"], how="left")["relevance"].fillna(0).to_numpy(dtype=int)
    if invert:
        grade = 3 - grade
    inter = tables["interactions"].copy()
    inter["impressions"] = 10
    inter["clicks"] = 3 * grade
    inter["add_to_carts"] = np.where(grade >= 2, grade - 1, 0)
    inter["purchases"] = (grade == 3).astype(int)
    return {**without_positions(tables), "interactions": inter}


def write_drop(tables: dict[str, pd.DataFrame], folder: Path) -> Path:
    """A drop in the documented interactions format (one row per impression) + catalogue."""
    from prodrank.orchestration.drops import export_impressions

    folder.mkdir(parents=True, exist_ok=True)
    export_impressions(tables).to_parquet(folder / "interactions.parquet", index=False)
    tables["catalog"].to_parquet(folder / "catalog.parquet", index=False)
    return folder
