"""Data validation with Great Expectations: suites as JSON in ``expectations/``, readable reports.

``validate_tables`` checks the canonical tables of :mod:`prodrank.data.schema` (catalog,
queries, interactions, relevance, positions) and ``validate_splits`` checks train/valid/test for
query leakage. Both return a :class:`ValidationReport`; :func:`check` turns a failed report
into a :class:`DataValidationError` whose message is the readable text.

How a table is validated:

1. **Schema first** (plain pandas, before GX, so the message is clear): a table with 0 rows
   fails with "table 'x' is empty", a missing required column fails naming the column. GX is
   not run on such a table.
2. **Derived columns** are added to a copy of the table: rates over impressions for
   interactions (``ctr``, ``atc_rate``, ``purchase_rate``), referential-integrity flags
   (``product_in_catalog``, ``query_in_queries``) for interactions, relevance and positions,
   and for positions ``matches_interactions`` (its pair's rows sum to the pair's interactions
   row), computed against the other tables of the same call. The suites check them like any
   column.
3. **The suite** ``<suites_dir>/<suite>.json`` (``{"name", "expectations": [{"type",
   "kwargs", "meta"?}]}``) runs on the table. An expectation whose column is absent is
   skipped and listed as skipped: required columns were checked in step 1, so this only
   concerns optional columns (``price``, ``timestamp`` ...) and cross-table flags whose other
   table was not passed. Expectations with ``meta.applies_to == "engagement"`` are skipped on
   judgment tables (interactions with a non-null ``grade``), which additionally get the
   ``judgments`` suite.

Every suite's full GX result is written to ``<reports_dir>/<suite>.json`` (with an extra
``prodrank`` key: table, schema errors, skipped expectations) and a summary to
``<reports_dir>/summary.json`` (``splits_summary.json`` for ``validate_splits``), atomically,
and Great Expectations' own Data Docs site (HTML: one page per suite's validation, one per suite,
an index) to ``<reports_dir>/data_docs/`` (``splits_data_docs/``), replaced as a whole. The pages
are GX's templates, which take their styles and scripts from CDNs: offline they show the same
tables unstyled.
``import great_expectations`` takes seconds, so it is imported inside the functions.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prodrank.data.schema import (
    CATALOG,
    COUNT_COLUMNS,
    INTERACTION_COLUMNS,
    INTERACTIONS,
    POSITION_COLUMNS,
    POSITIONS,
    QUERIES,
    QUERY_COLUMNS,
    RELEVANCE,
    RELEVANCE_COLUMNS,
    SPLITS,
    TABLES,
)
from prodrank.data.text import leakage_key
from prodrank.io import atomic_dir, jsonable, write_json

# Columns that must be present (optional columns of schema.py are validated when present).
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    CATALOG: ("product_id", "title"),
    QUERIES: QUERY_COLUMNS,
    INTERACTIONS: INTERACTION_COLUMNS,
    RELEVANCE: RELEVANCE_COLUMNS,
    POSITIONS: POSITION_COLUMNS,
}
JUDGMENTS_SUITE = "judgments"
SPLITS_SUITE = "splits"
TABLE_SUITES = (CATALOG, QUERIES, INTERACTIONS, JUDGMENTS_SUITE, RELEVANCE, POSITIONS)
SUMMARY_FILE = "summary.json"
SPLITS_SUMMARY_FILE = "splits_summary.json"
DATA_DOCS_DIR = "data_docs"  # GX Data Docs of validate_tables, in reports_dir (index.html)
SPLITS_DATA_DOCS_DIR = "splits_data_docs"  # ... of validate_splits: each dvc.yaml stage owns its folder
RATE_COLUMNS = {"ctr": "clicks", "atc_rate": "add_to_carts", "purchase_rate": "purchases"}
_CELL_WIDTH = 48


class DataValidationError(RuntimeError):
    """Raised by :func:`check` for a failed report; the message is ``report.format()``."""


# ----------------------------------------------------------------------------- report model


@dataclass
class Failure:
    """One failed check: a GX expectation, or a schema problem found before GX."""

    suite: str
    table: str
    expectation: str  # GX expectation type, or "schema"
    columns: tuple[str, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    message: str = ""  # schema problems, GX exceptions, aggregate observations
    unexpected_count: int | None = None
    element_count: int | None = None
    unexpected_percent: float | None = None
    observed_value: Any = None
    notes: str = ""  # the expectation's meta.notes from the suite file
    examples: list[dict[str, Any]] = field(default_factory=list)  # offending rows
    example_values: list[Any] = field(default_factory=list)  # when rows are unavailable

    def headline(self) -> str:
        if self.expectation == "schema":
            return self.message
        cols = ", ".join(f"'{c}'" for c in self.columns)
        where = f" on column{'s' if len(self.columns) > 1 else ''} {cols}" if cols else ""
        text = f"{self.expectation}{where}{_describe_kwargs(self.kwargs)}"
        if self.message:
            return f"{text}: {self.message}"
        if self.unexpected_count is not None:
            pct = (f" ({100.0 * self.unexpected_count / self.element_count:.2f}%)"
                   if self.element_count else "")
            return f"{text}: {self.unexpected_count} unexpected of {self.element_count} rows{pct}"
        if self.observed_value is not None:
            return f"{text}: observed {_short(self.observed_value)}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite, "table": self.table, "expectation": self.expectation,
            "columns": list(self.columns), "kwargs": jsonable(self.kwargs, non_finite="string"),
            "message": self.message,
            "unexpected_count": self.unexpected_count, "element_count": self.element_count,
            "unexpected_percent": self.unexpected_percent,
            "observed_value": jsonable(self.observed_value, non_finite="string"),
            "notes": self.notes, "examples": jsonable(self.examples, non_finite="string"),
            "example_values": jsonable(self.example_values, non_finite="string"),
            "headline": self.headline(),
        }


@dataclass
class SuiteResult:
    suite: str
    table: str
    rows: int
    success: bool
    evaluated: int = 0
    failures: list[Failure] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {expectation, columns, reason}
    report_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite, "table": self.table, "rows": self.rows, "success": self.success,
            "evaluated_expectations": self.evaluated, "failed": len(self.failures),
            "failures": [f.to_dict() for f in self.failures], "skipped": self.skipped,
            "report": self.report_path,
        }


@dataclass
class ValidationReport:
    suites: list[SuiteResult]
    reports_dir: str | None = None
    max_example_rows: int = 5
    text_repair: dict[str, Any] | None = None  # {"mode", "changed": {"<kind>.<column>": n}} from ingest
    repair_setting: str | None = None  # data.text_repair, for the advice on text hygiene failures

    @property
    def success(self) -> bool:
        return all(s.success for s in self.suites)

    @property
    def failures(self) -> list[Failure]:
        return [f for s in self.suites for f in s.failures]

    def suite(self, name: str) -> SuiteResult:
        for s in self.suites:
            if s.suite == name:
                return s
        raise KeyError(f"no suite {name!r} in this report (have: {[s.suite for s in self.suites]})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "suites": {s.suite: s.to_dict() for s in self.suites},
            "failed_suites": [s.suite for s in self.suites if not s.success],
            "text_repair": self.text_repair,
        }

    def format(self) -> str:
        failed = [s for s in self.suites if not s.success]
        if failed:
            head = (f"Data validation FAILED: {len(failed)} of {len(self.suites)} suite(s) failed "
                    f"({', '.join(s.suite for s in failed)})")
        else:
            head = f"Data validation passed: {len(self.suites)} suite(s) ok"
        lines = [head]
        if self.reports_dir:
            lines.append(f"full reports: {self.reports_dir}")
        if self.text_repair:
            changed = self.text_repair.get("changed") or {}
            counts = ", ".join(f"{column} {n}" for column, n in changed.items()) or "nothing to repair"
            lines.append(f"text repair ({self.text_repair.get('mode')}): values changed per column: {counts}")
        for s in self.suites:
            lines.append("")
            status = "FAIL" if not s.success else "ok"
            counts = (f"{len(s.failures)} of {s.evaluated} expectations failed" if s.evaluated
                      else f"{len(s.failures)} problem(s), expectations not run")
            if s.success:
                counts = f"{s.evaluated} expectations passed"
            lines.append(f"[{status}] suite '{s.suite}' on table '{s.table}' ({s.rows} rows): {counts}")
            for f in s.failures:
                lines.append(f"  - {f.headline()}")
                if f.notes:
                    lines.append(f"      ({f.notes})")
                if is_text_hygiene(f):
                    lines.append(f"      -> {text_repair_advice(self.repair_setting)}")
                lines.extend(_format_examples(f, self.max_example_rows))
            if s.skipped:
                lines.append(f"  (skipped {len(s.skipped)}: {_format_skipped(s.skipped)})")
        return "\n".join(lines)

    __str__ = format


TEXT_HYGIENE_NOTES = ("U+FFFD", "mojibake")  # words in the suites' notes of text-damage expectations


def is_text_hygiene(failure: Failure) -> bool:
    """A failure on damaged text (wrong decoding), which ingest's text repair removes."""
    return any(word in failure.notes for word in TEXT_HYGIENE_NOTES)


