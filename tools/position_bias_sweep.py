"""Position-bias sweep: how much the configured correction (``train.position_debiasing``) gains
as the simulated shopper's position bias grows.

For each ``world.position_bias`` the pipeline's own stage code generates the store and splits
it on the ``bias_sweep`` profile (a smaller world that fits the machine; fine-tuning starts
from the packaged MiniLM without domain pretraining), then fine-tunes twice on the same data:
with the correction and without it. Both are scored on the same test queries, with a paired
sign-flip test per target, as ``prodrank ablate`` scores its variants.

    python -m tools.position_bias_sweep --biases 0 1 2 --out docs/position_bias_sweep.json
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import pandas as pd

from prodrank import stages
from prodrank.config import Config, load_config
from prodrank.evaluation.ablation import FULL, ablation_table, starting_checkpoint
from prodrank.evaluation.evaluate import evaluate_pairs, load_eval_pairs
from prodrank.io import write_json, write_text
from prodrank.training.finetune import finetune

log = logging.getLogger(__name__)
WITHOUT = "no_position_debiasing"
TARGETS = ("click_true", "add_to_cart_true", "purchase_true", "relevance_true")


def with_bias(cfg: Config, bias: float, debiasing: str | None = None) -> Config:
    world = cfg.world.model_copy(update={"position_bias": bias})
    train = cfg.train if debiasing is None else cfg.train.model_copy(update={"position_debiasing": debiasing})
    return cfg.model_copy(update={"world": world, "train": train})


def sweep_point(cfg: Config, work: Path) -> list[dict]:
    """Generate, split, train with and without the correction, compare on the test split."""
    raw, prepared = work / "raw", work / "prepared"
    stages.ingest(cfg, raw)
    stages.split(cfg, raw, prepared, work / "reports")
    init = starting_checkpoint(cfg, work / "pretrained", work / "start")
    models, seconds = {}, {}
    for name, variant in ((FULL, cfg), (WITHOUT, with_bias(cfg, cfg.world.position_bias, "none"))):
        out = work / name
        start = time.perf_counter()
        finetune(variant, prepared, init, out / "ranker", out / "plots", out / "metrics.json", out / "checkpoint")
        models[name], seconds[name] = out / "ranker", time.perf_counter() - start
    pairs, queries = load_eval_pairs(prepared, "test")
    train_pairs, _ = load_eval_pairs(prepared, "train")
    catalog = pd.read_parquet(prepared / "catalog.parquet")
    evaluations = {name: evaluate_pairs(cfg, pairs, queries, catalog, train_pairs, path, baselines=())[0]
                   for name, path in models.items()}
    table = ablation_table(evaluations, cfg)
    table = table[(table["variant"] == WITHOUT) & table["target"].isin(TARGETS)]
    return [{"position_bias": cfg.world.position_bias, "method": cfg.train.position_debiasing,
             "target": row["target"], "ndcg@10_without": row["ndcg@10"],
             "ndcg@10_with": row["ndcg@10"] - row["diff_vs_full"], "gain": -row["diff_vs_full"],
             "p_value": row["p_value"], "queries": row["queries"],
             "train_seconds_with": round(seconds[FULL], 1), "train_seconds_without": round(seconds[WITHOUT], 1)}
            for _, row in table.iterrows()]


def render(rows: list[dict], profile: str) -> str:
    lines = ["| position bias | target | without | with | gain | p |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['position_bias']:g} | {r['target']} | {r['ndcg@10_without']:.4f} | {r['ndcg@10_with']:.4f} | "
              f"{r['gain']:+.4f} | {r['p_value']:.3g} |" for r in rows]
    return f"Profile `{profile}`, method `{rows[0]['method']}`, test-split NDCG@10.\n\n" + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="bias_sweep")
    parser.add_argument("--biases", type=float, nargs="+", default=[0.0, 1.0, 2.0])
    parser.add_argument("--method", choices=["tower", "ipw"], default=None,
                        help="the correction to measure (default: the profile's train.position_debiasing)")
    parser.add_argument("--work", type=Path, default=Path("models/bias_sweep"))
    parser.add_argument("--out", type=Path, default=Path("reports/bias_sweep.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    base = load_config(profile=args.profile)
    base = with_bias(base, base.world.position_bias, args.method or base.train.position_debiasing)
    if base.train.position_debiasing == "none":
        parser.error(f"profile {args.profile!r} trains without a correction: pass --method tower or ipw")
    rows = []
    for bias in args.biases:
        rows += sweep_point(with_bias(base, bias), args.work / f"bias_{bias:g}")
        write_json(rows, args.out)  # each finished point is kept, should a later one fail
    write_text(render(rows, args.profile), args.out.with_suffix(".md"))
    print(render(rows, args.profile))
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
