"""prodrank.metrics cross-checked against ranx, an independent implementation, on random rankings.

Conventions the two share, so their values must agree to float rounding:

- items are ranked by descending score;
- NDCG@k uses exponential gains 2^g - 1 and log2(rank + 1) discounts (ranx's ``ndcg_burges``),
  and the ideal DCG sorts the same graded items: ranx takes them from the judgments, prodrank
  from the ranked list, which is the same set here because every judged item is ranked;
- MRR and MAP count an item as relevant when its grade is above 0 (ranx: ``rel_lvl=1`` on integer
  grades); MAP divides by the number of relevant items, all of them ranked here (no cut-off).

Conventions they do not share, which the random data avoids (prodrank's own are tested by hand in
test_metrics.py):

- ties: prodrank keeps the input order (a stable sort); ranx reverses an ascending sort, so tied
  items come in another order. The scores here are distinct floats.
- a query without a relevant item: prodrank gives NaN and leaves it out of means; ranx gives 0
  and averages it in (tested below with one such query).
- ranx judgments are integer grades; prodrank takes any real gain.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from ranx import Qrels, Run, evaluate

from prodrank.metrics import average_precision, grouped_ndcg, ndcg_at_k, reciprocal_rank

pytestmark = pytest.mark.filterwarnings("ignore::numba.NumbaTypeSafetyWarning")

METRICS = {"ndcg_burges@5": lambda g, s: ndcg_at_k(g, s, 5), "ndcg_burges@10": lambda g, s: ndcg_at_k(g, s, 10),
           "mrr": reciprocal_rank, "map": average_precision}


def random_queries(n_queries: int, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """query id -> (integer grades 0..3 with at least one above 0, distinct random scores)."""
    rng = np.random.default_rng(seed)
    out = {}
    for q in range(n_queries):
        size = int(rng.integers(1, 31))
        grades = rng.choice(4, size=size, p=[0.55, 0.25, 0.12, 0.08])
        grades[rng.integers(size)] = rng.integers(1, 4)
        out[f"q{q:03d}"] = (grades, rng.permutation(size) + rng.random(size))
    return out


def ranx_per_query(queries: dict[str, tuple[np.ndarray, np.ndarray]], metrics: list[str]) -> dict[str, np.ndarray]:
    qrels = Qrels.from_dict({q: {f"d{i}": int(g) for i, g in enumerate(grades)} for q, (grades, _) in queries.items()})
    run = Run.from_dict({q: {f"d{i}": float(s) for i, s in enumerate(scores)} for q, (_, scores) in queries.items()})
    return evaluate(qrels, run, metrics, return_mean=False)


def test_metrics_match_ranx_on_random_rankings():
    queries = random_queries(80, seed=0)
    queries["q_none"] = (np.zeros(3, dtype=int), np.array([0.3, 0.2, 0.1]))  # sorts last in ranx
    theirs = ranx_per_query(queries, list(METRICS))
    for name, ours in METRICS.items():
        mine = np.array([ours(grades, scores) for grades, scores in queries.values()])
        np.testing.assert_allclose(mine[:-1], theirs[name][:-1], rtol=1e-12, atol=1e-12, err_msg=name)
        assert math.isnan(mine[-1]) and theirs[name][-1] == 0.0  # no relevant item: NaN here, 0 in ranx
    qids = np.concatenate([[q] * len(g) for q, (g, _) in queries.items()])
    gains, scores = (np.concatenate([pair[i] for pair in queries.values()]) for i in (0, 1))
    assert grouped_ndcg(qids, gains, scores, 10) == pytest.approx(theirs["ndcg_burges@10"][:-1].mean(), abs=1e-12)
