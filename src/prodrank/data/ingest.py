"""Adapters that turn real data into the canonical tables of :mod:`prodrank.data.schema`.

Four sources are handled here (the synthetic world lives elsewhere):

``judgments``     a documented, versioned judgments table (one row per judged pair)
``interactions``  a documented, versioned impression log (one row per impression) plus a
                  catalogue table
``home_depot``    the Kaggle Home Depot search-relevance train set (graded judgments)
``bestbuy``       the Kaggle Best Buy small click log (clicks only, no impressions)

The input formats (version ``"1"``) are specified in ``docs/data_formats.md``. Every
adapter returns a dict of DataFrames keyed by table name: ``catalog``, ``queries`` and
``interactions``; ``relevance`` only where true graded relevance exists (judgment sources);
``positions`` only where the positions really shown are logged (an interactions log).

Conventions shared by all adapters:

* ``query_id`` is ``"Q" + sha1(normalised query)[:12]``; the normalised query
  (lowercase, whitespace collapsed, stripped) is also the ``query`` text, so the two
  correspond one to one and the id is stable across runs and sources.
* ``frequency`` is assigned by traffic share, the same rule for every source: queries
  are sorted by their total impressions (descending, ties by ``query_id``); those that
  start before 50 % of cumulative impressions are ``head``, before 80 % ``torso``, the
  rest ``tail``.
* ``gap_*`` tags are ``False`` (unknown for real data).
* bad input raises :class:`InputFormatError` naming the file and the problem; a missing
  file raises :class:`FileNotFoundError`.
"""
from __future__ import annotations

import csv
import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prodrank.config import BestBuySource, DataConfig, HomeDepotSource
from prodrank.data.frequency import frequency_buckets
from prodrank.data.repair import TextRepair
from prodrank.data.schema import (
    CATALOG,
    CATALOG_COLUMNS,
    COUNT_COLUMNS,
    GAP_TAGS,
    INTERACTIONS,
    POSITIONS,
    QUERIES,
    RELEVANCE,
)
from prodrank.data.text import canonical_query
from prodrank.io import read_table

log = logging.getLogger(__name__)

FORMAT_VERSION = "1"

JUDGMENT_REQUIRED = ("query", "product_id", "grade")
INTERACTION_REQUIRED = ("query", "product_id", "position", "clicked", "added_to_cart", "purchased")
INTERACTION_OPTIONAL = ("timestamp", "session_id")
CATALOG_REQUIRED = ("product_id", "title")
CATALOG_TEXT_OPTIONAL = ("description", "brand", "category", "attributes")
CATALOG_NUMERIC_OPTIONAL = ("price", "rating", "popularity")

HOME_DEPOT_ENCODING = "ISO-8859-1"
HOME_DEPOT_GRADE_SCALE = (1.0, 3.0)
BESTBUY_CLICK_FILES = ("clicks_part1.csv", "clicks_part2.csv")
BESTBUY_CATALOG_FILE = "sku_name.tsv"

_MAX_EXAMPLES = 5


class InputFormatError(ValueError):
    """An input file does not follow its documented format; the message names file and problem."""


# --------------------------------------------------------------------------- helpers


def make_query_id(text: str) -> str:
    """Deterministic id of a query: ``"Q"`` + the first 12 hex chars of sha1(normalised text)."""
    return "Q" + hashlib.sha1(canonical_query(text).encode("utf-8")).hexdigest()[:12]


def grade_to_relevance(
    grades: pd.Series, scale: tuple[float, float] | None = None
) -> pd.Series:
    """Map raw grades to the integer 0..3 relevance scale used for graded NDCG.

    With ``scale=(lo, hi)`` grades are rescaled linearly from [lo, hi] to [0, 3] and
    rounded half up. Without it: grades that are already integers in 0..3 are used as they
    are; otherwise the observed [min, max] is used as the scale.
    """
    g = grades.astype(float)
    if scale is None:
        if len(g) and ((g % 1 == 0) & g.between(0, 3)).all():
            return g.astype("int64")
        scale = (float(g.min()), float(g.max())) if len(g) else (0.0, 3.0)
    lo, hi = scale
    if hi <= lo:
        return g.round().clip(0, 3).astype("int64")
    scaled = np.floor((g - lo) / (hi - lo) * 3 + 0.5 + 1e-9)
    return scaled.clip(0, 3).astype("int64")


def _resolve(path: str | Path, root: str | Path | None) -> Path:
    path = Path(path)
    if root is not None and not path.is_absolute():
        return Path(root) / path
    return path


def _line_numbers(df: pd.DataFrame, mask: pd.Series) -> list[str]:
    """Example locations of bad rows: CSV line numbers (header = line 1) or Parquet rows."""
    idx = np.flatnonzero(mask.to_numpy())[:_MAX_EXAMPLES]
    return [str(i + 2) for i in idx]