def text_repair_advice(setting: str | None) -> str:
    if setting == "ftfy":
        return ("data.text_repair is ftfy and this text was still damaged after repair: "
                "fix the file's encoding at its source")
    return "set data.text_repair: ftfy in params.yaml: ingest then repairs such text (mojibake, U+FFFD, control characters)"


def check(report: ValidationReport) -> ValidationReport:
    """Raise :class:`DataValidationError` (message = readable report) unless ``report.success``."""
    if not report.success:
        raise DataValidationError(report.format())
    return report


# ----------------------------------------------------------------------------- public API


def validate_tables(
    tables: Mapping[str, pd.DataFrame | None],
    suites_dir: str | Path = "expectations",
    reports_dir: str | Path = "reports/validation",
    max_example_rows: int = 5,
    *,
    summary_name: str = SUMMARY_FILE,
    docs_name: str = DATA_DOCS_DIR,
    text_repair: dict[str, Any] | None = None,
    repair_setting: str | None = None,
) -> ValidationReport:
    """Validate the canonical tables present in ``tables`` (keys from ``schema.TABLES``).

    Runs ``catalog``, ``queries``, ``interactions`` (+ ``judgments`` when the interactions
    table has a non-null ``grade``), ``relevance`` and ``positions``; cross-table checks use
    whichever of ``catalog``/``queries``/``interactions`` are passed. Writes one report per
    suite plus ``summary_name``.
    ``text_repair``: what ingest's text repair changed (shown in the report); ``repair_setting``:
    the current ``data.text_repair``, named in the advice when text hygiene fails.
    """
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise ValueError(f"unknown table name(s) {unknown}; expected some of {list(TABLES)}")
    present = {name: df for name, df in tables.items() if df is not None}
    suites_dir, reports_dir = Path(suites_dir), Path(reports_dir)
    # Schema problems first; tables that pass are usable as references for cross-table checks.
    schema_errors = {name: _schema_errors(name, df) for name, df in present.items()}
    usable = {name: df for name, df in present.items() if not schema_errors[name]}

    runner = _Runner(max_example_rows)
    results: list[SuiteResult] = []
    for name in TABLES:
        if name not in present:
            continue
        df = present[name]
        is_judgments = (name == INTERACTIONS and isinstance(df, pd.DataFrame)
                        and "grade" in df.columns and bool(df["grade"].notna().any()))
        suite_names = [name] + ([JUDGMENTS_SUITE] if is_judgments else [])
        if schema_errors[name]:
            for suite_name in suite_names:
                results.append(_schema_failure(suite_name, name, df, schema_errors[name]))
            continue
        frame, skipped_refs = _derive(name, df, usable)
        for suite_name in suite_names:
            spec = _load_suite(suites_dir, suite_name)
            results.append(runner.run(spec, name, frame, is_judgments=is_judgments,
                                      extra_skips=skipped_refs))

    report = ValidationReport(results, str(reports_dir), max_example_rows, text_repair, repair_setting)
    _write_reports(report, runner, reports_dir, summary_name, manage=TABLE_SUITES)
    runner.build_data_docs(reports_dir / docs_name)
    return report


