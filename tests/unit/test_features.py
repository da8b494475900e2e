"""Product features for the head: log scale, training statistics, missing flags."""
import math

import numpy as np
import pandas as pd
import pytest

from prodrank.models.features import ProductFeatures

CATALOG = pd.DataFrame({"price": [9.0, 99.0, np.nan, 999.0], "rating": [4.0, 4.0, 4.0, 4.0]})


def test_fit_uses_log_scaled_known_values_and_a_constant_column_keeps_unit_scale():
    features = ProductFeatures.fit(CATALOG, ["price", "rating"])
    logs = [math.log(10), math.log(100), math.log(1000)]  # log1p(9), log1p(99), log1p(999)
    assert features.mean[0] == pytest.approx(sum(logs) / 3)
    assert features.std[0] == pytest.approx(np.std(logs))  # population std, NaN skipped
    assert features.mean[1] == pytest.approx(math.log(5)) and features.std[1] == 1.0
    assert features.size == 4


def test_vector_standardises_and_flags_missing_values():
    features = ProductFeatures.fit(CATALOG, ["price", "rating"])
    mean, std = math.log(100), features.std[0]  # the mean of log 10, log 100, log 1000 is log 100
    assert features.vector({"price": 99.0, "rating": 4.0}) == pytest.approx([0.0, 0.0, 0.0, 0.0])
    assert features.vector({"price": 999.0, "rating": None}) == pytest.approx(
        [(math.log(1000) - mean) / std, 0.0, 0.0, 1.0])
    # absent key, NaN and None all read as unknown: 0 and the flag, never a made-up number
    assert features.vector({"title": "a lamp", "rating": float("nan")}) == [0.0, 0.0, 1.0, 1.0]


def test_round_trip_and_errors_name_the_config_key():
    features = ProductFeatures.fit(CATALOG, ["price"])
    assert ProductFeatures.from_dict(features.to_dict()) == features
    with pytest.raises(ValueError, match=r"train.product_features: the catalogue has no 'rating' column"):
        ProductFeatures.fit(CATALOG[["price"]], ["rating"])
    with pytest.raises(ValueError, match=r"train.product_features: 'price' has no numeric value"):
        ProductFeatures.fit(pd.DataFrame({"price": [np.nan, np.nan]}), ["price"])