def _bad_values_message(df: pd.DataFrame, col: str, mask: pd.Series) -> str:
    lines = _line_numbers(df, mask)
    values = [repr(v) for v in df.loc[mask.to_numpy(), col].head(_MAX_EXAMPLES)]
    examples = ", ".join(f"{v} (line {n})" for v, n in zip(values, lines, strict=True))
    return f"{int(mask.sum())} bad value(s), e.g. {examples}"


def _read(
    path: str | Path,
    kind: str,
    required: Iterable[str],
    *,
    encoding: str = "utf-8",
    str_columns: Iterable[str] = (),
    text_columns: Iterable[str] = (),
    repair: TextRepair | None = None,
    **csv_kwargs: Any,
) -> pd.DataFrame:
    """Read a CSV/Parquet input table, turning every failure into a clear error; its free-text
    ``text_columns`` are repaired by ``repair`` (``data.text_repair``) before anything reads them."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{kind} file not found: {path}")
    if path.is_file() and path.stat().st_size == 0:
        raise InputFormatError(f"{path}: the {kind} file is empty (expected a header row and data)")
    read_encoding = "utf-8-sig" if encoding.lower().replace("_", "-") in {"utf-8", "utf8"} else encoding
    kwargs: dict[str, Any] = {}
    if path.suffix != ".parquet":
        kwargs = {
            "encoding": read_encoding,
            "dtype": {c: str for c in str_columns},
            "keep_default_na": False,  # a query or title "NA" / "null" stays text
            "na_values": [""],
            **csv_kwargs,
        }
    try:
        df = read_table(path, **kwargs)
    except UnicodeDecodeError as err:
        raise InputFormatError(
            f"{path}: cannot decode the {kind} file as {encoding} "
            f"(byte {err.object[err.start:err.start + 1]!r} at offset {err.start}: {err.reason}). "
            f"The file must be {encoding}-encoded text; re-save it as UTF-8, or pass the "
            f"file's real encoding (e.g. encoding='ISO-8859-1')."
        ) from None
    except pd.errors.EmptyDataError:
        raise InputFormatError(f"{path}: the {kind} file is empty (no header row)") from None
    except pd.errors.ParserError as err:
        raise InputFormatError(f"{path}: not a well-formed CSV {kind} file: {err}") from None
    except FileNotFoundError:
        raise
    except (ValueError, OSError) as err:  # unsupported extension, corrupt Parquet / zip
        raise InputFormatError(f"{path}: cannot read the {kind} file: {err}") from None
    except Exception as err:  # pyarrow errors do not all derive from ValueError
        raise InputFormatError(f"{path}: cannot read the {kind} file: {err}") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputFormatError(
            f"{path}: missing required column(s) {', '.join(repr(c) for c in missing)} "
            f"for the {kind} format (version {FORMAT_VERSION}); found columns {list(df.columns)}"
        )
    if df.empty:
        raise InputFormatError(f"{path}: the {kind} file has a header but no data rows")
    df = df.reset_index(drop=True)
    return repair.frame(df, kind, text_columns) if repair is not None else df


def _text(df: pd.DataFrame, col: str, path: Path, *, required: bool) -> pd.Series:
    """A text column as str with nulls kept as None; required columns may not be blank."""
    s = df[col]
    null = s.isna()
    out = s.astype(object).where(null, s.astype(str).str.strip())
    if required:
        blank = null | (out.astype(str) == "")
        if blank.any():
            raise InputFormatError(
                f"{path}: column {col!r} must not be empty; {int(blank.sum())} empty value(s), "
                f"e.g. line(s) {', '.join(_line_numbers(df, blank))}"
            )
    else:
        out = out.where(~(out.astype(str) == ""), None)
    return out.where(out.notna(), None)


def _ids(df: pd.DataFrame, col: str, path: Path) -> pd.Series:
    s = df[col]
    if pd.api.types.is_float_dtype(s) and s.dropna().mod(1).eq(0).all():
        s = s.astype("Int64")  # Parquet floats 101.0 -> "101"
    return _text(df.assign(**{col: s}), col, path, required=True).astype(str)


def _numeric(df: pd.DataFrame, col: str, path: Path, *, required: bool) -> pd.Series:
    s = df[col]
    if pd.api.types.is_bool_dtype(s):
        s = s.astype(int)
    num = pd.to_numeric(s, errors="coerce")
    bad = s.notna() & num.isna()
    if bad.any():
        raise InputFormatError(
            f"{path}: column {col!r} must be numeric; {_bad_values_message(df, col, bad)}"
        )
    if required and num.isna().any():
        miss = num.isna()
        raise InputFormatError(
            f"{path}: column {col!r} must not be empty; {int(miss.sum())} empty value(s), "
            f"e.g. line(s) {', '.join(_line_numbers(df, miss))}"
        )
    return num.astype(float)


_TRUE = {"1", "1.0", "true", "t", "yes", "y"}
_FALSE = {"0", "0.0", "false", "f", "no", "n"}


def _flag(df: pd.DataFrame, col: str, path: Path) -> pd.Series:
    """A 0/1 (or boolean) event flag as int64."""
    s = df[col]
    if pd.api.types.is_bool_dtype(s):
        return s.astype("int64")
    if pd.api.types.is_numeric_dtype(s):
        ok = s.isin([0, 1])
        out = s.where(ok, 0)
    else:
        text = s.astype(str).str.strip().str.lower()
        ok = s.notna() & text.isin(_TRUE | _FALSE)
        out = text.isin(_TRUE).astype(int)
    if not ok.all():
        raise InputFormatError(
            f"{path}: column {col!r} must be 0/1 or true/false; "
            f"{_bad_values_message(df, col, ~ok)}"
        )
    return out.astype("int64")


def _timestamps(df: pd.DataFrame, col: str, path: Path) -> pd.Series:
    s = df[col]
    if pd.api.types.is_datetime64_any_dtype(s):
        ts = s
    else:
        ts = pd.to_datetime(s, errors="coerce", format="ISO8601")
        if (s.notna() & ts.isna()).any():  # not all ISO 8601: let pandas infer per value
            ts = pd.to_datetime(s, errors="coerce", format="mixed")
        bad = s.notna() & ts.isna()
        if bad.any():
            raise InputFormatError(
                f"{path}: column {col!r} must hold date-times (ISO 8601, e.g. "
                f"2024-05-01 13:45:00); {_bad_values_message(df, col, bad)}"
            )
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return ts.astype("datetime64[ns]")


def _queries_column(df: pd.DataFrame, path: Path) -> tuple[pd.Series, pd.Series]:
    """(normalised query text, query_id) for the ``query`` column; blank queries are errors."""
    raw = _text(df, "query", path, required=True)
    norm = raw.map(canonical_query)
    blank = norm == ""
    if blank.any():
        raise InputFormatError(
            f"{path}: column 'query' must not be blank; line(s) {', '.join(_line_numbers(df, blank))}"
        )
    return norm, norm.map(make_query_id)


def _finish_catalog(cat: pd.DataFrame) -> pd.DataFrame:
    """All canonical catalogue columns in order (absent optional ones as nulls), sorted by id."""
    cat = cat.copy()
    for col in CATALOG_COLUMNS:
        if col not in cat.columns:
            cat[col] = np.nan if col in CATALOG_NUMERIC_OPTIONAL else None
    cat = cat[list(CATALOG_COLUMNS)]
    for col in CATALOG_NUMERIC_OPTIONAL:
        cat[col] = cat[col].astype(float)
    for col in ("title", *CATALOG_TEXT_OPTIONAL):
        cat[col] = cat[col].astype(object).where(cat[col].notna(), None)
    cat["product_id"] = cat["product_id"].astype(str)
    return cat.sort_values("product_id", kind="mergesort").reset_index(drop=True)


def _catalog_from_frame(df: pd.DataFrame, path: Path, title_col: str = "title") -> pd.DataFrame:
    """Canonical catalogue rows from a frame holding product_id, a title column and optionals."""
    out = pd.DataFrame({"product_id": _ids(df, "product_id", path)})
    out["title"] = _text(df, title_col, path, required=False)
    for col in CATALOG_TEXT_OPTIONAL:
        if col in df.columns:
            out[col] = _text(df, col, path, required=False)
    for col in CATALOG_NUMERIC_OPTIONAL:
        if col in df.columns:
            out[col] = _numeric(df, col, path, required=False)
    # one row per product: the first non-null value of each field, in file order
    cat = out.groupby("product_id", sort=False).first().reset_index()
    untitled = cat["title"].isna()
    if untitled.any():
        raise InputFormatError(
            f"{path}: product(s) without a title in column {title_col!r}: "
            f"{cat.loc[untitled, 'product_id'].head(_MAX_EXAMPLES).tolist()}"
        )
    return _finish_catalog(cat)


def _build_queries(
    interactions: pd.DataFrame, texts: pd.Series, with_timestamp: bool
) -> pd.DataFrame:
    """Queries table for the query ids in ``interactions``; ``texts`` maps query_id -> text."""
    traffic = interactions.groupby("query_id")["impressions"].sum()
    queries = pd.DataFrame({"query_id": traffic.index.astype(str)})
    queries["query"] = queries["query_id"].map(texts).astype(str)
    queries["frequency"] = frequency_buckets(traffic).to_numpy()
    for tag in GAP_TAGS:
        queries[f"gap_{tag}"] = False
    if with_timestamp:
        first = interactions.groupby("query_id")["timestamp"].min()
        queries["timestamp"] = queries["query_id"].map(first).astype("datetime64[ns]")
    return queries.sort_values("query_id", kind="mergesort").reset_index(drop=True)


def _restrict(tables: dict[str, pd.DataFrame], keep_qids: Iterable[str]) -> dict[str, pd.DataFrame]:
    keep = set(keep_qids)
    out = dict(tables)
    for name in (QUERIES, INTERACTIONS, RELEVANCE, POSITIONS):
        if name in out:
            out[name] = out[name][out[name]["query_id"].isin(keep)].reset_index(drop=True)
    return out


def _int_counts(df: pd.DataFrame) -> pd.DataFrame:
    for col in ("impressions", "clicks", "add_to_carts", "purchases"):
        df[col] = df[col].astype("int64")
    df["position"] = df["position"].astype(float)
    return df


# --------------------------------------------------------------------------- catalogue


def load_catalog(path: str | Path, *, encoding: str = "utf-8", repair: TextRepair | None = None) -> pd.DataFrame:
    """Read a catalogue table (format version 1): ``product_id, title`` required, optional
    ``description, brand, category, attributes, price, rating, popularity``.

    Duplicate product ids keep their first row (logged). Returns the canonical catalogue.
    """
    path = Path(path)
    df = _read(path, "catalogue", CATALOG_REQUIRED, encoding=encoding,
               str_columns=("product_id", "title", *CATALOG_TEXT_OPTIONAL),
               text_columns=("title", *CATALOG_TEXT_OPTIONAL), repair=repair)
    _text(df, "title", path, required=True)  # every catalogue row needs a title
    dup = df["product_id"].astype(str).str.strip().duplicated()
    if dup.any():
        log.warning("%s: %d duplicate product_id row(s); keeping the first of each", path, int(dup.sum()))
    return _catalog_from_frame(df, path)


# --------------------------------------------------------------------------- judgments


def _judgment_tables(
    df: pd.DataFrame,
    path: Path,
    *,
    catalog: pd.DataFrame | None,
    title_col: str | None,
    grade_scale: tuple[float, float] | None,
) -> dict[str, pd.DataFrame]:
    """Canonical tables from a frame with ``query, product_id, grade`` (+ title/optional fields)."""
    norm, qid = _queries_column(df, path)
    pid = _ids(df, "product_id", path)
    grade = _numeric(df, "grade", path, required=True)
    pairs = pd.DataFrame({"query_id": qid, "product_id": pid, "grade": grade,
                          "order": np.arange(len(df))})
    texts = pd.Series(norm.to_numpy(), index=qid.to_numpy())
    texts = texts[~texts.index.duplicated()]

    if catalog is None:
        assert title_col is not None
        cat = _catalog_from_frame(df, path, title_col=title_col)
    else:
        cat = catalog
        unknown = ~pairs["product_id"].isin(set(cat["product_id"]))
        if unknown.all():
            raise InputFormatError(
                f"{path}: none of the judged product_ids is in the catalogue "
                f"(e.g. {pairs['product_id'].head(3).tolist()})"
            )
        if unknown.any():
            log.warning("%s: dropping %d judgment row(s) whose product_id is not in the catalogue "
                        "(%d distinct products)", path, int(unknown.sum()),
                        pairs.loc[unknown, "product_id"].nunique())
            pairs = pairs[~unknown]

    dups = pairs.duplicated(["query_id", "product_id"])
    if dups.any():
        log.info("%s: %d duplicate (query, product) judgment row(s); averaging their grades",
                 path, int(dups.sum()))
    agg = (pairs.groupby(["query_id", "product_id"], sort=False)
           .agg(grade=("grade", "mean"), order=("order", "min")).reset_index())
    agg["position"] = agg.groupby("query_id")["order"].rank(method="first").astype(float)
    inter = pd.DataFrame({
        "query_id": agg["query_id"].astype(str),
        "product_id": agg["product_id"].astype(str),
        "impressions": 1,
        "position": agg["position"],
        "clicks": 0,
        "add_to_carts": 0,
        "purchases": 0,
        "grade": agg["grade"].astype(float),
    })
    inter = _int_counts(inter).sort_values(["query_id", "position"], kind="mergesort")
    inter = inter.reset_index(drop=True)
    relevance = pd.DataFrame({
        "query_id": inter["query_id"],
        "product_id": inter["product_id"],
        "relevance": grade_to_relevance(inter["grade"], grade_scale).to_numpy(),
    })
    queries = _build_queries(inter, texts, with_timestamp=False)
    return {CATALOG: cat, QUERIES: queries, INTERACTIONS: inter, RELEVANCE: relevance}


def load_judgments(
    path: str | Path,
    catalog_path: str | Path | None = None,
    *,
    encoding: str = "utf-8",
    grade_scale: tuple[float, float] | None = None,
    repair: TextRepair | None = None,
) -> dict[str, pd.DataFrame]:
    """Load a judgments table (format version 1): one row per judged (query, product) pair.

    Required columns ``query, product_id, grade``; ``product_title`` (or ``title``) is
    required unless ``catalog_path`` names a catalogue table, in which case titles and
    product fields come from the catalogue. Optional product fields ``description, brand,
    category, attributes, price`` build the catalogue when none is given.

    Output: interactions with ``grade`` (duplicates averaged), ``impressions = 1``, zero
    counts and ``position`` = the pair's rank within its query in file order (1-based);
    ``relevance`` = the grade mapped to 0..3 (see :func:`grade_to_relevance`; pass
    ``grade_scale=(lo, hi)`` to fix the scale instead of inferring it).
    """
    path = Path(path)
    catalog = load_catalog(catalog_path, encoding=encoding, repair=repair) if catalog_path is not None else None
    df = _read(path, "judgments", JUDGMENT_REQUIRED, encoding=encoding,
               str_columns=("query", "product_id", "product_title", "title", *CATALOG_TEXT_OPTIONAL),
               text_columns=("query", "product_title", "title", *CATALOG_TEXT_OPTIONAL), repair=repair)
    title_col = None
    if catalog is None:
        title_col = next((c for c in ("product_title", "title") if c in df.columns), None)
        if title_col is None:
            raise InputFormatError(
                f"{path}: missing required column 'product_title' (or 'title'); it is required "
                f"for the judgments format (version {FORMAT_VERSION}) unless a catalogue file is "
                f"given; found columns {list(df.columns)}"
            )
    return _judgment_tables(df, path, catalog=catalog, title_col=title_col, grade_scale=grade_scale)


# --------------------------------------------------------------------------- interactions


def load_interactions(
    path: str | Path, catalog_path: str | Path, *, encoding: str = "utf-8", repair: TextRepair | None = None
) -> dict[str, pd.DataFrame]:
    """Load an impression log (format version 1) and its catalogue table.

    Required columns ``query, product_id, position, clicked, added_to_cart, purchased``
    (flags 0/1 or boolean), optional ``timestamp, session_id``; one row per impression.
    Rows are aggregated to one canonical row per (query, product): impressions = row
    count, position = mean position, counts = sums, timestamp = first impression; and to one
    ``positions`` row per (query, product, position), which is why positions must be whole
    numbers (the rank shown).

    A purchase implies an add-to-cart and a click (the funnel is closed per impression,
    logged as a warning when the input violates it). Impressions of products missing from
    the catalogue are dropped (logged). No ``relevance`` table: a log has no true grades.
    """
    path = Path(path)
    if catalog_path is None:
        raise InputFormatError(f"{path}: the interactions format needs a catalogue file (catalog path)")
    catalog = load_catalog(catalog_path, encoding=encoding, repair=repair)
    df = _read(path, "interactions", INTERACTION_REQUIRED, encoding=encoding,
               str_columns=("query", "product_id", "session_id"), text_columns=("query",), repair=repair)
    norm, qid = _queries_column(df, path)
    pid = _ids(df, "product_id", path)
    position = _numeric(df, "position", path, required=True)
    if (position < 1).any():
        raise InputFormatError(
            f"{path}: column 'position' must be >= 1 (1 = top of the list); "
            f"{_bad_values_message(df, 'position', position < 1)}"
        )
    fractional = position % 1 != 0
    if fractional.any():
        raise InputFormatError(
            f"{path}: column 'position' must hold whole numbers (the rank the product was shown at); "
            f"{_bad_values_message(df, 'position', fractional)}"
        )
    clicked = _flag(df, "clicked", path)
    cart = _flag(df, "added_to_cart", path)
    bought = _flag(df, "purchased", path)
    violations = ((bought > cart) | (cart > clicked))
    if violations.any():
        log.warning("%s: %d impression(s) break the funnel (purchase without add-to-cart, or "
                    "add-to-cart without click); treating a purchase as implying add-to-cart and "
                    "click", path, int(violations.sum()))
        cart = np.maximum(cart, bought)
        clicked = np.maximum(clicked, cart)
    rows = pd.DataFrame({"query_id": qid, "product_id": pid, "position": position,
                         "clicks": clicked, "add_to_carts": cart, "purchases": bought})
    has_time = "timestamp" in df.columns and df["timestamp"].notna().any()
    if has_time:
        rows["timestamp"] = _timestamps(df, "timestamp", path)
        if rows["timestamp"].isna().any():
            log.warning("%s: %d impression(s) without a timestamp", path, int(rows["timestamp"].isna().sum()))
    texts = pd.Series(norm.to_numpy(), index=qid.to_numpy())
    texts = texts[~texts.index.duplicated()]

    unknown = ~rows["product_id"].isin(set(catalog["product_id"]))
    if unknown.all():
        raise InputFormatError(
            f"{path}: none of the logged product_ids is in the catalogue {catalog_path} "
            f"(e.g. {rows['product_id'].head(3).tolist()})"
        )
    if unknown.any():
        log.warning("%s: dropping %d impression(s) of %d product(s) missing from the catalogue",
                    path, int(unknown.sum()), rows.loc[unknown, "product_id"].nunique())
        rows = rows[~unknown]

    aggs: dict[str, tuple[str, str]] = {
        "impressions": ("position", "size"), "position": ("position", "mean"),
        "clicks": ("clicks", "sum"), "add_to_carts": ("add_to_carts", "sum"),
        "purchases": ("purchases", "sum"),
    }
    if has_time:
        aggs["timestamp"] = ("timestamp", "min")
    inter = rows.groupby(["query_id", "product_id"], sort=False).agg(**aggs).reset_index()
    inter = _int_counts(inter).sort_values(["query_id", "position", "product_id"], kind="mergesort")
    inter = inter.reset_index(drop=True)
    queries = _build_queries(inter, texts, with_timestamp=has_time)
    return {CATALOG: catalog, QUERIES: queries, INTERACTIONS: inter, POSITIONS: _positions(rows)}


def _positions(rows: pd.DataFrame) -> pd.DataFrame:
    """The positions table of impression rows (funnel closed): counts per (query, product, position)."""
    table = (rows.groupby(["query_id", "product_id", "position"], sort=True)
             .agg(impressions=("clicks", "size"), clicks=("clicks", "sum"),
                  add_to_carts=("add_to_carts", "sum"), purchases=("purchases", "sum"))
             .reset_index())
    return table.astype(dict.fromkeys(("position", *COUNT_COLUMNS), "int64"))


# --------------------------------------------------------------------------- Home Depot


def load_home_depot(
    cfg: HomeDepotSource, *, root: str | Path | None = None, encoding: str = HOME_DEPOT_ENCODING,
    repair: TextRepair | None = None,
) -> dict[str, pd.DataFrame]:
    """The Kaggle Home Depot search-relevance train set as graded judgments.

    ``product_uid`` -> product_id, ``search_term`` -> query (normalised), ``relevance``
    (raters' mean, 1..3) -> grade, mapped linearly to relevance 0..3 (1 -> 0, 2 -> 2,
    2.67 -> 3; rounded half up). Only queries with at least ``cfg.min_distinct_grades``
    distinct (averaged) grades are kept, so each is usable for NDCG. The catalogue holds
    the kept products with their titles (the first title where a product has two spellings);
    the train set has no descriptions or attributes. ``cfg.path`` is relative to ``root``
    (default: the working directory, i.e. the project root).
    """
    path = _resolve(cfg.path, root)
    df = _read(path, "Home Depot train", ("product_uid", "product_title", "search_term", "relevance"),
               encoding=encoding, str_columns=("product_uid", "product_title", "search_term"),
               text_columns=("product_title", "search_term"), repair=repair)
    df = df.rename(columns={"product_uid": "product_id", "search_term": "query",
                            "relevance": "grade"})
    tables = _judgment_tables(df, path, catalog=None, title_col="product_title",
                              grade_scale=HOME_DEPOT_GRADE_SCALE)
    inter = tables[INTERACTIONS]
    distinct = inter.groupby("query_id")["grade"].nunique()
    keep = distinct.index[distinct >= cfg.min_distinct_grades]
    log.info("%s: %d pairs, %d queries; keeping %d queries with >= %d distinct grades",
             path, len(inter), len(distinct), len(keep), cfg.min_distinct_grades)
    if len(keep) == 0:
        raise InputFormatError(f"{path}: no query has >= {cfg.min_distinct_grades} distinct grades")
    tables = _restrict(tables, keep)
    # recompute traffic buckets on the kept queries, restrict the catalogue to kept products
    tables[QUERIES] = _build_queries(
        tables[INTERACTIONS], tables[QUERIES].set_index("query_id")["query"], with_timestamp=False)
    used = set(tables[INTERACTIONS]["product_id"])
    cat = tables[CATALOG]
    tables[CATALOG] = cat[cat["product_id"].isin(used)].reset_index(drop=True)
    return tables


# --------------------------------------------------------------------------- Best Buy


def _bestbuy_catalog(path: Path, repair: TextRepair | None) -> pd.DataFrame:
    df = _read(path, "Best Buy SKU names", (), encoding="utf-8", header=None, text_columns=("title",), repair=repair,
               names=["product_id", "title"], dtype=str, quoting=csv.QUOTE_NONE)
    if df.shape[1] != 2:
        raise InputFormatError(f"{path}: expected 2 tab-separated columns (sku, name)")
    return _catalog_from_frame(df, path)


def load_bestbuy(
    cfg: BestBuySource, seed: int, *, root: str | Path | None = None, repair: TextRepair | None = None
) -> dict[str, pd.DataFrame]:
    """The Kaggle Best Buy (small, Xbox 360 games) search -> click log.

    The log has clicks only: each row is one click on ``sku`` after a search for ``query``
    at ``query_time`` by ``user``. It is turned into canonical interactions as follows.

    * Candidate set: the 437-product catalogue in ``sku_name.tsv``. Clicks on SKUs missing
      from it are dropped (count logged; about 0.7 % of clicks).
    * Searches: one search = one distinct (user, query_time, normalised query); a search
      with several clicked SKUs appears as several log rows. ``n_q`` = searches of query q.
    * Positives: every SKU clicked for q, with ``clicks`` = its click count (<= n_q).
    * Negatives: ``cfg.negatives_per_query`` catalogue SKUs not clicked for q, sampled
      without replacement with probability proportional to (global click count + 1) --
      popularity-weighted, because popular titles are the ones a store search most likely
      showed, and because uniform negatives would be mostly obscure items that a popularity
      baseline separates trivially. Sampling uses a per-query generator seeded by
      (``seed``, query_id), so it is deterministic and independent of query order.
    * ``impressions`` = n_q for every candidate row of q (assumption: each search of q
      showed the whole candidate list), so clicks / impressions is the SKU's click share
      for the query and the funnel holds; ``add_to_carts = purchases = 0``.
    * ``position``: the log records no ranks, so each query's candidates get positions
      1..n in a deterministic random order (same generator). Ranking them by click count
      would leak the label into any position-based baseline or feature.
    * ``timestamp``: first ``query_time`` the SKU was clicked for q (positives) or the
      query's first ``query_time`` (negatives); queries carry their first-seen time, so a
      time split (Aug–Sep train, Oct test) can assign whole queries by it. Counts aggregate
      the whole log (Aug–Oct).

    No ``relevance`` table: click counts are engagement, not graded relevance.
    """
    base = _resolve(cfg.dir, root)
    catalog = _bestbuy_catalog(base / BESTBUY_CATALOG_FILE, repair)
    parts = []
    for name in BESTBUY_CLICK_FILES:
        p = base / name
        part = _read(p, "Best Buy clicks", ("user", "sku", "query", "query_time"),
                     str_columns=("user", "sku", "category", "query", "click_time", "query_time"))
        # queries are not repaired: the few whose characters the published log lost (U+FFFD) are
        # dropped below, as a query with a letter missing would be another query
        part["_query_time"] = _timestamps(part, "query_time", p)
        part["_sku"] = _ids(part, "sku", p)
        part["_query"] = part["query"].fillna("").astype(str).map(canonical_query)
        parts.append(part[["user", "_sku", "_query", "_query_time"]])
    log_df = pd.concat(parts, ignore_index=True)
    n_rows = len(log_df)
    blank = log_df["_query"] == ""
    if blank.any():
        log.warning("%s: dropping %d click(s) with a blank query", base, int(blank.sum()))
        log_df = log_df[~blank]
    # the published log already holds U+FFFD in a few queries ("v\ufffddeo games"): the
    # original characters are lost, so those clicks are dropped rather than validated as text
    damaged = log_df["_query"].str.contains("\ufffd", regex=False)
    if damaged.any():
        log.warning("%s: dropping %d click(s) whose query text is damaged in the source (U+FFFD)", base,
                    int(damaged.sum()))
        log_df = log_df[~damaged]
    log_df = log_df.assign(query_id=log_df["_query"].map(make_query_id))

    # searches are counted before dropping unknown SKUs: such a search still showed the
    # candidates, it just ended in a click outside the catalogue
    searches = (log_df.drop_duplicates(["user", "_query_time", "query_id"])
                .groupby("query_id").size())
    first_seen = log_df.groupby("query_id")["_query_time"].min()
    texts = log_df.drop_duplicates("query_id").set_index("query_id")["_query"]

    known = set(catalog["product_id"])
    unknown = ~log_df["_sku"].isin(known)
    if unknown.any():
        log.warning("%s: dropping %d of %d click(s) on %d SKU(s) missing from %s",
                    base, int(unknown.sum()), n_rows, log_df.loc[unknown, "_sku"].nunique(),
                    BESTBUY_CATALOG_FILE)
        log_df = log_df[~unknown]

    pos = (log_df.groupby(["query_id", "_sku"])
           .agg(clicks=("user", "size"), timestamp=("_query_time", "min")).reset_index()
           .rename(columns={"_sku": "product_id"}))
    popularity = log_df.groupby("_sku").size().reindex(catalog["product_id"], fill_value=0)
    skus = popularity.index.to_numpy()
    weights = popularity.to_numpy(dtype=float) + 1.0

    sku_index = {s: i for i, s in enumerate(skus)}
    q_col, p_col, c_col, t_col, pos_col = [], [], [], [], []
    pos = pos.sort_values(["query_id", "product_id"], kind="mergesort")
    bounds = np.flatnonzero(np.r_[True, pos["query_id"].to_numpy()[1:] != pos["query_id"].to_numpy()[:-1]])
    qids, pids = pos["query_id"].to_numpy(), pos["product_id"].to_numpy()
    clicks, times = pos["clicks"].to_numpy(), pos["timestamp"].to_numpy()
    for start, stop in zip(bounds, np.r_[bounds[1:], len(pos)], strict=True):
        qid = qids[start]
        rng = np.random.default_rng([int(seed), int(qid[1:], 16)])
        free = np.ones(len(skus), dtype=bool)
        free[[sku_index[s] for s in pids[start:stop]]] = False
        m = min(cfg.negatives_per_query, int(free.sum()))
        w = weights[free]
        neg = rng.choice(skus[free], size=m, replace=False, p=w / w.sum()) if m else skus[:0]
        n = stop - start + m
        q_col.append(np.full(n, qid, dtype=object))
        p_col.append(np.concatenate([pids[start:stop], neg]))
        c_col.append(np.concatenate([clicks[start:stop], np.zeros(m, dtype=np.int64)]))
        t_col.append(np.concatenate([times[start:stop],
                                     np.full(m, first_seen[qid].to_datetime64(), dtype=times.dtype)]))
        pos_col.append(rng.permutation(n) + 1.0)
    inter = pd.DataFrame({
        "query_id": np.concatenate(q_col), "product_id": np.concatenate(p_col).astype(object),
        "clicks": np.concatenate(c_col), "timestamp": np.concatenate(t_col),
        "position": np.concatenate(pos_col),
    })
    inter["impressions"] = inter["query_id"].map(searches)
    inter["add_to_carts"] = 0
    inter["purchases"] = 0
    inter["timestamp"] = inter["timestamp"].astype("datetime64[ns]")
    inter = _int_counts(inter)[["query_id", "product_id", "impressions", "position", "clicks",
                                "add_to_carts", "purchases", "timestamp"]]
    inter = inter.sort_values(["query_id", "position"], kind="mergesort").reset_index(drop=True)
    queries = _build_queries(inter, texts, with_timestamp=True)
    queries["timestamp"] = queries["query_id"].map(first_seen).astype("datetime64[ns]")
    log.info("%s: %d clicks -> %d queries, %d interaction rows (%d positive)", base, n_rows,
             len(queries), len(inter), int((inter["clicks"] > 0).sum()))
    return {CATALOG: catalog, QUERIES: queries, INTERACTIONS: inter}


# --------------------------------------------------------------------------- dispatch


def ingest(cfg: DataConfig, seed: int, *, root: str | Path | None = None,
           repair: TextRepair | None = None) -> dict[str, pd.DataFrame]:
    """Build the canonical tables for ``cfg.source`` (paths relative to ``root`` or the CWD);
    ``repair`` repairs and counts the free text as it is read (``data.text_repair``)."""
    source = cfg.source
    if source == "judgments":
        if not cfg.judgments.path:
            raise ValueError("data.judgments.path must be set when data.source is 'judgments'")
        cat = cfg.judgments.catalog
        return load_judgments(_resolve(cfg.judgments.path, root),
                              _resolve(cat, root) if cat else None, repair=repair)
    if source == "interactions":
        if not cfg.interactions.path or not cfg.interactions.catalog:
            raise ValueError("data.interactions.path and data.interactions.catalog must both be "
                             "set when data.source is 'interactions'")
        return load_interactions(_resolve(cfg.interactions.path, root),
                                 _resolve(cfg.interactions.catalog, root), repair=repair)
    if source == "home_depot":
        return load_home_depot(cfg.home_depot, root=root, repair=repair)
    if source == "bestbuy":
        return load_bestbuy(cfg.bestbuy, seed, root=root, repair=repair)
    if source == "synthetic":
        raise ValueError("data.source 'synthetic' is generated by the synthetic world, not by "
                         "prodrank.data.ingest; call the world generator instead")
    raise ValueError(f"unknown data.source {source!r}; expected one of "
                     "'synthetic', 'judgments', 'interactions', 'home_depot', 'bestbuy'")
