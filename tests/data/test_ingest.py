"""Tests of the real-data adapters (prodrank.data.ingest): documented formats, bad input,
and the real Home Depot / Best Buy files (skipped when ../shared/data is absent)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prodrank.config import BestBuySource, DataConfig, FileSource, HomeDepotSource
from prodrank.data import schema
from prodrank.data.frequency import frequency_buckets
from prodrank.data.ingest import (
    InputFormatError,
    grade_to_relevance,
    ingest,
    load_bestbuy,
    load_home_depot,
    load_interactions,
    load_judgments,
    make_query_id,
)

ROOT = Path(__file__).resolve().parents[2]
HOME_DEPOT = ROOT / HomeDepotSource().path
BESTBUY = ROOT / BestBuySource().dir


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def check_canonical(tables: dict[str, pd.DataFrame], *, graded: bool) -> None:
    """Columns, dtypes, funnel and id consistency every adapter must guarantee."""
    cat, q, inter = tables[schema.CATALOG], tables[schema.QUERIES], tables[schema.INTERACTIONS]
    assert list(cat.columns) == list(schema.CATALOG_COLUMNS)
    assert cat["product_id"].is_unique and cat["title"].notna().all()
    assert set(schema.QUERY_COLUMNS) <= set(q.columns)
    assert q["query_id"].is_unique
    assert set(q["frequency"]) <= set(schema.FREQUENCY_BUCKETS)
    assert q["query_id"].str.fullmatch(r"Q[0-9a-f]{12}").all()
    assert (q["query_id"] == q["query"].map(make_query_id)).all()
    for tag in schema.GAP_TAGS:
        assert q[f"gap_{tag}"].dtype == bool and not q[f"gap_{tag}"].any()
    assert set(schema.INTERACTION_COLUMNS) <= set(inter.columns)
    assert not inter.duplicated(["query_id", "product_id"]).any()
    assert set(inter["query_id"]) == set(q["query_id"])
    assert set(inter["product_id"]) <= set(cat["product_id"])
    for col in schema.COUNT_COLUMNS:
        assert inter[col].dtype == np.int64
    assert inter["position"].dtype == float and (inter["position"] >= 1).all()
    assert (inter["impressions"] >= 1).all()
    assert (inter["purchases"] <= inter["add_to_carts"]).all()
    assert (inter["add_to_carts"] <= inter["clicks"]).all()
    assert (inter["clicks"] <= inter["impressions"]).all()
    if graded:
        rel = tables[schema.RELEVANCE]
        assert list(rel.columns) == list(schema.RELEVANCE_COLUMNS)
        assert rel["relevance"].between(0, 3).all() and rel["relevance"].dtype == np.int64
        pairs = lambda df: set(zip(df["query_id"], df["product_id"], strict=True))  # noqa: E731
        assert pairs(rel) == pairs(inter)
    else:
        assert schema.RELEVANCE not in tables


# --------------------------------------------------------------------------- helpers


def test_query_ids_are_normalised_and_stable():
    assert make_query_id("Cordless drill") == make_query_id(" cordless   DRILL ")
    assert make_query_id("cordless drill") == "Q" + __import__("hashlib").sha1(
        b"cordless drill").hexdigest()[:12]


def test_frequency_buckets_by_traffic_share():
    traffic = pd.Series([50, 30, 10, 5, 5], index=["a", "b", "c", "d", "e"])
    assert frequency_buckets(traffic).tolist() == ["head", "torso", "tail", "tail", "tail"]
    assert frequency_buckets(pd.Series([1], index=["x"])).tolist() == ["head"]


def test_grade_to_relevance():
    assert grade_to_relevance(pd.Series([0, 1, 2, 3])).tolist() == [0, 1, 2, 3]
    hd = pd.Series([1, 1.33, 1.67, 2, 2.33, 2.67, 3])
    assert grade_to_relevance(hd, (1, 3)).tolist() == [0, 0, 1, 2, 2, 3, 3]
    assert grade_to_relevance(pd.Series([0.0, 5.0, 10.0])).tolist() == [0, 2, 3]


# --------------------------------------------------------------------------- judgments

JUDGMENTS = """query,product_id,grade,product_title,brand,price
Cordless Drill,p1,3,DeWalt 20V drill,DeWalt,99.5
cordless  drill,p2,1,Hammer,Estwing,
cordless drill,p1,2,DeWalt 20V drill,,
paint roller,p3,2,Roller 9 in.,,4
paint roller,p2,0,Hammer,,
"""


def test_judgments_good(tmp_path):
    t = load_judgments(write(tmp_path / "j.csv", JUDGMENTS))
    check_canonical(t, graded=True)
    inter = t["interactions"].set_index(["query_id", "product_id"])
    drill = make_query_id("cordless drill")
    assert inter.loc[(drill, "p1"), "grade"] == 2.5  # duplicates averaged
    assert inter.loc[(drill, "p1"), "position"] == 1.0
    assert inter.loc[(drill, "p2"), "position"] == 2.0
    assert (t["interactions"]["impressions"] == 1).all()
    assert (t["interactions"][["clicks", "add_to_carts", "purchases"]] == 0).all().all()
    rel = t["relevance"].set_index(["query_id", "product_id"])["relevance"]
    # grades 0..3 with a 2.5 average -> inferred scale [0, 3], rounded half up
    assert rel[(drill, "p1")] == 3 and rel[(drill, "p2")] == 1
    cat = t["catalog"].set_index("product_id")
    assert cat.loc["p1", "brand"] == "DeWalt" and cat.loc["p1", "price"] == 99.5
    assert sorted(t["queries"]["query"]) == ["cordless drill", "paint roller"]
    assert "timestamp" not in t["queries"]


def test_judgments_with_catalog_and_parquet(tmp_path):
    pd.DataFrame({"query": ["drill", "drill", "saw"], "product_id": [1, 2, 3],
                  "grade": [3, 0, 2]}).to_parquet(tmp_path / "j.parquet")
    write(tmp_path / "cat.csv", "product_id,title,category\n1,Drill,tools\n2,Rug,home\n3,Saw,tools\n")
    t = load_judgments(tmp_path / "j.parquet", tmp_path / "cat.csv")
    check_canonical(t, graded=True)
    assert set(t["catalog"]["product_id"]) == {"1", "2", "3"}


def test_judgments_missing_title_without_catalog(tmp_path):
    path = write(tmp_path / "j.csv", "query,product_id,grade\nx,p1,1\n")
    with pytest.raises(InputFormatError, match=r"j\.csv.*product_title"):
        load_judgments(path)


def test_judgments_missing_required_column(tmp_path):
    path = write(tmp_path / "j.csv", "query,product_id,product_title\nx,p1,T\n")
    with pytest.raises(InputFormatError, match=r"j\.csv: missing required column\(s\) 'grade'"):
        load_judgments(path)


@pytest.mark.parametrize("content", ["", "query,product_id,grade,title\n"])
def test_judgments_empty_file(tmp_path, content):
    path = write(tmp_path / "j.csv", content)
    with pytest.raises(InputFormatError, match=r"j\.csv.*(empty|no data rows)"):
        load_judgments(path)


def test_judgments_non_numeric_grade(tmp_path):
    path = write(tmp_path / "j.csv", "query,product_id,grade,title\nx,p1,2\nx,p2,good\n")
    with pytest.raises(InputFormatError, match=r"j\.csv: column 'grade' must be numeric.*'good' \(line 3\)"):
        load_judgments(path)


def test_latin1_bytes_read_as_utf8(tmp_path):
    path = write(tmp_path / "j.csv", "query,product_id,grade,title\nchaise,p1,2,Fauteuil doré\n",
                 encoding="latin-1")
    with pytest.raises(InputFormatError, match=r"j\.csv: cannot decode .* as utf-8.*encoding="):
        load_judgments(path)
    t = load_judgments(path, encoding="ISO-8859-1")
    assert t["catalog"]["title"].tolist() == ["Fauteuil doré"]


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_judgments(tmp_path / "nope.csv")


# --------------------------------------------------------------------------- interactions

CATALOG = """product_id,title,brand,price,popularity
a,Cordless drill,DeWalt,99,0.5
b,Drill bits,Bosch,12,0.1
c,Hammer,,8,
"""

LOG = """query,product_id,position,clicked,added_to_cart,purchased,timestamp,session_id
drill,a,1,1,1,1,2024-05-02 10:00:00,s1
drill,b,2,0,0,0,2024-05-02 10:00:00,s1
Drill,a,3,true,false,false,2024-05-01 09:00:00,s2
drill,b,1,1,0,0,2024-05-01 09:00:00,s2
hammer,c,1,0,0,0,2024-05-03 12:00:00,s3
hammer,z,2,1,0,0,2024-05-03 12:00:00,s3
"""


def test_interactions_good(tmp_path):
    t = load_interactions(write(tmp_path / "log.csv", LOG), write(tmp_path / "cat.csv", CATALOG))
    check_canonical(t, graded=False)
    inter = t["interactions"].set_index(["query_id", "product_id"])
    row = inter.loc[(make_query_id("drill"), "a")]
    assert (row["impressions"], row["position"], row["clicks"], row["add_to_carts"],
            row["purchases"]) == (2, 2.0, 2, 1, 1)
    assert row["timestamp"] == pd.Timestamp("2024-05-01 09:00:00")
    assert "grade" not in t["interactions"]
    assert set(t) == {"catalog", "queries", "interactions", "positions"}  # tests/data/test_positions.py
    assert ("hammer" not in set(t["catalog"]["product_id"])) and len(t["catalog"]) == 3
    assert len(inter) == 3  # the impression of unknown product "z" is dropped
    q = t["queries"].set_index("query")
    assert q.loc["drill", "timestamp"] == pd.Timestamp("2024-05-01 09:00:00")
    assert q.loc["drill", "frequency"] == "head" and q.loc["hammer", "frequency"] == "tail"


def test_interactions_flag_value_2(tmp_path):
    cat = write(tmp_path / "cat.csv", CATALOG)
    bad = LOG.replace("drill,b,1,1,0,0", "drill,b,1,2,0,0")  # text column (has "true")
    with pytest.raises(InputFormatError, match=r"log\.csv: column 'clicked' must be 0/1.*'2' \(line 5\)"):
        load_interactions(write(tmp_path / "log.csv", bad), cat)
    numeric = "query,product_id,position,clicked,added_to_cart,purchased\nx,a,1,0,0,0\nx,b,2,1,0,2\n"
    with pytest.raises(InputFormatError, match=r"num\.csv: column 'purchased' must be 0/1.*2 \(line 3\)"):
        load_interactions(write(tmp_path / "num.csv", numeric), cat)


def test_interactions_missing_column_and_bad_catalog(tmp_path):
    cat = write(tmp_path / "cat.csv", CATALOG)
    log = write(tmp_path / "log.csv", "query,product_id,position,clicked,purchased\nx,a,1,0,0\n")
    with pytest.raises(InputFormatError, match=r"log\.csv: missing required column\(s\) 'added_to_cart'"):
        load_interactions(log, cat)
    with pytest.raises(InputFormatError, match=r"cat2\.csv: missing required column\(s\) 'title'"):
        load_interactions(write(tmp_path / "log2.csv", LOG), write(tmp_path / "cat2.csv", "product_id,name\na,x\n"))
    with pytest.raises(InputFormatError, match=r"cat3\.csv.*empty"):
        load_interactions(write(tmp_path / "log3.csv", LOG), write(tmp_path / "cat3.csv", ""))


def test_interactions_bad_position_and_timestamp(tmp_path):
    cat = write(tmp_path / "cat.csv", CATALOG)
    with pytest.raises(InputFormatError, match="'position' must be >= 1"):
        load_interactions(write(tmp_path / "a.csv", LOG.replace("drill,a,1,", "drill,a,0,")), cat)
    with pytest.raises(InputFormatError, match="'timestamp' must hold date-times"):
        load_interactions(write(tmp_path / "b.csv", LOG.replace("2024-05-03 12:00:00,s3", "soon,s3", 1)), cat)


def test_ingest_dispatch(tmp_path):
    write(tmp_path / "j.csv", JUDGMENTS)
    cfg = DataConfig(source="judgments", judgments=FileSource(path="j.csv"))
    check_canonical(ingest(cfg, seed=0, root=tmp_path), graded=True)
    with pytest.raises(ValueError, match="synthetic"):
        ingest(DataConfig(source="synthetic"), seed=0)
    with pytest.raises(ValueError, match="data.interactions"):
        ingest(DataConfig(source="interactions"), seed=0)


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def home_depot():
    if not HOME_DEPOT.exists():
        pytest.skip(f"Home Depot data not found at {HOME_DEPOT} (shared data set not mounted)")
    return load_home_depot(HomeDepotSource(), root=ROOT)


@pytest.fixture(scope="module")
def bestbuy():
    if not (BESTBUY / "sku_name.tsv").exists():
        pytest.skip(f"Best Buy data not found at {BESTBUY} (shared data set not mounted)")
    return load_bestbuy(BestBuySource(), seed=13, root=ROOT)


def test_home_depot_matches_readme(home_depot):
    raw = pd.read_csv(HOME_DEPOT, encoding="ISO-8859-1")
    assert len(raw) == 74_067  # README: 74,067 pairs
    assert (raw.groupby("search_term")["relevance"].nunique() >= 2).sum() == 9_960  # README
    check_canonical(home_depot, graded=True)
    assert schema.POSITIONS not in home_depot
    # normalising the query text (case, whitespace) merges a few raw search terms:
    # 11,795 -> 11,793 queries, 5 duplicate pairs averaged, 9,960 -> 9,958 usable queries
    q, inter = home_depot["queries"], home_depot["interactions"]
    assert len(q) == 9_958
    assert (inter.groupby("query_id")["grade"].nunique() >= 2).all()
    assert inter["grade"].between(1, 3).all()
    assert 70_000 < len(inter) <= 74_067
    assert set(home_depot["catalog"]["product_id"]) == set(inter["product_id"])


def test_bestbuy_matches_readme(bestbuy):
    parts = [pd.read_csv(BESTBUY / f) for f in ("clicks_part1.csv", "clicks_part2.csv")]
    raw = pd.concat(parts, ignore_index=True)
    assert len(raw) == 42_365  # README: 42,365 clicks
    check_canonical(bestbuy, graded=False)
    cat, inter, q = bestbuy["catalog"], bestbuy["interactions"], bestbuy["queries"]
    assert len(cat) == 437
    assert schema.POSITIONS not in bestbuy  # its positions are drawn at random, not logged
    on_catalog = raw["sku"].astype(str).isin(set(cat["product_id"]))
    assert 0.99 < on_catalog.mean() < 0.995  # README: sku_name.tsv covers 99.3 % of clicks
    damaged = raw["query"].astype(str).str.contains("\ufffd", regex=False)  # U+FFFD in the source itself
    assert inter["clicks"].sum() == (on_catalog & ~damaged).sum()  # every usable click kept, none invented
    positives = inter[inter["clicks"] > 0]
    negatives = inter[inter["clicks"] == 0]
    assert negatives.groupby("query_id").size().max() == BestBuySource().negatives_per_query
    assert (negatives.groupby("query_id").size() == BestBuySource().negatives_per_query).all()
    assert len(positives) <= 7_285  # README: 7,285 distinct (query, sku) pairs before normalising
    # impressions = searches of the query, the same on every candidate row of a query
    assert (inter.groupby("query_id")["impressions"].nunique() == 1).all()
    assert (inter[["add_to_carts", "purchases"]] == 0).all().all()
    # positions are a permutation of 1..n per query
    n = inter.groupby("query_id").size()
    assert (inter.groupby("query_id")["position"].max() == n).all()
    assert not inter.duplicated(["query_id", "position"]).any()
    # time split: Aug-Sep vs Oct
    assert q["timestamp"].min() >= pd.Timestamp("2011-08-11")
    assert q["timestamp"].max() < pd.Timestamp("2011-11-01")
    assert (q["timestamp"] >= pd.Timestamp("2011-10-01")).sum() > 0
    assert (q["timestamp"] < pd.Timestamp("2011-10-01")).sum() > 0


def test_bestbuy_negatives_are_deterministic(bestbuy):
    again = load_bestbuy(BestBuySource(), seed=13, root=ROOT)
    pd.testing.assert_frame_equal(again["interactions"], bestbuy["interactions"])
    other = load_bestbuy(BestBuySource(negatives_per_query=5), seed=14, root=ROOT)
    assert len(other["interactions"]) < len(bestbuy["interactions"])
