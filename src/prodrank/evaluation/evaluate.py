"""The ``evaluate`` stage: the model and every baseline on the same held-out queries.

Per task (click, add-to-cart, purchase or a graded task) and method: NDCG@k, MRR and MAP
per query (gains = the task's event rate, so a pair clicked on every impression counts
more than one clicked once in ten), and a global AUC over pairs. Where the data has true
relevance (the synthetic world; graded judgments) the graded NDCG against it is
reported too, with the oracle ranking as the ceiling. The synthetic world also knows each
task's expected rate per *examined* impression; NDCG against it (``click_true`` ...) is
the per-task comparison free of the logging ranker's position bias, which logged rates
carry (a pair shown at the top is clicked more whatever it is). 95 % bootstrap intervals are taken
over queries, and each baseline is compared with the model by a paired randomisation
(sign-flip) test on per-query differences.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from prodrank.config import Config
from prodrank.data.catalog import product_fields
from prodrank.data.labels import grade_range, task_targets
from prodrank.data.schema import EXPECTED_PREFIX, FREQUENCY_BUCKETS, GAP_TAGS, SPLITS
from prodrank.evaluation.baselines import BASELINES, EvalSet
from prodrank.evaluation.report import render, render_html
from prodrank.evaluation.targets import GRADED, MODEL, ORACLE, TEACHER, TRUE_SUFFIX, is_expected_rate
from prodrank.io import atomic_path, write_json, write_parquet, write_text
from prodrank.metrics import per_query_metrics
from prodrank.paths import EXAMINATION_FILE

log = logging.getLogger(__name__)


class QualityGateError(RuntimeError):
    """The model fell short of params.yaml's evaluate.quality_gate."""


@dataclass
class Evaluation:
    per_query: pd.DataFrame  # query_id, method, target, metric, value
    auc: dict[str, dict[str, float]]  # method -> target -> AUC
    queries: pd.DataFrame  # query_id + slice columns


def load_eval_pairs(prepared_dir: Path, split: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    directory = prepared_dir / split
    queries = pd.read_parquet(directory / "queries.parquet")
    pairs = pd.read_parquet(directory / "interactions.parquet").merge(queries[["query_id", "query"]], on="query_id")
    relevance_path = directory / "relevance.parquet"
    if relevance_path.exists():
        relevance = pd.read_parquet(relevance_path)
        pairs = pairs.merge(relevance, on=["query_id", "product_id"], how="left")
    return pairs.sort_values(["query_id", "product_id"], kind="stable").reset_index(drop=True), queries


def _known(pairs: pd.DataFrame, column: str) -> bool:
    return column in pairs.columns and bool(pairs[column].notna().all())


def evaluation_targets(cfg: Config, pairs: pd.DataFrame, train_pairs: pd.DataFrame) -> dict[str, np.ndarray]:
    """Gains per evaluation target: each task's logged label, and where the data has ground
    truth (the synthetic world) each task's expected rate per examined impression
    (``<task>_true``) and the true graded relevance."""
    # an outside data set may lack a task's label (judgments have no clicks): skip that task
    tasks = tuple(t for t in cfg.train.tasks if _known(pairs, t.label))
    targets = task_targets(pairs, tasks, grade_range(train_pairs, tasks))
    out = {task.name: targets[:, i] for i, task in enumerate(tasks)}
    for task in cfg.train.tasks:
        if _known(pairs, EXPECTED_PREFIX + task.label):
            out[task.name + TRUE_SUFFIX] = pairs[EXPECTED_PREFIX + task.label].to_numpy(dtype=np.float64)
    if _known(pairs, "relevance"):
        out[GRADED] = pairs["relevance"].to_numpy(dtype=np.float64)
    return out


def compute_metrics(pairs: pd.DataFrame, scores: dict[str, np.ndarray], targets: dict[str, np.ndarray],
                    ks: tuple[int, ...]) -> tuple[pd.DataFrame, dict]:
    rows, auc = [], {}
    groups = pairs.groupby("query_id", sort=False).indices
    for method, score in scores.items():
        auc[method] = {}
        for target, gains in targets.items():
            gain_only = is_expected_rate(target)
            binary = gains > 0
            if not gain_only and 0 < binary.sum() < len(binary):
                auc[method][target] = float(roc_auc_score(binary, score))
            for qid, idx in groups.items():
                for metric, value in per_query_metrics(gains[idx], score[idx], ks).items():
                    if not math.isnan(value) and not (gain_only and not metric.startswith("ndcg@")):
                        rows.append((qid, method, target, metric, value))
    return pd.DataFrame(rows, columns=["query_id", "method", "target", "metric", "value"]), auc


def bootstrap_ci(values: np.ndarray, samples: int, rng: np.random.Generator) -> tuple[float, float]:
    idx = rng.integers(len(values), size=(samples, len(values)))
    means = values[idx].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def paired_randomisation_test(diff: np.ndarray, samples: int, seed: int) -> float:
    """Two-sided p-value of mean(diff) under random sign flips (Fisher's paired test).

    Each call draws its flips from its own generator seeded with ``seed``, so one comparison
    gets one p-value wherever it is reported (the evaluation summary, the ablation table, the
    claims), whatever was tested before it; ``-diff`` gets the same p-value as ``diff``."""
    observed = abs(diff.mean())
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(samples, len(diff)))
    null = np.abs((signs * diff).mean(axis=1))
    return float((1 + (null >= observed - 1e-15).sum()) / (samples + 1))


