"""Distillation and the ONNX runtime: the student is trained on train queries only, its ONNX
graph scores as its torch weights do, int8 really quantises, and the pipeline's scorer loader
picks the runtime asked for."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pandas as pd
import pytest

from prodrank.config import resolve
from prodrank.data.catalog import product_fields
from prodrank.models.ranker import LoadedRanker, load_ranker
from prodrank.models.runtime import FP32_FILE, INT8_FILE, OnnxRanker, load_scorer
from prodrank.training import distill as distill_module
from prodrank.training.finetune import finetune
from prodrank.training.groups import load_split
from tests.conftest import make_prepared

TRAIN = {"expert_hidden": 16, "tower_hidden": 8, "n_experts": 2, "max_steps": 6, "eval_every": 3,
         "checkpoint_every": 3, "queries_per_batch": 4, "candidates_per_query": 5, "learning_rate": 1e-3,
         "dropout": 0.0, "patience": 10, "max_eval_queries": 50, "product_features": ["price", "rating"]}
DISTILL = {"layers": 1, "hidden": 16, "heads": 2, "epochs": 2, "hard_candidates": 3, "random_candidates": 2,
           "queries_per_batch": 4}


@pytest.fixture(scope="module")
def distilled(tmp_path_factory, tiny_init_dir):
    """A tiny teacher (text, price and rating) and its distilled student; the student's training
    queries are recorded."""
    root = tmp_path_factory.mktemp("distill")
    prepared = make_prepared(root / "prepared")
    cfg = resolve({"train": TRAIN, "distill": DISTILL, "evaluate": {"ablations": []}})
    finetune(cfg, prepared, tiny_init_dir, root / "ranker", root / "plots", root / "train.json", root / "ckpt")
    seen: list[str] = []
    original = distill_module.label_with_teacher

    def recording(teacher, groups, extras, products, batch_size):
        seen.extend(g.query_id for g in groups)
        return original(teacher, groups, extras, products, batch_size)

    distill_module.label_with_teacher = recording
    try:
        summary = distill_module.distill(cfg, prepared, root / "ranker", root / "student", root / "distill.json",
                                         root / "train.json")
    finally:
        distill_module.label_with_teacher = original
    return {"root": root, "prepared": prepared, "summary": summary, "seen": seen, "cfg": cfg}


def pairs(prepared, n=40):
    catalog = pd.read_parquet(prepared / "catalog.parquet")
    products = product_fields(catalog)
    products[next(iter(products))]["price"] = None  # a product without a price scores too
    rng = np.random.default_rng(0)
    queries = ["red lamp", "blue sofa for the living room", "green", "acme chair with a long name and more"]
    pids = list(rng.choice(list(products), n))
    return [queries[i % len(queries)] for i in range(n)], pids, products


def test_the_student_learns_from_train_queries_only_and_records_its_figures(distilled):
    train = set(load_split(distilled["prepared"], "train")["queries"]["query_id"])
    assert distilled["seen"] and set(distilled["seen"]) <= train
    saved = json.loads((distilled["root"] / "distill.json").read_text())
    for key in ("best_valid_ndcg@10", "valid_ndcg@10_onnx_fp32", "valid_ndcg@10_onnx_int8", "teacher_valid_ndcg@10",
                "pairs", "shape", "teacher_seconds"):
        assert key in saved, key
    assert saved["pairs"] > sum(1 for _ in distilled["seen"]) * 3  # shown products plus the extra candidates
    assert saved["shape"]["hidden"] == 16


def test_onnx_scores_agree_with_torch_and_the_order_of_pairs_does_not_matter(distilled):
    student_dir = distilled["root"] / "student"
    queries, pids, products = pairs(distilled["prepared"])
    reference = load_ranker(student_dir).score(queries, pids, products, batch_size=7)
    onnx_scores = load_scorer(student_dir, "onnx", quantize=False, threads=1).score(queries, pids, products, batch_size=7)
    for name in ("score", "click", "add_to_cart", "purchase"):
        np.testing.assert_allclose(onnx_scores[name], reference[name], atol=1e-5, rtol=1e-4)
    order = np.random.default_rng(1).permutation(len(pids))
    shuffled = load_scorer(student_dir, "onnx").score([queries[i] for i in order], [pids[i] for i in order], products)
    np.testing.assert_allclose(shuffled["score"], onnx_scores["score"][order], atol=1e-5)


def test_int8_changes_the_graph_and_stays_close(distilled):
    student_dir = distilled["root"] / "student"
    ops = {path: {node.op_type for node in onnx.load(str(student_dir / path)).graph.node} for path in (FP32_FILE, INT8_FILE)}
    quantised = {"MatMulInteger", "DynamicQuantizeLinear"}
    assert quantised <= ops[INT8_FILE]
    assert not quantised & ops[FP32_FILE]
    queries, pids, products = pairs(distilled["prepared"])
    fp32 = load_scorer(student_dir, "onnx", quantize=False).score(queries, pids, products)["score"]
    int8 = load_scorer(student_dir, "onnx", quantize=True).score(queries, pids, products)["score"]
    assert not np.array_equal(fp32, int8)
    assert np.corrcoef(fp32, int8)[0, 1] > 0.9


def test_the_loader_picks_the_runtime_and_falls_back_to_torch_without_graphs(distilled):
    root = distilled["root"]
    assert isinstance(load_scorer(root / "student", "onnx"), OnnxRanker)
    assert isinstance(load_scorer(root / "student", "torch"), LoadedRanker)
    teacher = load_scorer(root / "ranker", "onnx")  # no exported graphs: torch
    assert isinstance(teacher, LoadedRanker) and teacher.runtime == "torch"
    quantised = load_scorer(root / "ranker", "torch", quantize=True)
    assert quantised.quantized
    with pytest.raises(ValueError, match="runtime"):
        load_scorer(root / "student", "tensorrt")


def test_a_student_as_deep_and_wide_as_its_teacher_starts_as_the_teacher(distilled):
    from prodrank.models.ranker import LoadedRanker
    from prodrank.models.student import build_student

    teacher = load_ranker(distilled["root"] / "ranker")
    config = teacher.model.encoder.config
    student, pair_encoder = build_student(teacher, config.num_hidden_layers, config.hidden_size, 1,
                                          teacher.pair_encoder.budget)
    queries, pids, products = pairs(distilled["prepared"])
    expected = teacher.score(queries, pids, products)["score"]
    got = LoadedRanker(student, pair_encoder).score(queries, pids, products)["score"]
    np.testing.assert_allclose(got, expected, atol=1e-5)
