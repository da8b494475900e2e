"""The ablation report's claims: each tested against the variant that removes what it credits."""
import numpy as np
import pandas as pd

from prodrank.config import resolve
from prodrank.evaluation.ablation import FULL, ablation_claims
from prodrank.evaluation.evaluate import Evaluation
from prodrank.evaluation.targets import MODEL

QUERIES = pd.DataFrame({
    "query_id": [f"q{i}" for i in range(40)],
    "gap_synonym": [i < 20 for i in range(40)],  # q0..q19 have a vocabulary gap, q20..q39 none
    "gap_misspelling": [False] * 40,
    "frequency": ["head"] * 40,
})
CFG = resolve({"evaluate": {"bootstrap_samples": 500, "ablations": [
    {"name": "no_domain_pretraining", "domain_pretraining": False},
    {"name": "single_task_click", "train": {"tasks": [{"name": "click", "label": "clicks"}], "chaining": False,
                                            "score_weights": {"click": 1.0}}},
    {"name": "ple", "train": {"architecture": "ple"}},
]}})


def evaluation(values: dict[str, np.ndarray]) -> Evaluation:
    rows = [{"query_id": f"q{i}", "method": MODEL, "target": target, "metric": "ndcg@10", "value": float(v)}
            for target, per_query in values.items() for i, v in enumerate(per_query)]
    return Evaluation(pd.DataFrame(rows), {}, QUERIES)


def test_pretraining_claim_is_scored_on_gap_queries_only_and_multitask_on_shared_targets():
    rng = np.random.default_rng(0)
    base = 0.5 + 0.1 * rng.random(40)
    gap_gain = base + np.where(np.arange(40) < 20, 0.05, 0.0)  # better on the gap queries only
    no_gap_gain = base + np.where(np.arange(40) >= 20, 0.05, 0.0)  # better where there is no gap
    evaluations = {
        FULL: evaluation({"click": gap_gain, "purchase": no_gap_gain}),
        "no_domain_pretraining": evaluation({"click": base, "purchase": base}),
        "single_task_click": evaluation({"click": gap_gain - 0.01 * rng.random(40)}),
        "ple": evaluation({"click": base, "purchase": base}),  # an architecture variant: no claim
    }
    lines = ablation_claims(evaluations, CFG)
    assert len(lines) == 3
    click, purchase, multitask = lines
    assert "domain pretraining" in click and "on click (vs no_domain_pretraining) — HOLDS" in click
    assert "Δ = +0.0500" in click and "20 queries" in click
    # the full model's purchase gain is on queries without a gap: the pretraining claim fails there
    assert "on purchase (vs no_domain_pretraining) — DOES NOT HOLD" in purchase and "Δ = +0.0000" in purchase
    assert "multi-task learning" in multitask and "on click (vs single_task_click) — HOLDS" in multitask
    assert "40 queries" in multitask and "ple" not in " ".join(lines)


def test_the_pretraining_claim_is_not_tested_when_the_full_model_is_not_pretrained():
    base = np.linspace(0.4, 0.6, 40)
    evaluations = {FULL: evaluation({"click": base + 0.05}), "no_domain_pretraining": evaluation({"click": base})}
    for off in ({"enabled": False}, {"steps": 0}):
        cfg = resolve({**CFG.model_dump(exclude={"pretrain"}), "pretrain": off})
        (line,) = ablation_claims(evaluations, cfg)
        assert "not tested" in line and "HOLDS" not in line


def test_a_variant_that_is_better_makes_the_claim_fail():
    base = np.linspace(0.4, 0.6, 40)
    evaluations = {FULL: evaluation({"click": base}), "single_task_click": evaluation({"click": base + 0.02})}
    (line,) = ablation_claims(evaluations, CFG)
    assert "DOES NOT HOLD" in line and "Δ = -0.0200" in line
