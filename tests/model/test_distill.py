"""Distillation and the ONNX runtime: the two-tower student is trained on train queries only,
its product index holds the catalogue, its ONNX graphs score as its torch weights do, int8
really quantises, and the pipeline's scorer loader picks the runtime asked for."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pandas as pd
import pytest
import torch

from prodrank.config import resolve
from prodrank.data.catalog import product_fields
from prodrank.models.ranker import LoadedRanker, load_ranker
from prodrank.models.runtime import QUERY_FILE, QUERY_INT8_FILE, OnnxBackend, load_scorer
from prodrank.models.signals import SIGNAL_NAMES
from prodrank.models.student import STUDENT_FILE, StudentScorer, TorchBackend, build_student, torch_student
from prodrank.training import distill as distill_module
from prodrank.training.finetune import finetune
from prodrank.training.groups import load_split
from tests.conftest import make_prepared

TRAIN = {"expert_hidden": 16, "tower_hidden": 8, "n_experts": 2, "max_steps": 6, "eval_every": 3,
         "checkpoint_every": 3, "queries_per_batch": 4, "candidates_per_query": 5, "learning_rate": 1e-3,
         "dropout": 0.0, "patience": 10, "max_eval_queries": 50, "product_features": ["price", "rating"]}
DISTILL = {"epochs": 2, "hard_candidates": 3, "random_candidates": 2, "queries_per_batch": 4, "product_adapter_size": 16}


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
    assert saved["shape"]["kind"] == "two_tower" and saved["shape"]["hidden"] == 32
    catalog = pd.read_parquet(distilled["prepared"] / "catalog.parquet")
    assert saved["index"]["products"] == len(catalog)


def test_catalogue_products_come_from_the_index_and_a_changed_one_is_encoded_again(distilled):
    scorer = torch_student(distilled["root"] / "student")
    products = product_fields(pd.read_parquet(distilled["prepared"] / "catalog.parquet"))
    pid = next(iter(products))
    first = scorer.score(["red lamp"], [pid], products)["score"]
    assert (scorer.index.hits, scorer.index.misses) == (1, 0)
    changed = {pid: {**products[pid], "title": "a completely different title"}}
    second = scorer.score(["red lamp"], [pid], changed)["score"]
    assert scorer.index.misses == 1 and not np.array_equal(first, second)
    # the packaged vector is what the encoder gives now: the index is not stale
    fresh = StudentScorer(scorer.backend, scorer.pair_encoder, scorer.tasks)
    np.testing.assert_allclose(fresh.score(["red lamp"], [pid], products)["score"], first, atol=1e-6)


def test_onnx_scores_agree_with_torch_and_the_order_of_pairs_does_not_matter(distilled):
    student_dir = distilled["root"] / "student"
    queries, pids, products = pairs(distilled["prepared"])
    reference = load_scorer(student_dir, "torch").score(queries, pids, products, batch_size=7)
    onnx_scores = load_scorer(student_dir, "onnx", quantize=False, threads=1).score(queries, pids, products, batch_size=7)
    for name in ("score", "click", "add_to_cart", "purchase"):
        np.testing.assert_allclose(onnx_scores[name], reference[name], atol=1e-5, rtol=1e-4)
    order = np.random.default_rng(1).permutation(len(pids))
    shuffled = load_scorer(student_dir, "onnx").score([queries[i] for i in order], [pids[i] for i in order], products)
    np.testing.assert_allclose(shuffled["score"], onnx_scores["score"][order], atol=1e-5)


def test_int8_changes_the_graph_and_stays_close(distilled):
    student_dir = distilled["root"] / "student"
    ops = {path: {node.op_type for node in onnx.load(str(student_dir / path)).graph.node}
           for path in (QUERY_FILE, QUERY_INT8_FILE)}
    quantised = {"MatMulInteger", "DynamicQuantizeLinear"}
    assert quantised <= ops[QUERY_INT8_FILE]
    assert not quantised & ops[QUERY_FILE]
    queries, pids, products = pairs(distilled["prepared"])
    fp32 = load_scorer(student_dir, "onnx", quantize=False).score(queries, pids, products)["score"]
    int8 = load_scorer(student_dir, "onnx", quantize=True).score(queries, pids, products)["score"]
    assert not np.array_equal(fp32, int8)
    assert np.corrcoef(fp32, int8)[0, 1] > 0.9


def test_the_loader_picks_the_runtime_and_serves_a_teacher_in_torch(distilled):
    root = distilled["root"]
    onnx_student = load_scorer(root / "student", "onnx")
    assert isinstance(onnx_student, StudentScorer) and isinstance(onnx_student.backend, OnnxBackend)
    torch_scorer = load_scorer(root / "student", "torch")
    assert isinstance(torch_scorer.backend, TorchBackend) and torch_scorer.runtime == "torch"
    with pytest.raises(ValueError, match="ONNX Runtime"):
        load_scorer(root / "student", "torch", quantize=True)
    teacher = load_scorer(root / "ranker", "onnx")  # a cross-encoder: torch
    assert isinstance(teacher, LoadedRanker) and teacher.runtime == "torch"
    quantised = load_scorer(root / "ranker", "torch", quantize=True)
    assert quantised.quantized
    with pytest.raises(ValueError, match="runtime"):
        load_scorer(root / "student", "tensorrt")


def test_an_untrained_student_ranks_by_its_encoders_cosine(distilled):
    """The similarity prior with a fresh head: the towers start near zero, so before training the
    student's order is (nearly) the bi-encoder's cosine of the teacher's encoder."""
    teacher = load_ranker(distilled["root"] / "ranker")
    student, pair_encoder = build_student(teacher, 8, adapter_size=16, signals=True)
    scorer = StudentScorer(TorchBackend(student), pair_encoder, student.tasks)
    queries, pids, products = pairs(distilled["prepared"], n=12)
    queries = ["red lamp"] * len(pids)
    score = scorer.score(queries, pids, products)["score"]
    vectors = scorer.product_vectors(pids, 8)
    features = torch.tensor(np.array([pair_encoder.product(p).features for p in pids]), dtype=torch.float32)
    with torch.no_grad():  # the fresh adapter is the identity
        assert torch.equal(student.product_adapter(torch.from_numpy(vectors), features), torch.from_numpy(vectors))
    query = scorer.embed_rows(pair_encoder.query_rows(["red lamp"])[0], "query", 8)[0]
    cosine = vectors @ query / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))
    from scipy.stats import spearmanr

    assert spearmanr(score, cosine)[0] > 0.8