def validate_splits(
    splits: Mapping[str, Mapping[str, pd.DataFrame | None]],
    suites_dir: str | Path = "expectations",
    reports_dir: str | Path = "reports/validation",
    max_example_rows: int = 5,
    *,
    summary_name: str = SPLITS_SUMMARY_FILE,
    docs_name: str = SPLITS_DATA_DOCS_DIR,
) -> ValidationReport:
    """Check train/valid/test for leakage: no query (by id, nor by normalised text) in two splits.

    ``splits`` maps split name -> {table name -> frame}, e.g. ``{"train": {"queries": q,
    "interactions": i}, "valid": {...}, "test": {...}}``; the transposed layout (table -> split
    -> frame) is accepted too. Query ids are collected from every table with a ``query_id``
    column, query text from the ``queries`` tables. An empty split fails.
    """
    splits = _orient_splits(splits)
    suites_dir, reports_dir = Path(suites_dir), Path(reports_dir)
    problems: list[str] = []
    ids: list[pd.DataFrame] = []
    texts: list[pd.DataFrame] = []
    n_rows = 0
    for split, tables in splits.items():
        tables = {k: v for k, v in tables.items() if v is not None}
        rows = sum(len(df) for df in tables.values())
        n_rows += rows
        if rows == 0:
            problems.append(f"split '{split}' is empty (0 rows in {sorted(tables) or 'no tables'})")
            continue
        for table, df in tables.items():
            if "query_id" not in df.columns:
                problems.append(f"split '{split}', table '{table}' is missing required column 'query_id'")
                continue
            ids.append(pd.DataFrame({"query_id": df["query_id"].drop_duplicates(), "split": split}))
            if table == QUERIES:
                if "query" not in df.columns:
                    problems.append(f"split '{split}', table 'queries' is missing required column 'query'")
                    continue
                texts.append(pd.DataFrame({"query_id": df["query_id"], "query": df["query"], "split": split}))

    runner = _Runner(max_example_rows)
    label = "query_splits (derived from " + ", ".join(splits) + ")"
    if problems:
        result = _schema_failure(SPLITS_SUITE, label, None, problems, rows=n_rows)
    else:
        frame = _query_split_frame(ids, texts)
        result = runner.run(_load_suite(suites_dir, SPLITS_SUITE), label, frame)
    report = ValidationReport([result], str(reports_dir), max_example_rows)
    _write_reports(report, runner, reports_dir, summary_name, manage=(SPLITS_SUITE,))
    runner.build_data_docs(reports_dir / docs_name)
    return report


