"""``POST /search`` over real HTTP against `bentoml serve` with the tiny model and the search index of
its catalogue: the answer's shape, the first stage against the packaged index, the order against
``/rank`` on the same retrieved candidates, every bad field as a 4xx naming it, the request log's
record, and a model packaged without an index (503 for /search, /rank still served)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from prodrank.data.catalog import product_fields
from prodrank.serving.request_log import read_log
from prodrank.serving.retrieval import INDEX_SUBDIR, CatalogIndex
from tests.serving.conftest import http

pytestmark = pytest.mark.slow


def model_dir(server) -> Path:
    name, version = server["tag"].split(":")
    return server["home"] / "models" / name / version


def test_search_answers_from_the_packaged_catalogue(search_server, serving_data):
    status, answer = http("POST", search_server["url"] + "/search", {"query": "red sofa", "k": 5})
    assert status == 200, answer
    index = CatalogIndex.load(model_dir(search_server) / INDEX_SUBDIR)
    retrieved = index.search("red sofa", 50)  # n defaults to 100, capped at serving.max_candidates (50)
    assert answer["candidates"] == len(retrieved.ids) > 5
    assert [r["id"] for r in answer["retrieval"]] == retrieved.ids[:5]
    assert [r["retrieval_rank"] for r in answer["retrieval"]] == [1, 2, 3, 4, 5]
    results = answer["results"]
    assert [r["rank"] for r in results] == [1, 2, 3, 4, 5]
    catalog = product_fields(pd.read_parquet(serving_data["prepared"] / "catalog.parquet"))
    for r in results:
        assert retrieved.ids[r["retrieval_rank"] - 1] == r["id"]
        product = catalog[r["id"]]
        assert (r["title"], r["brand"], r["price"], r["rating"]) == (product["title"], product["brand"],
                                                                      product["price"], product["rating"])
        assert 0 <= r["p_purchase"] <= r["p_add_to_cart"] + 1e-9 and r["p_add_to_cart"] <= r["p_click"] + 1e-9
    model_ranks = {r["id"]: r["rank"] for r in results}
    for r in answer["retrieval"]:  # the first-stage column says where the ranker put each product
        assert model_ranks.get(r["id"], r["model_rank"]) == r["model_rank"]
    assert answer["server_ms"] >= answer["retrieval_ms"] > 0 and answer["model_version"] == search_server["tag"]


def test_search_orders_as_rank_does_on_the_retrieved_candidates(search_server, serving_data):
    url = search_server["url"]
    status, searched = http("POST", url + "/search", {"query": "acme blue drill", "k": 20, "n": 20})
    assert status == 200, searched
    catalog = product_fields(pd.read_parquet(serving_data["prepared"] / "catalog.parquet"))
    ids = [r["id"] for r in searched["retrieval"]]  # all 20 candidates, in the first stage's order
    assert len(ids) == searched["candidates"] == 20
    candidates = [{"id": pid, **{k: v for k, v in catalog[pid].items() if v is not None}} for pid in ids]
    status, ranked = http("POST", url + "/rank", {"query": "acme blue drill", "candidates": candidates, "top_k": 20})
    assert status == 200, ranked
    assert [r["id"] for r in searched["results"]] == [r["id"] for r in ranked["results"]]
    for s, r in zip(searched["results"], ranked["results"], strict=True):
        assert s["score"] == pytest.approx(r["score"], rel=1e-6, abs=1e-7)
        assert s["p_click"] == pytest.approx(r["p_click"], rel=1e-6, abs=1e-7)


BAD = [  # (body, field named in the 422)
    ({"query": ""}, "query"),
    ({"query": " \t "}, "query"),
    ({"k": 3}, "query"),
    ({"query": 5}, "query"),
    ({"query": "sofa", "k": 0}, "k"),
    ({"query": "sofa", "k": 51}, "k"),
    ({"query": "sofa", "k": "5"}, "k"),
    ({"query": "sofa", "k": 2.5}, "k"),
    ({"query": "sofa", "n": 0}, "n"),
    ({"query": "sofa", "n": 51}, "n"),  # over serving.max_candidates (50 here)
    ({"query": "sofa", "k": 10, "n": 5}, "n"),  # fewer candidates than results
    ({"query": "sofa", "n": "20"}, "n"),
    ({"query": "sofa", "top_k": 3}, "top_k"),
]


@pytest.mark.parametrize(("body", "field"), BAD)
def test_bad_search_input_is_a_422_naming_the_field(search_server, body, field):
    status, payload = http("POST", search_server["url"] + "/search", body)
    assert status == 422, payload
    assert payload["errors"][0]["field"] == field and payload["error"].startswith(f"{field}:")


def test_search_body_limits_and_content_type(search_server):
    url = search_server["url"] + "/search"
    assert http("POST", url, b'{"query": "sofa"')[0] == 400
    assert http("POST", url, {"query": "x" * 30_000})[0] == 413
    assert http("POST", url, b"query=sofa", "application/x-www-form-urlencoded")[0] == 415


def test_a_query_without_a_known_word_finds_nothing(search_server):
    status, answer = http("POST", search_server["url"] + "/search", {"query": "zzzz qqqq"})
    assert status == 200 and answer["results"] == [] and answer["candidates"] == 0


def test_search_is_logged_as_search_with_its_candidates(search_server):
    status, answer = http("POST", search_server["url"] + "/search", {"query": "acme green kettle", "k": 3, "n": 12})
    assert status == 200
    status, _ = http("POST", search_server["url"] + "/feedback", {"request_id": answer["request_id"],
                                                                  "product_id": answer["results"][2]["id"],
                                                                  "event": "purchase"})
    assert status == 200
    requests = read_log(search_server["log_dir"], kind="request")
    row = requests[requests["request_id"] == answer["request_id"]].iloc[0]
    assert row["endpoint"] == "search" and row["n"] == 12 and row["top_k"] == 3
    assert len(row["candidate_ids"]) == answer["candidates"] == 12
    assert sorted(p for p in row["positions"] if p is not None) == [1, 2, 3]
    assert len(row["prices"]) == 12 and row["retrieval_ms"] > 0
    feedback = read_log(search_server["log_dir"], kind="feedback")
    assert (feedback["request_id"] == answer["request_id"]).sum() == 1


def test_a_model_packaged_without_an_index_answers_503_and_still_ranks(server):
    status, payload = http("POST", server["url"] + "/search", {"query": "red sofa"})
    assert status == 503 and payload["errors"][0]["field"] == "service"
    assert "without a search index" in payload["error"] and "/rank works" in payload["error"]
    assert http("GET", server["url"] + "/metadata")[1]["search_index"] is None
