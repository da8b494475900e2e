"""The scoring core: same order as LoadedRanker.score, content-keyed product cache,
truncation flags, top_k, warm-up, and the int8 accuracy comparison."""
from __future__ import annotations

import numpy as np
import pytest
from torch import nn
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

from prodrank.models.ranker import load_ranker
from prodrank.models.runtime import load_scorer, quantize_encoder
from prodrank.serving.engine import RankingEngine, compare_rankings


@pytest.fixture(scope="module")
def ranker(serving_data):
    return load_ranker(serving_data["ranker_dir"])


def as_candidates(products, ids):
    return [{"id": pid, "fields": dict(products[pid])} for pid in ids]


def test_rank_matches_loaded_ranker_and_funnel(serving_data, ranker):
    products = serving_data["products"]
    ids = list(products)
    engine = RankingEngine(ranker, threads=2, max_batch_size=256)
    outcome = engine.rank("green lamp", as_candidates(products, ids))
    direct = load_ranker(serving_data["ranker_dir"]).score(["green lamp"] * len(ids), ids, products)
    np.testing.assert_allclose(outcome.scores["score"], direct["score"], rtol=1e-5, atol=1e-6)
    expected = sorted(range(len(ids)), key=lambda i: (-direct["score"][i], i))
    assert [r["id"] for r in outcome.results()] == [ids[i] for i in expected]
    results = outcome.results()
    assert [r["rank"] for r in results] == list(range(1, len(ids) + 1))
    for r in results:
        assert r["p_purchase"] <= r["p_add_to_cart"] + 1e-9 <= r["p_click"] + 2e-9
    top = engine.rank("green lamp", as_candidates(products, ids), top_k=3)
    assert [r["id"] for r in top.results()] == [r["id"] for r in results[:3]]
    positions = top.positions()
    assert sorted(p for p in positions if p is not None) == [1, 2, 3] and positions.count(None) == len(ids) - 3


def test_same_id_with_new_text_is_rescored_not_served_from_cache(ranker):
    engine = RankingEngine(ranker)
    a = engine.rank("red sofa", [{"id": "x", "fields": {"title": "acme red sofa"}},
                                 {"id": "y", "fields": {"title": "blue kettle"}}])
    b = engine.rank("red sofa", [{"id": "x", "fields": {"title": "blue kettle"}},
                                 {"id": "y", "fields": {"title": "acme red sofa"}}])
    np.testing.assert_allclose(a.scores["score"], b.scores["score"][::-1], rtol=1e-5)


def test_price_and_rating_are_read_and_a_new_price_is_rescored_not_served_from_cache(ranker):
    engine = RankingEngine(ranker)
    sofa = {"title": "acme red sofa", "rating": 4.5}
    before = engine.rank("red sofa", [{"id": "x", "fields": {**sofa, "price": 10.0}}]).scores["score"]
    after = engine.rank("red sofa", [{"id": "x", "fields": {**sofa, "price": 900.0}}]).scores["score"]
    unknown = engine.rank("red sofa", [{"id": "x", "fields": {"title": "acme red sofa"}}]).scores["score"]
    assert before[0] != after[0] and np.isfinite(unknown).all()
    direct = ranker.score(["red sofa"], ["y"], {"y": {**sofa, "price": 10.0}})["score"]
    np.testing.assert_allclose(before, direct, rtol=1e-5)


def test_long_text_is_cut_and_flagged(ranker):
    engine = RankingEngine(ranker, max_field_chars=50, max_query_chars=20)
    out = engine.rank("red sofa", [{"id": "short", "fields": {"title": "sofa"}},
                                   {"id": "long", "fields": {"title": "sofa " * 200}}])
    flags = {r["id"]: r["truncated"] for r in out.results()}
    assert flags == {"short": False, "long": True}
    out = engine.rank("red sofa " * 10, [{"id": "short", "fields": {"title": "sofa"}}])
    assert out.results()[0]["truncated"]


def test_product_cache_is_bounded(ranker):
    engine = RankingEngine(ranker, product_cache_size=5)
    for i in range(4):
        engine.rank("q", [{"id": f"{i}-{j}", "fields": {"title": f"item {i} {j}"}} for j in range(3)])
    assert len(engine.ranker.pair_encoder._product_cache) <= 5


def test_the_students_product_vectors_are_bounded_too(serving_data):
    student = load_scorer(serving_data["student_dir"], "onnx")
    packaged = len(student.index.packaged)
    engine = RankingEngine(student, product_cache_size=5)
    for i in range(4):
        engine.rank("q", [{"id": f"{i}-{j}", "fields": {"title": f"item {i} {j}"}} for j in range(3)])
    assert len(student.index.computed) <= 5 and len(student.index.packaged) == packaged


def linear_layers(module: nn.Module) -> dict[str, type]:
    return {name: type(m) for name, m in module.named_modules() if isinstance(m, nn.Linear | DynamicLinear)}


def test_warm_up_and_quantized_comparison(serving_data, ranker):
    engine = RankingEngine(ranker)
    engine.warm_up()
    quantized = quantize_encoder(ranker)  # a copy: ranker itself stays fp32
    fp32, int8 = linear_layers(ranker.model.encoder), linear_layers(quantized.model.encoder)
    assert int8.keys() == fp32.keys() and set(fp32.values()) == {nn.Linear} and set(int8.values()) == {DynamicLinear}
    assert set(linear_layers(quantized.model.head).values()) == {nn.Linear}  # the head stays fp32
    products = serving_data["products"]
    ids = list(products)
    ref = [ranker.score([q] * len(ids), ids, products)["score"] for q in ("red sofa", "blue drill")]
    q8 = [quantized.score([q] * len(ids), ids, products)["score"] for q in ("red sofa", "blue drill")]
    error = np.abs(np.concatenate(q8) - np.concatenate(ref))
    assert error.max() > 0  # quantisation changed the arithmetic ...
    assert error.max() < 0.05 * np.ptp(np.concatenate(ref))  # ... by little next to the spread of the scores
    report = compare_rankings(ref, q8, k=10, gains=[np.ones(len(ids)), np.arange(len(ids), dtype=float)])
    assert report["requests"] == 2 and report["pearson"] > 0.99 and report["spearman"] > 0.9
    same = compare_rankings(ref, ref, k=10)
    assert same["spearman"] == pytest.approx(1) and same["self_ndcg@10"] == pytest.approx(1)
    RankingEngine(load_scorer(serving_data["ranker_dir"], "torch", quantize=True)).warm_up()
    RankingEngine(load_scorer(serving_data["student_dir"], "onnx", quantize=True)).warm_up()


@pytest.mark.parametrize("text", ["\u200b", "\x00\x01", "🛋️ sofa 🛋️", "ספה אדומה", "a" * 3000, "\ufffd", " ".join(["x"] * 2000)])
def test_odd_text_scores_without_error(ranker, text):
    engine = RankingEngine(ranker, max_field_chars=5000)
    out = engine.rank(text, [{"id": "odd", "fields": {"title": text, "brand": text, "description": text}},
                             {"id": "plain", "fields": {"title": "red sofa"}}])
    assert np.all(np.isfinite(out.scores["score"])) and len(out.results()) == 2