# ----------------------------------------------------------------------------- schema & derived


def _schema_errors(name: str, df: pd.DataFrame) -> list[str]:
    if not isinstance(df, pd.DataFrame):
        return [f"table '{name}' is not a DataFrame (got {type(df).__name__})"]
    errors = []
    missing = [c for c in REQUIRED_COLUMNS[name] if c not in df.columns]
    if missing:
        errors.append(f"table '{name}' is missing required column(s) {', '.join(repr(c) for c in missing)}"
                      f" (has: {', '.join(map(str, df.columns))})")
    if len(df) == 0:
        errors.append(f"table '{name}' is empty (0 rows)")
    dupes = df.columns[df.columns.duplicated()].tolist()
    if dupes:
        errors.append(f"table '{name}' has duplicate column name(s) {dupes}")
    return errors


def _schema_failure(suite: str, table: str, df: pd.DataFrame | None, errors: list[str],
                    rows: int | None = None) -> SuiteResult:
    n = rows if rows is not None else (len(df) if isinstance(df, pd.DataFrame) else 0)
    failures = [Failure(suite, table, "schema", message=e) for e in errors]
    return SuiteResult(suite, table, n, False, 0, failures)


def _canonical_dtypes(df: pd.DataFrame) -> pd.DataFrame:
    """Present equivalent pandas dtypes the way GX's type check understands them.

    Arrow/extension string columns become object columns of ``str`` and tz-aware timestamps
    become naive UTC; values are untouched, so wrong types still fail.
    """
    out = {}
    for col in df.columns:
        s = df[col]
        if isinstance(s.dtype, pd.StringDtype) or (
            isinstance(s.dtype, pd.ArrowDtype) and s.dtype.kind in "OSU"
        ):
            out[col] = s.astype(object).where(s.notna(), None)
        elif isinstance(s.dtype, pd.DatetimeTZDtype):
            out[col] = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return df.assign(**out) if out else df


