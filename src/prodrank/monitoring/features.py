"""Monitored features of a window: one table per window, the input of the Evidently report.

Every window (the reference and the current one) becomes the same two tables:

``requests``   one row per request: ``query_chars``, ``query_tokens``, ``query_oov_share``,
               ``candidate_count``, ``top1_score``, ``score_gap``, ``model_version``.
``candidates`` one row per (request, candidate): ``product_id``, ``price``, ``rating`` (the
               values sent with the request), ``category``, ``brand``, ``unseen_product``, ``score``, ``p_<task>``, ``rank`` (the served
               position; candidates cut by ``top_k`` continue the order by score) and, where
               feedback exists, ``target_<task>`` (1 if the shopper did that on the result).

:func:`drift_frame` stacks them into one long table for a single Evidently report: candidate
rows carry the candidate-level columns and the request-level columns only on each request's
first row (NaN elsewhere; Evidently drops NaN per column), so a request-level statistic counts
once per request and a candidate-level one once per candidate.

Sources: the serving log (:func:`from_log`), or the evaluation-time predictions on the test split
(:func:`from_predictions`), whose queries are resampled by their logged traffic so that the
reference is weighted like live traffic (one row per query would over-weight rare queries).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

UNKNOWN = "(unknown)"
EVENTS = {"click": "click", "add_to_cart": "add_to_cart", "purchase": "purchase"}  # feedback event per task
_WORD = re.compile(r"[a-z0-9]+")
REQUEST_COLUMNS = ("query_chars", "query_tokens", "query_oov_share", "candidate_count", "top1_score", "score_gap")
PRODUCT_INPUTS = {"price": "prices", "rating": "ratings"}  # monitored product feature -> its list in the log
CANDIDATE_NUMERIC = (*PRODUCT_INPUTS, "score")
CANDIDATE_CATEGORICAL = ("category", "brand", "unseen_product")


def logged_values(values: Any, n: int) -> list | None:
    """A per-candidate list of a log record (``prices``, ``ratings``) if it has one value per
    candidate; None when the record has none (written before it was logged) or it is malformed."""
    return list(values) if isinstance(values, list | tuple | np.ndarray) and len(values) == n else None


def words(text: str) -> list[str]:
    return _WORD.findall(str(text).lower())


# -- context shared by both windows -------------------------------------------------------------
@dataclass
class Context:
    """What both windows are measured against: the catalogue (category and brand of an id), the
    vocabulary (words of the catalogue text), the ids known at reference time, a tokenizer."""

    catalog: pd.DataFrame  # product_id -> category, brand (index product_id)
    vocabulary: frozenset[str]
    known_products: frozenset[str] | None  # ids of the training catalogue; None: no catalogue, no check
    tokenizer: Any | None  # a HF tokenizer, or None: whitespace words are counted
    tokenizer_name: str

    def count_tokens(self, queries: list[str]) -> np.ndarray:
        if not queries:
            return np.zeros(0, np.int64)
        if self.tokenizer is None:
            return np.array([len(str(q).split()) for q in queries], np.int64)
        encoded = self.tokenizer(list(map(str, queries)), add_special_tokens=False)["input_ids"]
        return np.array([len(ids) for ids in encoded], np.int64)

    def oov_share(self, queries: list[str]) -> np.ndarray:
        out = np.zeros(len(queries))
        for i, q in enumerate(queries):
            ws = words(q)
            out[i] = sum(w not in self.vocabulary for w in ws) / len(ws) if ws else 0.0
        return out


def load_catalogs(paths: list[str | Path], root: Path = Path(".")) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The union of the catalogue files that exist (a later file wins for the same id), the
    files read, and the files missing."""
    frames, read, missing = [], [], []
    for p in paths:
        path = Path(p) if Path(p).is_absolute() else root / p
        if path.is_file():
            frames.append(pd.read_parquet(path))
            read.append(str(p))
        else:
            missing.append(str(p))
    if not frames:
        return pd.DataFrame(columns=["product_id", "title", "description", "brand", "category", "attributes",
                                     *PRODUCT_INPUTS]).set_index("product_id", drop=False), read, missing
    catalog = pd.concat(frames, ignore_index=True)
    catalog["product_id"] = catalog["product_id"].astype(str)
    catalog = catalog.drop_duplicates("product_id", keep="last").set_index("product_id", drop=False)
    return catalog, read, missing


def catalog_vocabulary(catalog: pd.DataFrame) -> frozenset[str]:
    """Words of the catalogue text the model was trained on (title, brand, category, attributes,
    description). Queries are *not* included on purpose: live traffic repeats training queries,
    whose words would all be known, while held-out queries would not, which would make the
    out-of-vocabulary share depend on which queries a window happens to hold."""
    vocab: set[str] = set()
    for column in ("title", "brand", "category", "attributes", "description"):
        if column in catalog.columns:
            for text in catalog[column].dropna().astype(str).unique():
                vocab.update(words(text))
    return frozenset(vocab)


