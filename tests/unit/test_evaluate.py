"""Evaluation targets and the report's claims: which gains each target uses, and that a
biased logged metric is flagged while the ground-truth one is not."""
import numpy as np
import pandas as pd
import pytest

from prodrank.config import resolve
from prodrank.data.schema import SPLITS
from prodrank.evaluation.evaluate import (
    compute_metrics,
    evaluation_targets,
    other_splits,
    paired_randomisation_test,
)
from prodrank.evaluation.report import claims, render
from prodrank.evaluation.targets import GRADED, MODEL, ORACLE
from tests.conftest import make_prepared


def pairs(**truth: list[float]) -> pd.DataFrame:
    frame = pd.DataFrame({
        "query_id": ["q1", "q1", "q2"], "product_id": ["a", "b", "a"], "impressions": [10, 4, 5],
        "clicks": [5, 1, 0], "add_to_carts": [2, 0, 0], "purchases": [1, 0, 0], "relevance": [3, 1, 0],
    })
    return frame.assign(**truth)


def test_logged_targets_are_event_rates_and_truth_targets_need_the_truth_columns():
    cfg = resolve({})
    targets = evaluation_targets(cfg, pairs(), pairs())
    assert set(targets) == {"click", "add_to_cart", "purchase", GRADED}
    np.testing.assert_allclose(targets["click"], [0.5, 0.25, 0.0])
    np.testing.assert_allclose(targets["purchase"], [0.1, 0.0, 0.0])

    truth = pairs(expected_clicks=[0.6, 0.2, 0.1], expected_add_to_carts=[0.3, 0.05, 0.0],
                  expected_purchases=[0.2, 0.01, 0.0])
    targets = evaluation_targets(cfg, truth, truth)
    assert set(targets) == {"click", "add_to_cart", "purchase", "click_true", "add_to_cart_true", "purchase_true", GRADED}
    np.testing.assert_allclose(targets["click_true"], [0.6, 0.2, 0.1])  # as given: no division by impressions
    np.testing.assert_allclose(targets["purchase_true"], [0.2, 0.01, 0.0])


def test_a_truth_column_with_gaps_is_not_a_target():
    truth = pairs(expected_clicks=[0.6, None, 0.1])
    assert "click_true" not in evaluation_targets(resolve({}), truth, truth)


def summary(model: float, production: float, oracle: float) -> dict:
    def entry(value: float) -> dict:
        return {"click": {"ndcg@10": value}, "click_true": {"ndcg@10": value}}
    return {
        "n_queries": 3,
        "methods": {MODEL: entry(model), "production": entry(production), ORACLE: entry(oracle)},
        "significance": {"production": {"click.ndcg@10": {"diff": model - production, "p_value": 0.001},
                                        "click_true.ndcg@10": {"diff": model - production, "p_value": 0.001}}},
    }


def test_claims_flag_the_logged_metric_when_the_logging_policy_beats_the_oracle():
    lines = claims(summary(model=0.5, production=0.8, oracle=0.6), "ndcg@10")
    assert lines[0].startswith("- **click ndcg@10") and "DOES NOT HOLD" in lines[0]
    assert "Caution: on click" in lines[1] and "`click_true` is the unbiased comparison" in lines[1]
    assert "click_true ndcg@10: the model beats every baseline significantly — DOES NOT HOLD" in lines[2]
    assert len(lines) == 3  # no caution on the ground-truth target


def test_report_states_the_gap_to_the_oracle_per_truth_target():
    text = render(summary(model=0.9, production=0.8, oracle=0.95), pd.DataFrame(), "ndcg@10", [], "t")
    assert "Gap to the oracle ceiling on click_true ndcg@10: 0.1000 (model 0.9000, oracle 1.0; " \
           "ranking by true relevance alone 0.9500)" in text
    assert "Gap to the oracle ceiling on click ndcg@10" not in text  # a logged metric has no known ceiling
    assert "click_true ndcg@10: the model beats every baseline significantly — HOLDS" in text


def test_expected_rate_targets_get_ndcg_only():
    frame = pairs(expected_clicks=[0.6, 0.2, 0.1])
    targets = {"click": np.array([0.5, 0.25, 0.0]), "click_true": frame["expected_clicks"].to_numpy()}
    per_query, auc = compute_metrics(frame, {MODEL: np.array([0.1, 0.9, 0.5])}, targets, (1, 10))
    true_rows = per_query[per_query["target"] == "click_true"]
    assert set(true_rows["metric"]) == {"ndcg@1", "ndcg@10"}
    assert set(per_query[per_query["target"] == "click"]["metric"]) >= {"mrr", "map", "ndcg@10"}
    assert set(auc[MODEL]) == {"click"}
    q1 = true_rows[(true_rows["query_id"] == "q1") & (true_rows["metric"] == "ndcg@1")]["value"].item()
    assert q1 == pytest.approx((2**0.2 - 1) / (2**0.6 - 1))  # b (0.2) ranked above a (0.6); gain 2^g - 1


def test_the_paired_test_gives_one_comparison_one_p_value():
    diff = np.random.default_rng(3).normal(0.01, 0.05, size=200)
    first = paired_randomisation_test(diff, 1000, seed=7)
    paired_randomisation_test(np.ones(50), 1000, seed=7)  # another comparison in between changes nothing
    assert paired_randomisation_test(diff, 1000, seed=7) == first
    assert paired_randomisation_test(-diff, 1000, seed=7) == first  # full - variant vs variant - full


def test_the_paired_test_on_no_difference_and_on_a_consistent_one():
    assert paired_randomisation_test(np.zeros(30), 999, seed=0) == 1.0  # every flip ties the observed 0
    # 20 equal differences: only the all-plus and all-minus flips (2 in 2**20) reach |mean| = 0.1
    assert paired_randomisation_test(np.full(20, 0.1), 999, seed=0) == pytest.approx(1 / 1000)


def test_the_drift_reference_adds_the_earlier_splits_and_never_the_test_split_when_validating(tmp_path):
    prepared = make_prepared(tmp_path / "prepared")  # valid and test hold the same 8 queries
    split_queries = {s: set(pd.read_parquet(prepared / s / "queries.parquet")["query_id"]) for s in SPLITS}
    for split in ("test", "valid"):
        evaluated = split_queries[split]
        rest = other_splits(prepared, split, evaluated)
        assert set(rest["query_id"]) == split_queries["train"] and set(rest["split"]) == {"train"}
        assert not rest.duplicated(["query_id", "product_id"]).any()
    # testing adds every query of both earlier splits that it does not evaluate itself
    rest = other_splits(prepared, "test", {"Q00"})
    assert set(rest["query_id"]) == (split_queries["train"] | split_queries["valid"]) - {"Q00"}
