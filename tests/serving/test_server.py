"""A real `bentoml serve` on 127.0.0.1 with a tiny packaged model: ranking against the
in-process model, probes, metadata, every bad input as a 4xx naming its field, feedback
round trip, the request log, and no record lost when the server is stopped by PID."""
from __future__ import annotations

import json

import bentoml
import pytest

from prodrank.models.runtime import load_scorer
from prodrank.serving.request_log import read_log
from tests.serving.conftest import http

pytestmark = pytest.mark.slow
SERVED: list[str] = []  # request_ids of every successful /rank in this module, to check the log


def candidates(products, ids):
    out = []
    for pid in ids:
        p = products[pid]
        out.append({"id": pid, "title": p["title"], "brand": p.get("brand"), "category": p.get("category"),
                    "attributes": p.get("attributes"), "description": p.get("description"),
                    "price": p.get("price"), "rating": p.get("rating")})  # the model reads both
    return out


def test_served_ranking_matches_the_in_process_model(server, serving_data):
    products = serving_data["products"]
    ids = list(products)[:20]
    with bentoml.SyncHTTPClient(server["url"]) as client:
        response = client.rank(query="blue drill", candidates=candidates(products, ids))
    results = response["results"]
    SERVED.append(response["request_id"])
    direct = load_scorer(serving_data["student_dir"], "onnx").score(["blue drill"] * len(ids), ids, products)
    expected = [ids[i] for i in sorted(range(len(ids)), key=lambda i: (-direct["score"][i], i))]
    assert [r["id"] for r in results] == expected
    by_id = {r["id"]: r for r in results}
    for i, pid in enumerate(ids):
        assert by_id[pid]["score"] == pytest.approx(direct["score"][i], rel=1e-5, abs=1e-6)
        assert by_id[pid]["p_click"] == pytest.approx(direct["click"][i], rel=1e-5, abs=1e-6)
    for r in results:
        assert set(r) == {"id", "rank", "score", "p_click", "p_add_to_cart", "p_purchase", "truncated"}
        assert 0 <= r["p_purchase"] <= r["p_add_to_cart"] + 1e-9 and r["p_add_to_cart"] <= r["p_click"] + 1e-9
    assert [r["rank"] for r in results] == list(range(1, 21))
    assert response["model_version"] == server["tag"] and len(response["request_id"]) == 32


def test_probes_and_metadata(server):
    assert http("GET", server["url"] + "/readyz")[0] == 200
    assert http("GET", server["url"] + "/healthz")[0] == 200
    status, meta = http("GET", server["url"] + "/metadata")
    assert status == 200 and meta["model_tag"] == server["tag"] and meta["ready"]
    assert meta["tasks"] == ["click", "add_to_cart", "purchase"]
    assert meta["product_features"] == ["price", "rating"]  # the fixture model reads both
    assert meta["metrics"]["click.ndcg@10"] == pytest.approx(0.81) and len(meta["params_hash"]) == 64
    assert meta["serving"]["max_candidates"] == 50 and meta["serving"]["warmup_ms"] > 0
    # the distilled two-tower student serves on ONNX Runtime, and says so with its shape
    assert meta["served_model"] == {"model": "student", "runtime": "onnx", "quantized": False,
                                    "max_tokens": meta["served_model"]["max_tokens"]}
    assert meta["student"]["kind"] == "two_tower" and meta["student"]["hidden"] == 32 and meta["student"]["layers"] == 1
    assert meta["student"]["onnx"]["max_abs_score_diff_fp32"] < 1e-4


BAD = [  # (body, expected status, field named in the error)
    ({"query": "   ", "candidates": [{"id": "a", "title": "t"}]}, 422, "query"),
    ({"query": "q", "candidates": []}, 422, "candidates"),
    ({"query": "q", "candidates": [{"id": str(i), "title": "t"} for i in range(51)]}, 422, "candidates"),
    ({"query": "q", "candidates": [{"id": "a", "title": "t"}, {"id": "a", "title": "u"}]}, 422, "candidates"),
    ({"query": "q", "candidates": [{"id": "a", "title": ["t"]}]}, 422, "candidates.0.title"),
    ({"query": "q", "candidates": [{"id": "a", "title": "t"}], "top_k": "2"}, 422, "top_k"),
    ({"query": "q", "candidates": [{"id": "a", "title": "t", "colour": "red"}]}, 422, "candidates.0.colour"),
    ({"query": "q", "candidates": [{"id": "a", "title": "t"}], "user": "u1"}, 422, "user"),
    (b'{"query": "\xff\xfe", "candidates": []}', 400, "body"),
    (b'{"query": "q", "candidates": [', 400, "body"),
    (b'["q"]', 422, "body"),
    (json.dumps({"query": "q", "candidates": [{"id": "a", "title": "x" * 30_000}]}).encode(), 413, "body"),
]


@pytest.mark.parametrize(("body", "status", "field"), BAD)
def test_bad_rank_input_is_a_4xx_naming_the_field(server, body, status, field):
    got, payload = http("POST", server["url"] + "/rank", body)
    assert got == status, payload
    assert payload["errors"][0]["field"] == field and payload["error"].startswith(f"{field}:")


def test_wrong_content_type_and_method(server):
    assert http("POST", server["url"] + "/rank", b"query=x", "application/x-www-form-urlencoded")[0] == 415
    assert http("GET", server["url"] + "/rank")[0] == 405


