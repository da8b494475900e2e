"""Ablations (`prodrank ablate`): train each variant listed in ``evaluate.ablations`` on
the same prepared data, evaluate it with the main model on the same test queries, and
summarise in one table with paired tests against the main model.

A variant is the main configuration with ``train`` overrides (architecture, chaining,
task list, loss, weighting…) and optionally without domain pretraining, in which case
fine-tuning starts from the starting checkpoint itself (the packaged MiniLM, or a
randomly initialised BERT with the domain vocabulary for ``init: scratch``).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

from prodrank.config import Ablation, Config, ablation_train
from prodrank.data.schema import GAP_TAGS
from prodrank.evaluation.evaluate import (
    Evaluation,
    evaluate_pairs,
    load_eval_pairs,
    paired_randomisation_test,
    slice_table,
)
from prodrank.evaluation.targets import GRADED, MODEL, is_expected_rate
from prodrank.io import write_json, write_text
from prodrank.training.finetune import finetune
from prodrank.training.pretrain import minilm_path

log = logging.getLogger(__name__)
FULL = "full_model"


def starting_checkpoint(cfg: Config, pretrained_dir: Path, out_dir: Path) -> Path:
    """The encoder a no-pretraining variant starts from, saved like the pretrain stage's
    output: the packaged MiniLM as shipped, or (``init: scratch``) a randomly initialised
    BERT of the same shape with the same domain vocabulary."""
    source = minilm_path() if cfg.pretrain.init == "minilm" else pretrained_dir
    if cfg.pretrain.init == "minilm":
        model = BertForMaskedLM.from_pretrained(source, use_safetensors=True)
    else:
        model = BertForMaskedLM(BertConfig.from_pretrained(source))
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    AutoTokenizer.from_pretrained(source).save_pretrained(out_dir)
    return out_dir


def run_ablations(cfg: Config, prepared_dir: Path, pretrained_dir: Path, ranker_dir: Path, work_dir: Path,
                  report_dir: Path) -> pd.DataFrame:
    if not cfg.evaluate.ablations:
        raise ValueError("evaluate.ablations is empty: list the variants to run in params.yaml")
    pairs, queries = load_eval_pairs(prepared_dir, "test")
    train_pairs, _ = load_eval_pairs(prepared_dir, "train")
    catalog = pd.read_parquet(prepared_dir / "catalog.parquet")
    models: dict[str, Path] = {FULL: ranker_dir}
    for ablation in cfg.evaluate.ablations:
        models[ablation.name] = train_variant(cfg, ablation, prepared_dir, pretrained_dir, work_dir)
    evaluations: dict[str, Evaluation] = {}
    for name, model_dir in models.items():
        log.info("evaluating %s", name)
        evaluations[name], _ = evaluate_pairs(cfg, pairs, queries, catalog, train_pairs, model_dir, baselines=())
    table = ablation_table(evaluations, cfg)
    write_json(table.to_dict(orient="records"), report_dir / "ablations.json")
    write_text(render(table, cfg, ablation_claims(evaluations, cfg)), report_dir / "ablations.md")
    return table


def train_variant(cfg: Config, ablation: Ablation, prepared_dir: Path, pretrained_dir: Path, work_dir: Path) -> Path:
    variant = cfg.model_copy(update={"train": ablation_train(cfg.train, ablation)})
    init_dir = pretrained_dir if ablation.domain_pretraining else starting_checkpoint(
        cfg, pretrained_dir, work_dir / "start_checkpoint")
    out = work_dir / ablation.name
    log.info("ablation %s: training (domain pretraining %s)", ablation.name, "on" if ablation.domain_pretraining else "off")
    finetune(variant, prepared_dir, init_dir, out / "ranker", out / "plots", out / "metrics.json", out / "checkpoint")
    return out / "ranker"


def ablation_table(evaluations: dict[str, Evaluation], cfg: Config) -> pd.DataFrame:
    """One row per variant and target: NDCG@k overall and on the vocabulary-gap slices,
    the difference to the full model and its paired-test p-value."""
    key = f"ndcg@{max(cfg.evaluate.ks)}"
    per_query = {name: _model_values(e, key) for name, e in evaluations.items()}
    rows = []
    for name, values in per_query.items():
        slices = slice_table(evaluations[name], key)
        for target in values.index.get_level_values(0).unique():
            ours = values.loc[target]
            full = per_query[FULL].loc[target].reindex(ours.index)
            diff = (ours - full).dropna().to_numpy()
            row = {"variant": name, "target": target, key: float(ours.mean()), "queries": int(len(ours)),
                   "diff_vs_full": float(diff.mean()) if len(diff) else float("nan"),
                   "p_value": paired_randomisation_test(diff, cfg.evaluate.bootstrap_samples, cfg.seed)
                   if name != FULL and len(diff) else float("nan")}
            for _, s in slices[(slices["target"] == target) & (slices["method"] == MODEL)].iterrows():
                row[f"{key}[{s['slice']}]"] = float(s[key])
            rows.append(row)
    return pd.DataFrame(rows)


def _model_values(evaluation: Evaluation, key: str) -> pd.Series:
    """The model's per-query ``key`` indexed by (target, query_id)."""
    table = evaluation.per_query
    return table[(table["metric"] == key) & (table["method"] == MODEL)].set_index(["target", "query_id"])["value"]


