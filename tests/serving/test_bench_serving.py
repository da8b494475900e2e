"""The serving benchmark's in-process code paths on a small ranker that reads price and rating
(the default model does): naive and optimised scoring, token lengths and FLOPs. Speed itself is
measured by the benchmark, never here."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from prodrank.models.ranker import load_ranker
from prodrank.serving.engine import RankingEngine
from tests.conftest import PROJECT_ROOT


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_serving", PROJECT_ROOT / "benchmarks" / "bench_serving.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def request_for(products: dict, price: float | None = None) -> dict:
    candidates = [{"id": pid, **fields, **({"price": price} if price is not None else {})}
                  for pid, fields in list(products.items())[:12]]
    return {"query": "red sofa", "candidates": candidates}


def test_benchmark_paths_score_a_ranker_with_product_features(bench, serving_data):
    ranker = load_ranker(serving_data["ranker_dir"])
    assert ranker.pair_encoder.features is not None and ranker.pair_encoder.features.names == ("price", "rating")
    request = request_for(serving_data["products"])
    naive = bench.naive_score(ranker, request, bench.naive_max_length(ranker), batch_size=5)
    assert naive.shape == (12,) and np.isfinite(naive).all()
    # the features reach the model on the naive path: another price changes the scores
    assert not np.allclose(naive, bench.naive_score(ranker, request_for(serving_data["products"], 1e6),
                                                    bench.naive_max_length(ranker), batch_size=5))
    engine = RankingEngine(ranker, threads=1, max_batch_size=5)
    optimised = engine.rank(request["query"], bench.engine_candidates(request))
    assert len(optimised.scores["score"]) == 12 and np.isfinite(optimised.scores["score"]).all()
    assert engine.rank(request["query"], bench.engine_candidates(request_for(serving_data["products"], 1e6))
                       ).scores["score"] != pytest.approx(optimised.scores["score"])
    real, padded = bench.measured_lengths(ranker, [request], batch_size=5)
    assert 0 < real <= padded <= bench.naive_max_length(ranker)
    assert bench.flops_per_pair(ranker, real) < bench.flops_per_pair(ranker, padded + 1)


def test_search_timing_reads_the_servers_retrieval_time(bench, search_server):
    res = bench.search_load(search_server["url"], ["red sofa", "blue lamp", "acme chair"], 20)
    assert res["n"] == 3 and res["p99"] >= res["p50"] > 0
    assert 0 <= res["retrieval_ms_p50"] <= res["p99"]


def test_benchmark_paths_for_a_two_tower_student(bench, serving_data):
    """FLOPs of the student: the head per pair plus the shared query pass with the product in the
    index, and a product's own pass on top when it is new; the cold path really is new."""
    request = request_for(serving_data["products"])
    flops = bench.student_flops(serving_data["student_dir"], [request])
    assert flops["candidates"] == 12 and flops["query_tokens"] >= 3
    assert 0 < flops["mflops_per_pair_indexed"] < flops["mflops_per_pair_new_product"]
    fresh = bench.new_products(request, "v1")
    assert [c["id"] for c in fresh["candidates"]] == [c["id"] for c in request["candidates"]]
    assert all(c["title"].endswith(" v1") for c in fresh["candidates"])
    from prodrank.models.runtime import load_scorer

    student = load_scorer(serving_data["student_dir"], "onnx")
    engine = RankingEngine(student, threads=1)
    bench.warm_products(lambda r: engine.rank(r["query"], bench.engine_candidates(r)), {12: [request]})
    misses = student.index.misses
    engine.rank(request["query"], bench.engine_candidates(request))
    assert student.index.misses == misses  # warmed: every product from the index
    engine.rank(request["query"], bench.engine_candidates(fresh))
    assert student.index.misses == misses + 12
