"""Drift thresholds calibrated against the reference itself.

A fixed threshold on a drift statistic cannot suit every check: the default Wasserstein distance
is normalised by the reference's spread, so a model whose scores barely spread turns a shift of
0.001 into a "distance" of 0.4; some checks have one value per request, others one per candidate;
windows differ in size. So each check's threshold is derived from the distribution the statistic
has when nothing drifted, estimated from the reference:

- **Two-sample cluster bootstrap.** Draw a reference-sized and a current-window-sized sample of
  *requests* from the reference, with replacement, and compute the same statistic between them;
  repeat ``resamples`` times. Requests, not rows: the candidates of one request share its query
  and are correlated, and live traffic repeats head queries, so rows are far from independent and
  a row bootstrap would make the null too narrow.
- **Vectorised.** A resample is a vector of counts over the reference's requests. Requests that
  carry the same values (repeats of one query) are merged first, so a resample is one multinomial
  draw over the distinct patterns, and a matrix product turns it into weights over the distinct
  values; the default statistics (normed Wasserstein, Jensen-Shannon on categories) are computed on
  those weights for all resamples at once. Other Evidently stattests are computed per resample.
- **The tail.** Alarms are meant to be rare: the threshold is the ``1 - false_alarm_rate / k``
  quantile for k calibrated checks (Bonferroni). A few hundred resamples cannot estimate such a
  quantile directly, so it comes from a log-normal fitted to the positive resamples (and a point
  mass at 0 for the rest: identical resamples of a column that barely varies). Checked against
  40 000 resamples of clustered data at 100-2 000 requests per window: the log-normal's
  0.9993 quantile from 300 resamples was 0-20 % above the empirical one, where a gamma fit (by
  mean and variance) fell up to 10 % below it, i.e. raised too many alarms.

The statistic of the windows themselves is Evidently's (:func:`observed`); tests check that the
vectorised statistics equal Evidently's on the same data.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse, special, stats

P_VALUE_METHODS = frozenset({"ks", "chisquare", "z", "mannw", "anderson", "cramer_von_mises", "t_test", "TVD",
                             "fisher_exact", "g_test"})
WASSERSTEIN_MIN_NORM = 0.001  # Evidently's floor on the reference's standard deviation
_WEIGHT_CELLS = 4_000_000  # resamples x distinct values held in memory at once


def strength(method: str, statistic: float) -> float:
    """The statistic on a scale where larger means more drift: a distance, or -ln p."""
    return -float(np.log(max(statistic, 1e-300))) if method in P_VALUE_METHODS else float(statistic)


def from_strength(method: str, value: float) -> float:
    """The inverse of :func:`strength`: a threshold in the stattest's own terms."""
    return float(np.exp(-value)) if method in P_VALUE_METHODS else float(value)


def tail_quantile(replicates: np.ndarray, level: float) -> float:
    """The ``level`` quantile of a point mass at 0 (the share of zero replicates) plus a log-normal
    fitted to the positive replicates (module doc)."""
    positive = replicates[replicates > 0]
    beyond = (1 - level) * len(replicates) / max(1, len(positive))  # tail share among positive values
    if beyond >= 1 or len(positive) == 0:
        return 0.0
    if len(positive) < 2:
        return float(positive.max())
    logs = np.log(positive)
    return float(np.exp(logs.mean() + stats.norm.ppf(1 - beyond) * logs.std(ddof=1)))


def effect_size(reference: np.ndarray, current: np.ndarray, categorical: bool) -> float:
    """How far the current distribution is from the reference in the column's own terms: the
    Wasserstein distance in the column's units for numbers (for a pure shift, the difference in
    means), the total variation distance (share of rows whose value would have to change) for
    categories."""
    if categorical:
        ref = pd.Series(reference).value_counts(normalize=True)
        cur = pd.Series(current).value_counts(normalize=True)
        return float(0.5 * ref.sub(cur, fill_value=0.0).abs().sum())
    return float(stats.wasserstein_distance(reference.astype(float), current.astype(float)))


def observed(method: str, reference: pd.Series, current: pd.Series, categorical: bool) -> float:
    """Evidently's statistic for ``method`` between two windows (the one ``ValueDrift`` reports)."""
    # Evidently takes seconds to import; only the monitor's statistics need it
    from evidently.legacy.calculations.stattests import get_stattest
    from evidently.legacy.core import ColumnType

    kind = ColumnType.Categorical if categorical else ColumnType.Numerical
    test = get_stattest(reference, current, kind, method)
    return float(test(reference, current, kind, None).drift_score)