def summarise(evaluation: Evaluation, cfg: Config) -> dict:
    rng = np.random.default_rng(cfg.seed)
    ecfg = cfg.evaluate
    table = evaluation.per_query
    summary: dict = {"methods": {}, "significance": {}, "n_queries": int(evaluation.queries["query_id"].nunique())}
    for (method, target, metric), frame in table.groupby(["method", "target", "metric"], sort=False):
        entry = summary["methods"].setdefault(method, {}).setdefault(target, {})
        entry[metric] = float(frame["value"].mean())
        if metric == f"ndcg@{max(ecfg.ks)}":
            low, high = bootstrap_ci(frame["value"].to_numpy(), ecfg.bootstrap_samples, rng)
            entry[f"{metric}_ci"] = [low, high]
            entry["queries"] = int(len(frame))
    for method, per_target in evaluation.auc.items():
        for target, value in per_target.items():
            summary["methods"][method].setdefault(target, {})["auc"] = value
    key = f"ndcg@{max(ecfg.ks)}"
    pivot = table[table["metric"] == key].pivot_table(index=["target", "query_id"], columns="method", values="value")
    for method in pivot.columns:
        if method in (MODEL, ORACLE):
            continue
        for target in pivot.index.get_level_values(0).unique():
            both = pivot.loc[target][[MODEL, method]].dropna()
            diff = (both[MODEL] - both[method]).to_numpy()
            summary["significance"].setdefault(method, {})[f"{target}.{key}"] = {
                "diff": float(diff.mean()),
                "p_value": paired_randomisation_test(diff, ecfg.bootstrap_samples, cfg.seed),
                "queries": int(len(diff)),
            }
    return summary


def slice_table(evaluation: Evaluation, key: str) -> pd.DataFrame:
    """Mean metric ``key`` per method, target and slice (gap tags, frequency bucket)."""
    table = evaluation.per_query[evaluation.per_query["metric"] == key].merge(evaluation.queries, on="query_id")
    frames = []
    for tag in GAP_TAGS:
        column = f"gap_{tag}"
        if column in table.columns and table[column].any():
            frames.append(table[table[column]].assign(slice=tag))
    if any(f"gap_{t}" in table.columns and table[f"gap_{t}"].any() for t in GAP_TAGS):
        no_gap = ~table[[f"gap_{t}" for t in GAP_TAGS if f"gap_{t}" in table.columns]].any(axis=1)
        frames.append(table[no_gap].assign(slice="no_gap"))
    for bucket in FREQUENCY_BUCKETS:
        frames.append(table[table["frequency"] == bucket].assign(slice=bucket))
    if not frames:
        return pd.DataFrame(columns=["slice", "target", "method", key, "queries"])
    merged = pd.concat(frames)
    return (merged.groupby(["slice", "target", "method"], sort=False)["value"]
            .agg(["mean", "count"]).reset_index().rename(columns={"mean": key, "count": "queries"}))


def quality_gate(summary: dict, cfg: Config) -> list[str]:
    """Reasons the model fails the gate (empty list = pass)."""
    gate = cfg.evaluate.quality_gate
    model = summary["methods"][MODEL]
    problems: list[str] = []

    def lookup(methods: dict, dotted: str) -> float | None:
        target, metric = dotted.split(".", 1)
        return methods.get(target, {}).get(metric)

    for dotted, minimum in gate.minimum.items():
        value = lookup(model, dotted)
        if value is None:
            problems.append(f"{dotted}: not computed for this data set")
        elif value < minimum:
            problems.append(f"{dotted} = {value:.4f} is below the minimum {minimum}")
    for baseline in gate.must_beat:
        ours, theirs = lookup(model, gate.gate_metric), lookup(summary["methods"].get(baseline, {}), gate.gate_metric)
        if theirs is None:
            problems.append(f"must beat {baseline!r}, but it was not evaluated (add it to evaluate.baselines)")
        elif ours is None or ours <= theirs:
            problems.append(f"{gate.gate_metric}: model {ours} does not beat {baseline} {theirs:.4f}")
    return problems


