"""The traffic simulator without a server: loopback only, scenarios set the world's drift knobs,
each query's candidate set is what the world's log showed for it (so what the data set and the
test split hold), and the drifted worlds differ where their knob says."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prodrank.config import resolve
from prodrank.monitoring.simulate import (
    check_loopback,
    parse_overrides,
    prepare,
    simulate_traffic,
    world_config,
)
from prodrank.sim.world import generate_world

TINY = resolve({"profile": "tiny", "profiles": {"tiny": {"world": {"n_products": 300, "n_queries": 60,
                                                                   "n_sessions": 800, "list_size": 8,
                                                                   "candidate_pool": 12}}}})


def test_only_loopback_urls():
    assert check_loopback("http://127.0.0.1:3000") == ("127.0.0.1", 3000)
    assert check_loopback("http://localhost:8080/") == ("localhost", 8080)
    assert check_loopback("http://[::1]:3000")[1] == 3000
    for url in ("http://10.0.0.5:3000", "http://example.com", "https://127.0.0.1:3000", "127.0.0.1:3000"):
        with pytest.raises(ValueError):
            check_loopback(url)
    with pytest.raises(ValueError, match="loopback"):
        simulate_traffic(TINY, "http://192.168.1.2:3000", requests=1)


def test_scenarios_set_the_drift_knobs():
    assert world_config(TINY.world, "control").drift.model_dump() == dict.fromkeys(
        ("category_shift", "new_vocabulary", "new_products", "price_shift"), 0.0)
    assert world_config(TINY.world, "price_shift").drift.price_shift > 0
    assert world_config(TINY.world, "control", {"new_products": 0.2}).drift.new_products == 0.2
    assert parse_overrides(["price_shift=0.5"]) == {"price_shift": 0.5}
    with pytest.raises(ValueError, match="unknown scenario"):
        world_config(TINY.world, "nope")
    with pytest.raises(ValueError, match="unknown knob"):
        parse_overrides(["colour=1"])


def test_candidate_sets_are_what_the_log_showed():
    traffic = prepare(TINY, "control")
    tables = generate_world(TINY.world, TINY.seed, progress=False)
    inter = tables["interactions"]
    qid = traffic.world.queries.query_id
    pid = traffic.world.catalog.product_id
    pools = traffic.world.pools
    for q in range(0, len(qid), 7):
        ours = [pid[pools.product[p]] for p in traffic.candidates[q]]
        theirs = inter[inter["query_id"] == qid[q]].sort_values("position", kind="stable")["product_id"].tolist()
        assert sorted(ours) == sorted(theirs)
    assert len(traffic.payload) == len(traffic.catalog) and {"id", "title", "price", "rating"} <= set(traffic.payload[0])


def test_drifted_worlds_differ_where_their_knob_says():
    control = prepare(TINY, "control")
    prices = prepare(TINY, "price_shift")
    ratio = prices.catalog["price"].to_numpy() / control.catalog["price"].to_numpy()
    assert np.allclose(ratio, 1.8, rtol=0.01)
    new = prepare(TINY, "new_products")
    assert (~new.catalog["product_id"].isin(control.catalog["product_id"])).mean() == pytest.approx(0.5, abs=0.01)
    vocab = prepare(TINY, "new_vocabulary")
    assert (vocab.query_text != control.query_text).mean() > 0.3
    shift = prepare(TINY, "category_shift")
    dept = shift.world.shift_department
    share = lambda t: pd.Series(t.world.queries.department[t.session_query]).eq(  # noqa: E731
        __import__("prodrank.sim.vocabulary", fromlist=["DEPARTMENTS"]).DEPARTMENTS.index(dept)).mean()
    assert share(shift) > share(control) + 0.3