def _derive(name: str, df: pd.DataFrame, usable: Mapping[str, pd.DataFrame]) -> tuple[pd.DataFrame, list[str]]:
    """Copy of ``df`` (RangeIndex) with derived rate and referential-integrity columns."""
    frame = _canonical_dtypes(df.reset_index(drop=True))
    new: dict[str, Any] = {}
    skipped: list[dict[str, Any]] = []
    if name == INTERACTIONS:
        imp = pd.to_numeric(frame["impressions"], errors="coerce").astype(float)
        imp = imp.where(imp > 0)
        for rate, count in RATE_COLUMNS.items():
            new[rate] = pd.to_numeric(frame[count], errors="coerce").astype(float) / imp
    if name in (INTERACTIONS, RELEVANCE, POSITIONS):
        for flag, col, ref in (("product_in_catalog", "product_id", CATALOG),
                               ("query_in_queries", "query_id", QUERIES)):
            if ref in usable:
                new[flag] = frame[col].isin(pd.Index(usable[ref][col].dropna().unique()))
            else:
                skipped.append({"columns": [flag], "reason": f"no valid '{ref}' table to check {col} against"})
    if name == POSITIONS:
        if INTERACTIONS in usable:
            new["matches_interactions"] = _matches_interactions(frame, usable[INTERACTIONS])
        else:
            skipped.append({"columns": ["matches_interactions"],
                            "reason": f"no valid '{INTERACTIONS}' table to sum the positions against"})
    return (frame.assign(**new) if new else frame), skipped


def _matches_interactions(positions: pd.DataFrame, interactions: pd.DataFrame) -> np.ndarray:
    """Per positions row: whether its pair's rows, summed over position, give the pair's
    interactions row (the counts, and ``position * impressions`` for the mean position)."""
    keys = ["query_id", "product_id"]
    columns = ["position", *COUNT_COLUMNS]

    def totals(df: pd.DataFrame) -> pd.DataFrame:
        num = df[columns].apply(pd.to_numeric, errors="coerce").astype(float)
        return num.assign(position=num["position"] * num["impressions"]).set_axis(
            pd.MultiIndex.from_frame(df[keys].astype(object)))

    summed = totals(positions).groupby(level=keys, dropna=False).sum(min_count=1)
    logged = totals(interactions)
    logged = logged[~logged.index.duplicated()].reindex(summed.index)
    counts = list(COUNT_COLUMNS)
    # counts are whole numbers and must match exactly; the mean position is a float: to rounding
    same = (summed[counts] == logged[counts]).all(axis=1) & np.isclose(summed["position"], logged["position"], rtol=1e-9)
    return same.reindex(pd.MultiIndex.from_frame(positions[keys].astype(object))).to_numpy()


def _query_split_frame(ids: list[pd.DataFrame], texts: list[pd.DataFrame]) -> pd.DataFrame:
    """One row per query_id: in how many splits it appears, by id and by normalised text."""
    by_id = pd.concat(ids, ignore_index=True).drop_duplicates()
    id_splits = by_id.groupby("query_id", sort=True, dropna=False)["split"].agg(
        lambda s: ",".join(sorted(set(s))))
    frame = pd.DataFrame({"query_id": id_splits.index, "splits_by_id": id_splits.values})
    frame["n_splits_by_id"] = frame["splits_by_id"].str.count(",") + 1
    if texts:
        t = pd.concat(texts, ignore_index=True)
        t["query_norm"] = t["query"].map(leakage_key)
        text_splits = t.dropna(subset=["query_norm"]).groupby("query_norm")["split"].agg(
            lambda s: ",".join(sorted(set(s))))
        first = t.drop_duplicates("query_id")[["query_id", "query", "query_norm"]]
        frame = frame.merge(first, on="query_id", how="left")
        frame["splits_by_text"] = frame["query_norm"].map(text_splits)
        frame["n_splits_by_text"] = (frame["splits_by_text"].str.count(",") + 1).astype("Int64")
    return frame


def _orient_splits(splits: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    outer, inner = set(splits), {k for v in splits.values() for k in v}
    if outer and outer <= set(TABLES) and not outer & set(SPLITS) and inner & set(SPLITS):
        flipped: dict[str, dict[str, Any]] = {}
        for table, by_split in splits.items():
            for split, df in by_split.items():
                flipped.setdefault(split, {})[table] = df
        return flipped
    return {split: dict(tables) for split, tables in splits.items()}


# ----------------------------------------------------------------------------- GX runner


def _load_suite(suites_dir: Path, name: str) -> dict[str, Any]:
    path = suites_dir / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"expectation suite not found: {path}")
    spec = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(spec.get("expectations"), list):
        raise ValueError(f"{path}: a suite needs an 'expectations' list")
    spec.setdefault("name", name)
    return spec


