"""Atomic file and directory writes: a failed or killed stage never leaves a half-written artefact.

The new content is written beside the target under a hidden temporary name and renamed onto
it only when complete, so readers (DVC, the next stage) see the old artefact or the new one,
never a mix. A process killed mid-write (SIGKILL, OOM, power) cannot clean up after itself;
the next write to the same target does: it deletes the dead writer's temporaries and, if the
kill fell between the two renames of a directory swap, puts the last good directory back.
DVC's repository lock means one writer per target at a time, which makes that safe.
"""
from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

NonFinite = Literal["null", "string", "keep"]


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _clean_leftovers(target)
    fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(target), dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary directory; swap it in for ``target`` only on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _clean_leftovers(target)
    tmp = Path(tempfile.mkdtemp(prefix=_temporary_prefix(target), dir=target.parent))
    try:
        yield tmp
        old = _previous(target)
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _temporary_prefix(target: Path) -> str:
    return f".{target.name}.tmp-"


def _previous(target: Path) -> Path:
    """Where :func:`atomic_dir` parks the old directory between its two renames."""
    return target.with_name(f".{target.name}.old")


def _clean_leftovers(target: Path) -> None:
    """Undo what a writer killed mid-write left beside ``target``."""
    previous = _previous(target)
    if previous.is_dir() and not target.exists():  # killed between the renames: restore the last good one
        os.replace(previous, target)
    for leftover in [*target.parent.glob(glob.escape(_temporary_prefix(target)) + "*"), previous]:
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)  # also when it is gone already


def write_parquet(df: pd.DataFrame, target: str | Path) -> None:
    """One Parquet file, atomically (tables written together go into an :func:`atomic_dir`)."""
    with atomic_path(target) as tmp:
        df.to_parquet(tmp, index=False)


def jsonable(value: Any, *, non_finite: NonFinite = "null", drop_none: bool = False) -> Any:
    """``value`` in JSON's own types: the one sanitiser for reports, logs and model metadata.

    Mappings become dicts with string keys, lists, tuples and sets become lists, NumPy scalars
    Python ones, ``pd.Timestamp`` ISO 8601 text; None, ``pd.NA``, ``NaT`` and NaN become None;
    str, int, float and bool stay; anything else becomes its ``str()``. ``drop_none`` leaves
    out dict entries and list items that are None (BentoML metadata rejects None).

    Infinity and NaN (strict JSON has neither), by ``non_finite``:

    * ``"null"``: both become None: a missing number (monitoring reports).
    * ``"string"``: NaN becomes None, ±infinity ``"inf"`` / ``"-inf"``, which keeps the sign
      for the reader and reads back with ``float()`` (validation reports).
    * ``"keep"``: both stay floats, for a consumer that stores them (BentoML metadata is YAML).
    """
    if isinstance(value, Mapping):
        items = ((str(k), jsonable(v, non_finite=non_finite, drop_none=drop_none)) for k, v in value.items())
        return {k: v for k, v in items if not (drop_none and v is None)}
    if isinstance(value, list | tuple | set):
        items = (jsonable(v, non_finite=non_finite, drop_none=drop_none) for v in value)
        return [v for v in items if not (drop_none and v is None)]
    return _json_scalar(value, non_finite)


def _json_scalar(value: Any, non_finite: NonFinite) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return _non_finite(value, non_finite)
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _non_finite(value: float, rule: NonFinite) -> float | str | None:
    if rule == "keep":
        return value
    if rule == "string" and math.isinf(value):
        return str(value)
    return None


def write_json(obj: Any, target: str | Path) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=float) + "\n")


def write_text(text: str, target: str | Path) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_table(path: str | Path, **csv_kwargs: Any) -> pd.DataFrame:
    """Read a CSV (optionally zipped) or Parquet table, by file extension."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input table not found: {path}")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix in {".csv", ".zip", ".gz", ".tsv"}:
        sep = "\t" if path.name.endswith((".tsv", ".tsv.gz")) else ","
        return pd.read_csv(path, sep=sep, **csv_kwargs)
    raise ValueError(f"{path}: unsupported table format (use .csv, .csv.zip, .tsv or .parquet)")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes, read in chunks (model files and data sets can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
