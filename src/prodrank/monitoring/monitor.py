"""``prodrank monitor``: one drift report of a serving-log window against the reference.

:func:`run_monitor` reads the reference (the evaluation-time predictions on the test split, or a
window of the serving log) and the current window from the durable files, computes the monitored
features (:mod:`prodrank.monitoring.features`), runs Evidently (:mod:`prodrank.monitoring.report`),
writes ``<reports_dir>/<window>.html`` and ``.json``, and, when ``monitoring.action`` is
``trigger`` and the verdict is drift, triggers retraining (:mod:`prodrank.monitoring.trigger`) through
the ``retrain`` callable its caller gives.
"""
from __future__ import annotations

import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prodrank.config import Config, MonitoringConfig
from prodrank.data.catalog import product_fields
from prodrank.monitoring import features as F
from prodrank.monitoring.logwindow import Window, as_utc, read_window, window_name
from prodrank.monitoring.report import build_report, threshold_text, write_report
from prodrank.monitoring.trigger import RetrainFn, trigger_retrain
from prodrank.serving.registry import load_packaged, model_metadata, served_dir

log = logging.getLogger("prodrank.monitoring")


def log_dir_of(cfg: Config) -> str:
    return cfg.monitoring.log_dir or cfg.serving.log_dir


def _dominant(versions: pd.Series) -> str | None:
    versions = versions.dropna().astype(str)
    return Counter(versions).most_common(1)[0][0] if len(versions) else None


def _model_path(tag: str | None, cfg: Config) -> Path | None:
    """The saved ranker of a packaged model (BentoML store), if it is there."""
    if not tag or tag == "evaluation":
        return None
    try:
        return served_dir(model_metadata(tag, cfg)["path"], cfg.serving.model)
    except Exception:  # noqa: BLE001 - not in this store
        return None


def _reference_model_tag(root: Path) -> str | None:
    """The packaged tag of the model that made the evaluation predictions (models/package.json)."""
    try:
        return json.loads((root / "models" / "package.json").read_text()).get("tag")
    except (OSError, ValueError):
        return None


def build_context(cfg: Config, root: Path, current: Window) -> F.Context:
    """Catalogue lookups, vocabulary and tokenizer shared by both windows. The first file of
    ``monitoring.catalogs`` is the training catalogue: its text is the vocabulary and its ids are
    the known products (without it, the out-of-vocabulary share is 1 and ``unseen_product`` is
    not checked)."""
    mon = cfg.monitoring
    catalog, read, missing = F.load_catalogs(list(mon.catalogs), root)
    first, _, _ = F.load_catalogs(list(mon.catalogs[:1]), root)  # the training catalogue
    vocabulary = F.catalog_vocabulary(first)
    known = frozenset(first.index.astype(str)) if len(first) else None
    tag = _dominant(current.requests["model_version"]) if len(current.requests) else None
    tok_path = _model_path(tag, cfg) or (root / "models" / "ranker")
    tokenizer = F.load_tokenizer(tok_path)
    name = f"{tok_path}/tokenizer" if tokenizer is not None else "whitespace words"
    ctx = F.Context(catalog, vocabulary, known, tokenizer, name)
    ctx.catalog_files = {"read": read, "missing": missing}  # type: ignore[attr-defined]
    ctx.training_products = first if len(first) else None  # type: ignore[attr-defined]
    return ctx


def dataset_pairs(prepared: Path) -> pd.DataFrame | None:
    """Every logged (query, product) pair of the prepared data set (all splits), with the query
    text, impressions and mean position: the input side of the evaluation reference."""
    frames = []
    for split in ("train", "valid", "test"):
        inter, queries = prepared / split / "interactions.parquet", prepared / split / "queries.parquet"
        if inter.is_file() and queries.is_file():
            pairs = pd.read_parquet(inter)
            columns = [c for c in ("query_id", "product_id", "impressions", "position") if c in pairs.columns]
            frames.append(pairs[columns].merge(pd.read_parquet(queries, columns=["query_id", "query"]), on="query_id"))
    return pd.concat(frames, ignore_index=True) if frames else None