def test_the_adapter_is_trained_saved_and_ignores_missing_flags_it_never_saw(distilled):
    """The trained adapter is no longer the identity and comes back from disk; the weights of
    the missing-value flags start at 0, as in the head's input layer."""
    scorer = torch_student(distilled["root"] / "student")
    adapter = scorer.backend.model.product_adapter
    assert adapter is not None and adapter.up.weight.abs().sum() > 0
    teacher = load_ranker(distilled["root"] / "ranker")
    fresh, _ = build_student(teacher, 8, adapter_size=16, signals=True)
    flags = fresh.head.config.missing_flags
    assert flags > 0 and torch.count_nonzero(fresh.product_adapter.down.weight[:, -flags:]) == 0


def test_the_student_reads_the_pair_signals_and_follows_a_changed_price(distilled):
    """The signals are an input of the saved head, in torch and in ONNX, and they move its
    output; the product word sets follow a changed price under the same id."""
    student_dir = distilled["root"] / "student"
    assert json.loads((student_dir / STUDENT_FILE).read_text())["signals"] == list(SIGNAL_NAMES)
    onnx_scorer = load_scorer(student_dir, "onnx")
    assert "signals" in [i.name for i in onnx_scorer.backend.head_session.get_inputs()]
    products = product_fields(pd.read_parquet(distilled["prepared"] / "catalog.parquet"))
    pid = next(iter(products))
    within = SIGNAL_NAMES.index("within_limit")
    cheap = onnx_scorer.signals(["lamp under 50"], [pid], {pid: {**products[pid], "price": 10.0}}, np.zeros(1, int), np.zeros(1, int))
    dear = onnx_scorer.signals(["lamp under 50"], [pid], {pid: {**products[pid], "price": 90.0}}, np.zeros(1, int), np.zeros(1, int))
    assert cheap[0, within] == 1 and dear[0, within] == 0
    onnx_scorer.pair_encoder.encode_products({pid: products[pid]})
    vectors = onnx_scorer.product_vectors([pid], 8)
    query = onnx_scorer.embed_rows(onnx_scorer.pair_encoder.query_rows(["lamp"])[0], "query", 8)
    features = np.zeros((1, len(onnx_scorer.pair_encoder.product(pid).features)), dtype=np.float32)
    for backend in (onnx_scorer.backend, load_scorer(student_dir, "torch").backend):
        off, on = (backend.head(query, vectors, np.full((1, len(SIGNAL_NAMES)), v, dtype=np.float32), features)["score"]
                   for v in (0.0, 1.0))
        assert not np.allclose(off, on)


def test_teacher_int8_labels_with_a_quantised_copy_and_the_student_starts_from_the_fp32_teacher(distilled, tmp_path):
    cfg = distilled["cfg"].model_copy(update={"distill": distilled["cfg"].distill.model_copy(update={"teacher_int8": True})})
    labellers: list[LoadedRanker] = []
    original = distill_module.label_with_teacher

    def recording(teacher, groups, extras, products, batch_size):
        labellers.append(teacher)
        return original(teacher, groups, extras, products, batch_size)

    distill_module.label_with_teacher = recording
    try:
        distill_module.distill(cfg, distilled["prepared"], distilled["root"] / "ranker", tmp_path / "student",
                               tmp_path / "distill.json")
    finally:
        distill_module.label_with_teacher = original
    (labeller,) = labellers
    assert labeller.quantized
    assert any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in labeller.model.encoder.modules())
    # the student's query tower is a trainable fp32 copy of the teacher's encoder, never the quantised one
    student = torch_student(tmp_path / "student").backend.model
    assert all(p.dtype == torch.float32 for p in student.query_encoder.parameters())
    assert not any("quantized" in type(m).__module__ for m in student.modules())
