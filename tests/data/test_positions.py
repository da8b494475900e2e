"""The positions table (prodrank.data.schema.POSITIONS): per-position counts from the sources that
log real shown positions, summing exactly to the interactions table."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from prodrank.config import SplitConfig, load_config
from prodrank.data import schema
from prodrank.data.ingest import InputFormatError, load_interactions, load_judgments, make_query_id
from prodrank.data.split import split_tables
from prodrank.data.validate import validate_splits, validate_tables
from prodrank.sim.world import generate_world
from tests.conftest import PROJECT_ROOT

KEYS = ["query_id", "product_id"]

CATALOG = """product_id,title
a,Cordless drill
b,Drill bits
c,Hammer
"""

# drill/a is shown at 1, 1 and 4 (mean 2), its purchase logged without the add-to-cart;
# hammer/z is not in the catalogue
LOG = """query,product_id,position,clicked,added_to_cart,purchased
drill,a,1,1,1,1
drill,b,2,0,0,0
drill,a,1,0,0,0
Drill,b,1,1,0,0
drill,a,4,1,0,1
hammer,c,1.0,0,0,0
hammer,z,2,1,0,0
"""


def check_positions(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The positions table's contract; returns the table."""
    pos, inter = tables[schema.POSITIONS], tables[schema.INTERACTIONS]
    assert list(pos.columns) == list(schema.POSITION_COLUMNS)
    for col in ("position", *schema.COUNT_COLUMNS):
        assert pos[col].dtype == np.int64, col
    assert (pos["position"] >= 1).all() and (pos["impressions"] >= 1).all()
    assert (pos["purchases"] <= pos["add_to_carts"]).all()
    assert (pos["add_to_carts"] <= pos["clicks"]).all()
    assert (pos["clicks"] <= pos["impressions"]).all()
    assert not pos.duplicated([*KEYS, "position"]).any()
    # summed over position: exactly the interactions counts and mean position of every pair
    summed = (pos.assign(position_sum=pos["position"] * pos["impressions"])
              .groupby(KEYS)[[*schema.COUNT_COLUMNS, "position_sum"]].sum())
    pairs = inter.set_index(KEYS)
    assert set(summed.index) == set(pairs.index)
    summed = summed.loc[pairs.index]
    for col in schema.COUNT_COLUMNS:
        assert summed[col].tolist() == pairs[col].tolist(), col
    assert (summed["position_sum"] / summed["impressions"]).tolist() == pairs["position"].tolist()
    return pos


@pytest.fixture(scope="module")
def tiny():
    cfg = load_config(PROJECT_ROOT / "params.yaml", "tiny")
    return cfg, generate_world(cfg.world, cfg.seed, progress=False)


def test_the_tiny_world_counts_every_shown_position(tiny):
    cfg, tables = tiny
    pos = check_positions(tables)
    assert pos["position"].max() == min(cfg.world.list_size, cfg.world.candidate_pool)
    assert pos["impressions"].sum() == cfg.world.n_sessions * cfg.world.list_size
    # rows in the interactions table's query order, then by product and position
    query_order = {q: i for i, q in enumerate(pd.unique(tables[schema.INTERACTIONS]["query_id"]))}
    ordered = pos.assign(q=pos["query_id"].map(query_order)).sort_values(["q", "product_id", "position"])
    assert ordered.index.tolist() == list(range(len(pos)))
    # position bias: the top slot gets more clicks per impression than the bottom one
    by_slot = pos.groupby("position")[["clicks", "impressions"]].sum()
    ctr = by_slot["clicks"] / by_slot["impressions"]
    assert ctr.iloc[0] > 2 * ctr.iloc[-1]


def test_the_tiny_world_passes_validation_and_splits_with_its_queries(tiny, tmp_path):
    cfg, tables = tiny
    report = validate_tables(tables, PROJECT_ROOT / "expectations", tmp_path / "raw")
    assert report.success and report.suite(schema.POSITIONS).evaluated, report.format()
    splits = split_tables(tables, SplitConfig(), seed=cfg.seed)
    for parts in splits.values():
        assert set(parts[schema.POSITIONS]["query_id"]) == set(parts[schema.QUERIES]["query_id"])
    assert sum(len(parts[schema.POSITIONS]) for parts in splits.values()) == len(tables[schema.POSITIONS])
    assert validate_splits(splits, PROJECT_ROOT / "expectations", tmp_path / "splits").success


def test_an_interactions_log_counts_each_shown_position(tmp_path):
    (tmp_path / "log.csv").write_text(LOG)
    (tmp_path / "cat.csv").write_text(CATALOG)
    tables = load_interactions(tmp_path / "log.csv", tmp_path / "cat.csv")
    pos = check_positions(tables).set_index([*KEYS, "position"])
    drill = pos.loc[make_query_id("drill")]
    # the funnel is closed per impression, as in the interactions table
    assert drill.loc[("a", 1)].tolist() == [2, 1, 1, 1]
    assert drill.loc[("a", 4)].tolist() == [1, 1, 1, 1]
    assert drill.loc[("b", 1)].tolist() == [1, 1, 0, 0] and drill.loc[("b", 2)].tolist() == [1, 0, 0, 0]
    assert "z" not in pos.index.get_level_values("product_id")  # dropped with its impression


def test_sources_without_shown_positions_write_no_positions_table(tmp_path):
    (tmp_path / "j.csv").write_text("query,product_id,grade,title\ndrill,a,3,Drill\ndrill,b,0,Bits\n")
    assert schema.POSITIONS not in load_judgments(tmp_path / "j.csv")


def test_a_non_integer_position_names_file_column_values_and_lines(tmp_path):
    (tmp_path / "cat.csv").write_text(CATALOG)
    (tmp_path / "log.csv").write_text(LOG.replace("drill,a,4,", "drill,a,2.5,").replace("Drill,b,1,", "Drill,b,1.75,"))
    with pytest.raises(InputFormatError, match=r"log\.csv: column 'position' must hold whole numbers .*"
                                               r"2 bad value\(s\), e\.g\. 1\.75 \(line 5\), 2\.5 \(line 6\)"):
        load_interactions(tmp_path / "log.csv", tmp_path / "cat.csv")


def test_whole_positions_stored_as_floats_are_accepted(tmp_path):
    (tmp_path / "cat.csv").write_text(CATALOG)
    pd.read_csv(io.StringIO(LOG)).astype({"position": float}).to_parquet(tmp_path / "log.parquet", index=False)
    check_positions(load_interactions(tmp_path / "log.parquet", tmp_path / "cat.csv"))