def reference_window(cfg: Config, root: Path, ctx_factory, current: Window) -> tuple[F.WindowFeatures, dict[str, Any],
                                                                                      F.Context]:
    """The reference features, its description and the context built with it."""
    mon = cfg.monitoring
    if mon.reference == "log":
        if mon.reference_start is None and mon.reference_end is None:
            raise ValueError("monitoring.reference is 'log' but neither reference_start nor reference_end is set "
                             "(--reference-start / --reference-end)")
        window = read_window(root / log_dir_of(cfg), mon.reference_start, mon.reference_end, mon.max_requests,
                             mon.seed, mon.endpoint)
        if window.requests.empty:
            raise ValueError(f"the reference window [{mon.reference_start}, {mon.reference_end}) of "
                             f"{log_dir_of(cfg)} holds no request")
        ctx = ctx_factory()
        feats = F.from_log(window.requests, window.feedback, ctx, mon.gap_k)
        info = {"kind": "log", **window.stats,
                "model_versions": sorted(set(window.requests["model_version"].dropna().astype(str)))}
        return feats, info, ctx
    path = root / mon.predictions
    if not path.is_file():
        raise FileNotFoundError(f"{mon.predictions} not found: run the evaluate stage (dvc repro), or monitor "
                                "against a window of the log (--reference log --reference-start ...)")
    predictions = pd.read_parquet(path)
    ctx = ctx_factory()
    inputs = dataset_pairs(root / "data" / "prepared")
    # queries are drawn as live traffic issues them: in proportion to their impressions in the data set
    traffic = inputs.groupby("query_id")["impressions"].sum() if inputs is not None else None
    n = min(mon.max_requests, max(mon.min_requests, len(current.requests), 2_000))
    # prices and ratings of the training catalogue: later catalogue files (the simulator's) may hold newer ones
    feats = F.from_predictions(predictions, ctx, mon.gap_k, n, traffic, seed=mon.seed,
                               products=getattr(ctx, "training_products", None), inputs=inputs)
    info = {"kind": "evaluation", "path": mon.predictions, "pairs": int(len(predictions)),
            "requests_used": int(len(feats.requests)), **feats.source,
            "model_versions": [t for t in [_reference_model_tag(root)] if t]}
    return feats, info, ctx