def _columns_of(kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    cols: list[str] = []
    for key in ("column", "column_A", "column_B"):
        if key in kwargs:
            cols.append(kwargs[key])
    cols.extend(kwargs.get("column_list", []))
    return tuple(cols)


def _key(type_: str, kwargs: Mapping[str, Any]) -> str:
    clean = {k: v for k, v in kwargs.items() if k not in ("batch_id",)}
    return type_ + json.dumps(jsonable(clean, non_finite="string"), sort_keys=True)


class _Runner:
    """One ephemeral GX context per validate call; runs suites on frames, each as a GX validation
    definition so its result lands in the context's store, from which the Data Docs are built."""

    def __init__(self, max_example_rows: int):
        self.max_example_rows = max_example_rows
        self.gx_results: dict[str, dict[str, Any]] = {}
        self._bd = None
        self._ctx = None

    def _batch_definition(self):
        if self._bd is None:
            os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            self._gx = gx
            self._ctx = gx.get_context(mode="ephemeral")
            self._ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
            asset = self._ctx.data_sources.add_pandas("prodrank").add_dataframe_asset("table")
            self._bd = asset.add_batch_definition_whole_dataframe("whole")
        return self._bd

    def run(self, spec: dict[str, Any], table: str, frame: pd.DataFrame, *,
            is_judgments: bool = False, extra_skips: list[dict[str, Any]] | None = None) -> SuiteResult:
        name = spec["name"]
        reasons = {c: s["reason"] for s in extra_skips or [] for c in s["columns"]}
        skipped: list[dict[str, Any]] = []
        expectations, order = [], {}
        for exp in spec["expectations"]:
            type_, kwargs = exp["type"], exp.get("kwargs", {})
            cols = _columns_of(kwargs)
            absent = [c for c in cols if c not in frame.columns]
            if absent:
                reason = "; ".join(reasons.get(c, f"optional column '{c}' not present") for c in absent)
                skipped.append({"expectation": type_, "columns": list(cols), "reason": reason})
                continue
            if is_judgments and (exp.get("meta") or {}).get("applies_to") == "engagement":
                skipped.append({"expectation": type_, "columns": list(cols),
                                "reason": "engagement-only check, the table holds judgments"})
                continue
            order[_key(type_, kwargs)] = len(expectations)
            expectations.append({k: v for k, v in exp.items() if k in ("type", "kwargs", "meta")})

        bd = self._batch_definition()
        gx = self._gx
        suite = self._ctx.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
        result_format = {"result_format": "SUMMARY",
                         "partial_unexpected_count": max(20, self.max_example_rows)}
        definition = self._ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=bd, suite=suite))
        res = definition.run(batch_parameters={"dataframe": frame}, result_format=result_format)
        gx_json = res.to_json_dict()
        self.gx_results[name] = gx_json

        failures = []
        for r in res.results:
            if r.success:
                continue
            failures.append(self._failure(name, table, r, frame))
        failures.sort(key=lambda f: order.get(_key(f.expectation, f.kwargs), 10**9))
        return SuiteResult(name, table, len(frame), bool(res.success), len(expectations), failures, skipped)

    def build_data_docs(self, directory: Path) -> None:
        """GX's Data Docs site of this run's validations, swapped in for ``directory`` (a site
        of an earlier run would list its validations too). No suite ran: no site."""
        if self._ctx is None:
            shutil.rmtree(directory, ignore_errors=True)
            return
        with atomic_dir(directory) as tmp:
            site = {"class_name": "SiteBuilder", "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                    "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(Path(tmp).resolve())}}
            self._ctx.add_data_docs_site(site_name="prodrank", site_config=site)
            self._ctx.build_data_docs(site_names=["prodrank"])

    def _failure(self, suite: str, table: str, r: Any, frame: pd.DataFrame) -> Failure:
        cfg = r.expectation_config
        kwargs = {k: v for k, v in dict(cfg.kwargs).items() if k != "batch_id"}
        result = dict(r.result or {})
        f = Failure(suite, table, cfg.type, _columns_of(kwargs), kwargs,
                    unexpected_count=result.get("unexpected_count"),
                    element_count=result.get("element_count"),
                    unexpected_percent=result.get("unexpected_percent"),
                    observed_value=result.get("observed_value"),
                    notes=str((cfg.meta or {}).get("notes") or ""))
        exc = r.exception_info or {}
        if exc:
            infos = exc.values() if "raised_exception" not in exc else [exc]
            messages = [str(i.get("exception_message")) for i in infos
                        if isinstance(i, dict) and i.get("raised_exception")]
            if messages:
                f.message = ("could not be evaluated (are the values of the expected type?): "
                             + "; ".join(dict.fromkeys(messages)))
        if not f.message and f.unexpected_count is None and "observed_value" in result:
            f.message = f"observed {_short(f.observed_value)}"
        index = result.get("partial_unexpected_index_list") or []
        labels = [i for i in index if not isinstance(i, dict)]
        if labels:
            cols = list(f.columns) + [c for c in frame.columns if c not in f.columns]
            rows = frame.loc[[i for i in labels[: self.max_example_rows] if i in frame.index], cols]
            f.examples = [{"row": int(i) if isinstance(i, (int, np.integer)) else i,
                           **{c: _py(v) for c, v in row.items()}} for i, row in rows.iterrows()]
        elif result.get("partial_unexpected_list"):
            f.example_values = [_py(v) for v in result["partial_unexpected_list"][: self.max_example_rows]]
        return f


