"""Metric values computed by hand, including ties, all-zero gains and single-item lists."""
import math

import numpy as np
import pytest

from prodrank.metrics import average_precision, grouped_ndcg, ndcg_at_k, recall_at_k, reciprocal_rank


def test_ndcg_hand_computed():
    gains = np.array([0, 2, 1])
    scores = np.array([0.9, 0.5, 0.1])  # ranking: g=0, g=2, g=1
    dcg = 0 + 3 / math.log2(3) + 1 / math.log2(4)
    idcg = 3 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(gains, scores, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(gains, scores, 1) == 0.0


def test_ndcg_ties_keep_input_order_and_all_zero_is_nan():
    assert ndcg_at_k(np.array([0, 1]), np.array([0.5, 0.5]), 1) == 0.0
    assert ndcg_at_k(np.array([1, 0]), np.array([0.5, 0.5]), 1) == 1.0
    assert math.isnan(ndcg_at_k(np.zeros(3), np.arange(3), 5))


def test_single_item_lists():
    assert ndcg_at_k(np.array([2]), np.array([0.1]), 5) == 1.0
    assert reciprocal_rank(np.array([1]), np.array([0.3])) == 1.0
    assert average_precision(np.array([1]), np.array([0.3])) == 1.0


def test_mrr_and_map_hand_computed():
    gains = np.array([0, 1, 0, 1])
    scores = np.array([4, 3, 2, 1])
    assert reciprocal_rank(gains, scores) == 0.5
    assert average_precision(gains, scores) == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert math.isnan(reciprocal_rank(np.zeros(2), np.ones(2)))


def test_recall_hand_computed_with_ties_and_no_relevant_item():
    gains = np.array([0, 1, 0, 2, 1])
    scores = np.array([5, 4, 3, 2, 1])  # relevant at ranks 2, 4, 5
    assert recall_at_k(gains, scores, 1) == 0.0
    assert recall_at_k(gains, scores, 2) == pytest.approx(1 / 3)
    assert recall_at_k(gains, scores, 4) == pytest.approx(2 / 3)
    assert recall_at_k(gains, scores, 10) == 1.0
    assert recall_at_k(np.array([0, 1]), np.array([0.5, 0.5]), 1) == 0.0  # a tie keeps input order
    assert recall_at_k(np.array([1]), np.array([0.2]), 1) == 1.0
    assert math.isnan(recall_at_k(np.zeros(3), np.arange(3), 2))


def test_grouped_ndcg_skips_queries_without_gain():
    qids = np.array(["a", "a", "b", "b", "c"])
    gains = np.array([1, 0, 0, 0, 1])
    scores = np.array([1, 2, 1, 2, 0])
    a = 1 / math.log2(3)
    assert grouped_ndcg(qids, gains, scores, 10) == pytest.approx((a + 1.0) / 2)


def test_ndcg_linear_gain_hand_computed():
    gains = np.array([0, 2, 1])
    scores = np.array([0.9, 0.5, 0.1])
    dcg = 2 / math.log2(3) + 1 / math.log2(4)
    idcg = 2 + 1 / math.log2(3)
    assert ndcg_at_k(gains, scores, 10, gain="linear") == pytest.approx(dcg / idcg)
