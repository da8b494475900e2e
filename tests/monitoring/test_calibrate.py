"""Calibrated drift thresholds: no alarm when reference and current come from the same narrow
distribution, an alarm on a real shift; the resampled statistics are Evidently's; requests, not
rows, are resampled; fixed thresholds and the minimum effect still apply."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prodrank.config import DriftCheck, resolve
from prodrank.monitoring.calibrate import (
    Calibrator,
    ClusterSample,
    jensenshannon,
    observed,
    tail_quantile,
    wasserstein_norm,
)
from prodrank.monitoring.report import drift_checks

MON = resolve({}).monitoring
CANDIDATES = 10


def scores_window(rng: np.random.Generator, requests: int, queries: np.ndarray, shift: float = 0.0) -> pd.DataFrame:
    """A drift table of ``requests`` requests of queries drawn Zipf-like from ``queries`` (one row
    of candidate scores per query): candidate ``score``, request-level ``top1_score`` on the first
    row of each request, as :func:`features.drift_frame` lays them out."""
    weight = 1 / np.arange(1, len(queries) + 1)
    drawn = rng.choice(len(queries), size=requests, p=weight / weight.sum())
    score = np.sort(queries[drawn], axis=1)[:, ::-1] + shift
    top1 = np.full(score.shape, np.nan)
    top1[:, 0] = score[:, 0]
    return pd.DataFrame({"request_id": np.repeat(np.arange(requests), CANDIDATES), "score": score.ravel(),
                         "top1_score": top1.ravel()})


@pytest.fixture(scope="module")
def narrow():
    """Scores ~ N(0.62, 0.002), as a barely trained model gives, mostly a query's level (the
    candidates of one request are alike): 60 queries, 2 000 reference requests."""
    rng = np.random.default_rng(3)
    queries = rng.normal(0.62, 0.002, (60, 1)) + rng.normal(0.0, 0.0005, (60, CANDIDATES))
    return rng, queries, scores_window(rng, 2000, queries)


def checks(**overrides) -> dict[str, DriftCheck]:
    return {"score": MON.checks.score.model_copy(update=overrides),
            "top1_score": MON.checks.top1_score.model_copy(update=overrides)}


def test_narrow_spread_without_drift_raises_no_alarm(narrow):
    rng, queries, reference = narrow
    calibrator = Calibrator(reference, MON.calibration_resamples, seed=0)
    alarms = 0
    for _ in range(10):
        current = scores_window(rng, 500, queries)
        results = drift_checks(reference, current, checks(), MON, calibrator)
        alarms += any(r.drift for r in results)
        for r in results:
            assert r.calibrated and r.threshold > 0 and r.effect < 0.002, r
    assert alarms == 0


def test_a_negligible_offset_is_no_alarm(narrow):
    """Means 0.6193 against 0.6200, as between in-process evaluation scores and served ones: the
    distance normed by a spread of 0.002 is far above Evidently's default 0.1 (the old threshold
    alarmed) and above the calibrated one, but the effect is below the minimum."""
    rng, queries, reference = narrow
    calibrator = Calibrator(reference, MON.calibration_resamples, seed=0)
    for r in drift_checks(reference, scores_window(rng, 500, queries, shift=-0.0007), checks(), MON, calibrator):
        assert r.statistic > 0.1 and r.statistic > r.threshold and r.effect < 0.001 and not r.drift, r


def test_narrow_spread_with_a_real_shift_alarms(narrow):
    rng, queries, reference = narrow
    calibrator = Calibrator(reference, MON.calibration_resamples, seed=0)
    shifted = drift_checks(reference, scores_window(rng, 500, queries, shift=0.03), checks(), MON, calibrator)
    assert all(r.drift and r.effect == pytest.approx(0.03, abs=0.002) for r in shifted), shifted
    # significant but below the minimum effect (0.02 in score units): no alarm
    small = drift_checks(reference, scores_window(rng, 500, queries, shift=0.01), checks(), MON, calibrator)
    assert all(r.statistic > r.threshold and not r.drift for r in small), small
    # without a minimum effect the small shift is drift too: the calibration alone detects it
    assert all(r.drift for r in drift_checks(reference, scores_window(rng, 500, queries, shift=0.01),
                                             checks(min_effect=0.0), MON, calibrator))


def test_requests_are_resampled_not_rows(narrow):
    """Candidates of one request are correlated (one query): resampling rows would make the null
    far too narrow. Here every request repeats one of 60 queries; as rows, 20 000 values."""
    _, _, reference = narrow
    sample = ClusterSample.of(reference["score"], reference["request_id"], categorical=False)
    assert sample.requests == 2000 and sample.patterns.shape[0] <= 60  # repeats of a query merged
    clustered = Calibrator(reference, 300).null("score", "wasserstein", False, 500).threshold(0.999)
    rows = reference.assign(request_id=np.arange(len(reference)))  # every row its own request
    unclustered = Calibrator(rows, 300).null("score", "wasserstein", False, 5000).threshold(0.999)
    assert clustered > 1.5 * unclustered


def test_vectorised_statistics_equal_evidentlys():
    rng = np.random.default_rng(0)
    ref, cur = rng.gamma(2.0, 0.1, 700).round(3), rng.gamma(2.2, 0.1, 300).round(3)
    values, codes = np.unique(np.concatenate([ref, cur]), return_inverse=True)
    w_ref = np.bincount(codes[:700], minlength=len(values))[None, :].astype(float)
    w_cur = np.bincount(codes[700:], minlength=len(values))[None, :].astype(float)
    assert wasserstein_norm(values, w_ref, w_cur)[0] == pytest.approx(
        observed("wasserstein", pd.Series(ref), pd.Series(cur), categorical=False), rel=1e-9)
    cats = np.array(list("abcde"))
    ref_c, cur_c = cats[rng.integers(0, 5, 700)], cats[rng.integers(0, 4, 300)]
    w_ref = np.array([[np.sum(ref_c == c) for c in cats]], dtype=float)
    w_cur = np.array([[np.sum(cur_c == c) for c in cats]], dtype=float)
    assert jensenshannon(w_ref, w_cur)[0] == pytest.approx(
        observed("jensenshannon", pd.Series(ref_c), pd.Series(cur_c), categorical=True), rel=1e-9)


def test_other_stattests_are_calibrated_per_resample(narrow):
    """A p-value test (ks) without a threshold: the null is of -ln p, the threshold a p-value."""
    rng, queries, reference = narrow
    calibrator = Calibrator(reference, 40, seed=0)
    ks = {"score": DriftCheck(method="ks")}
    same = drift_checks(reference, scores_window(rng, 500, queries), ks, MON, calibrator)[0]
    shifted = drift_checks(reference, scores_window(rng, 500, queries, shift=0.01), ks, MON, calibrator)[0]
    assert same.calibrated and 0 < same.threshold < 0.01 and not same.drift
    assert shifted.statistic < shifted.threshold and shifted.drift
    assert same.row()["rule"] == "drift when p-value < threshold and effect >= min_effect"


def test_categories_constant_in_the_reference_alarm_on_any_change():
    """unseen_product is "known" throughout the reference: the null is all zeros, so any share of
    new products is beyond the threshold; a window of known products is not."""
    reference = pd.DataFrame({"request_id": np.repeat(np.arange(600), 5), "unseen_product": "known"})
    new = reference.iloc[:2500].copy()
    new.loc[new.index % 7 == 0, "unseen_product"] = "new"
    check = {"unseen_product": DriftCheck(method="jensenshannon")}
    calibrator = Calibrator(reference, 100)
    assert not drift_checks(reference, reference.iloc[:2500], check, MON, calibrator)[0].drift
    result = drift_checks(reference, new, check, MON, calibrator)[0]
    assert result.threshold == 0 and result.drift and result.effect == pytest.approx(1 / 7, abs=0.01)


def test_tail_quantile():
    assert tail_quantile(np.zeros(100), 0.999) == 0.0
    normal = np.random.default_rng(0).lognormal(0.0, 0.5, 300)
    assert tail_quantile(normal, 0.999) == pytest.approx(np.exp(3.09 * 0.5), rel=0.15)
    half_zero = np.concatenate([np.zeros(300), normal])
    assert tail_quantile(half_zero, 0.999) == pytest.approx(tail_quantile(normal, 0.998), rel=1e-9)
    assert tail_quantile(half_zero, 0.4) == 0.0
