"""The Evidently drift report of one window against the reference: checks, verdict, HTML, JSON.

Evidently 0.7 (new API) computes every statistic:

- **drift**: one ``ValueDrift(column, method, threshold)`` per enabled check of
  ``monitoring.checks`` on the long table of :func:`prodrank.monitoring.features.drift_frame`
  (reference vs current);
- **ranking quality** (when the current window has feedback): ``NDCG``, ``MRR`` and ``HitRate``
  at ``monitoring.quality.k`` per task, with user = request, item = product, prediction = the
  served rank (``recommendations_type="rank"``, so ties are never re-broken) and target = the
  task's feedback event on that result.

Evidently 0.7's top-k metrics return a table over k (1..max(k, 10), shorter when lists are
shorter), whose ``rank`` column is off by one for NDCG and MRR (it starts at 2) but not for
HitRate. :func:`topk_value` therefore takes the k-th row by *position*, never by that label,
and clamps k to the table (NDCG@k for k beyond a list's length is NDCG over the whole list).
Tested against :mod:`prodrank.metrics` (tests/monitoring/test_evidently_metrics.py).

Both snapshots are rendered into one self-contained HTML file (Evidently inlines its JS; no
network needed), preceded by a verdict table; the JSON holds the summary (drift yes/no per
check with statistic and threshold), window statistics and the Evidently results.
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import ttest_ind

from prodrank.config import DriftCheck, MonitoringConfig
from prodrank.io import jsonable, write_json, write_text
from prodrank.monitoring.calibrate import P_VALUE_METHODS, Calibrator, NullDistribution, effect_size, observed
from prodrank.monitoring.features import (
    CANDIDATE_CATEGORICAL,
    REQUEST_COLUMNS,
    WindowFeatures,
    drift_frame,
    ranking_frame,
)

log = logging.getLogger(__name__)

INPUT_CHECKS = ("query_chars", "query_tokens", "query_oov_share", "candidate_count", "category", "brand", "price",
                "rating", "unseen_product")
QUALITY_METRICS = ("ndcg", "mrr", "hitrate")


def check_group(name: str) -> str:
    return "input" if name in INPUT_CHECKS else "prediction"


def is_drift(method: str, statistic: float, threshold: float) -> bool:
    """Evidently's rule: a p-value test drifts when p <= threshold, a distance when d >= threshold."""
    if statistic is None or not math.isfinite(statistic):
        return False
    return statistic <= threshold if method in P_VALUE_METHODS else statistic >= threshold


def enabled_checks(mon: MonitoringConfig, tasks: tuple[str, ...]) -> dict[str, DriftCheck]:
    """Column -> check, for the columns both windows have (``p_<task>`` of the served tasks)."""
    checks = {}
    for name, check in mon.checks:
        if name.startswith("p_") and name[2:] not in tasks:
            continue
        if check.enabled:
            checks[name] = check
    for task in tasks:  # a task the config does not name: the default numerical check
        checks.setdefault(f"p_{task}", DriftCheck())
    return checks


