"""Tests of the simulated store (prodrank.sim.world) and its word lists."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prodrank.config import DriftConfig, WorldConfig
from prodrank.data import schema
from prodrank.sim import vocabulary as V
from prodrank.sim.world import (
    START,
    build_world,
    generate_world,
    iter_impressions,
    misspell,
    plan_sessions,
)

SMALL = WorldConfig(n_products=500, n_queries=100, n_sessions=2000)
MEDIUM = WorldConfig(n_products=3000, n_queries=400, n_sessions=10000)
SEED = 11


def make(cfg: WorldConfig = SMALL, seed: int = SEED, **drift: float) -> dict[str, pd.DataFrame]:
    if drift:
        cfg = cfg.model_copy(update={"drift": DriftConfig(**drift)})
    return generate_world(cfg, seed, progress=False)


@pytest.fixture(scope="module")
def small() -> dict[str, pd.DataFrame]:
    return make()


@pytest.fixture(scope="module")
def medium() -> dict[str, pd.DataFrame]:
    return make(MEDIUM)


@pytest.fixture(scope="module")
def world():
    return build_world(MEDIUM, SEED)


def titles_by_type(world) -> dict[int, list[set[str]]]:
    out: dict[int, list[set[str]]] = {}
    for t, title in zip(world.catalog.items.type, world.catalog.texts.title, strict=True):
        out.setdefault(int(t), []).append(set(V.tokens(title)))
    return out


# --------------------------------------------------------------------------- vocabulary


def test_vocabulary_is_consistent():
    assert V.problems() == []
    assert len(V.TYPES) >= 60 and len(V.DEPARTMENTS) >= 10
    slang = V.slang_words()
    assert len(set(slang)) == len(slang) and not set(slang) & V.vocabulary_tokens()


@pytest.mark.parametrize("word", ["sofa", "refrigerator", "couch", "leather", "abba"])
def test_misspell_always_changes_the_word(word):
    assert all(misspell(word, r) != word and misspell(word, r)[0] == word[0] for r in range(500))


# --------------------------------------------------------------------------- contract


def test_same_seed_same_world_other_seed_differs(small):
    again = make()
    for name in schema.TABLES:
        pd.testing.assert_frame_equal(small[name], again[name])
    other = make(seed=SEED + 1)
    assert not small[schema.CATALOG]["title"].equals(other[schema.CATALOG]["title"])
    assert not small[schema.QUERIES]["query"].equals(other[schema.QUERIES]["query"])


def test_columns_and_dtypes(small):
    cat, q = small[schema.CATALOG], small[schema.QUERIES]
    inter, rel = small[schema.INTERACTIONS], small[schema.RELEVANCE]
    assert list(cat.columns) == list(schema.CATALOG_COLUMNS)
    assert list(q.columns) == [*schema.QUERY_COLUMNS, "timestamp"]
    assert list(inter.columns) == [
        "query_id", "product_id", "impressions", "position", "clicks", "add_to_carts", "purchases", "timestamp"]
    assert list(rel.columns) == [*schema.RELEVANCE_COLUMNS, *(schema.EXPECTED_PREFIX + c for c in schema.COUNT_COLUMNS[1:])]
    for frame, cols in [(cat, schema.CATALOG_TEXT_FIELDS + ("product_id",)), (q, ("query_id", "query", "frequency")),
                        (inter, ("query_id", "product_id")), (rel, ("query_id", "product_id"))]:
        for c in cols:
            assert frame[c].map(type).eq(str).all(), c
    for c in ("price", "rating", "popularity"):
        assert cat[c].dtype == np.float64
    for c in (f"gap_{t}" for t in schema.GAP_TAGS):
        assert q[c].dtype == bool
    for c in schema.COUNT_COLUMNS:
        assert inter[c].dtype == np.int64
    assert inter["position"].dtype == np.float64 and rel["relevance"].dtype == np.int64
    assert q["timestamp"].dtype == "datetime64[ns]" and inter["timestamp"].dtype == "datetime64[ns]"
    assert cat.notna().all().all() and q.notna().all().all() and inter.notna().all().all()


def test_funnel_and_positions(small):
    inter = small[schema.INTERACTIONS]
    assert (inter["impressions"] >= 1).all()
    assert (inter["clicks"] <= inter["impressions"]).all()
    assert (inter["add_to_carts"] <= inter["clicks"]).all()
    assert (inter["purchases"] <= inter["add_to_carts"]).all()
    assert inter["position"].between(1, SMALL.list_size).all()
    assert inter["impressions"].sum() == SMALL.n_sessions * SMALL.list_size


def test_ids_and_texts_unique(small):
    cat, q, inter = small[schema.CATALOG], small[schema.QUERIES], small[schema.INTERACTIONS]
    assert cat["product_id"].is_unique and cat["product_id"].str.fullmatch(r"P\d{6}").all()
    assert q["query_id"].is_unique and q["query_id"].str.fullmatch(r"Q\d{5}").all()
    assert q["query"].is_unique and len(q) == SMALL.n_queries
    assert (q["query"] == q["query"].str.strip().str.lower()).all()
    assert not inter.duplicated(["query_id", "product_id"]).any()
    assert set(inter["product_id"]) <= set(cat["product_id"])
    assert set(inter["query_id"]) == set(q["query_id"])  # every query is seen in the log


def test_relevance_covers_every_shown_pair(small):
    inter, rel = small[schema.INTERACTIONS], small[schema.RELEVANCE]
    keys = ["query_id", "product_id"]
    pd.testing.assert_frame_equal(inter[keys], rel[keys])
    assert set(rel["relevance"]) == {0, 1, 2, 3}


def test_expected_rates_are_the_funnel_without_position_bias():
    """With every position examined (position_bias 0), the logged rates of the whole log
    must match the expected rates per examined impression; with position bias they fall
    below them, more so further down the list."""
    unbiased = make(SMALL.model_copy(update={"position_bias": 0.0, "n_sessions": 6000}))
    inter, rel = unbiased[schema.INTERACTIONS], unbiased[schema.RELEVANCE]
    assert (rel["expected_clicks"] >= rel["expected_add_to_carts"]).all()
    assert (rel["expected_add_to_carts"] >= rel["expected_purchases"]).all()
    assert rel[["expected_clicks", "expected_add_to_carts", "expected_purchases"]].stack().between(0, 1).all()
    for label in ("clicks", "add_to_carts", "purchases"):
        expected = (inter["impressions"] * rel["expected_" + label]).sum()
        observed = inter[label].sum()
        assert abs(observed - expected) < 4 * np.sqrt(expected), (label, observed, expected)  # ~4 sigma, Poisson-like
    biased = make(SMALL.model_copy(update={"n_sessions": 6000}))
    inter, rel = biased[schema.INTERACTIONS], biased[schema.RELEVANCE]
    low = inter["position"] > 5
    ratio = inter["clicks"][low].sum() / (inter["impressions"] * rel["expected_clicks"])[low].sum()
    assert ratio < 0.5  # examination at positions 6..10 is 1/6..1/10


def test_catalogue_looks_like_a_store(medium):
    cat = medium[schema.CATALOG]
    assert cat["category"].str.count(" > ").eq(2).all()
    assert cat["category"].str.split(" > ").str[0].nunique() >= 10
    assert cat["attributes"].str.fullmatch(r"[a-z ]+: [^;]+(; [a-z ]+: [^;]+)*").all()
    assert (cat["price"] > 0).all() and cat["rating"].between(1, 5).all()
    pop = cat["popularity"]
    assert pop.quantile(0.99) > 10 * pop.median()  # long tail
    assert cat["title"].str.contains(r"\d+ in\.|\d+-Pk|\d+-Seat|Blk|Stnls Stl").mean() > 0.2
    assert (cat["description"].str.len() > cat["title"].str.len()).all()


def test_timestamps(small):
    q, inter = small[schema.QUERIES], small[schema.INTERACTIONS]
    end = START + np.timedelta64(SMALL.days, "D")
    for ts in (q["timestamp"], inter["timestamp"]):
        assert ts.dt.tz is None and ts.between(START, end, inclusive="left").all()
    first = inter.groupby("query_id")["timestamp"].min()
    assert (q.set_index("query_id")["timestamp"] == first).all()


# --------------------------------------------------------------------------- behaviour


def test_rates_in_target_bands(medium):
    inter = medium[schema.INTERACTIONS]
    imp, clicks = inter["impressions"].sum(), inter["clicks"].sum()
    carts, buys = inter["add_to_carts"].sum(), inter["purchases"].sum()
    # With the default click_base 0.35 and 1/position examination over 20 results the
    # ceiling is ~6.3%, so the simulated CTR sits at the low end of the 5-15% band.
    assert 0.04 <= clicks / imp <= 0.15
    assert 0.18 <= carts / clicks <= 0.35
    assert 0.25 <= buys / carts < 0.5


def test_engagement_follows_relevance_and_position(medium):
    m = medium[schema.INTERACTIONS].merge(medium[schema.RELEVANCE])
    by_grade = m.groupby("relevance")[["clicks", "impressions"]].sum()
    ctr = (by_grade["clicks"] / by_grade["impressions"]).to_numpy()
    assert (np.diff(ctr) > 0).all()
    top = m[m["position"] < 2]
    low = m[m["position"] > 10]
    assert top["clicks"].sum() / top["impressions"].sum() > 3 * low["clicks"].sum() / low["impressions"].sum()


def test_frequency_buckets(medium):
    q, inter = medium[schema.QUERIES], medium[schema.INTERACTIONS]
    assert set(q["frequency"]) == set(schema.FREQUENCY_BUCKETS)
    counts = q["frequency"].value_counts()
    assert counts["head"] < counts["torso"] < counts["tail"]
    traffic = inter.merge(q[["query_id", "frequency"]]).groupby("frequency")["impressions"].sum()
    share = traffic / traffic.sum()
    assert 0.35 < share["head"] < 0.65 and share["tail"] < 0.4


def test_gap_tags_at_configured_rates(medium):
    q = medium[schema.QUERIES]
    for tag in schema.GAP_TAGS:
        rate = q[f"gap_{tag}"].mean()
        assert abs(rate - getattr(MEDIUM, f"{tag}_rate")) < 0.05, (tag, rate)
    plain = ~q[[f"gap_{t}" for t in schema.GAP_TAGS]].any(axis=1)
    assert 0.2 < plain.mean() < 0.6


def test_synonym_queries_miss_titles_and_plain_ones_hit(world):
    titles = titles_by_type(world)
    qs = world.queries
    n_syn = 0
    for i, part in enumerate(qs.parts):
        own = titles.get(int(qs.type[i]), [])
        if not own:
            continue
        if part.synonym and not part.misspelled_phrase:
            # the synonym has a word that no title of the intended type contains
            missing = set(V.tokens(part.phrase)) - set().union(*own)
            assert missing, part.phrase
            n_syn += 1
        if not any(getattr(part, t) for t in schema.GAP_TAGS):
            noun = set(V.tokens(V.TYPES[qs.type[i]].noun))
            assert all(noun <= t for t in own)  # the exact catalogue word is in every title
    assert n_syn > 50


def test_descriptive_and_abbreviation_queries_use_words_titles_lack(world):
    titles = titles_by_type(world)
    descriptions: dict[int, set[str]] = {}
    for t, d in zip(world.catalog.items.type, world.catalog.texts.description, strict=True):
        descriptions.setdefault(int(t), set()).update(V.tokens(d))
    qs = world.queries
    for i, part in enumerate(qs.parts):
        own = titles.get(int(qs.type[i]))
        if not own or part.misspelling:
            continue
        vocab = set().union(*own)
        if part.descriptive:
            words = set(V.tokens(part.phrase)) - V.STOPWORDS
            assert words and not words & vocab, part.phrase
            assert words <= descriptions[int(qs.type[i])]
        if part.abbreviation:
            assert set(V.tokens(qs.text[i])) - vocab - {"under"}, qs.text[i]


def test_relevance_grades_follow_intent(world):
    pools, qs, items = world.pools, world.queries, world.catalog.items
    same = qs.type[pools.query] == items.type[pools.product]
    assert (pools.grade[same] >= 2).all() and (pools.grade[~same] <= 1).all()
    assert (pools.grade == 3).any() and (pools.grade == 2).any()
    unconstrained = (qs.req < 0).all(1) & (qs.brand < 0) & ~np.isfinite(qs.max_price)
    assert (pools.grade[same & unconstrained[pools.query]] == 3).all()


def test_impression_events_add_up(small):
    w = build_world(SMALL, SEED)
    events = pd.concat(iter_impressions(w, plan_sessions(w)), ignore_index=True)
    inter = small[schema.INTERACTIONS]
    assert len(events) == inter["impressions"].sum() == events["session_id"].nunique() * SMALL.list_size
    assert events["clicked"].sum() == inter["clicks"].sum()
    assert events["purchased"].sum() == inter["purchases"].sum()
    assert not (events["clicked"] & ~events["examined"]).any()
    assert events["timestamp"].is_monotonic_increasing


# --------------------------------------------------------------------------- drift


def test_no_drift_by_default():
    assert DriftConfig() == DriftConfig(category_shift=0, new_vocabulary=0, new_products=0, price_shift=0)


def test_category_shift_moves_traffic(small):
    w = build_world(SMALL, SEED)
    dept = V.DEPARTMENTS.index(w.shift_department)
    in_dept = set(w.queries.query_id[w.queries.department == dept])

    def share(tables):
        inter = tables[schema.INTERACTIONS]
        return inter.loc[inter["query_id"].isin(in_dept), "impressions"].sum() / inter["impressions"].sum()

    base = share(small)
    assert share(make(category_shift=0.5)) > base + 0.3 * (1 - base)


def test_new_vocabulary_uses_unseen_slang(small):
    drifted = make(new_vocabulary=0.3)
    q0, q1 = small[schema.QUERIES], drifted[schema.QUERIES]
    changed = q0["query"] != q1["query"]
    assert 0.2 <= changed.mean() <= 0.3
    assert q1["query"].is_unique and q1.loc[changed, "gap_synonym"].all()
    slang = set(V.slang_words())
    assert q1.loc[changed, "query"].map(lambda s: bool(set(s.split()) & slang)).all()
    cat = small[schema.CATALOG]
    store = set(V.tokens(" ".join(cat["title"]) + " " + " ".join(cat["description"])))
    assert not slang & store
    pd.testing.assert_frame_equal(small[schema.CATALOG], drifted[schema.CATALOG])


def test_new_products_replace_part_of_the_catalogue(small):
    base, drifted = small[schema.CATALOG], make(new_products=0.2)[schema.CATALOG]
    assert len(drifted) == len(base) and drifted["product_id"].is_unique
    new = ~drifted["product_id"].isin(base["product_id"])
    assert new.sum() == round(0.2 * len(base))
    kept = drifted[~new].set_index("product_id")
    pd.testing.assert_frame_equal(kept, base.set_index("product_id").loc[kept.index])
    new_lines = set(V.NEW_LINE_WORDS)
    assert drifted.loc[new, "title"].map(lambda t: t.split()[1] in new_lines).all()


def test_price_shift_scales_prices(small):
    base, drifted = small[schema.CATALOG], make(price_shift=0.5)[schema.CATALOG]
    assert np.allclose(drifted["price"], base["price"] * 1.5, atol=0.01)
    assert drifted["title"].equals(base["title"])
