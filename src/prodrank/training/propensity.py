"""Examination propensities per shown position, estimated from the click log itself.

Logged engagement is shaped by where the logging ranker put each product: a shopper who
never looks at position 9 never clicks it, however relevant it is. The position-based
click model separates the two:

    P(click | q, d, k) = theta_k * gamma_qd

theta_k is the chance that position k is examined, gamma_qd the chance that an examined
impression of product d for query q is clicked. theta is estimated by intervention
harvesting (Agarwal et al., "Estimating position bias without intrusive interventions",
WSDM 2019): the logging ranker's own variation shows the same (query, product) pair at
different positions, and for pairs seen at both k and k' the click rates compare the same
gamma, so

    sum_d w_d * clicks_d(k) / n_d(k)  /  sum_d w_d * clicks_d(k') / n_d(k')  ->  theta_k / theta_k'

with w_d = n_d(k) n_d(k') / (n_d(k) + n_d(k')), which weighs a pair by how well both its
positions are observed. The log-ratios of all position pairs are combined by weighted
least squares (weights ~ inverse Poisson variance of each log-ratio), with theta_1 = 1: only
ratios are identified. Why not EM on the click model with a free gamma per pair (Wang et
al., WSDM 2018): with the few impressions per pair of a real log, each pair's maximum-
likelihood gamma overfits and flattens the curve (on the default synthetic log, 0.60 at
position 2 where the truth is 0.50); shrinking gamma instead confounds examination with
the logging ranker's quality. The ratio estimator needs neither (0.50 there).

Add-to-carts and purchases happen only after a click, so the same examination gates every
event. The correction (``ipw``) counts each impression as theta_k examined impressions
(:func:`examined_counts`): a pair's target becomes events / sum_k n_k theta_k, its weight
sum_k n_k theta_k. With theta known this is the click model's own likelihood for small
rates (sum_k c_k log(theta_k p) + (n_k - c_k) log(1 - theta_k p) ~ C log p - p sum_k n_k theta_k),
and it is the self-normalised form of inverse-propensity weighting: the plain form, which
divides each event by theta_k and keeps n as the weight, lets one click at a rarely
examined position set a pair's target to 1, and measured worse on validation
(docs/experiments.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


def position_bucket(position: np.ndarray, max_position: int) -> np.ndarray:
    """0-based bucket of a 1-based position; positions beyond ``max_position`` share the last."""
    return np.clip(np.asarray(position, dtype=np.int64), 1, max_position) - 1


@dataclass(frozen=True)
class Propensities:
    """theta_k / theta_1 for positions 1..K, with the impressions behind each estimate."""

    examination: np.ndarray  # [K] in (0, 1], examination[0] == 1
    impressions: np.ndarray  # [K] logged impressions per position
    clip: float  # propensities below this count as this in the weights
    comparisons: int  # position pairs with clicks at both, behind the estimate

    @property
    def max_position(self) -> int:
        return len(self.examination)

    def curve(self, max_position: int) -> np.ndarray:
        """[max_position] examination, the last estimated value carried on past the log's last position."""
        return self.examination[np.minimum(np.arange(max_position), self.max_position - 1)]

    def weights(self, position: np.ndarray) -> np.ndarray:
        """Inverse propensities of 1-based positions, at most 1 / clip."""
        return 1.0 / np.maximum(self.examination[position_bucket(position, self.max_position)], self.clip)

    def to_dict(self) -> dict:
        """The estimate as saved beside a ranker (``examination.json``) and shown in its report."""
        return {"positions": list(range(1, self.max_position + 1)),
                "examination": {"all": self.examination.round(6).tolist()},
                "impressions": self.impressions.astype(int).tolist(), "clip": self.clip,
                "estimator": "intervention harvesting", "position_pairs": self.comparisons}