def topk_value(table: Any, k: int) -> float | None:
    """The value at k of an Evidently 0.7 top-k table (DataFrame with ``rank``/``value``, or the
    dict/list form found in ``Snapshot.dict()``): row k-1 by position (module doc)."""
    if table is None:
        return None
    if isinstance(table, pd.DataFrame):
        values = table["value"].tolist()
    elif isinstance(table, dict) and "value" in table:
        inner = table["value"]
        values = list(inner.values()) if isinstance(inner, dict) else list(inner)
    elif isinstance(table, list | tuple):
        values = [row["value"] if isinstance(row, dict) else row for row in table]
    else:
        raise TypeError(f"not a top-k table: {type(table).__name__}")
    if not values:
        return None
    value = values[min(k, len(values)) - 1]
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _finite(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


# -- drift checks -----------------------------------------------------------------------------
@dataclass
class DriftResult:
    """One drift check of one window: Evidently's statistic, the threshold it was held to (fixed, or
    calibrated against the reference), and the effect in the column's own terms."""

    check: str
    method: str
    categorical: bool
    statistic: float | None = None
    threshold: float | None = None
    calibrated: bool = False
    effect: float | None = None
    min_effect: float = 0.0
    drift: bool = False
    null: NullDistribution | None = None

    def row(self) -> dict[str, Any]:
        """The summary's row (JSON)."""
        p_value = self.method in P_VALUE_METHODS
        rule = "p-value < threshold" if p_value else "distance > threshold"
        if not self.calibrated:
            rule = "p-value <= threshold" if p_value else "distance >= threshold"
        row = {"check": self.check, "group": check_group(self.check), "column": self.check,
               "level": "request" if self.check in REQUEST_COLUMNS else "candidate", "method": self.method,
               "statistic": self.statistic, "threshold": self.threshold,
               "threshold_source": "calibrated" if self.calibrated else "fixed",
               "effect": self.effect, "effect_unit": "total variation (share of rows)" if self.categorical
               else "Wasserstein distance in the column's units",
               "min_effect": self.min_effect, "rule": f"drift when {rule} and effect >= min_effect",
               "drift": self.drift}
        if self.null is not None:
            row["null"] = self.null.summary()
        if self.statistic is None:
            row["note"] = "no values in one of the windows: not compared"
        return row


def drift_checks(ref: pd.DataFrame, cur: pd.DataFrame, checks: dict[str, DriftCheck], mon: MonitoringConfig,
                 calibrator: Calibrator) -> list[DriftResult]:
    """Decide every drift check on the long tables of :func:`drift_frame`. A check without a fixed
    threshold is held to the ``1 - false_alarm_rate / k`` quantile of its null distribution, k the
    number of such checks compared (Bonferroni, so a window without drift alarms with probability
    at most ``false_alarm_rate``); every check also needs an effect of at least ``min_effect``."""
    usable = {n for n in checks if ref[n].notna().any() and cur[n].notna().any()}
    calibrated = sum(checks[n].threshold is None for n in usable)
    level = 1 - mon.false_alarm_rate / max(1, calibrated)
    results = []
    for name, check in checks.items():
        result = DriftResult(name, check.method, name in CANDIDATE_CATEGORICAL, min_effect=check.min_effect)
        results.append(result)
        if name not in usable:
            continue
        r, c = ref[name].dropna(), cur[name].dropna()
        result.statistic = _finite(observed(check.method, r, c, result.categorical))
        result.effect = effect_size(r.to_numpy(), c.to_numpy(), result.categorical)
        if result.statistic is None:
            continue
        if check.threshold is None:
            result.calibrated = True
            requests = int(cur.loc[cur[name].notna(), "request_id"].nunique())
            result.null = calibrator.null(name, check.method, result.categorical, requests)
            result.threshold = result.null.threshold(level)
            beyond = result.null.exceeded(result.statistic, level)
        else:
            result.threshold = check.threshold
            beyond = is_drift(check.method, result.statistic, check.threshold)
        result.drift = bool(beyond and result.effect >= check.min_effect)
    return results


# -- Evidently --------------------------------------------------------------------------------
def _drift_snapshot(ref: pd.DataFrame, cur: pd.DataFrame, results: list[DriftResult]):
    """Evidently's ValueDrift widgets of the compared checks, at the thresholds they were held to
    (the verdicts are :func:`drift_checks`'s: Evidently knows neither calibration nor min_effect)."""
    # Evidently takes seconds to import; only building a report needs it (the benchmark does without)
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    compared = [r for r in results if r.statistic is not None]
    if not compared:
        return None
    numerical = [r.check for r in compared if not r.categorical]
    categorical = [r.check for r in compared if r.categorical]
    dd = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    columns = numerical + categorical
    report = Report([ValueDrift(column=r.check, method=r.method, threshold=r.threshold) for r in compared],
                    include_tests=False)
    return report.run(current_data=Dataset.from_pandas(cur[columns], data_definition=dd),
                      reference_data=Dataset.from_pandas(ref[columns], data_definition=dd))


def quality_snapshot(cur: pd.DataFrame, ref: pd.DataFrame | None, tasks: tuple[str, ...], k: int):
    """Evidently's ranking quality (NDCG, MRR, hit rate at ``k``) per feedback task of the
    current window (and the reference's, if given): the snapshot and its values by task and metric."""
    # Evidently takes seconds to import (see _drift_snapshot)
    from evidently import DataDefinition, Dataset, Recsys, Report
    from evidently.metrics import MRR, NDCG, HitRate

    rankings = [Recsys(name=t, user_id="request_id", item_id="product_id", target=f"target_{t}", prediction="rank",
                       recommendations_type="rank") for t in tasks]
    numerical = ["rank", *[f"target_{t}" for t in tasks]]
    dd = DataDefinition(numerical_columns=numerical, categorical_columns=["request_id", "product_id"],
                        ranking=rankings)
    # Evidently fails (KeyError) when k exceeds the longest list among requests with feedback:
    # NDCG@k beyond a list's end equals NDCG over the list, so clamp k per task
    k_task = {t: min(k, _longest(cur, t), _longest(ref, t) if ref is not None else k) for t in tasks}
    metrics = []
    for t in tasks:
        kt = k_task[t]
        metrics += [NDCG(k=kt, ranking_name=t), MRR(k=kt, ranking_name=t), HitRate(k=kt, ranking_name=t)]
    report = Report(metrics, include_tests=False)
    snapshot = report.run(current_data=Dataset.from_pandas(cur, data_definition=dd),
                          reference_data=Dataset.from_pandas(ref, data_definition=dd) if ref is not None else None)
    values: dict[str, dict[str, dict[str, float | None]]] = {}
    kinds = [(t, m) for t in tasks for m in QUALITY_METRICS]  # the report's order
    for (task, kind), (current, reference) in zip(kinds, _ordered_results(snapshot), strict=True):
        kt = k_task[task]
        values.setdefault(task, {})[kind] = {"current": topk_value(current, kt),
                                             "reference": topk_value(reference, kt) if reference is not None else None}
    return snapshot, values


def _longest(frame: pd.DataFrame, task: str) -> int:
    """The longest list (max rank) among requests with feedback for ``task`` (at least 1)."""
    with_feedback = frame.groupby("request_id")[f"target_{task}"].transform("max") > 0
    ranks = frame.loc[with_feedback, "rank"]
    return max(1, int(ranks.max())) if len(ranks) else 1


def _ordered_results(snapshot) -> list[tuple[pd.DataFrame | None, pd.DataFrame | None]]:
    """(current table, reference table or None) per top-level metric, in the report's order.
    Evidently 0.7 has no public accessor for reference results; Context keeps them by metric id."""
    out = []
    for metric_id in snapshot._top_level_metrics:  # noqa: SLF001
        current = getattr(snapshot.metric_results[metric_id], "value", None)
        try:
            reference = getattr(snapshot.context.get_reference_metric_result(metric_id), "value", None)
        except BaseException:  # noqa: BLE001 - ReferenceMetricNotFound derives from BaseException
            reference = None
        out.append((current, reference))
    return out


# -- the summary ------------------------------------------------------------------------------
def per_request_quality(frame: pd.DataFrame, task: str, k: int) -> dict[str, np.ndarray]:
    """NDCG@k, RR@k and hit@k of each request with at least one relevant result (binary targets,
    the served rank as the order; the definitions of :mod:`prodrank.metrics`). Their means are
    what Evidently reports; the arrays feed the significance test of a quality drop."""
    target = f"target_{task}"
    f = frame[["request_id", "rank", target]]
    positives = f.groupby("request_id")[target].sum()
    f = f[f["request_id"].isin(positives.index[positives > 0])]
    if f.empty:
        return {m: np.zeros(0) for m in QUALITY_METRICS}
    rel = f[f[target] > 0]
    first = rel.groupby("request_id")["rank"].min()
    top = rel[rel["rank"] <= k]
    dcg = (1.0 / np.log2(top["rank"] + 1.0)).groupby(top["request_id"]).sum().reindex(first.index, fill_value=0.0)
    n_pos = positives.reindex(first.index).clip(upper=k).astype(int)
    ideal = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
    return {"ndcg": (dcg / ideal[n_pos.to_numpy() - 1]).to_numpy(),
            "mrr": np.where(first <= k, 1.0 / first, 0.0),
            "hitrate": (first <= k).to_numpy(dtype=float)}


def drop_p_value(current: np.ndarray, reference: np.ndarray) -> float | None:
    """One-sided Welch t-test that the current mean is below the reference mean."""
    if len(current) < 2 or len(reference) < 2:
        return None
    if np.var(current) == 0 and np.var(reference) == 0:
        return 0.0 if current.mean() < reference.mean() else 1.0
    return _finite(ttest_ind(current, reference, equal_var=False, alternative="less").pvalue)


def quality_checks(values: dict[str, dict[str, dict[str, float | None]]], mon: MonitoringConfig,
                   requests_with_feedback: dict[str, int], comparable: bool,
                   p_values: dict[str, dict[str, float | None]] | None = None) -> list[dict[str, Any]]:
    """One check per task and metric: drift when the current value is below the reference by more
    than ``max_drop`` (relative) *and* the drop is significant (``p < alpha``; only when the
    reference is comparable: a log window with feedback), or below ``quality.minimum``."""
    q = mon.quality
    # Bonferroni: every task x metric is one test, so the family-wise false-alarm rate of a
    # no-drift window stays at alpha instead of growing with the number of checks
    alpha = q.alpha / max(1, sum(len(m) for m in values.values()))
    rows = []
    for task, metrics in values.items():
        enough = requests_with_feedback.get(task, 0) >= q.min_requests_with_feedback
        for metric, v in metrics.items():
            name = f"{task}.{metric}@{q.k}"
            cur, ref = v.get("current"), v.get("reference") if comparable else None
            minimum = q.minimum.get(f"{task}.{metric}")
            p_value = ((p_values or {}).get(task) or {}).get(metric)
            reasons, threshold = [], None
            drift = False
            if cur is not None and ref is not None and ref > 0:
                threshold = ref * (1 - q.max_drop)
                if cur < threshold and p_value is not None and p_value < alpha:
                    drift = True
                    reasons.append(f"{cur:.4f} < reference {ref:.4f} x (1 - {q.max_drop}), p = {p_value:.2g}")
                elif cur < threshold:
                    reasons.append(f"{cur:.4f} < reference {ref:.4f} x (1 - {q.max_drop}) but not significant "
                                   f"(p = {p_value if p_value is None else f'{p_value:.2g}'} >= {alpha:.2g}, Bonferroni)")
            if cur is not None and minimum is not None and cur < minimum:
                drift = True
                reasons.append(f"{cur:.4f} < minimum {minimum}")
                threshold = minimum if threshold is None else max(threshold, minimum)
            rows.append({"check": name, "group": "quality", "column": f"target_{task}", "method": f"{metric}@{q.k}",
                         "statistic": cur, "reference_value": ref, "threshold": threshold, "p_value": p_value,
                         "rule": "drift when current < threshold", "drift": bool(drift and enough),
                         "requests_with_feedback": requests_with_feedback.get(task, 0),
                         "note": "; ".join(reasons) if enough else
                         f"only {requests_with_feedback.get(task, 0)} requests with {task} feedback "
                         f"(< {q.min_requests_with_feedback}): reported, no verdict"})
    return rows


def build_report(reference: WindowFeatures, current: WindowFeatures, mon: MonitoringConfig,
                 meta: dict[str, Any], topk: dict[str, Any] | None = None) -> tuple[dict[str, Any], str]:
    """Run Evidently, decide every check, return (summary, HTML)."""
    started = time.perf_counter()
    tasks = tuple(t for t in current.tasks if t in reference.tasks) or current.tasks
    checks = enabled_checks(mon, tasks)
    ref_frame, cur_frame = drift_frame(reference, tasks), drift_frame(current, tasks)
    calibrator = Calibrator(ref_frame, mon.calibration_resamples, mon.seed)
    results = drift_checks(ref_frame, cur_frame, checks, mon, calibrator)
    drift_snapshot = _drift_snapshot(ref_frame, cur_frame, results)
    rows: list[dict[str, Any]] = []
    for result in results:
        row = result.row()
        name = result.check
        if result.categorical:
            row["reference_top"] = _top_shares(ref_frame[name])
            row["current_top"] = _top_shares(cur_frame[name])
        else:
            row["reference_mean"] = _finite(ref_frame[name].mean())
            row["current_mean"] = _finite(cur_frame[name].mean())
        rows.append(row)
    if topk is not None and topk.get("share") is not None:
        rows.append({"check": "topk_changed", "group": "prediction", "column": f"top{mon.top_k}", "level": "request",
                     "method": "share of requests whose top-k set differs", "statistic": topk["share"],
                     "threshold": mon.topk_changed_share, "rule": "drift when share >= threshold",
                     "drift": topk["share"] >= mon.topk_changed_share, "note": topk.get("note")})
    quality_report, quality_values, fb_counts, comparable = None, {}, {}, False
    if current.has_feedback:
        cur_rank = ranking_frame(current, tasks)
        fb_counts = {t: int(cur_rank.groupby("request_id")[f"target_{t}"].max().sum()) for t in tasks}
        q_tasks = tuple(t for t in tasks if fb_counts[t] > 0)
        ref_rank = None
        if reference.has_feedback:
            ref_rank = ranking_frame(reference, tasks)
            ref_counts = {t: int(ref_rank.groupby("request_id")[f"target_{t}"].max().sum()) for t in tasks}
            q_tasks = tuple(t for t in q_tasks if ref_counts[t] > 0)
            comparable = bool(q_tasks)
        p_values: dict[str, dict[str, float | None]] = {}
        if q_tasks:
            keep = ["request_id", "product_id", "rank", *[f"target_{t}" for t in q_tasks]]
            quality_report, quality_values = quality_snapshot(
                cur_rank[keep], ref_rank[keep] if comparable else None, q_tasks, mon.quality.k)
            if comparable:
                for t in q_tasks:
                    cur_v = per_request_quality(cur_rank, t, mon.quality.k)
                    ref_v = per_request_quality(ref_rank, t, mon.quality.k)
                    p_values[t] = {m: drop_p_value(cur_v[m], ref_v[m]) for m in QUALITY_METRICS}
        rows += quality_checks(quality_values, mon, fb_counts, comparable, p_values)
    groups = {g: [r["check"] for r in rows if r["group"] == g and r["drift"]] for g in ("input", "prediction", "quality")}
    counted = [c for g in mon.trigger_on for c in groups[g]]
    enough = len(current) >= mon.min_requests and len(reference) >= mon.min_requests
    verdict = enough and len(counted) >= mon.min_drifted_checks
    summary = {
        **meta,
        "drift": bool(verdict),
        "verdict": ("drift" if verdict else "no drift") if enough else "insufficient data",
        "drifted_checks": counted,
        "drifted_by_group": groups,
        "rule": f"drift when at least {mon.min_drifted_checks} check(s) of {list(mon.trigger_on)} drifted "
                f"and both windows hold >= {mon.min_requests} requests",
        "tasks": list(tasks),
        "calibration": {"false_alarm_rate": mon.false_alarm_rate, "resamples": mon.calibration_resamples,
                        "checks": sum(r.calibrated for r in results),
                        "method": "two-sample cluster bootstrap of the reference by request; log-normal tail"},
        "checks": rows,
        "quality": {"k": mon.quality.k, "values": quality_values, "requests_with_feedback": fb_counts,
                    "comparable_with_reference": comparable,
                    "note": None if comparable else "the reference has no feedback of the same kind (evaluation "
                    "predictions, or a log window without feedback): only quality.minimum can flag quality"},
        "topk_changed": topk,
        "evidently": {
            "drift": json.loads(drift_snapshot.json()) if drift_snapshot is not None else None,
            "quality": _quality_json(quality_report),
        },
        "report_seconds": round(time.perf_counter() - started, 3),
    }
    html = render_html(summary, drift_snapshot, quality_report)
    return summary, html


def _quality_json(snapshot) -> Any:
    if snapshot is None:
        return None
    try:
        return json.loads(snapshot.json())
    except Exception as err:  # noqa: BLE001 - the values are in summary["quality"] anyway
        return {"error": f"could not serialise: {err}"}


def _top_shares(series: pd.Series, n: int = 5) -> dict[str, float]:
    shares = series.dropna().value_counts(normalize=True).head(n)
    return {str(k): round(float(v), 4) for k, v in shares.items()}


# -- HTML -------------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def threshold_text(row: dict[str, Any]) -> str:
    """A check's threshold, marked "cal." when calibrated against the reference."""
    text = _fmt(row.get("threshold"))
    return f"{text} cal." if row.get("threshold_source") == "calibrated" else text


def render_html(summary: dict[str, Any], drift_snapshot, quality_snapshot) -> str:
    """One self-contained page: the verdict table, then Evidently's drift and quality widgets."""
    # Evidently takes seconds to import (see _drift_snapshot)
    from evidently.core.metric_types import render_widgets
    from evidently.legacy.renderers.html_widgets import group_widget, header_text, table_data

    window = summary.get("window", {})
    head = (f"prodrank drift report — {summary.get('name')}: {summary['verdict'].upper()}"
            f" ({len(summary['drifted_checks'])} drifted check(s): {', '.join(summary['drifted_checks']) or 'none'})")
    info = (f"current: {window.get('start') or 'open'} → {window.get('end') or 'open'}, "
            f"{summary.get('current', {}).get('requests_used')} requests used of "
            f"{summary.get('current', {}).get('requests_in_window')} · reference: {summary.get('reference', {}).get('kind')}"
            f" ({summary.get('reference', {}).get('requests_used')} requests) · model(s): "
            f"{', '.join(summary.get('current', {}).get('model_versions') or [])}")
    rows = [[r["group"], r["check"], r.get("level", "request"), r["method"], _fmt(r["statistic"]),
             threshold_text(r), _fmt(r.get("effect")), _fmt(r.get("min_effect")), "DRIFT" if r["drift"] else "ok",
             r.get("note") or ""] for r in summary["checks"]]
    calibration = summary.get("calibration") or {}
    note = (f"thresholds: 'cal.' = calibrated against the reference ({calibration.get('resamples')} cluster-bootstrap "
            f"resamples; at most {calibration.get('false_alarm_rate')} chance of a false alarm per window across "
            f"{calibration.get('checks')} calibrated checks); effect: Wasserstein distance in the column's units, "
            "total variation for categories; drift needs statistic beyond threshold and effect >= min effect")
    verdict = [header_text(label=head), header_text(label=info), header_text(label=note),
               table_data(title="Checks", column_names=["group", "check", "level", "method", "statistic",
                                                       "threshold", "effect", "min effect", "verdict", "note"],
                          data=rows)]
    widgets = [group_widget(title="Verdict", widgets=verdict)]
    if drift_snapshot is not None:
        widgets.append(group_widget(title="Input and prediction drift (Evidently ValueDrift)",
                                    widgets=drift_snapshot._widgets))  # noqa: SLF001 - no public accessor in 0.7
    if quality_snapshot is not None:
        widgets.append(group_widget(title="Ranking quality from feedback (Evidently NDCG / MRR / HitRate)",
                                    widgets=quality_snapshot._widgets))  # noqa: SLF001
    return render_widgets(widgets, as_iframe=False)


def write_report(summary: dict[str, Any], html: str, out_dir: str | Path, name: str) -> dict[str, str]:
    """``<out_dir>/<name>.html`` and ``.json`` (written atomically), and ``latest.json``."""

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": str(out / f"{name}.html"), "json": str(out / f"{name}.json")}
    summary["reports"] = paths
    write_text(html, out / f"{name}.html")
    write_json(jsonable(summary), out / f"{name}.json")
    write_json(jsonable(summary), out / "latest.json")
    for path in (out / f"{name}.html", out / f"{name}.json", out / "latest.json"):
        path.chmod(0o644)  # the atomic writer's temporary files are private (0600); reports are for reading
    return paths
