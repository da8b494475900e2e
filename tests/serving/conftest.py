"""Serving fixtures: a tiny *trained* ranker (seconds), a gate-passing evaluation, a
temporary BentoML home, and (for the integration tests) a real `bentoml serve`."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml

from prodrank.config import load_config, resolve
from tests.conftest import PROJECT_ROOT, make_prepared

TRAIN = {"expert_hidden": 16, "tower_hidden": 8, "n_experts": 2, "max_steps": 4, "eval_every": 2,
         "checkpoint_every": 2, "queries_per_batch": 4, "candidates_per_query": 5, "learning_rate": 1e-3,
         "dropout": 0.0, "patience": 10, "max_eval_queries": 50}
GATE_PASSED = {"methods": {"prodrank": {"click": {"ndcg@10": 0.81, "ndcg@10_ci": [0.7, 0.9], "mrr": 0.7},
                                        "purchase": {"ndcg@10": 0.6}}},
               "n_queries": 8, "quality_gate": {"passed": True, "problems": []}}
GATE_FAILED = {**GATE_PASSED, "quality_gate": {"passed": False, "problems": ["click.ndcg@10 = 0.1 is below 0.5"]}}


@pytest.fixture(scope="session")
def serving_data(tmp_path_factory, tiny_init_dir) -> dict:
    """A tiny ranker trained for 4 steps on the handmade catalogue, and that catalogue."""
    from prodrank.training.finetune import finetune
    from prodrank.training.groups import product_fields

    root = tmp_path_factory.mktemp("serving_model")
    prepared = make_prepared(root / "prepared")
    cfg = resolve({"train": TRAIN})
    finetune(cfg, prepared, tiny_init_dir, root / "ranker", root / "plots", root / "metrics.json", root / "ckpt")
    products = product_fields(pd.read_parquet(prepared / "catalog.parquet"))
    return {"ranker_dir": root / "ranker", "products": products, "prepared": prepared}


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method: str, url: str, body: bytes | dict | None = None, content_type: str = "application/json",
         timeout: float = 30) -> tuple[int, dict | str]:
    """(status, parsed JSON or text) without raising on 4xx/5xx."""
    data = json.dumps(body).encode() if isinstance(body, dict | list) else body
    request = urllib.request.Request(url, data=data, method=method)
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


@pytest.fixture(scope="session")
def server(tmp_path_factory, serving_data):
    """`bentoml serve` on 127.0.0.1:<free port> with the tiny model packaged into a temporary
    BentoML home; yields its URL, PID, log dir and model tag; stopped with SIGTERM by PID."""
    from prodrank.serving.packaging import package

    root = tmp_path_factory.mktemp("server")
    home, log_dir = root / "bentoml", root / "logs"
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["serving"].update({"log_dir": str(log_dir), "max_candidates": 50, "max_body_bytes": 20_000,
                              "bentoml_home": str(home)})
    params_path = root / "params.yaml"
    params_path.write_text(yaml.safe_dump(params))
    metrics_path = root / "evaluate.json"
    metrics_path.write_text(json.dumps(GATE_PASSED))
    saved = os.environ.get("BENTOML_HOME")
    os.environ["BENTOML_HOME"] = str(home)
    try:
        manifest = package(load_config(params_path), serving_data["ranker_dir"], metrics_path, root / "package.json")
    finally:
        if saved is None:
            os.environ.pop("BENTOML_HOME", None)
        else:
            os.environ["BENTOML_HOME"] = saved
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PRODRANK_MODEL_TAG"}
    env.update(BENTOML_HOME=str(home), PRODRANK_PARAMS=str(params_path), BENTOML_DO_NOT_TRACK="true",
               HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    bentoml_exe = Path(sys.executable).parent / "bentoml"
    out = open(root / "server.log", "wb")
    proc = subprocess.Popen([str(bentoml_exe), "serve", "prodrank.serving.service:ProdrankRanker",
                             "--host", "127.0.0.1", "--port", str(port)],
                            cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    info = {"url": url, "pid": proc.pid, "proc": proc, "log_dir": log_dir, "tag": manifest["tag"],
            "server_log": root / "server.log", "home": home, "params": params_path}
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"bentoml serve exited ({proc.returncode}):\n{(root / 'server.log').read_text()[-3000:]}")
            try:
                if http("GET", url + "/readyz", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready in 120 s:\n{(root / 'server.log').read_text()[-3000:]}")
            time.sleep(0.3)
        yield info
    finally:
        stop_server(proc)
        out.close()


def stop_server(proc: subprocess.Popen, timeout: float = 30) -> int | None:
    """SIGTERM by PID, wait; SIGKILL only if it hangs. Returns the exit code."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
    return proc.returncode