def test_over_long_text_is_truncated_and_flagged(server):
    long_desc = "very long description " * 400  # ~8.8k chars: over max_field_chars, under the body limit
    body = {"query": "red sofa", "candidates": [{"id": "long", "title": "sofa", "description": long_desc},
                                                {"id": "short", "title": "sofa"}]}
    status, payload = http("POST", server["url"] + "/rank", body)
    assert status == 200
    SERVED.append(payload["request_id"])
    assert {r["id"]: r["truncated"] for r in payload["results"]} == {"long": True, "short": False}


def test_feedback_round_trip_and_log(server):
    url = server["url"]
    status, ranked = http("POST", url + "/rank", {"query": "red sofa", "top_k": 2, "candidates": [
        {"id": "a", "title": "acme red sofa"}, {"id": "b", "title": "blue lamp"}, {"id": "c", "title": "kettle"}]})
    assert status == 200 and len(ranked["results"]) == 2
    SERVED.append(ranked["request_id"])
    rid, shown = ranked["request_id"], ranked["results"][1]["id"]
    hidden = ({"a", "b", "c"} - {r["id"] for r in ranked["results"]}).pop()
    status, fb = http("POST", url + "/feedback", {"request_id": rid, "product_id": shown, "event": "add_to_cart"})
    assert status == 200 and fb == {"status": "recorded", "request_id": rid, "product_id": shown,
                                    "event": "add_to_cart", "position": 2}
    for body, code, field in [
        ({"request_id": "0" * 32, "product_id": "a", "event": "click"}, 404, "request_id"),
        ({"request_id": rid, "product_id": "zzz", "event": "click"}, 422, "product_id"),
        ({"request_id": rid, "product_id": hidden, "event": "click"}, 422, "product_id"),
        ({"request_id": rid, "product_id": shown, "event": "view"}, 422, "event"),
        ({"request_id": rid, "product_id": shown}, 422, "event"),
    ]:
        got, payload = http("POST", url + "/feedback", body)
        assert got == code and payload["errors"][0]["field"] == field, payload
    server["feedback_request"] = (rid, shown)


def test_bentoml_build_offline_packs_the_champion(server):
    """`bentoml build` with the project's bentofile.yaml, network access made to fail."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    from tests.conftest import PROJECT_ROOT

    dead = "http://127.0.0.1:9"  # nothing listens: any attempt to reach an index fails at once
    env = dict(os.environ, BENTOML_HOME=str(server["home"]), PRODRANK_PARAMS=str(server["params"]),
               BENTOML_DO_NOT_TRACK="true", UV_OFFLINE="1", PIP_NO_INDEX="1", HTTP_PROXY=dead, HTTPS_PROXY=dead,
               ALL_PROXY=dead, http_proxy=dead, https_proxy=dead)
    out = subprocess.run([str(Path(sys.executable).parent / "bentoml"), "build", "-o", "tag"], cwd=PROJECT_ROOT,
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    tag = out.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    name, version = tag.split(":")
    bento = server["home"] / "bentos" / name / version
    info = yaml.safe_load((bento / "bento.yaml").read_text())
    assert [m["tag"] for m in info["services"][0]["models"]] == [server["tag"]]
    assert (bento / "src" / "src" / "prodrank" / "serving" / "service.py").is_file()
    assert "torch==2.13.0" in (bento / "env" / "python" / "requirements.txt").read_text()


def test_sigterm_by_pid_loses_no_record(server, serving_data):
    """Runs last: stops the server by PID; the log is drained, flushed and fsynced on shutdown."""
    burst = []
    for i in range(15):  # a burst right before the stop
        status, payload = http("POST", server["url"] + "/rank", {"query": f"q{i}", "candidates": [
            {"id": "a", "title": "acme red sofa"}, {"id": "b", "title": "blue lamp"}]})
        assert status == 200
        burst.append(payload["request_id"])
    SERVED.extend(burst)
    assert server["server"].stop() == 0
    requests = read_log(server["log_dir"], kind="request")
    feedback = read_log(server["log_dir"], kind="feedback")
    assert sorted(requests["request_id"]) == sorted(SERVED)  # every served request, once
    rid, shown = server["feedback_request"]
    row = requests[requests["request_id"] == rid].iloc[0]
    assert row["candidate_ids"] == ["a", "b", "c"] and row["query"] == "red sofa" and row["top_k"] == 2
    assert sorted(p for p in row["positions"] if p is not None) == [1, 2] and row["positions"].count(None) == 1
    assert set(row["scores"]) == {"score", "p_click", "p_add_to_cart", "p_purchase"} and row["latency_ms"] > 0
    assert row["model_version"] == server["tag"]
    first = requests[requests["request_id"] == SERVED[0]].iloc[0]  # the product inputs as sent, for drift checks
    products = serving_data["products"]
    assert first["prices"] == [products[p].get("price") for p in first["candidate_ids"]]
    assert first["ratings"] == [products[p].get("rating") for p in first["candidate_ids"]]
    assert row["ratings"] == [None, None, None]
    assert list(feedback["request_id"]) == [rid] and feedback.iloc[0]["product_id"] == shown
    assert feedback.iloc[0]["position"] == 2
    assert feedback.iloc[0]["event"] == "add_to_cart"
    assert "Completed cleanup hook: _close_log" in server["server_log"].read_text()
