"""Examination propensities estimated from a log: against the simulator's true curve, and the
IPW counts and exposure shares against hand-computed references."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prodrank.config import WorldConfig
from prodrank.data.schema import POSITIONS
from prodrank.sim.world import generate_world
from prodrank.training.propensity import Propensities, estimate_propensities, examined_counts, exposure_matrix


@pytest.mark.parametrize("bias", [0.0, 1.0, 2.0])
def test_estimated_examination_is_within_005_of_the_worlds_at_positions_1_to_10(bias):
    """The simulator examines position k with probability k ** -position_bias; the estimate
    sees only the log (never the world's parameters)."""
    world = WorldConfig(n_products=600, n_queries=150, n_sessions=10_000, list_size=10, candidate_pool=15,
                        position_bias=bias)
    positions = generate_world(world, seed=13, progress=False)[POSITIONS]
    estimate = estimate_propensities(positions, max_position=10, clip=0.1)
    truth = np.arange(1, 11, dtype=float) ** -bias
    assert estimate.examination[0] == 1.0
    np.testing.assert_array_less(np.abs(estimate.examination - truth), 0.05)
    assert estimate.impressions.sum() == positions["impressions"].sum()


def test_a_log_that_never_moves_products_between_positions_cannot_be_estimated():
    positions = pd.DataFrame({"query_id": ["q"] * 3, "product_id": ["a", "b", "c"], "position": [1, 2, 3],
                              "impressions": [10, 10, 10], "clicks": [5, 3, 1]})
    with pytest.raises(ValueError, match="enough different positions"):
        estimate_propensities(positions, max_position=3, clip=0.1)


def frames():
    interactions = pd.DataFrame({"query_id": ["q", "q"], "product_id": ["a", "b"], "impressions": [6, 4],
                                 "position": [1.5, 3.0], "clicks": [3, 1], "add_to_carts": [2, 0], "purchases": [1, 0]})
    positions = pd.DataFrame({"query_id": ["q", "q", "q"], "product_id": ["a", "a", "b"], "position": [1, 2, 30],
                              "impressions": [3, 3, 4], "clicks": [2, 1, 1], "add_to_carts": [1, 1, 0],
                              "purchases": [0, 1, 0]})
    return interactions, positions


def test_ipw_counts_each_impression_as_its_positions_clipped_propensity_of_an_examination():
    interactions, positions = frames()
    props = Propensities(np.array([1.0, 0.5, 0.2, 0.05]), np.ones(4), clip=0.1, comparisons=1)
    out = examined_counts(interactions, positions, props)
    assert list(out.columns) == list(interactions.columns)
    # a: 3 impressions at position 1 and 3 at 2; b: 4 at position 30 (the last bucket, 0.05 clipped to 0.1)
    np.testing.assert_allclose(out["impressions"], [3 * 1.0 + 3 * 0.5, 4 * 0.1])
    for events in ("clicks", "add_to_carts", "purchases"):
        np.testing.assert_array_equal(out[events], interactions[events])
    np.testing.assert_allclose(props.curve(6), [1.0, 0.5, 0.2, 0.05, 0.05, 0.05])


def test_exposure_is_each_pairs_share_of_impressions_per_position():
    interactions, positions = frames()
    exposure = exposure_matrix(interactions, positions, max_position=4)
    np.testing.assert_allclose(exposure, [[0.5, 0.5, 0, 0], [0, 0, 0, 1.0]])
    with pytest.raises(ValueError, match="lacks some"):
        exposure_matrix(interactions, positions.iloc[:2], max_position=4)


def test_the_curve_stops_at_the_last_position_the_log_shows():
    world = WorldConfig(n_products=600, n_queries=150, n_sessions=3000, list_size=6, candidate_pool=15)
    positions = generate_world(world, seed=13, progress=False)[POSITIONS]
    estimate = estimate_propensities(positions, max_position=20, clip=0.1)
    assert estimate.max_position == 6
    np.testing.assert_allclose(estimate.weights(np.array([1, 6, 40])), 1 / np.maximum(
        estimate.examination[[0, 5, 5]], 0.1))
