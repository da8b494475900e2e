"""Training with a position-bias correction: both methods train on the same prepared data,
save what they learned about examination beside the ranker, and serve nothing extra."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from prodrank.evaluation.evaluate import examination_summary
from prodrank.models.ranker import load_ranker
from prodrank.paths import EXAMINATION_FILE
from tests.model.test_training import config, run


def add_positions(prepared_dir):
    """Per-position counts consistent with each split's interactions: every pair was shown
    half the time at its position and half one lower, with its events split alike."""
    for split in ("train", "valid", "test"):
        inter = pd.read_parquet(prepared_dir / split / "interactions.parquet")
        rows = []
        for r in inter.itertuples():
            first = {c: int(np.ceil(getattr(r, c) / 2)) for c in ("impressions", "clicks", "add_to_carts", "purchases")}
            for position, counts in ((int(r.position), first),
                                     (int(r.position) + 1, {c: getattr(r, c) - v for c, v in first.items()})):
                rows.append({"query_id": r.query_id, "product_id": r.product_id, "position": position, **counts})
        pd.DataFrame(rows).to_parquet(prepared_dir / split / "positions.parquet", index=False)
    return prepared_dir


@pytest.mark.parametrize("method", ["ipw", "tower"])
def test_each_correction_trains_and_records_the_examination_curve(method, prepared_dir, tiny_init_dir, tmp_path):
    cfg = config(position_debiasing=method, max_position=3)
    summary, out = run(cfg, add_positions(prepared_dir), tiny_init_dir, tmp_path)
    assert summary["steps"] == 6 and np.isfinite(summary["best_valid_ndcg@10"])
    record = json.loads((out / "ranker" / EXAMINATION_FILE).read_text())
    assert record["method"] == method and record["positions"] == [1, 2, 3]
    assert record["examination"]["all"][0] == 1.0 and len(record["examination"]["all"]) == 3
    if method == "tower":
        assert set(record["tower"]) == {"click", "add_to_cart", "purchase"}
    shown = examination_summary(cfg, out / "ranker")  # what the evaluation report shows
    assert shown["world"] == [1.0, 0.5, round(3 ** -1.0, 6)]  # the simulated world's k ** -position_bias
    ranker = load_ranker(out / "ranker")  # the tower is training-only: the served ranker has none
    assert not any("position_tower" in name for name, _ in ranker.model.named_parameters())


def test_a_correction_without_per_position_counts_names_the_table(prepared_dir, tiny_init_dir, tmp_path):
    with pytest.raises(ValueError, match="positions table"):
        run(config(position_debiasing="ipw"), prepared_dir, tiny_init_dir, tmp_path)


def test_without_a_correction_no_examination_is_recorded(prepared_dir, tiny_init_dir, tmp_path):
    _, out = run(config(), add_positions(prepared_dir), tiny_init_dir, tmp_path)
    assert not (out / "ranker" / EXAMINATION_FILE).exists()