def load_tokenizer(path: str | Path | None):
    """A HF tokenizer from a saved ranker (``<ranker>/tokenizer``); None if there is none."""
    if path is None:
        return None
    directory = Path(path)
    if (directory / "tokenizer").is_dir():
        directory = directory / "tokenizer"
    if not directory.is_dir():
        return None
    try:
        # transformers takes seconds to import and only a model with a saved tokenizer needs it
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(directory)
    except Exception as err:  # noqa: BLE001 - fall back to whitespace words
        log.warning("tokenizer at %s not usable (%s): counting whitespace words", directory, err)
        return None


# -- one window ---------------------------------------------------------------------------------
@dataclass
class WindowFeatures:
    requests: pd.DataFrame
    candidates: pd.DataFrame
    tasks: tuple[str, ...]
    has_feedback: bool
    source: dict[str, Any]

    def __len__(self) -> int:
        return len(self.requests)


def _request_scores(scores: dict[str, list], n: int) -> dict[str, np.ndarray]:
    out = {}
    for key, values in (scores or {}).items():
        arr = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
        if len(arr) == n:
            out[key] = arr
    return out


def _ranks(positions: list, score: np.ndarray) -> np.ndarray:
    """Served positions; candidates cut by top_k continue the order by score."""
    n = len(score)
    rank = np.array([np.nan if p is None or (isinstance(p, float) and np.isnan(p)) else float(p) for p in positions]
                    if positions is not None and len(positions) == n else [np.nan] * n)
    missing = np.isnan(rank)
    if missing.any():
        shown = int((~missing).sum())
        order = np.argsort(-np.nan_to_num(score[missing], nan=-np.inf), kind="stable")
        fill = np.empty(int(missing.sum()))
        fill[order] = shown + 1 + np.arange(len(order))
        rank[missing] = fill
    return rank.astype(np.int64)


def request_rows(query: list[str], ctx: Context) -> dict[str, np.ndarray]:
    return {"query_chars": np.array([len(str(q)) for q in query], np.int64),
            "query_tokens": ctx.count_tokens(query),
            "query_oov_share": ctx.oov_share(query)}


def from_log(requests: pd.DataFrame, feedback: pd.DataFrame, ctx: Context, gap_k: int) -> WindowFeatures:
    """Features of logged requests and their feedback events."""
    n = len(requests)
    cand_cols: dict[str, list] = {"request_id": [], "product_id": [], **{c: [] for c in PRODUCT_INPUTS}, "rank": []}
    score_cols: dict[str, list] = {}
    top1 = np.full(n, np.nan)
    gap = np.full(n, np.nan)
    count = np.zeros(n, np.int64)
    for i, row in enumerate(requests.itertuples(index=False)):
        ids = [str(x) for x in (row.candidate_ids or [])]
        m = len(ids)
        count[i] = m
        scores = _request_scores(row.scores if isinstance(row.scores, dict) else {}, m)
        score = scores.get("score", np.full(m, np.nan))
        rank = _ranks(row.positions, score)
        ordered = score[np.argsort(rank, kind="stable")]
        if m:
            top1[i] = ordered[0]
            gap[i] = ordered[0] - ordered[min(gap_k, m) - 1]
        cand_cols["request_id"].extend([row.request_id] * m)
        cand_cols["product_id"].extend(ids)
        for column, field in PRODUCT_INPUTS.items():  # a log without the list (older records): NaN
            values = logged_values(getattr(row, field, None), m) or [None] * m
            cand_cols[column].extend(np.nan if v is None else float(v) for v in values)
        cand_cols["rank"].extend(rank.tolist())
        for key in set(score_cols) | set(scores):
            if key not in score_cols:  # a key first seen now: NaN for the candidates before
                score_cols[key] = [np.nan] * (len(cand_cols["product_id"]) - m)
            score_cols[key].extend(scores[key].tolist() if key in scores else [np.nan] * m)
    cand = pd.DataFrame(cand_cols)
    for key, values in score_cols.items():
        cand[key] = np.asarray(values, dtype=np.float64)
    tasks = tuple(k[2:] for k in score_cols if k.startswith("p_"))
    cand = _with_catalog(cand, ctx)
    has_feedback = feedback is not None and len(feedback) > 0
    cand = _with_targets(cand, feedback, tasks)
    req = pd.DataFrame({"request_id": requests["request_id"].to_numpy(),
                        "timestamp": requests["timestamp"].to_numpy(),
                        "model_version": requests["model_version"].astype(str).to_numpy(),
                        **request_rows(requests["query"].astype(str).tolist(), ctx),
                        "candidate_count": count, "top1_score": top1, "score_gap": gap})
    return WindowFeatures(req, cand, tasks, has_feedback, {"kind": "log"})


