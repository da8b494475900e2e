"""First-stage retrieval for ``POST /search``: BM25 (``bm25s``) over the packaged catalogue.

The index is built when a model is packaged (:func:`build_index`, called once by
:func:`prodrank.serving.registry.save_model`) and stored in the BentoML model directory beside
the ranker, under ``retrieval/``: the bm25s index files and ``products.parquet``, the catalogue
fields the ranker reads and the search page shows. A packaged model therefore always searches
the catalogue it was packaged with, and the tamper check covers the index like the weights.

The service loads it once (:meth:`CatalogIndex.load`); :meth:`CatalogIndex.search` returns the
best ``n`` products by BM25 over title, brand, category and attributes (the fields of the BM25
baseline in the evaluation report), products that share no word with the query left out.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prodrank.data.catalog import product_fields
from prodrank.data.schema import CATALOG_TEXT_FIELDS, PRODUCT_FEATURES
from prodrank.io import sha256_file, write_parquet

log = logging.getLogger(__name__)

INDEX_SUBDIR = "retrieval"  # in the packaged model's directory, beside the ranker
PRODUCTS_FILE = "products.parquet"
INDEX_FIELDS = ("title", "brand", "category", "attributes")
PRODUCT_COLUMNS = ("product_id", *CATALOG_TEXT_FIELDS, *PRODUCT_FEATURES)
STOPWORDS = "en"


def _bm25s():
    """bm25s, imported on first use: about 0.4 s that every command importing the registry
    would pay otherwise; it also forces its logger to DEBUG on import."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def index_text(products: pd.DataFrame) -> list[str]:
    """One document per product: its :data:`INDEX_FIELDS` joined, missing fields skipped."""
    present = [f for f in INDEX_FIELDS if f in products.columns]
    rows = products[present].fillna("").astype(str)
    return [" ".join(v for v in row if v) for row in rows.itertuples(index=False)]


def tokenize(texts: list[str]) -> list[list[str]]:
    return _bm25s().tokenize(texts, stopwords=STOPWORDS, return_ids=False, show_progress=False)


def catalog_identity(catalog_path: str | Path) -> dict[str, str]:
    """``{"retrieval/catalog": sha256}`` of the catalogue a model would be indexed with, ``{}``
    without one: what the search index adds to a packaged model's content digest."""
    catalog_path = Path(catalog_path)
    return {f"{INDEX_SUBDIR}/catalog": sha256_file(catalog_path)} if catalog_path.is_file() else {}


def build_index(catalog_path: str | Path, out_dir: str | Path) -> dict[str, str]:
    """Index the catalogue at ``catalog_path`` into ``out_dir``; returns the sha256 of each file
    written, keyed ``retrieval/<name>`` like the packaged model's other files. Without a
    catalogue nothing is written and ``{}`` returned: that model serves ``/rank`` only."""
    catalog_path, out_dir = Path(catalog_path), Path(out_dir)
    if not catalog_path.is_file():
        log.warning("no catalogue at %s: the packaged model gets no search index (/search answers 503)",
                    catalog_path)
        return {}
    catalog = pd.read_parquet(catalog_path)
    products = catalog[[c for c in PRODUCT_COLUMNS if c in catalog.columns]].copy()
    products["product_id"] = products["product_id"].astype(str)
    products = products.drop_duplicates("product_id", keep="last").reset_index(drop=True)
    bm25s = _bm25s()
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(index_text(products), stopwords=STOPWORDS, show_progress=False),
                    show_progress=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    retriever.save(out_dir, show_progress=False)
    write_parquet(products, out_dir / PRODUCTS_FILE)
    return {f"{INDEX_SUBDIR}/{p.name}": sha256_file(p) for p in sorted(out_dir.iterdir()) if p.is_file()}


@dataclass
class Retrieved:
    """The first stage's answer: product ids best first, their BM25 scores, their fields."""

    ids: list[str]
    scores: np.ndarray
    products: list[dict[str, Any]]  # {title, brand, category, attributes, description, price, rating}


class CatalogIndex:
    """A loaded index: BM25 over the catalogue, and every product's fields by position."""

    def __init__(self, retriever: Any, ids: list[str], fields: list[dict[str, Any]]) -> None:
        self.retriever = retriever
        self.ids = ids
        self.fields = fields

    @classmethod
    def load(cls, directory: str | Path) -> CatalogIndex:
        directory = Path(directory)
        retriever = _bm25s().BM25.load(directory, show_progress=False)
        by_id = product_fields(pd.read_parquet(directory / PRODUCTS_FILE))
        return cls(retriever, list(by_id), list(by_id.values()))

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, query: str, n: int) -> Retrieved:
        """The ``n`` best products by BM25 (fewer when fewer share a word with the query),
        ties in catalogue order."""
        tokens = tokenize([query])[0]
        scores = self.retriever.get_scores(tokens) if tokens else np.zeros(len(self.ids))
        matched = np.flatnonzero(scores > 0)
        best = matched[np.lexsort((matched, -scores[matched]))][:n]
        return Retrieved([self.ids[i] for i in best], scores[best].astype(float),
                         [self.fields[i] for i in best])