@dataclass(frozen=True)
class ClusterSample:
    """One column of the reference as requests: the distinct values, the distinct per-request
    patterns of values (pattern x value counts) and the share of requests with each pattern."""

    values: np.ndarray
    patterns: sparse.csr_matrix
    frequency: np.ndarray
    requests: int
    categorical: bool

    @classmethod
    def of(cls, values: pd.Series, request_ids: pd.Series, categorical: bool) -> ClusterSample:
        """From the non-missing rows of a column and the request each row belongs to."""
        codes, uniques = pd.factorize(values.to_numpy(), sort=True)
        rows = pd.DataFrame({"request": request_ids.to_numpy(), "code": codes}).sort_values(["request", "code"])
        keys = rows.groupby("request", sort=False)["code"].agg(tuple).value_counts()
        lengths = np.fromiter((len(k) for k in keys.index), np.int64, len(keys))
        flat = np.fromiter((c for k in keys.index for c in k), np.int64, int(lengths.sum()))
        patterns = sparse.csr_matrix((np.ones(len(flat)), (np.repeat(np.arange(len(keys)), lengths), flat)),
                                     shape=(len(keys), len(uniques)))
        counts = keys.to_numpy(dtype=float)
        return cls(np.asarray(uniques), patterns, counts / counts.sum(), int(counts.sum()), categorical)

    def weights(self, requests: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
        """Weights over the distinct values of ``resamples`` samples of ``requests`` requests."""
        counts = rng.multinomial(requests, self.frequency, size=resamples).astype(float)
        return np.asarray((self.patterns.T @ counts.T).T)

    def rows(self, weights: np.ndarray) -> np.ndarray:
        """The values of one resample, each repeated by its weight."""
        return np.repeat(self.values, weights.astype(np.int64))


def wasserstein_norm(x: np.ndarray, w_ref: np.ndarray, w_cur: np.ndarray) -> np.ndarray:
    """Evidently's normed Wasserstein distance, per row of weights over the sorted values ``x``."""
    p = w_ref / w_ref.sum(axis=1, keepdims=True)
    q = w_cur / w_cur.sum(axis=1, keepdims=True)
    distance = np.abs(np.cumsum(p - q, axis=1)[:, :-1]) @ np.diff(x)
    mean = p @ x
    std = np.sqrt(np.einsum("bv,bv->b", p, (x[None, :] - mean[:, None]) ** 2))
    return distance / np.maximum(std, WASSERSTEIN_MIN_NORM)


def jensenshannon(w_ref: np.ndarray, w_cur: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (natural log, as scipy and Evidently) per row of category weights."""
    p = w_ref / w_ref.sum(axis=1, keepdims=True)
    q = w_cur / w_cur.sum(axis=1, keepdims=True)
    m = (p + q) / 2
    return np.sqrt(np.maximum((special.rel_entr(p, m).sum(axis=1) + special.rel_entr(q, m).sum(axis=1)) / 2, 0.0))


def _vectorised(method: str, sample: ClusterSample):
    """The vectorised form of ``method`` on this column, or None (computed per resample)."""
    if method == "wasserstein" and not sample.categorical:
        return lambda w_ref, w_cur: wasserstein_norm(sample.values.astype(float), w_ref, w_cur)
    # Evidently bins a numerical column with more than 20 values before Jensen-Shannon
    if method == "jensenshannon" and (sample.categorical or len(sample.values) <= 20):
        return jensenshannon
    return None


def null_replicates(sample: ClusterSample, current_requests: int, method: str, resamples: int,
                    rng: np.random.Generator) -> np.ndarray:
    """:func:`strength` of the statistic between two resamples of the reference (reference-sized
    and current-sized), ``resamples`` times."""
    vectorised = _vectorised(method, sample)
    batch = max(1, min(resamples, _WEIGHT_CELLS // max(1, len(sample.values))))
    out = []
    for start in range(0, resamples, batch):
        size = min(batch, resamples - start)
        w_ref = sample.weights(sample.requests, size, rng)
        w_cur = sample.weights(current_requests, size, rng)
        if vectorised is not None:
            out.append(vectorised(w_ref, w_cur))
        else:
            out.append(np.array([strength(method, observed(method, pd.Series(sample.rows(r)),
                                                           pd.Series(sample.rows(c)), sample.categorical))
                                 for r, c in zip(w_ref, w_cur, strict=True)]))
    return np.concatenate(out)


@dataclass(frozen=True)
class NullDistribution:
    """The resampled statistic under no drift, for one check at one current window size."""

    replicates: np.ndarray
    method: str

    def threshold(self, level: float) -> float:
        """The ``level`` quantile, in the stattest's own terms (a p-value for p-value tests)."""
        return from_strength(self.method, tail_quantile(self.replicates, level))

    def exceeded(self, statistic: float, level: float) -> bool:
        return strength(self.method, statistic) > tail_quantile(self.replicates, level)

    def summary(self) -> dict[str, float | int]:
        values = [from_strength(self.method, float(v)) for v in np.quantile(self.replicates, [0.5, 0.99])]
        return {"resamples": len(self.replicates), "median": values[0], "q99": values[1]}


class Calibrator:
    """Null distributions of the checks' statistics against one reference table (one row per
    candidate, request-level columns on a request's first row; :func:`features.drift_frame`),
    cached per column, method and current window size, so many windows share them."""

    def __init__(self, reference: pd.DataFrame, resamples: int, seed: int = 0) -> None:
        self.reference = reference
        self.resamples = resamples
        self.seed = seed
        self._samples: dict[str, ClusterSample] = {}
        self._nulls: dict[tuple[str, str, int], NullDistribution] = {}

    def sample(self, column: str, categorical: bool) -> ClusterSample:
        if column not in self._samples:
            present = self.reference[column].notna()
            self._samples[column] = ClusterSample.of(self.reference.loc[present, column],
                                                     self.reference.loc[present, "request_id"], categorical)
        return self._samples[column]

    def null(self, column: str, method: str, categorical: bool, current_requests: int) -> NullDistribution:
        key = (column, method, current_requests)
        if key not in self._nulls:
            rng = np.random.default_rng([self.seed, zlib.crc32(f"{column}/{method}".encode()), current_requests])
            replicates = null_replicates(self.sample(column, categorical), current_requests, method, self.resamples, rng)
            self._nulls[key] = NullDistribution(replicates, method)
        return self._nulls[key]
