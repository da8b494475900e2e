"""Numeric product features (price, rating) fed to the multi-task head beside ``[CLS]``.

Text alone cannot tell the cross-encoder that a product is cheap or well rated, and shoppers
add to cart and buy by both: that is the edge a LambdaMART on price and rating has over a
text-only ranker on the sparse tasks. Each feature is log-scaled (prices span orders of
magnitude), standardised with statistics of the training catalogue, and paired with a missing
flag, so a request or catalogue row without the value gets 0 ("average") and the flag,
never a made-up number::

    value            [F]   raw column values, None/NaN where unknown
    vector           [2F]  (z_1 .. z_F, missing_1 .. missing_F)
    z_f = (sign(x) log(1 + |x|) - mean_f) / std_f, or 0 when x is missing
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd


def _log_scale(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.log1p(np.abs(values))


def _number(value: Any) -> float | None:
    """The value as a finite float, or None when it is unknown (None, NaN)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class ProductFeatures:
    names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def size(self) -> int:
        return 2 * len(self.names)

    @classmethod
    def fit(cls, catalog: pd.DataFrame, names: Sequence[str]) -> ProductFeatures:
        """Statistics of the log-scaled columns over ``catalog`` (the training products)."""
        means, stds = [], []
        for name in names:
            if name not in catalog.columns:
                raise ValueError(f"train.product_features: the catalogue has no {name!r} column")
            values = pd.to_numeric(catalog[name], errors="coerce").to_numpy(dtype=np.float64)
            values = _log_scale(values[np.isfinite(values)])
            if len(values) == 0:
                raise ValueError(f"train.product_features: {name!r} has no numeric value in the training catalogue")
            means.append(float(values.mean()))
            stds.append(float(values.std()) or 1.0)  # a constant column carries no information: keep it at 0
        return cls(tuple(names), tuple(means), tuple(stds))

    def vector(self, product: Mapping[str, Any]) -> list[float]:
        """One product's [2F] feature vector (see the module docstring)."""
        values = [_number(product.get(name)) for name in self.names]
        z = [0.0 if v is None else (float(_log_scale(np.array(v))) - m) / s
             for v, m, s in zip(values, self.mean, self.std, strict=True)]
        return z + [float(v is None) for v in values]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> ProductFeatures:
        return cls(tuple(data["names"]), tuple(data["mean"]), tuple(data["std"]))