def evaluate_pairs(cfg: Config, pairs: pd.DataFrame, queries: pd.DataFrame, catalog: pd.DataFrame,
                   train_pairs: pd.DataFrame, ranker_dir: Path, baselines: tuple[str, ...],
                   teacher_dir: Path | None = None, reference_pairs: pd.DataFrame | None = None
                   ) -> tuple[Evaluation, pd.DataFrame]:
    """Score ``pairs`` with the model (on the runtime it serves with), the teacher it was
    distilled from (when given) and the baselines; return metrics and the model's predictions.

    The predictions also hold the model's scores of ``reference_pairs`` (the other splits' pairs,
    ``split`` column): they are the drift monitor's reference, which must describe the traffic the
    model will serve, and live traffic repeats training queries as well as held-out ones. A small
    test split alone is a noisy sample of that query mix: on the tiny profile (8 held-out queries)
    replayed control traffic was flagged against it."""
    # lazy: torch; the data and report code runs without it
    from prodrank.models.ranker import load_ranker
    from prodrank.models.runtime import load_scorer

    ranker = load_scorer(ranker_dir, cfg.serving.runtime, cfg.serving.quantize, cfg.runtime.threads)
    catalog = catalog.set_index("product_id", drop=False)
    scored = pd.concat([pairs.assign(split="evaluated"), *([] if reference_pairs is None else [reference_pairs])],
                       ignore_index=True)
    products = product_fields(catalog.loc[scored["product_id"].unique()])
    queries_, pids = pairs["query"].tolist(), pairs["product_id"].tolist()
    log.info("scoring %d pairs of %d queries with the model (%s), %d of them for the drift reference only",
             len(scored), scored["query_id"].nunique(), ranker.runtime, len(scored) - len(pairs))
    predictions = ranker.score(scored["query"].tolist(), scored["product_id"].tolist(), products,
                               batch_size=cfg.train.score_batch_size)
    scores = {MODEL: predictions["score"][:len(pairs)]}
    if teacher_dir is not None:
        log.info("scoring the teacher")
        scores[TEACHER] = load_ranker(teacher_dir).score(queries_, pids, products, batch_size=cfg.train.score_batch_size)["score"]
    data = EvalSet(pairs, catalog, train_pairs, cfg.seed)
    for name in baselines:
        if name not in BASELINES:
            raise ValueError(f"evaluate.baselines: unknown baseline {name!r}; known: {sorted(BASELINES)}")
        log.info("baseline %s", name)
        scores[name] = BASELINES[name](data)
    targets = evaluation_targets(cfg, pairs, train_pairs if len(train_pairs) else pairs)
    if GRADED in targets:
        scores[ORACLE] = targets[GRADED]
    per_query, auc = compute_metrics(pairs, scores, targets, cfg.evaluate.ks)
    prediction_frame = scored[["query_id", "query", "product_id", "position", "split"]].assign(
        score=predictions["score"], **{f"p_{t}": predictions[t] for t in ranker.tasks})
    return Evaluation(per_query, auc, queries), prediction_frame


def run_evaluation(cfg: Config, pairs: pd.DataFrame, queries: pd.DataFrame, catalog: pd.DataFrame,
                   train_pairs: pd.DataFrame, ranker_dir: Path, metrics_path: Path, report_dir: Path,
                   plots_dir: Path | None, baselines: tuple[str, ...], title: str, apply_gate: bool = True,
                   inputs: dict[str, str] | None = None, teacher_dir: Path | None = None,
                   reference_pairs: pd.DataFrame | None = None) -> dict:
    """Evaluate, write metrics/report/plots, then apply the quality gate (after writing,
    so a failing model's numbers are still there to read). ``inputs``: {file: sha256} of the
    data files evaluated, recorded with the metrics; ``reference_pairs``: :func:`evaluate_pairs`."""
    evaluation, predictions = evaluate_pairs(cfg, pairs, queries, catalog, train_pairs, ranker_dir, baselines,
                                             teacher_dir, reference_pairs)
    summary = summarise(evaluation, cfg)
    key = f"ndcg@{max(cfg.evaluate.ks)}"
    slices = slice_table(evaluation, key)
    problems = quality_gate(summary, cfg) if apply_gate else []
    summary["quality_gate"] = {"passed": not problems, "problems": problems}
    if inputs:
        summary["inputs"] = inputs
    examination = examination_summary(cfg, teacher_dir or ranker_dir)
    if examination:
        summary["examination"] = examination
    write_json(summary, metrics_path)
    write_text(render(summary, slices, key, problems, title), report_dir / "report.md")
    write_text(render_html(summary, slices, key, problems, title), report_dir / "report.html")
    write_parquet(predictions, report_dir / "predictions.parquet")
    if plots_dir is not None:
        with atomic_path(plots_dir / "ndcg_by_slice.csv") as tmp:
            slices.to_csv(tmp, index=False)
        rows = [{"method": m, "target": t, key: v.get(key), "ci_low": (v.get(f"{key}_ci") or [None])[0],
                 "ci_high": (v.get(f"{key}_ci") or [None, None])[1]}
                for m, per in summary["methods"].items() for t, v in per.items()]
        with atomic_path(plots_dir / "ndcg_by_method.csv") as tmp:
            pd.DataFrame(rows).to_csv(tmp, index=False)
    log.info("evaluation written to %s and %s", metrics_path, report_dir / "report.md")
    if problems:
        raise QualityGateError("quality gate failed:\n  " + "\n  ".join(problems))
    return summary


