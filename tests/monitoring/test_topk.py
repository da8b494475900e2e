"""`topk_changed`: current requests rescored with another model (loading stubbed), and the
share whose top-k set differs; requests with products outside the catalogue are not rescored."""
from __future__ import annotations

import numpy as np
import pandas as pd

import prodrank.serving.registry as registry
from prodrank.config import resolve
from prodrank.monitoring import features as F
from prodrank.monitoring.logwindow import Window
from prodrank.monitoring.monitor import topk_changed


class FakeRanker:
    def __init__(self, flip: set[str]):
        self.flip = flip  # queries whose order this model reverses

    def score(self, queries, ids, products):  # one call for every request: flip per pair
        base = np.array([-int(i[1:]) for i in ids], dtype=float)
        flip = np.array([q in self.flip for q in queries])
        return {"score": np.where(flip, -base, base)}


def test_share_of_requests_whose_top_k_changed(monkeypatch):
    ids = [f"P{i}" for i in range(6)]
    catalog = pd.DataFrame({"product_id": ids + ["P9"], "title": "t", "brand": "b", "category": "c",
                            "price": 1.0}).set_index("product_id", drop=False)
    rows = []
    for r, q in enumerate(["a", "b", "c", "d"]):
        cands = ids if q != "d" else [*ids[:5], "P77"]  # P77 is not in the catalogue: not rescored
        score = [-float(i) for i in range(6)]
        rows.append({"request_id": f"r{r}", "query": q, "candidate_ids": cands, "scores": {"score": score},
                     "model_version": "m:new"})
    window = Window(pd.DataFrame(rows), pd.DataFrame(), {})
    ctx = F.Context(catalog, frozenset(), frozenset(catalog.index), None, "ws")
    monkeypatch.setattr(registry, "load_packaged", lambda tag, cfg=None: (FakeRanker({"a", "b"}), {}))
    cfg = resolve({"monitoring": {"top_k": 3}})
    out = topk_changed(cfg, window, ctx, "m:old")
    assert out["requests"] == 3 and out["share"] == 2 / 3 and out["other_model"] == "m:old" and out["k"] == 3
