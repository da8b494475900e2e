"""The catalogue as a ranker reads it: product id -> its text fields and product features."""
from __future__ import annotations

import pandas as pd

from prodrank.data.schema import CATALOG_TEXT_FIELDS, PRODUCT_FEATURES


def product_fields(catalog: pd.DataFrame) -> dict[str, dict[str, str | float | None]]:
    """product id -> {text field: text, product feature: number}, None where unknown."""
    present = [f for f in (*CATALOG_TEXT_FIELDS, *PRODUCT_FEATURES) if f in catalog.columns]
    frame = catalog[["product_id", *present]].astype(object).where(catalog[["product_id", *present]].notna(), None)
    return {row[0]: dict(zip(present, row[1:], strict=True)) for row in frame.itertuples(index=False)}
