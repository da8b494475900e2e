"""Data validation: small hand-built tables pass; each kind of broken data fails with a clear message."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from prodrank.data.validate import (  # noqa: E402
    DATA_DOCS_DIR,
    SPLITS_DATA_DOCS_DIR,
    DataValidationError,
    ValidationReport,
    check,
    validate_splits,
    validate_tables,
)

SUITES = Path(__file__).resolve().parents[2] / "expectations"
SUITE_FILES = ("catalog", "queries", "interactions", "judgments", "relevance", "positions", "splits")


def make_tables() -> dict[str, pd.DataFrame]:
    catalog = pd.DataFrame({
        "product_id": ["p1", "p2", "p3", "p4", "p5"],
        "title": ["18V Cordless Drill", "Claw Hammer 16 oz", "Interior Paint White 1 gal",
                  "Wood Screws #8 (100-pack)", "Café Table 90° Corner Bracket"],
        "brand": ["DeWalt", "Estwing", "Behr", None, "Everbilt"],
        "category": ["Tools > Power Tools", "Tools > Hand Tools", "Paint", "Hardware", "Hardware"],
        "description": ["Compact drill.", "Forged steel.", "Low VOC.", None, ""],
        "price": [99.0, 24.5, 35.0, 8.97, None],
        "rating": [4.5, 4.8, None, 4.1, 3.9],
    })
    queries = pd.DataFrame({
        "query_id": ["q1", "q2", "q3"],
        "query": ["cordless drill", "hammer", "white paint"],
        "frequency": ["head", "torso", "tail"],
        "gap_synonym": [False, False, True],
        "gap_abbreviation": [False, False, False],
        "gap_misspelling": [False, True, False],
        "gap_descriptive": [False, False, False],
        "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
    })
    interactions = pd.DataFrame({
        "query_id": ["q1", "q1", "q1", "q2", "q2", "q3", "q3"],
        "product_id": ["p1", "p4", "p2", "p2", "p1", "p3", "p5"],
        "position": [1.0, 2.0, 3.5, 1.0, 2.0, 1.2, 2.0],
        "impressions": [100, 80, 60, 50, 40, 30, 20],
        "clicks": [20, 5, 2, 10, 1, 6, 0],
        "add_to_carts": [6, 1, 0, 3, 0, 2, 0],
        "purchases": [3, 0, 0, 1, 0, 1, 0],
    })
    relevance = pd.DataFrame({
        "query_id": ["q1", "q1", "q2", "q3"],
        "product_id": ["p1", "p2", "p2", "p3"],
        "relevance": [3, 0, 3, 2],
    })
    return {"catalog": catalog, "queries": queries, "interactions": interactions, "relevance": relevance}


def run(tmp_path: Path, **changes: pd.DataFrame) -> ValidationReport:
    tables = make_tables()
    tables.update(changes)
    return validate_tables(tables, SUITES, tmp_path / "reports", max_example_rows=3)


def failure(report: ValidationReport, suite: str, expectation: str, column: str):
    for f in report.suite(suite).failures:
        if f.expectation == expectation and column in f.columns:
            return f
    raise AssertionError(f"no {expectation} failure on {column!r} in suite {suite!r}:\n{report.format()}")


def test_suite_files_are_valid_json():
    for name in SUITE_FILES:
        spec = json.loads((SUITES / f"{name}.json").read_text())
        assert spec["name"] == name and spec["expectations"]
        assert all(e["type"].startswith("expect_") for e in spec["expectations"])


def test_valid_tables_pass_and_reports_are_written(tmp_path):
    report = run(tmp_path)
    assert report.success, report.format()
    assert check(report) is report
    assert [s.suite for s in report.suites] == ["catalog", "queries", "interactions", "relevance"]
    assert "Data validation passed" in report.format()
    out = tmp_path / "reports"
    for name in ("catalog", "queries", "interactions", "relevance"):
        gx_result = json.loads((out / f"{name}.json").read_text())
        assert gx_result["success"] is True and gx_result["results"], name
        assert gx_result["statistics"]["unsuccessful_expectations"] == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["success"] is True
    assert set(summary["suites"]) == {"catalog", "queries", "interactions", "relevance"}
    # no half-written temporary files left behind
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_null_and_duplicate_product_ids(tmp_path):
    catalog = make_tables()["catalog"]
    extra = pd.DataFrame({"product_id": [None, "p1"], "title": ["Orphan Shelf", "Drill Kit (duplicate id)"]})
    report = run(tmp_path, catalog=pd.concat([catalog, extra], ignore_index=True))
    assert not report.success
    nulls = failure(report, "catalog", "expect_column_values_to_not_be_null", "product_id")
    assert nulls.unexpected_count == 1
    assert nulls.examples[0]["row"] == 5 and nulls.examples[0]["title"] == "Orphan Shelf"
    dupes = failure(report, "catalog", "expect_column_values_to_be_unique", "product_id")
    assert dupes.unexpected_count == 2
    # the example rows show whole rows, not only the offending value
    assert {ex["title"] for ex in dupes.examples} == {"18V Cordless Drill", "Drill Kit (duplicate id)"}
    text = report.format()
    assert "expect_column_values_to_not_be_null on column 'product_id'" in text
    assert "expect_column_values_to_be_unique on column 'product_id': 2 unexpected of 7 rows" in text
    assert "title='Drill Kit (duplicate id)'" in text
    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    assert summary["success"] is False and summary["failed_suites"] == ["catalog"]


def test_funnel_violation_raises_readable_error(tmp_path):
    interactions = make_tables()["interactions"]
    interactions.loc[3, "purchases"] = 5  # add_to_carts is 3
    report = run(tmp_path, interactions=interactions)
    f = failure(report, "interactions", "expect_column_pair_values_a_to_be_greater_than_b", "purchases")
    assert f.columns == ("add_to_carts", "purchases") and f.unexpected_count == 1
    assert f.examples[0]["query_id"] == "q2" and f.examples[0]["purchases"] == 5
    with pytest.raises(DataValidationError) as err:
        check(report)
    msg = str(err.value)
    assert "Data validation FAILED" in msg and "suite 'interactions'" in msg
    assert "columns 'add_to_carts', 'purchases'" in msg and "purchases=5" in msg


def test_wrong_types_fail_the_type_expectation(tmp_path):
    interactions = make_tables()["interactions"]
    interactions["position"] = interactions["position"].astype(str)
    report = run(tmp_path, interactions=interactions)
    f = failure(report, "interactions", "expect_column_values_to_be_in_type_list", "position")
    assert f.unexpected_count == len(interactions)
    assert f.examples[0]["position"] == "1.0"
    assert "expect_column_values_to_be_in_type_list on column 'position'" in report.format()


def test_empty_table_fails_saying_so(tmp_path):
    interactions = make_tables()["interactions"].iloc[:0]
    report = run(tmp_path, interactions=interactions)
    result = report.suite("interactions")
    assert not result.success and result.rows == 0
    assert "table 'interactions' is empty (0 rows)" in report.format()
    written = json.loads((tmp_path / "reports" / "interactions.json").read_text())
    assert written["prodrank"]["schema_errors"] == ["table 'interactions' is empty (0 rows)"]


def test_missing_column_is_named(tmp_path):
    interactions = make_tables()["interactions"].drop(columns=["clicks"])
    report = run(tmp_path, interactions=interactions)
    assert not report.success
    assert "table 'interactions' is missing required column(s) 'clicks'" in report.format()
    assert report.suite("catalog").success  # the other tables are still validated


def test_relevance_out_of_range_and_dangling_ids(tmp_path):
    tables = make_tables()
    relevance = tables["relevance"]
    relevance.loc[2, "relevance"] = 4
    interactions = tables["interactions"]
    interactions.loc[6, "product_id"] = "p404"
    report = run(tmp_path, relevance=relevance, interactions=interactions)
    f = failure(report, "relevance", "expect_column_values_to_be_in_set", "relevance")
    assert f.unexpected_count == 1 and f.examples[0]["relevance"] == 4
    dangling = failure(report, "interactions", "expect_column_values_to_be_in_set", "product_in_catalog")
    assert dangling.unexpected_count == 1 and dangling.examples[0]["product_id"] == "p404"
    assert "product_id='p404'" in report.format()


def test_expected_rates_are_checked_when_present(tmp_path):
    relevance = make_tables()["relevance"].assign(
        expected_clicks=[0.6, 0.1, 0.7, 0.4], expected_add_to_carts=[0.2, 0.0, 0.3, 0.1],
        expected_purchases=[0.1, 0.0, 0.1, 0.05])
    assert run(tmp_path, relevance=relevance).suite("relevance").success
    relevance.loc[1, "expected_clicks"] = 1.5  # not a probability
    relevance.loc[3, "expected_purchases"] = 0.2  # more purchases than add-to-carts
    report = run(tmp_path, relevance=relevance)
    f = failure(report, "relevance", "expect_column_values_to_be_between", "expected_clicks")
    assert f.unexpected_count == 1 and f.examples[0]["expected_clicks"] == 1.5
    f = failure(report, "relevance", "expect_column_pair_values_a_to_be_greater_than_b", "expected_purchases")
    assert f.unexpected_count == 1


def test_wrong_encoding_in_titles_fails(tmp_path):
    catalog = make_tables()["catalog"]
    catalog.loc[0, "title"] = "18V Cordless Drill \ufffd Kit"  # bytes undecodable in the assumed codec
    catalog.loc[4, "title"] = "Café Table".encode().decode("latin-1")  # mojibake: 'CafÃ©'
    report = run(tmp_path, catalog=catalog)
    regex_failures = [f for f in report.suite("catalog").failures
                      if f.expectation == "expect_column_values_to_not_match_regex" and f.columns == ("title",)]
    assert len(regex_failures) == 2
    assert {ex["product_id"] for f in regex_failures for ex in f.examples} == {"p1", "p5"}
    assert "replacement character" in report.format()


def test_judgments_table(tmp_path):
    judgments = make_tables()["interactions"].assign(
        impressions=1, clicks=0, add_to_carts=0, purchases=0, grade=[3.0, 1.0, 2.33, 3.0, 1.67, 2.0, 1.0])
    report = run(tmp_path, interactions=judgments)
    assert report.success, report.format()
    assert [s.suite for s in report.suites] == ["catalog", "queries", "interactions", "judgments", "relevance"]
    assert any("engagement-only" in s["reason"] for s in report.suite("interactions").skipped)

    judgments.loc[2, "grade"] = None
    judgments.loc[4, "clicks"] = 1
    report = run(tmp_path, interactions=judgments)
    failure(report, "judgments", "expect_column_values_to_not_be_null", "grade")
    failure(report, "judgments", "expect_column_values_to_be_in_set", "clicks")


def test_engagement_rates_catch_garbage(tmp_path):
    interactions = make_tables()["interactions"]
    interactions["clicks"] = interactions["impressions"]  # every impression clicked
    interactions["add_to_carts"] = 0
    interactions["purchases"] = 0
    report = run(tmp_path, interactions=interactions)
    f = failure(report, "interactions", "expect_column_mean_to_be_between", "ctr")
    assert f.observed_value == pytest.approx(1.0)


def test_bad_table_name_and_stale_reports(tmp_path):
    with pytest.raises(ValueError, match="unknown table name"):
        validate_tables({"products": make_tables()["catalog"]}, SUITES, tmp_path)
    run(tmp_path)
    assert (tmp_path / "reports" / "relevance.json").exists()
    tables = make_tables()
    del tables["relevance"]
    validate_tables(tables, SUITES, tmp_path / "reports")
    assert not (tmp_path / "reports" / "relevance.json").exists()


def make_positions() -> pd.DataFrame:
    """The positions table of make_tables()'s interactions: pairs at a fractional mean position
    were shown at two positions (3.5 = 30 x 3 + 30 x 4, 1.2 = 24 x 1 + 6 x 2)."""
    return pd.DataFrame({
        "query_id": ["q1", "q1", "q1", "q1", "q2", "q2", "q3", "q3", "q3"],
        "product_id": ["p1", "p2", "p2", "p4", "p1", "p2", "p3", "p3", "p5"],
        "position": [1, 3, 4, 2, 2, 1, 1, 2, 2],
        "impressions": [100, 30, 30, 80, 40, 50, 24, 6, 20],
        "clicks": [20, 2, 0, 5, 1, 10, 6, 0, 0],
        "add_to_carts": [6, 0, 0, 1, 0, 3, 2, 0, 0],
        "purchases": [3, 0, 0, 0, 0, 1, 1, 0, 0],
    })


def test_positions_table_is_validated_against_the_interactions(tmp_path):
    report = run(tmp_path, positions=make_positions())
    assert report.success, report.format()
    assert [s.suite for s in report.suites] == ["catalog", "queries", "interactions", "relevance", "positions"]
    assert not report.suite("positions").skipped
    tables = make_tables()
    del tables["interactions"]
    alone = validate_tables({**tables, "positions": make_positions()}, SUITES, tmp_path / "alone")
    assert [s["columns"] for s in alone.suite("positions").skipped] == [["matches_interactions"]]


def test_positions_funnel_violation_fails_the_positions_suite(tmp_path):
    positions = make_positions()
    positions.loc[7, "clicks"] = 7  # 6 impressions at position 2
    report = run(tmp_path, positions=positions)
    assert [s.suite for s in report.suites if not s.success] == ["positions"]
    f = failure(report, "positions", "expect_column_pair_values_a_to_be_greater_than_b", "clicks")
    assert f.columns == ("impressions", "clicks") and f.unexpected_count == 1
    assert f.examples[0]["query_id"] == "q3" and f.examples[0]["position"] == 2
    # 7 clicks at position 2 no longer sum to the pair's 6 in the interactions table
    mismatch = failure(report, "positions", "expect_column_values_to_be_in_set", "matches_interactions")
    assert mismatch.unexpected_count == 2 and {ex["position"] for ex in mismatch.examples} == {1, 2}
    with pytest.raises(DataValidationError, match="suite 'positions'"):
        check(report)


def test_positions_must_be_whole_and_sum_to_the_mean_position(tmp_path):
    positions = make_positions().astype({"position": float})
    positions.loc[1, "position"] = 3.5  # a mean position where a shown position belongs
    positions.loc[2, "position"] = 3.5
    positions.loc[8, "position"] = 3  # same counts, but the pair's mean position is 2
    report = run(tmp_path, positions=positions)
    failure(report, "positions", "expect_column_values_to_be_in_type_list", "position")
    mismatch = failure(report, "positions", "expect_column_values_to_be_in_set", "matches_interactions")
    assert [(ex["query_id"], ex["product_id"]) for ex in mismatch.examples] == [("q3", "p5")]
    duplicate = failure(report, "positions", "expect_compound_columns_to_be_unique", "position")
    assert duplicate.unexpected_count == 2


def split_tables() -> dict[str, dict[str, pd.DataFrame]]:
    t = make_tables()
    q, i = t["queries"], t["interactions"]
    return {
        "train": {"queries": q[q.query_id == "q1"], "interactions": i[i.query_id == "q1"]},
        "valid": {"queries": q[q.query_id == "q2"], "interactions": i[i.query_id == "q2"]},
        "test": {"queries": q[q.query_id == "q3"], "interactions": i[i.query_id == "q3"]},
    }


def test_clean_splits_pass(tmp_path):
    report = validate_splits(split_tables(), SUITES, tmp_path)
    assert report.success, report.format()
    assert json.loads((tmp_path / "splits.json").read_text())["success"] is True
    assert json.loads((tmp_path / "splits_summary.json").read_text())["success"] is True


def test_leaked_query_across_splits(tmp_path):
    splits = split_tables()
    # q1 rows in test (leak by id) and the train query text again under a new id (leak by text)
    t = make_tables()
    i = t["interactions"]
    splits["test"]["interactions"] = pd.concat([splits["test"]["interactions"], i[i.query_id == "q1"].head(1)])
    copy = t["queries"][t["queries"].query_id == "q2"].assign(query_id="q9", query="  HAMMER ")
    splits["test"]["queries"] = pd.concat([splits["test"]["queries"], copy])
    report = validate_splits(splits, SUITES, tmp_path)
    assert not report.success
    by_id = failure(report, "splits", "expect_column_values_to_be_between", "n_splits_by_id")
    assert [(ex["query_id"], ex["splits_by_id"]) for ex in by_id.examples] == [("q1", "test,train")]
    by_text = failure(report, "splits", "expect_column_values_to_be_between", "n_splits_by_text")
    assert {ex["query_id"] for ex in by_text.examples} == {"q2", "q9"}
    with pytest.raises(DataValidationError, match="n_splits_by_id"):
        check(report)


def test_empty_split_fails(tmp_path):
    splits = split_tables()
    splits["valid"] = {k: v.iloc[:0] for k, v in splits["valid"].items()}
    report = validate_splits(splits, SUITES, tmp_path)
    assert "split 'valid' is empty" in report.format()


def test_data_docs_are_written_and_render_offline_in_headless_chromium(tmp_path):
    """GX's Data Docs site of a run with a failed expectation: an index and one page per
    validation, replaced by the next run; opened with the network cut, a validation page still
    shows its results (GX's templates take their styles and scripts from CDNs)."""
    from tools.browser import open_page
    from tools.screenshot import chromium

    catalog = make_tables()["catalog"]
    run(tmp_path, catalog=pd.concat([catalog, catalog.iloc[:1]], ignore_index=True))  # a duplicate id
    docs = tmp_path / "reports" / DATA_DOCS_DIR
    pages = sorted((docs / "validations").rglob("*.html"))
    assert (docs / "index.html").is_file() and {p.parts[-4] for p in pages} == {"catalog", "queries",
                                                                               "interactions", "relevance"}
    validate_splits(split_tables(), SUITES, tmp_path / "reports")
    assert len(list((tmp_path / "reports" / SPLITS_DATA_DOCS_DIR / "validations").rglob("*.html"))) == 1
    run(tmp_path)  # a second run replaces the site: one page per suite, not one per run
    assert len(list((docs / "validations").rglob("*.html"))) == 4
    if chromium() is None:
        pytest.fail("no Chromium: apt-get install -y chromium (or set $CHROMIUM)")
    page_of = {p.parts[-4]: p for p in (docs / "validations").rglob("*.html")}
    index = (docs / "index.html").read_text()  # its links are data for a CDN table script
    assert all(index.count(p.relative_to(docs).as_posix()) == 1 for p in page_of.values())
    with open_page(page_of["catalog"].as_uri()) as page:
        text = page.evaluate("document.body.innerText")
        rows = page.evaluate("document.querySelectorAll('table tr').length")
    assert "expect_column_values_to_be_unique" in text or "values must be unique" in text, text[:2000]
    assert rows > 5