def _with_catalog(cand: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    catalog = ctx.catalog
    found = cand["product_id"].isin(catalog.index)
    for column in ("category", "brand"):
        values = catalog[column] if column in catalog.columns else pd.Series(dtype=object)
        cand[column] = cand["product_id"].map(values).where(found, UNKNOWN).fillna(UNKNOWN).astype(str)
    if ctx.known_products is None:
        cand["unseen_product"] = None
    else:
        cand["unseen_product"] = np.where(cand["product_id"].isin(ctx.known_products), "known", "new")
    return cand


def _with_targets(cand: pd.DataFrame, feedback: pd.DataFrame | None, tasks: tuple[str, ...]) -> pd.DataFrame:
    for task in tasks:
        cand[f"target_{task}"] = 0
    if feedback is None or not len(feedback):
        return cand
    key = cand["request_id"].astype(str) + "\x1f" + cand["product_id"].astype(str)
    fb_key = feedback["request_id"].astype(str) + "\x1f" + feedback["product_id"].astype(str)
    for task in tasks:
        event = EVENTS.get(task, task)
        hits = set(fb_key[feedback["event"] == event])
        cand[f"target_{task}"] = key.isin(hits).astype(np.int64)
    return cand


def _resample(groups: dict[str, pd.DataFrame], traffic: pd.Series | None, n: int, rng) -> np.ndarray:
    qids = np.array(sorted(groups))
    weight = traffic.reindex(qids).fillna(0).to_numpy(dtype=float) if traffic is not None else np.ones(len(qids))
    if weight.sum() <= 0:
        weight = np.ones(len(qids))
    return qids[rng.choice(len(qids), size=n, p=weight / weight.sum())] if len(qids) else qids


def _query_features(texts: pd.Series, ctx: Context) -> pd.DataFrame:
    distinct = sorted(set(texts))
    feats = pd.DataFrame(request_rows(distinct, ctx), index=distinct)
    return pd.DataFrame({c: texts.map(feats[c]).to_numpy() for c in ("query_chars", "query_tokens", "query_oov_share")},
                        index=texts.index)


def from_predictions(predictions: pd.DataFrame, ctx: Context, gap_k: int, n_requests: int,
                     traffic: pd.Series | None = None, seed: int = 0, products: pd.DataFrame | None = None,
                     inputs: pd.DataFrame | None = None) -> WindowFeatures:
    """The evaluation-time reference.

    *Prediction* columns come from the evaluation predictions (one row per scored (query,
    product) pair: the test split's and, from the evaluate stage, the other splits' too):
    ``n_requests`` queries drawn with replacement in proportion to ``traffic`` (impressions per
    query_id), each with its pairs as candidates, ranked by the model's score.

    *Input* columns come from ``inputs`` when given: every logged (query, product) pair of the
    data set the model was trained and evaluated on (all splits; ``query_id, query, product_id,
    impressions``, optional ``position``), its queries drawn in proportion to their impressions.
    Live traffic issues training queries as well as held-out ones, so the test split alone (a
    fifth of the queries) would be a noisy sample of the query mix: on the tiny profile (30 test
    queries) control traffic was flagged on every query feature against it. Without ``inputs``,
    the input columns come from the test split too. Rows of one part have the other part's
    columns empty (NaN), which Evidently drops per column. ``products`` (indexed by product_id)
    holds the price and rating of each candidate; without it, ``ctx.catalog``.
    """
    rng = np.random.default_rng(seed)
    preds = predictions.copy()
    preds["product_id"] = preds["product_id"].astype(str)
    tasks = tuple(c[2:] for c in preds.columns if c.startswith("p_"))
    preds = preds.sort_values(["query_id", "score"], ascending=[True, False], kind="stable")
    groups = {qid: g for qid, g in preds.groupby("query_id", sort=True)}
    products = products if products is not None else ctx.catalog

    def build(drawn: np.ndarray, groups: dict[str, pd.DataFrame], prefix: str, with_scores: bool
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
        req_rows, parts = [], []
        for i, qid in enumerate(drawn):
            g = groups[qid]
            rid = f"{prefix}-{i:07d}"
            m = len(g)
            row = {"request_id": rid, "query_id": qid, "query": str(g["query"].iloc[0]), "candidate_count": m,
                   "top1_score": np.nan, "score_gap": np.nan}
            part = {"request_id": rid, "product_id": g["product_id"].to_numpy(), "rank": np.arange(1, m + 1)}
            if with_scores:
                score = g["score"].to_numpy(dtype=float)
                row.update(top1_score=score[0], score_gap=score[0] - score[min(gap_k, m) - 1])
                part.update(score=score, **{f"p_{t}": g[f"p_{t}"].to_numpy(dtype=float) for t in tasks})
            req_rows.append(row)
            parts.append(pd.DataFrame(part))
        req = pd.DataFrame(req_rows, columns=["request_id", "query_id", "query", "candidate_count", "top1_score",
                                              "score_gap"])
        cand = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["request_id", "product_id",
                                                                                        "rank"])
        return req, cand

    pred_req, pred_cand = build(_resample(groups, traffic, n_requests, rng), groups, "ref-pred", True)
    if inputs is not None and len(inputs):
        pairs = inputs.copy()
        pairs["product_id"] = pairs["product_id"].astype(str)
        order = ["query_id", "position"] if "position" in pairs.columns else ["query_id"]
        pairs = pairs.sort_values(order, kind="stable")
        in_traffic = pairs.groupby("query_id")["impressions"].sum() if "impressions" in pairs.columns else None
        pairs = pairs.drop_duplicates(["query_id", "product_id"])
        in_groups = {qid: g for qid, g in pairs.groupby("query_id", sort=True)}
        in_req, in_cand = build(_resample(in_groups, in_traffic, n_requests, rng), in_groups, "ref-input", False)
        pred_req[["query", "candidate_count"]] = np.nan  # inputs come from the whole data set
        pred_cand["blank_inputs"] = True
        in_cand["blank_inputs"] = False
        req = pd.concat([in_req, pred_req], ignore_index=True)
        cand = pd.concat([in_cand, pred_cand], ignore_index=True)
        source = {"inputs": "all splits, weighted by impressions", "inputs_queries": len(in_groups)}
    else:
        req, cand = pred_req, pred_cand
        cand["blank_inputs"] = False
        source = {"inputs": "test split"}
    has_query = req["query"].notna()
    feats = _query_features(req.loc[has_query, "query"].astype(str), ctx)
    for column in ("query_chars", "query_tokens", "query_oov_share"):
        req[column] = np.nan
        req.loc[has_query, column] = feats[column].astype(float)
    req["candidate_count"] = req["candidate_count"].astype(float)
    req["model_version"] = "evaluation"
    req["timestamp"] = pd.NaT
    for column in PRODUCT_INPUTS:
        cand[column] = cand["product_id"].map(products[column]).astype(float) if column in products.columns else np.nan
    cand = _with_catalog(cand, ctx)
    blank = cand.pop("blank_inputs").to_numpy(dtype=bool)
    cand.loc[blank, list(PRODUCT_INPUTS)] = np.nan
    for column in ("category", "brand", "unseen_product"):
        cand[column] = cand[column].astype(object)
        cand.loc[blank, column] = None
    for column in ("score", *[f"p_{t}" for t in tasks]):
        if column not in cand.columns:
            cand[column] = np.nan
    cand = _with_targets(cand, None, tasks)
    return WindowFeatures(req.drop(columns=["query"]), cand, tasks, False,
                          {"kind": "evaluation", "queries": len(groups), **source,
                           "weighted_by": "impressions" if traffic is not None else "uniform"})


# -- the report's table -----------------------------------------------------------------------
def drift_frame(features: WindowFeatures, tasks: tuple[str, ...]) -> pd.DataFrame:
    """One row per candidate; request-level columns only on each request's first candidate row
    (requests without candidates get a row of their own)."""
    cand = features.candidates
    req = features.requests.set_index("request_id")
    columns = ["request_id", "product_id", *CANDIDATE_NUMERIC, *[f"p_{t}" for t in tasks], *CANDIDATE_CATEGORICAL]
    frame = cand.reindex(columns=columns).copy()
    first = ~frame["request_id"].duplicated()
    for column in REQUEST_COLUMNS:
        values = frame["request_id"].map(req[column]).astype(float)
        frame[column] = values.where(first, np.nan)
    empty = req.index.difference(frame["request_id"].unique())
    if len(empty):
        extra = pd.DataFrame({"request_id": empty, **{c: req.loc[empty, c].astype(float).to_numpy()
                                                      for c in REQUEST_COLUMNS}})
        frame = pd.concat([frame, extra], ignore_index=True)
    for column in CANDIDATE_CATEGORICAL:  # None = not measured in this row (Evidently drops it)
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame.reset_index(drop=True)


def ranking_frame(features: WindowFeatures, tasks: tuple[str, ...]) -> pd.DataFrame:
    """Shown results with their served rank and the feedback targets, for Evidently's ranking
    metrics (user = request, item = product, prediction = rank)."""
    cand = features.candidates
    columns = ["request_id", "product_id", "rank", *[f"target_{t}" for t in tasks]]
    return cand.reindex(columns=columns).copy()
