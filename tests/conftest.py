"""Shared fixtures: a tiny random BERT (MiniLM's tokenizer, offline) and a handmade
prepared data set, so model tests run in seconds without the pipeline."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

STORES_BEFORE = pytest.StashKey[dict]()

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"

# Tests never touch the user's stores. The Makefile exports BENTOML_HOME=<project>/.bentoml to every
# child, the tests' `dvc repro` and servers included, so a tiny test model once became the champion
# that `make serve` served. Every test run gets its own BentoML home (models, bentos, champion
# registry) and Prefect home; tests that need a store of their own set one inside their tmp_path.
TEST_STORES = Path(tempfile.mkdtemp(prefix="prodrank-test-stores-"))
os.environ["BENTOML_HOME"] = str(TEST_STORES / "bentoml")
os.environ["PREFECT_HOME"] = str(TEST_STORES / "prefect")
os.environ.pop("PRODRANK_MODEL_TAG", None)
os.environ.pop("PREFECT_API_URL", None)

# What a user's `make run`, `make serve` and retraining leave in the project; `make test` must
# leave each exactly as it found it (checked at the end of the run, see pytest_sessionfinish).
USER_STORES = (".bentoml", "logs", "datasets", "data", "models", "metrics", "reports", ".dvc/cache", "checkpoints")


def store_listing(root: Path = PROJECT_ROOT) -> dict[str, tuple[int, int]]:
    """(size, mtime in ns) of every file of the user's stores under ``root``."""
    listing = {}
    for name in USER_STORES:
        top = root / name
        files = [top] if top.is_file() else (p for p in top.rglob("*") if p.is_file()) if top.is_dir() else ()
        for path in files:
            stat = path.stat()
            listing[path.relative_to(root).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return listing


def pytest_sessionstart(session) -> None:
    session.config.stash[STORES_BEFORE] = store_listing()


def pytest_sessionfinish(session, exitstatus) -> None:
    """Fail the run when a test changed the user's stores in the project (module doc above)."""
    shutil.rmtree(TEST_STORES, ignore_errors=True)
    before, after = session.config.stash.get(STORES_BEFORE, None), store_listing()
    if before is None or before == after:
        return
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = (f"the tests changed the user's stores in {PROJECT_ROOT.name}/ ({len(changed)} files): "
               + ", ".join(changed[:10]))
    if reporter is not None:
        reporter.write_line("ERROR: " + message, red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED

KINDS = [
    ("sofa", "Furniture"), ("lamp", "Lighting"), ("drill", "Tools"), ("kettle", "Kitchen"),
    ("towel", "Bath"), ("pillow", "Bedding"), ("speaker", "Electronics"), ("hose", "Outdoor"),
]
COLOURS = ["red", "blue", "black", "green"]


@pytest.fixture(scope="session")
def tiny_init_dir(tmp_path_factory) -> Path:
    """A 1-layer, 32-wide BERT with MiniLM's WordPiece vocabulary, saved like the pretrain stage's output."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    from prodrank.training.pretrain import minilm_path

    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("tiny_bert")
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertForMaskedLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def make_prepared(directory: Path, seed: int = 0) -> Path:
    """32 products (8 kinds x 4 colours); each query names a kind and colour; the exact
    product is clicked (and often bought), same-kind products sometimes, others never."""
    rng = np.random.default_rng(seed)
    catalog = pd.DataFrame([
        {"product_id": f"P{k}{c}", "title": f"acme {colour} {kind}", "brand": "acme", "category": dept,
         "attributes": f"color: {colour}", "description": f"a {colour} {kind} for your home",
         "price": 10.0 + k, "rating": 4.0, "popularity": float(rng.random())}
        for k, (kind, dept) in enumerate(KINDS) for c, colour in enumerate(COLOURS)
    ])
    queries, rows = [], []
    for k, (kind, _) in enumerate(KINDS):
        for c, colour in enumerate(COLOURS):
            qid = f"Q{k}{c}"
            queries.append({"query_id": qid, "query": f"{colour} {kind}", "frequency": "head",
                            "gap_synonym": False, "gap_abbreviation": False, "gap_misspelling": False,
                            "gap_descriptive": False})
            others = [f"P{(k + d) % len(KINDS)}{rng.integers(4)}" for d in (1, 2, 3)]
            shown = [f"P{k}{c}", f"P{k}{(c + 1) % 4}", *others]
            for pos, pid in enumerate(dict.fromkeys(shown), start=1):
                exact, same_kind = pid == f"P{k}{c}", pid.startswith(f"P{k}")
                clicks = 8 if exact else (2 if same_kind else 0)
                rows.append({"query_id": qid, "product_id": pid, "impressions": 10, "position": float(pos),
                             "clicks": clicks, "add_to_carts": clicks // 2, "purchases": clicks // 4,
                             "relevance": 3 if exact else (1 if same_kind else 0)})
    queries, interactions = pd.DataFrame(queries), pd.DataFrame(rows)
    # held out: one colour per kind, a different one for each kind, so every word is seen in training
    held_out = {f"Q{k}{(k + 3) % 4}" for k in range(len(KINDS))}
    splits = {"train": [q for q in queries["query_id"] if q not in held_out],
              "valid": sorted(held_out), "test": sorted(held_out)}
    directory.mkdir(parents=True, exist_ok=True)
    catalog.to_parquet(directory / "catalog.parquet", index=False)
    for name, ids in splits.items():
        (directory / name).mkdir(parents=True, exist_ok=True)
        queries[queries["query_id"].isin(ids)].to_parquet(directory / name / "queries.parquet", index=False)
        part = interactions[interactions["query_id"].isin(ids)]
        part.drop(columns="relevance").to_parquet(directory / name / "interactions.parquet", index=False)
        part[["query_id", "product_id", "relevance"]].to_parquet(directory / name / "relevance.parquet", index=False)
    return directory


@pytest.fixture()
def prepared_dir(tmp_path) -> Path:
    return make_prepared(tmp_path / "prepared")
