"""`topk_changed` with a real packaged model: logged requests are rescored with the catalogue
text and the prices and ratings *logged* with each request (what the served model saw), and the
share of requests whose top-k set differs is counted; a request with a product outside the
catalogue is not rescored."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prodrank.config import resolve
from prodrank.monitoring import features as F
from prodrank.monitoring.logwindow import Window
from prodrank.monitoring.monitor import rescore, topk_changed
from prodrank.serving import registry
from tests.serving.conftest import GATE_PASSED


@pytest.fixture()
def packaged(serving_data, bento_home, cfg):
    tag = registry.save_model(serving_data["ranker_dir"], GATE_PASSED, cfg)
    catalog = pd.read_parquet(serving_data["prepared"] / "catalog.parquet")
    return tag, registry.load_packaged(tag, cfg)[0], catalog.set_index("product_id", drop=False)


def request(query, ids, score, prices=None, ratings=None):
    return {"request_id": query, "query": query, "candidate_ids": ids, "scores": {"score": list(score)},
            "prices": prices, "ratings": ratings, "model_version": "m:served"}


def test_rescoring_uses_the_logged_prices_and_ratings(packaged, serving_data):
    _, ranker, catalog = packaged
    products = serving_data["products"]
    ids = list(products)[:6]
    prices, ratings = [500.0, None, 1.0, 20.0, 3.0, 80.0], [1.0, 5.0, None, 2.5, 4.0, 3.0]
    logged = request("blue drill", ids, [0.0] * 6, prices, ratings)
    older = request("blue drill", ids, [0.0] * 6)  # written before prices and ratings were logged
    with_logged, with_catalogue = rescore(ranker, [logged, older], catalog)
    sent = {f"k{j}": {**products[pid], "price": prices[j], "rating": ratings[j]} for j, pid in enumerate(ids)}
    expected = ranker.score(["blue drill"] * 6, list(sent), sent)["score"]
    np.testing.assert_allclose(with_logged, expected, rtol=1e-6)
    np.testing.assert_allclose(with_catalogue, ranker.score(["blue drill"] * 6, ids, products)["score"], rtol=1e-6)
    assert not np.allclose(with_logged, with_catalogue)  # the model reads price and rating


def test_share_of_requests_whose_top_k_changed(packaged, serving_data, cfg):
    tag, ranker, catalog = packaged
    ids = list(serving_data["products"])[:8]
    prices = [500.0, None, 1.0, 20.0, 3.0, 80.0, 7.0, 9.0]
    rows = [request(q, ids, [0.0] * 8, prices, [1.0] * 8) for q in ("blue drill", "red sofa")]
    rows.append(request("lamp", ids, [0.0] * 8))
    own = rescore(ranker, rows, catalog)
    catalogue_prices = rescore(ranker, [request("blue drill", ids, [0.0] * 8)], catalog)[0]
    # served with the logged prices: ranked by catalogue prices the top-3 differs here
    assert set(np.argsort(-own[0])[:3]) != set(np.argsort(-catalogue_prices)[:3])
    rows[0]["scores"]["score"] = own[0].tolist()  # served as the other model ranks it: same top-k
    rows[1]["scores"]["score"] = own[1].tolist()
    rows[2]["scores"]["score"] = (-own[2]).tolist()  # served in reverse: a different top-3 of 8
    rows.append(request("kettle", [*ids[:7], "NOT-IN-CATALOGUE"], [0.0] * 8))
    window = Window(pd.DataFrame(rows), pd.DataFrame(), {})  # rows as read from the log: pandas rows
    ctx = F.Context(catalog, frozenset(), frozenset(catalog.index), None, "words")
    test_cfg = cfg.model_copy(update={"monitoring": cfg.monitoring.model_copy(update={"top_k": 3})})
    out = topk_changed(test_cfg, window, ctx, tag)
    assert out["requests"] == 3 and out["share"] == pytest.approx(1 / 3) and out["other_model"] == tag
    assert out["k"] == 3


def test_no_rescorable_request(packaged, cfg):
    tag, _, catalog = packaged
    window = Window(pd.DataFrame([request("q", ["NOT-IN-CATALOGUE"], [0.0])]), pd.DataFrame(), {})
    ctx = F.Context(catalog, frozenset(), frozenset(catalog.index), None, "words")
    out = topk_changed(resolve({}), window, ctx, tag)
    assert out["share"] is None and out["requests"] == 0 and "cannot rescore" in out["note"]