def ablation_claims(evaluations: dict[str, Evaluation], cfg: Config) -> list[str]:
    """The paper's two claims, each tested against the variant that removes what it credits:
    domain pretraining (a variant with ``domain_pretraining: false``), scored on the queries
    with a vocabulary-gap tag; multi-task learning (a variant training a subset of the tasks),
    scored on every target both models have. A claim holds on a target when the full model is
    better with p < 0.05 (paired sign-flip test, Δ = full − variant)."""
    key = f"ndcg@{max(cfg.evaluate.ks)}"
    full = _model_values(evaluations[FULL], key)
    queries = evaluations[FULL].queries
    gap_columns = [f"gap_{tag}" for tag in GAP_TAGS if f"gap_{tag}" in queries.columns]
    gap_queries = set(queries.loc[queries[gap_columns].any(axis=1), "query_id"]) if gap_columns else set()
    all_tasks = {task.name for task in cfg.train.tasks}
    lines = []
    for ablation in cfg.evaluate.ablations:
        if ablation.name not in evaluations:
            continue
        variant = _model_values(evaluations[ablation.name], key)
        tested = []
        if not ablation.domain_pretraining and not (cfg.pretrain.enabled and cfg.pretrain.steps):
            lines.append(f"- domain pretraining (vs {ablation.name}): not tested, the full model is not "
                         "domain-pretrained either (pretrain.enabled is false or pretrain.steps is 0)")
        elif not ablation.domain_pretraining:
            tested.append((f"domain pretraining improves {key} on vocabulary-gap queries", gap_queries))
        if {task.name for task in ablation_train(cfg.train, ablation).tasks} < all_tasks:
            tested.append((f"multi-task learning improves {key}", None))
        for claim, only in tested:
            for target in variant.index.get_level_values(0).unique():
                ours, theirs = full.loc[target], variant.loc[target]
                common = ours.index.intersection(theirs.index)
                if only is not None:
                    common = common[common.isin(list(only))]
                if common.empty:
                    lines.append(f"- {claim} on {target} (vs {ablation.name}): no queries to test")
                    continue
                diff = (ours[common] - theirs[common]).to_numpy()
                p = paired_randomisation_test(diff, cfg.evaluate.bootstrap_samples, cfg.seed)
                verdict = "HOLDS" if diff.mean() > 0 and p < 0.05 else "DOES NOT HOLD"
                lines.append(f"- **{claim} on {target} (vs {ablation.name}) — {verdict}**: "
                             f"Δ = {diff.mean():+.4f}, p = {p:.3g}, {len(diff)} queries")
    return lines


def render(table: pd.DataFrame, cfg: Config, claims: list[str]) -> str:
    key = f"ndcg@{max(cfg.evaluate.ks)}"
    slice_columns = [c for c in table.columns if c.startswith(f"{key}[")]
    lines = ["# Ablations", "", f"Each variant is trained on the same data and scored on the same {table['queries'].max()} "
             f"test queries as the full model; Δ = variant − full model ({key}), p from a paired sign-flip test.", ""]
    if claims:
        lines += ["## Claims", "", "Δ = full model − variant; a claim holds where the full model is better with "
                  "p < 0.05.", "", *claims, ""]
    for target in table["target"].unique():
        part = table[table["target"] == target]
        header = ["variant", key, "Δ vs full", "p", *(c[len(key) + 1:-1] for c in slice_columns)]
        note = " (true graded relevance)" if target == GRADED else " (ground truth, no position bias)" if is_expected_rate(target) else ""
        lines += [f"## {target}{note}", "",
                  "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
        for _, r in part.iterrows():
            cells = [r["variant"], f"{r[key]:.4f}", f"{r['diff_vs_full']:+.4f}",
                     "–" if np.isnan(r["p_value"]) else f"{r['p_value']:.3g}",
                     *("–" if pd.isna(r.get(c)) else f"{r[c]:.4f}" for c in slice_columns)]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