# ----------------------------------------------------------------------------- writing


def _write_reports(report: ValidationReport, runner: _Runner, reports_dir: Path, summary_name: str,
                   manage: tuple[str, ...]) -> None:
    reports_dir.mkdir(parents=True, exist_ok=True)
    written = set()
    for s in report.suites:
        body = dict(runner.gx_results.get(s.suite) or {
            "success": False, "results": [], "suite_name": s.suite,
            "statistics": {"evaluated_expectations": 0, "successful_expectations": 0,
                           "unsuccessful_expectations": 0, "success_percent": None},
        })
        body["prodrank"] = {"table": s.table, "rows": s.rows, "success": s.success,
                            "schema_errors": [f.message for f in s.failures if f.expectation == "schema"],
                            "skipped": s.skipped}
        path = reports_dir / f"{s.suite}.json"
        write_json(jsonable(body, non_finite="string"), path)
        s.report_path = str(path)
        written.add(s.suite)
    for stale in set(manage) - written:  # a suite not run this time must not look current
        (reports_dir / f"{stale}.json").unlink(missing_ok=True)
    summary = report.to_dict()
    summary["text"] = report.format()
    write_json(jsonable(summary, non_finite="string"), reports_dir / summary_name)


# ----------------------------------------------------------------------------- formatting helpers


def _py(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def _short(v: Any, width: int = _CELL_WIDTH) -> str:
    v = _py(v)
    text = repr(v) if isinstance(v, str) else str(v)
    return text if len(text) <= width else text[: width - 3] + "..."


def _describe_kwargs(kwargs: Mapping[str, Any]) -> str:
    parts = []
    for k, v in kwargs.items():
        if k in ("column", "column_A", "column_B", "column_list", "result_format") or v is None:
            continue
        if k == "type_list":
            parts.append(f"{k}=[" + ", ".join(v[:4]) + (", ...]" if len(v) > 4 else "]"))
            continue
        parts.append(f"{k}={v}" if isinstance(v, str) else f"{k}={_short(v, 60)}")
    return f" [{', '.join(parts)}]" if parts else ""


def _format_skipped(skipped: list[dict[str, Any]]) -> str:
    optional: list[str] = []
    by_reason: dict[str, int] = {}
    for s in skipped:
        absent = re.findall(r"optional column '([^']+)' not present", s["reason"])
        if absent:
            optional.extend(c for c in absent if c not in optional)
        else:
            by_reason[s["reason"]] = by_reason.get(s["reason"], 0) + 1
    parts = [f"{n} x {reason}" if n > 1 else reason for reason, n in by_reason.items()]
    if optional:
        parts.append(f"optional column(s) not present: {', '.join(optional)}")
    return "; ".join(parts)


def _format_examples(f: Failure, limit: int) -> list[str]:
    lines = []
    if f.examples:
        shown = f.examples[:limit]
        total = f.unexpected_count if f.unexpected_count is not None else len(f.examples)
        lines.append(f"      example rows ({len(shown)} of {total}):")
        for ex in shown:
            cells = ", ".join(f"{k}={_short(v)}" for k, v in ex.items() if k != "row")
            lines.append(f"        row {ex.get('row')}: {cells}")
    elif f.example_values:
        lines.append("      example values: " + ", ".join(_short(v) for v in f.example_values[:limit]))
    return lines