def logged_products(row: Any, catalog_fields: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One logged request's candidates as the served model saw them: the catalogue text, and the
    price and rating sent with the request (None where none was sent). A record written before a
    value was logged keeps the catalogue's value."""
    ids = [str(x) for x in row["candidate_ids"]]
    products = [dict(catalog_fields[pid]) for pid in ids]
    for column, field in F.PRODUCT_INPUTS.items():
        values = F.logged_values(row.get(field), len(ids))
        if values is not None:
            for product, value in zip(products, values, strict=True):
                product[column] = value
    return products


def rescore(ranker, rows: list[Any], catalog: pd.DataFrame) -> list[np.ndarray]:
    """Scores of each logged request's candidates under ``ranker``, in request order, in one
    batched call. A product is keyed by its id and logged values, because the same product may
    carry a different price in another request; the same values are encoded once."""
    needed = sorted({str(x) for row in rows for x in row["candidate_ids"]})
    catalog_fields = product_fields(catalog.loc[needed].reset_index(drop=True))
    products, queries, keys, sizes = {}, [], [], []
    for row in rows:
        for pid, product in zip(row["candidate_ids"], logged_products(row, catalog_fields), strict=True):
            key = "\x1f".join(map(str, (pid, *(product.get(column) for column in F.PRODUCT_INPUTS))))
            products[key] = product
            queries.append(row["query"])
            keys.append(key)
        sizes.append(len(row["candidate_ids"]))
    scores = ranker.score(queries, keys, products)["score"]
    return np.split(scores, np.cumsum(sizes)[:-1])


def topk_changed(cfg: Config, current: Window, ctx: F.Context, other_tag: str, sample: int = 200) -> dict[str, Any]:
    """Share of (sampled) current requests whose top-k set differs between the served model and
    ``other_tag`` (rescored here: catalogue text, logged prices and ratings)."""
    k = cfg.monitoring.top_k
    requests = current.requests
    usable = [i for i, ids in enumerate(requests["candidate_ids"]) if ids and all(str(x) in ctx.catalog.index
                                                                                    for x in ids)]
    if not usable:
        return {"share": None, "other_model": other_tag, "requests": 0,
                "note": "no current request has all its candidates in monitoring.catalogs: cannot rescore"}
    rng = np.random.default_rng(cfg.monitoring.seed)
    pick = sorted(rng.choice(usable, size=min(sample, len(usable)), replace=False).tolist())
    ranker, _ = load_packaged(other_tag, cfg)
    started = time.perf_counter()
    rows = [requests.iloc[i] for i in pick]
    changed = 0
    for row, other in zip(rows, rescore(ranker, rows, ctx.catalog), strict=True):
        cands = [str(x) for x in row["candidate_ids"]]
        served = np.asarray(row["scores"]["score"], dtype=float)
        kk = min(k, len(cands))
        a = {cands[j] for j in np.argsort(-served, kind="stable")[:kk]}
        b = {cands[j] for j in np.argsort(-other, kind="stable")[:kk]}
        changed += a != b
    return {"share": changed / len(pick), "other_model": other_tag, "requests": len(pick), "k": k,
            "seconds": round(time.perf_counter() - started, 2),
            "note": f"{changed} of {len(pick)} sampled requests rank a different top-{k} under {other_tag}"}


def run_monitor(cfg: Config, root: str | Path = ".", start: str | None = None, end: str | None = None,
                name: str | None = None, out_dir: str | None = None, compare_model: str | None = None,
                action: str | None = None, params: str = "params.yaml", profile: str | None = None,
                retrain: RetrainFn | None = None) -> dict[str, Any]:
    """Monitor ``[start, end)`` of the serving log (module doc); returns the summary. ``retrain``
    starts retraining on a drift verdict with ``monitoring.action: trigger`` (:data:`RetrainFn`)."""
    root = Path(root).resolve()
    mon: MonitoringConfig = cfg.monitoring
    started = time.perf_counter()
    start_ts, end_ts = as_utc(start), as_utc(end)
    if start_ts is None and mon.reference == "log" and mon.reference_end is not None:
        start_ts = as_utc(mon.reference_end)  # default current window: everything after the reference
    log_dir = root / log_dir_of(cfg)
    current = read_window(log_dir, start_ts, end_ts, mon.max_requests, mon.seed, mon.endpoint)
    log.info("current window %s: %d requests (%d used%s), %d feedback events, read in %.1fs", window_name(start_ts, end_ts),
             current.stats["requests_in_window"], current.stats["requests_used"],
             ", sampled" if current.sampled else "", current.stats["feedback_used"], current.stats["seconds"])

    def ctx_factory():
        return build_context(cfg, root, current)

    t_ref = time.perf_counter()
    reference, ref_info, ctx = reference_window(cfg, root, ctx_factory, current)
    ref_info["seconds"] = round(time.perf_counter() - t_ref, 3)
    t_feat = time.perf_counter()
    cur_feats = F.from_log(current.requests, current.feedback, ctx, mon.gap_k)
    features_seconds = round(time.perf_counter() - t_feat, 3)
    served = sorted(set(current.requests["model_version"].dropna().astype(str))) if len(current.requests) else []
    topk = None
    other = compare_model
    if other is None and served:
        ref_models = ref_info.get("model_versions") or []
        dominant = _dominant(current.requests["model_version"])
        candidates = [m for m in ref_models if m != dominant]
        other = candidates[0] if candidates else None
    if other is not None and other.lower() == "none":  # --compare-model none: not computed
        other = None
    if other is not None and len(current.requests):
        try:
            topk = topk_changed(cfg, current, ctx, other, mon.topk_requests)
        except Exception as err:  # noqa: BLE001 - reported, not fatal
            topk = {"share": None, "other_model": other, "note": f"not computed: {type(err).__name__}: {err}"}
    name = name or window_name(start_ts if start_ts is not None else as_utc(current.stats["first_request"]),
                               end_ts if end_ts is not None else as_utc(current.stats["last_request"]))
    meta = {
        "name": name,
        "created_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "profile": cfg.profile,
        "window": {"start": start_ts.isoformat() if start_ts is not None else None,
                   "end": end_ts.isoformat() if end_ts is not None else None},
        "current": {**current.stats, "model_versions": served, "features_seconds": features_seconds},
        "reference": ref_info,
        "context": {"tokenizer": ctx.tokenizer_name, "vocabulary_words": len(ctx.vocabulary),
                    "known_products": None if ctx.known_products is None else len(ctx.known_products), "catalogs": getattr(ctx, "catalog_files", None)},
        "settings": mon.model_dump(mode="json"),
    }
    summary, html = build_report(reference, cur_feats, mon, meta, topk)
    out = Path(out_dir).resolve() if out_dir else root / mon.reports_dir
    paths = write_report(summary, html, out, name)
    how = action or mon.action
    summary["action"] = how
    summary["retrain"] = None
    if summary["drift"] and how == "trigger":
        summary["retrain"] = trigger_retrain(cfg, root, summary, retrain, params=params, profile=profile,
                                             state_dir=out)
    elif summary["drift"]:
        summary["retrain"] = {"triggered": False, "reason": "monitoring.action is 'report'"}
    summary["seconds"] = round(time.perf_counter() - started, 3)
    write_report(summary, html, out, name)  # again, with the action's outcome
    log.info("%s: %s (%s) -> %s", name, summary["verdict"], ", ".join(summary["drifted_checks"]) or "no drifted check",
             paths["html"])
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """A few lines for the console."""
    lines = [f"drift report {summary['name']}: {summary['verdict'].upper()}"
             f" — current {summary['current']['requests_used']} of {summary['current']['requests_in_window']} requests"
             f" vs reference {summary['reference'].get('kind')} ({summary['reference'].get('requests_used')})"]
    for row in summary["checks"]:
        stat = row["statistic"]
        stat_s = "—" if stat is None else f"{stat:.4g}"
        effect = row.get("effect")
        effect_s = "" if effect is None else f", effect {effect:.4g} (min {row.get('min_effect', 0):.4g})"
        lines.append(f"  {'DRIFT' if row['drift'] else 'ok   '} {row['group']:<10} {row['check']:<22} "
                     f"{row['method']:<14} {stat_s:>10} (threshold {threshold_text(row)}{effect_s})")
    retrain = summary.get("retrain")
    if retrain:
        lines.append(f"retrain: {'triggered' if retrain.get('triggered') else 'not triggered'} — "
                     f"{retrain.get('reason') or retrain.get('status') or ''}")
    lines.append(f"report: {summary['reports']['html']}  ({summary['reports']['json']})")
    return "\n".join(lines)
