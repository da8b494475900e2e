"""Serving fixtures: a tiny *trained* ranker (seconds), a gate-passing evaluation, a
temporary BentoML home, and (for the integration tests) a real `bentoml serve`."""
from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml

from prodrank.config import load_config, resolve
from prodrank.data.catalog import product_fields
from prodrank.serving.process import ServerProcess
from tests.conftest import PROJECT_ROOT, make_prepared

TRAIN = {"expert_hidden": 16, "tower_hidden": 8, "n_experts": 2, "max_steps": 4, "eval_every": 2,
         "checkpoint_every": 2, "queries_per_batch": 4, "candidates_per_query": 5, "learning_rate": 1e-3,
         "dropout": 0.0, "patience": 10, "max_eval_queries": 50,
         "product_features": ["price", "rating"]}  # so the serving path carries request prices and ratings
DISTILL = {"epochs": 1, "hard_candidates": 3, "random_candidates": 2}
GATE_PASSED = {"methods": {"prodrank": {"click": {"ndcg@10": 0.81, "ndcg@10_ci": [0.7, 0.9], "mrr": 0.7},
                                        "purchase": {"ndcg@10": 0.6}}},
               "n_queries": 8, "quality_gate": {"passed": True, "problems": []}}
GATE_FAILED = {**GATE_PASSED, "quality_gate": {"passed": False, "problems": ["click.ndcg@10 = 0.1 is below 0.5"]}}


@pytest.fixture(scope="session")
def serving_data(tmp_path_factory, tiny_init_dir) -> dict:
    """A tiny ranker (text + price and rating) trained for 4 steps on the handmade catalogue, its
    distilled student (with ONNX graphs), and that catalogue."""
    from prodrank.training.distill import distill
    from prodrank.training.finetune import finetune

    root = tmp_path_factory.mktemp("serving_model")
    prepared = make_prepared(root / "prepared")
    cfg = resolve({"train": TRAIN, "distill": DISTILL})
    finetune(cfg, prepared, tiny_init_dir, root / "ranker", root / "plots", root / "metrics.json", root / "ckpt")
    distill(cfg, prepared, root / "ranker", root / "student", root / "distill.json")
    products = product_fields(pd.read_parquet(prepared / "catalog.parquet"))
    return {"ranker_dir": root / "ranker", "student_dir": root / "student", "products": products, "prepared": prepared}


@pytest.fixture()
def bento_home(tmp_path, monkeypatch) -> Path:
    """An empty BentoML home for one test (registry functions read $BENTOML_HOME per call)."""
    home = tmp_path / "bentoml"
    monkeypatch.setenv("BENTOML_HOME", str(home))
    monkeypatch.delenv("PRODRANK_MODEL_TAG", raising=False)
    return home


@pytest.fixture()
def cfg():
    return load_config(PROJECT_ROOT / "params.yaml")


def http(method: str, url: str, body: bytes | dict | None = None, content_type: str = "application/json",
         timeout: float = 30, headers: dict | None = None) -> tuple[int, dict | str]:
    """(status, parsed JSON or text) without raising on 4xx/5xx."""
    data = json.dumps(body).encode() if isinstance(body, dict | list) else body
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("content-type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def package_model(root: Path, ranker_dir: Path, serving: dict | None = None, catalog: Path | None = None,
                  student_dir: Path | None = None) -> dict:
    """Package ``ranker_dir`` into a BentoML home under ``root`` with a params.yaml whose serving
    section has ``serving`` overrides, and the search index of ``catalog`` (None: no index, as a
    model packaged before /search existed); returns the home, params path, log dir and model tag."""
    from prodrank.serving.packaging import package

    root.mkdir(parents=True, exist_ok=True)
    home, log_dir = root / "bentoml", root / "logs"
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["serving"].update({"log_dir": str(log_dir), "max_candidates": 50, "max_body_bytes": 20_000,
                              "bentoml_home": str(home), **(serving or {})})
    params_path = root / "params.yaml"
    params_path.write_text(yaml.safe_dump(params))
    metrics_path = root / "evaluate.json"
    metrics_path.write_text(json.dumps(GATE_PASSED))
    saved = os.environ.get("BENTOML_HOME")
    os.environ["BENTOML_HOME"] = str(home)
    try:
        manifest = package(load_config(params_path), ranker_dir, metrics_path, root / "package.json",
                           catalog or root / "no-catalog.parquet", student_dir=student_dir)
    finally:
        if saved is None:
            os.environ.pop("BENTOML_HOME", None)
        else:
            os.environ["BENTOML_HOME"] = saved
    return {"home": home, "params": params_path, "log_dir": log_dir, "tag": manifest["tag"]}


def launch_server(root: Path, ranker_dir: Path, serving: dict | None = None, catalog: Path | None = None,
                  student_dir: Path | None = None) -> dict:
    """:func:`package_model`, then `bentoml serve` on 127.0.0.1:<free port>, returned once /readyz
    answers 200: its URL, the ServerProcess, log dir, model tag and paths."""
    packaged = package_model(root, ranker_dir, serving, catalog, student_dir)
    process = ServerProcess.start({"BENTOML_HOME": str(packaged["home"]), "PRODRANK_PARAMS": str(packaged["params"])},
                                  root / "server.log", cwd=PROJECT_ROOT)
    info = {**packaged, "url": process.url, "server": process, "server_log": process.log_path}
    try:
        process.wait_ready(120)
    except BaseException:
        process.stop()
        raise
    return info


@pytest.fixture(scope="session")
def server(tmp_path_factory, serving_data):
    """`bentoml serve` with the tiny model (see :func:`launch_server`), packaged without a search
    index like a model from before /search; stopped with SIGTERM by PID."""
    info = launch_server(tmp_path_factory.mktemp("server"), serving_data["ranker_dir"], {"model": "student"},
                         student_dir=serving_data["student_dir"])
    try:
        yield info
    finally:
        info["server"].stop()


@pytest.fixture(scope="session")
def search_server(tmp_path_factory, serving_data):
    """`bentoml serve` with the tiny model and the search index of its 32-product catalogue
    (/search tests and the browser test); its own request log."""
    info = launch_server(tmp_path_factory.mktemp("search_server"), serving_data["ranker_dir"],
                         {"model": "student"}, catalog=serving_data["prepared"] / "catalog.parquet",
                         student_dir=serving_data["student_dir"])
    try:
        yield info
    finally:
        info["server"].stop()