def estimate_propensities(positions: pd.DataFrame, max_position: int, clip: float) -> Propensities:
    """theta_k / theta_1 for k = 1..K by intervention harvesting (module doc); K is
    ``max_position`` or the last position the log shows, whichever is smaller."""
    max_position = int(min(max_position, positions["position"].max()))
    pair = pd.factorize(positions["query_id"].astype(str) + "\x1f" + positions["product_id"].astype(str))[0]
    k = position_bucket(positions["position"].to_numpy(), max_position)
    n = np.zeros((pair.max() + 1, max_position))  # [pairs, K]
    clicks = np.zeros_like(n)
    np.add.at(n, (pair, k), positions["impressions"].to_numpy(dtype=np.float64))
    np.add.at(clicks, (pair, k), positions["clicks"].to_numpy(dtype=np.float64))
    rows, log_ratios, weights = [], [], []
    for a in range(max_position):
        for b in range(a + 1, max_position):
            both = (n[:, a] > 0) & (n[:, b] > 0)
            na, nb, ca, cb = n[both, a], n[both, b], clicks[both, a], clicks[both, b]
            at_a, at_b = (ca * nb / (na + nb)).sum(), (cb * na / (na + nb)).sum()
            if at_a > 0 and at_b > 0:
                row = np.zeros(max_position)
                row[a], row[b] = 1.0, -1.0
                rows.append(row[1:])  # log theta_1 = 0
                log_ratios.append(np.log(at_a / at_b))
                weights.append(np.sqrt(1.0 / (1.0 / ca.sum() + 1.0 / cb.sum())))
    design = np.array(rows).reshape(-1, max_position - 1)
    if np.linalg.matrix_rank(design) < max_position - 1:
        raise ValueError(f"the log does not show products at enough different positions to compare positions "
                         f"1..{max_position}: lower train.max_position, or log more varied rankings")
    w = np.array(weights)
    log_theta, *_ = np.linalg.lstsq(design * w[:, None], np.array(log_ratios) * w, rcond=None)
    per_position = n.sum(axis=0)
    return Propensities(np.minimum(np.exp(np.concatenate([[0.0], log_theta])), 1.0), per_position, clip, len(rows))


def examined_counts(interactions: pd.DataFrame, positions: pd.DataFrame, propensities: Propensities) -> pd.DataFrame:
    """``interactions`` with ``impressions`` replaced by the expected number of *examined*
    impressions, sum over the pair's positions of n_k * theta_k (theta capped below at the
    clip); the event counts stay as logged (module doc). The task target events / examined
    impressions then estimates the rate per examined impression, and the examined impressions
    are its example weight."""
    examined = positions["impressions"].to_numpy(dtype=np.float64) / propensities.weights(positions["position"].to_numpy())
    sums = positions[["query_id", "product_id"]].assign(impressions=examined).groupby(
        ["query_id", "product_id"], sort=False)["impressions"].sum()
    out = interactions.drop(columns="impressions").merge(sums, on=["query_id", "product_id"], how="left", validate="1:1")
    if out["impressions"].isna().any():
        raise ValueError("the positions table lacks some (query, product) pairs of the interactions table")
    return out[interactions.columns]


def exposure_matrix(interactions: pd.DataFrame, positions: pd.DataFrame, max_position: int) -> np.ndarray:
    """[n, K]: each interactions row's share of impressions per shown position (rows sum to 1),
    what the position tower weighs its examination probabilities by (models/position_tower.py)."""
    key = pd.MultiIndex.from_frame(interactions[["query_id", "product_id"]])
    row = key.get_indexer(pd.MultiIndex.from_frame(positions[["query_id", "product_id"]]))
    keep = row >= 0
    counts = np.zeros((len(interactions), max_position))
    np.add.at(counts, (row[keep], position_bucket(positions["position"].to_numpy()[keep], max_position)),
              positions["impressions"].to_numpy(dtype=np.float64)[keep])
    totals = counts.sum(axis=1, keepdims=True)
    if (totals == 0).any():
        raise ValueError("the positions table lacks some (query, product) pairs of the interactions table")
    return counts / totals