def examination_summary(cfg: Config, ranker_dir: Path) -> dict | None:
    """What the ranker learned about examination (saved by training when it corrects for
    position bias), with the simulated world's true curve k ** -position_bias beside it."""
    path = ranker_dir / EXAMINATION_FILE
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    if cfg.data.source == "synthetic":
        record["world"] = (np.asarray(record["positions"], dtype=float) ** -cfg.world.position_bias).round(6).tolist()
    return record


def evaluate_split(cfg: Config, prepared_dir: Path, ranker_dir: Path, metrics_path: Path, report_dir: Path,
                   plots_dir: Path | None, split: str = "test", teacher_dir: Path | None = None) -> dict:
    """The pipeline's evaluate stage: the test split, all configured baselines (and the
    teacher, when ``ranker_dir`` is its student), the quality gate. ``split="valid"`` scores the validation split instead, for choosing between
    variants without reading the test split (no gate: nothing is packaged from it)."""
    pairs, queries = load_eval_pairs(prepared_dir, split)
    train_pairs, _ = load_eval_pairs(prepared_dir, "train")
    if cfg.evaluate.max_test_queries and queries["query_id"].nunique() > cfg.evaluate.max_test_queries:
        keep = np.random.default_rng(cfg.seed).choice(queries["query_id"].unique(), cfg.evaluate.max_test_queries, replace=False)
        pairs, queries = pairs[pairs["query_id"].isin(keep)].reset_index(drop=True), queries[queries["query_id"].isin(keep)]
    catalog = pd.read_parquet(prepared_dir / "catalog.parquet")
    return run_evaluation(cfg, pairs, queries, catalog, train_pairs, ranker_dir, metrics_path, report_dir, plots_dir,
                          cfg.evaluate.baselines, f"prodrank evaluation — profile {cfg.profile}, {split} split",
                          apply_gate=split == "test", teacher_dir=teacher_dir,
                          reference_pairs=other_splits(prepared_dir, split, set(pairs["query_id"])))


def other_splits(prepared_dir: Path, split: str, evaluated: set) -> pd.DataFrame:
    """The pairs of the splits before ``split`` (train, and valid when ``split`` is test), less
    the queries evaluated, with a ``split`` column: the rest of the drift reference
    (:func:`evaluate_pairs`). Evaluating on validation never reads the test split."""
    frames = [load_eval_pairs(prepared_dir, name)[0].assign(split=name) for name in SPLITS[:SPLITS.index(split)]]
    pairs = pd.concat(frames, ignore_index=True).drop_duplicates(["query_id", "product_id"])
    return pairs[~pairs["query_id"].isin(evaluated)].reset_index(drop=True)


LEARNED_BASELINES = ("lambdamart",)


def evaluate_tables(cfg: Config, tables: dict[str, pd.DataFrame], ranker_dir: Path, metrics_path: Path,
                    report_dir: Path, title: str, inputs: dict[str, str] | None = None) -> dict:
    """Evaluate a trained model on an outside data set in a documented input format.
    All its queries are held out; baselines that must be trained on it are skipped."""
    queries = tables["queries"]
    pairs = tables["interactions"].merge(queries[["query_id", "query"]], on="query_id")
    if "relevance" in tables:
        pairs = pairs.merge(tables["relevance"], on=["query_id", "product_id"], how="left")
    baselines = tuple(b for b in cfg.evaluate.baselines if b not in LEARNED_BASELINES)
    return run_evaluation(cfg, pairs.reset_index(drop=True), queries, tables["catalog"], pairs.iloc[:0],
                          ranker_dir, metrics_path, report_dir, None, baselines, title, apply_gate=False, inputs=inputs)
