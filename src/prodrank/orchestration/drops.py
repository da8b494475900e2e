"""New data for retraining: data drops and serving logs, validated and versioned.

**A data drop** is a folder in ``orchestration.incoming_dir`` (default ``data/incoming/``) that
holds one complete data set in a documented input format (docs/data_formats.md)::

    data/incoming/<name>/interactions.{parquet,csv,csv.gz,tsv}   + catalog.{parquet,csv,...}
    data/incoming/<name>/judgments.{parquet,csv,...}            [+ catalog.{...}]

Copy it in under a hidden name (``.<name>``) and rename it when complete: folders starting with
``.`` or ``_`` are ignored, so a half-copied drop is never read. When several drops are
waiting, the newest name (sorted) wins and the older ones are set aside as superseded. A
processed drop moves to ``<incoming>/.processed/``, an invalid one to ``<incoming>/.rejected/``
(with ``REJECTED.txt`` saying why).

**Serving logs** (``serving.log_dir``, written by the BentoML service) become a drop when they
hold at least ``orchestration.min_log_impressions`` new shown results: the current raw data
set (``data/raw``, exported back to the impression format) plus every logged impression since
the current data set's log watermark, with the clicks / add-to-carts / purchases of the
feedback events. So retraining on logs keeps the data the champion was trained on and adds
what was served since.

**Accepted** drops are copied to ``<datasets_dir>/drops/<name>-<sha256[:10]>/`` with a
``drop.json`` manifest and versioned with ``dvc add`` (``datasets/drops/<id>.dvc`` is the file
to commit); ``params.yaml``'s ``data`` section is pointed at them, so ``dvc repro`` re-runs the
pipeline from ``ingest`` and DVC keeps the lineage.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prodrank import paths
from prodrank.config import Config, FileSource, load_config
from prodrank.data.ingest import InputFormatError, load_interactions, load_judgments
from prodrank.data.repair import TextRepair
from prodrank.data.schema import COUNT_COLUMNS, INTERACTIONS, POSITIONS, QUERIES
from prodrank.data.validate import check, validate_tables
from prodrank.io import sha256_file
from prodrank.serving.request_log import read_log
from prodrank.stages import read_tables

log = logging.getLogger(__name__)

SUFFIXES = (".parquet", ".csv", ".csv.gz", ".csv.zip", ".tsv", ".tsv.gz")
MANIFEST = "drop.json"
PROCESSED = ".processed"
REJECTED = ".rejected"
SUPERSEDED = ".superseded"


@dataclass
class Drop:
    """A data set waiting to be used: ``kind`` is the input format, ``files`` role -> path."""

    name: str
    path: Path
    kind: str  # "interactions" | "judgments"
    files: dict[str, Path]
    origin: dict[str, Any] = field(default_factory=lambda: {"type": "folder"})

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "path": str(self.path), "origin": self.origin,
                "files": {role: p.name for role, p in self.files.items()}}


@dataclass
class VersionedDrop:
    id: str
    path: Path  # datasets/drops/<id>
    kind: str
    files: dict[str, str]  # role -> path relative to the project root
    dvc_file: str
    md5: str | None
    manifest: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "path": str(self.path), "kind": self.kind, "files": self.files,
                "dvc_file": self.dvc_file, "dvc_md5": self.md5, "rows": self.manifest.get("rows"),
                "origin": self.manifest.get("origin")}


# -- finding drops ---------------------------------------------------------------------------
def find_table(folder: Path, role: str) -> Path | None:
    for suffix in SUFFIXES:
        candidate = folder / f"{role}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def inspect_drop(folder: str | Path) -> Drop:
    """Recognise a drop folder's format; ValueError (naming what is expected) otherwise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"data drop {folder} is not a folder")
    catalog = find_table(folder, "catalog")
    if (interactions := find_table(folder, "interactions")) is not None:
        if catalog is None:
            raise ValueError(f"data drop {folder}: interactions need a catalog.{{parquet,csv}} beside them")
        return Drop(folder.name, folder, "interactions", {"interactions": interactions, "catalog": catalog})
    if (judgments := find_table(folder, "judgments")) is not None:
        files = {"judgments": judgments} | ({"catalog": catalog} if catalog is not None else {})
        return Drop(folder.name, folder, "judgments", files)
    raise ValueError(f"data drop {folder}: expected interactions.<ext> + catalog.<ext>, or judgments.<ext> "
                     f"[+ catalog.<ext>] (ext one of {', '.join(s.lstrip('.') for s in SUFFIXES)}); "
                     f"found {sorted(p.name for p in folder.iterdir())}")


def pending_drops(incoming_dir: str | Path) -> list[Path]:
    """Drop folders waiting in ``incoming_dir``, oldest name first (hidden/_ folders skipped)."""
    incoming = Path(incoming_dir)
    if not incoming.is_dir():
        return []
    return sorted(p for p in incoming.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def set_aside(folder: Path, where: str, reason: str | None = None) -> Path:
    """Move a processed/rejected/superseded drop to ``<incoming>/<where>/<name>`` (unique name)."""
    target_dir = folder.parent / where
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / folder.name
    if target.exists():
        target = target_dir / f"{folder.name}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
    shutil.move(str(folder), target)
    if reason:
        (target / "REJECTED.txt").write_text(reason + "\n", encoding="utf-8")
    return target


# -- loading and validating ------------------------------------------------------------------
def load_drop(drop: Drop, repair: TextRepair | None = None) -> dict[str, pd.DataFrame]:
    """The canonical tables of a drop, through the documented adapters (prodrank.data.ingest),
    its text repaired as ingest will repair it (``data.text_repair``)."""
    if drop.kind == "interactions":
        return load_interactions(drop.files["interactions"], drop.files["catalog"], repair=repair)
    return load_judgments(drop.files["judgments"], drop.files.get("catalog"), repair=repair)


def validate_drop(drop: Drop, cfg: Config, reports_dir: str | Path):
    """Load the drop and run the GX suites on it (reports in ``reports_dir``); raises
    ``DataValidationError`` (or the adapter's ``InputFormatError``) when it is not usable,
    including a catalogue without any value of a product feature the ranker is configured to
    read (``train.product_features``), which would otherwise fail only at training time."""
    tables = load_drop(drop, TextRepair(cfg.data.text_repair))
    report = validate_tables(tables, paths.SUITES, reports_dir, cfg.validation.max_example_rows)
    check(report)
    catalog = tables["catalog"]
    unusable = [name for name in cfg.train.product_features
                if name not in catalog.columns or pd.to_numeric(catalog[name], errors="coerce").notna().sum() == 0]
    if unusable:
        raise InputFormatError(f"the drop's catalogue has no value of {unusable}, which train.product_features "
                               "reads: add the column, or set train.product_features to the features it has")
    return {name: len(frame) for name, frame in tables.items()}


# -- versioning ------------------------------------------------------------------------------
def drop_digest(drop: Drop) -> str:
    digest = hashlib.sha256(drop.kind.encode())
    for role in sorted(drop.files):
        digest.update(role.encode())
        digest.update(sha256_file(drop.files[role]).encode())
    return digest.hexdigest()


def _safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-.") or "drop"
    return cleaned[:60]


def dvc_exe() -> str:
    exe = Path(sys.executable).with_name("dvc")
    return str(exe) if exe.exists() else "dvc"


def run_dvc(args: list[str], root: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([dvc_exe(), *args], cwd=root, capture_output=True, text=True,
                            env={**os.environ, "DVC_NO_ANALYTICS": "1", **(env or {})})
    if result.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result


def version_drop(drop: Drop, cfg: Config, root: Path, rows: dict[str, int] | None = None,
                 run_id: str | None = None) -> VersionedDrop:
    """Copy the drop to ``<datasets_dir>/drops/<id>/``, write ``drop.json``, ``dvc add`` it."""
    digest = drop_digest(drop)
    drop_id = f"{_safe_name(drop.name)}-{digest[:10]}"
    rel = Path(cfg.orchestration.datasets_dir) / "drops" / drop_id
    target = root / rel
    files = {role: str(rel / src.name) for role, src in drop.files.items()}
    manifest = {"id": drop_id, "kind": drop.kind, "sha256": digest, "origin": drop.origin, "rows": rows or {},
                "files": {role: {"path": files[role], "sha256": sha256_file(src)} for role, src in drop.files.items()},
                "accepted_at": datetime.now(UTC).isoformat(timespec="seconds"), "run_id": run_id}
    if not (target / MANIFEST).exists():
        tmp = target.with_name(f".{drop_id}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for src in drop.files.values():
            shutil.copy2(src, tmp / src.name)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    else:
        manifest = json.loads((target / MANIFEST).read_text())
    run_dvc(["add", "-q", str(rel)], root)
    dvc_file = str(rel) + ".dvc"
    return VersionedDrop(drop_id, rel, drop.kind, files, dvc_file, dvc_file_md5(root / dvc_file), manifest)


def dvc_file_md5(path: Path) -> str | None:
    import yaml

    try:
        outs = (yaml.safe_load(path.read_text()) or {}).get("outs") or []
        return outs[0].get("md5") if outs else None
    except (OSError, ValueError):
        return None


def data_params(versioned: VersionedDrop) -> dict[str, Any]:
    """The ``params.yaml`` updates (dotted keys) that make the pipeline ingest this drop."""
    kind = versioned.kind
    updates: dict[str, Any] = {"data.source": kind, f"data.{kind}.path": versioned.files[kind],
                               f"data.{kind}.catalog": versioned.files.get("catalog")}
    return updates


def update_params(params_path: str | Path, updates: dict[str, Any]) -> dict[str, Any]:
    """Set dotted keys in params.yaml, keeping its comments and layout (ruamel round trip, as
    ``dvc exp run -S`` does). Returns the previous values."""
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    path = Path(params_path)
    data = yaml.load(path.read_text(encoding="utf-8"))
    previous: dict[str, Any] = {}
    for dotted, value in updates.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            if node.get(key) is None:
                node[key] = {}
            node = node[key]
        previous[dotted] = node.get(leaf)
        node[leaf] = value
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        yaml.dump(data, fh)
    os.replace(tmp, path)
    return previous


def check_params_select(params_path: str | Path, profile: str | None, versioned: VersionedDrop) -> None:
    """After :func:`update_params`: the resolved config must now read the drop (a profile that
    overrides ``data`` would silently keep the old source)."""
    data = load_config(params_path, profile).data
    kind = versioned.kind
    source: FileSource = getattr(data, kind)
    if data.source != kind or source.path != versioned.files[kind]:
        raise ValueError(f"params.yaml: the active profile overrides `data`, so the drop {versioned.id} would not "
                         f"be used (resolved data.source={data.source!r}); point that profile's data at "
                         f"{versioned.files[kind]} or drop its override")


# -- serving logs ----------------------------------------------------------------------------
def export_impressions(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Canonical (aggregated) tables back to the interactions input format, one row per
    impression at a whole position: the positions table's where the source logged one, else
    each pair's impressions split between the whole positions around its mean position (see
    :func:`whole_positions`). Per counts row the first ``clicks`` impressions are clicked, the
    first ``add_to_carts`` of those added, the first ``purchases`` bought. Re-ingesting gives the
    same interactions counts and mean positions, and the same positions table."""
    inter = tables[INTERACTIONS]
    cells = tables[POSITIONS] if POSITIONS in tables else whole_positions(inter)
    cells = cells.merge(tables[QUERIES][["query_id", "query"]], on="query_id")
    n = cells["impressions"].to_numpy(dtype=np.int64)
    idx = np.repeat(np.arange(len(cells)), n)
    rank = np.arange(len(idx)) - np.repeat(np.cumsum(n) - n, n)  # 0..n-1 within each row
    out = pd.DataFrame({
        "query": cells["query"].to_numpy()[idx],
        "product_id": cells["product_id"].astype(str).to_numpy()[idx],
        "position": cells["position"].to_numpy(dtype=np.int64)[idx],
        "clicked": (rank < cells["clicks"].to_numpy()[idx]).astype(np.int8),
        "added_to_cart": (rank < cells["add_to_carts"].to_numpy()[idx]).astype(np.int8),
        "purchased": (rank < cells["purchases"].to_numpy()[idx]).astype(np.int8),
    })
    if "timestamp" in inter.columns and inter["timestamp"].notna().any():
        keys = ["query_id", "product_id"]
        first = cells[keys].merge(inter[[*keys, "timestamp"]], on=keys, how="left")["timestamp"]
        out["timestamp"] = pd.to_datetime(first, utc=True).to_numpy()[idx]
    return out


def whole_positions(inter: pd.DataFrame) -> pd.DataFrame:
    """Positions rows for an interactions table without them (the input format takes whole
    positions only): a pair's impressions split between ``floor(mean position)`` and the next
    position so that their mean is the pair's; its events fill the first of the two first."""
    mean = inter["position"].to_numpy(dtype=float)
    n = inter["impressions"].to_numpy(dtype=np.int64)
    first = np.floor(mean).astype(np.int64)
    n_next = np.rint(mean * n).astype(np.int64) - first * n  # impressions at position first + 1
    keys = {"query_id": inter["query_id"].to_numpy(), "product_id": inter["product_id"].to_numpy()}
    cap = n - n_next
    at_first = {"impressions": cap}
    for count in COUNT_COLUMNS[1:]:  # each count capped by the one before it: the funnel holds per row
        cap = np.minimum(inter[count].to_numpy(dtype=np.int64), cap)
        at_first[count] = cap
    at_next = {c: inter[c].to_numpy(dtype=np.int64) - at_first[c] for c in COUNT_COLUMNS}
    rows = pd.concat([pd.DataFrame({**keys, "position": first, **at_first}),
                      pd.DataFrame({**keys, "position": first + 1, **at_next})], ignore_index=True)
    return rows[rows["impressions"] > 0].reset_index(drop=True)


def log_impressions(log_dir: str | Path, since: str | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Shown results of the serving log (requests with a shown position) joined with their
    feedback events, as impression rows; and the window they cover."""
    frame = read_log(log_dir, start=since)
    if since is not None and len(frame):
        frame = frame[frame["timestamp"] > pd.Timestamp(since)]
    window = {"since": since, "until": None, "requests": 0, "feedback": 0}
    columns = ["query", "product_id", "position", "clicked", "added_to_cart", "purchased", "timestamp", "session_id"]
    if frame.empty or "candidate_ids" not in frame.columns:
        return pd.DataFrame(columns=columns), window
    requests = frame[frame["kind"] == "request"]
    feedback = frame[frame["kind"] == "feedback"] if "event" in frame.columns else frame.iloc[:0]
    window.update(until=frame["timestamp"].max().isoformat(), requests=int(len(requests)), feedback=int(len(feedback)))
    rows = []
    for req in requests.itertuples(index=False):
        for pid, pos in zip(req.candidate_ids, req.positions, strict=False):
            if pos is not None and not (isinstance(pos, float) and np.isnan(pos)):
                rows.append((req.query, str(pid), float(pos), req.timestamp, req.request_id))
    shown = pd.DataFrame(rows, columns=["query", "product_id", "position", "timestamp", "session_id"])
    events = {"click": "clicked", "add_to_cart": "added_to_cart", "purchase": "purchased"}
    for flag in events.values():
        shown[flag] = 0
    if len(feedback) and len(shown):
        fb = feedback[["request_id", "product_id", "event"]].assign(product_id=lambda f: f["product_id"].astype(str))
        for event, flag in events.items():
            hit = fb[fb["event"] == event][["request_id", "product_id"]].drop_duplicates()
            keys = set(zip(hit["request_id"], hit["product_id"], strict=True))
            shown[flag] = [int((s, p) in keys) for s, p in zip(shown["session_id"], shown["product_id"], strict=True)]
    return shown[columns], window


def current_drop_manifest(cfg: Config, root: Path = Path(".")) -> dict[str, Any] | None:
    """The manifest of the accepted drop the current params read, if they read one."""
    source = cfg.data.source
    if source not in ("interactions", "judgments"):
        return None
    path = getattr(cfg.data, source).path
    if not path:
        return None
    manifest = (root / path).parent / MANIFEST
    try:
        return json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None


def drop_from_serving_logs(cfg: Config, root: Path, raw_dir: Path = paths.RAW) -> Drop | None:
    """A drop = the current raw data set + serving-log impressions since the current data set's
    watermark; None when fewer than ``min_log_impressions`` new impressions were logged."""
    log_dir = root / cfg.serving.log_dir
    if not log_dir.is_dir():
        return None
    manifest = current_drop_manifest(cfg, root) or {}
    since = (manifest.get("origin") or {}).get("log_until")
    new, window = log_impressions(log_dir, since)
    if len(new) < cfg.orchestration.min_log_impressions:
        log.info("serving logs: %d new impressions since %s (< %d): no drop", len(new), since or "the start",
                 cfg.orchestration.min_log_impressions)
        return None
    raw = root / raw_dir
    if not (raw / "catalog.parquet").exists():
        raise FileNotFoundError(f"{raw}/catalog.parquet is missing: serving logs need the current catalogue "
                                "(run the pipeline or `dvc pull` first)")
    tables = read_tables(raw)
    base = export_impressions(tables)
    combined = pd.concat([base, new.drop(columns=["session_id"])], ignore_index=True)
    if "timestamp" in combined.columns:
        combined["timestamp"] = pd.to_datetime(combined["timestamp"], utc=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = root / cfg.orchestration.incoming_dir / f".serving-logs-{stamp}"
    folder.mkdir(parents=True, exist_ok=True)
    combined.to_parquet(folder / "interactions.parquet", index=False)
    tables["catalog"].to_parquet(folder / "catalog.parquet", index=False)
    final = folder.with_name(folder.name.lstrip("."))
    os.replace(folder, final)
    origin = {"type": "serving_logs", "log_dir": str(cfg.serving.log_dir), "log_since": since,
              "log_until": window["until"], "requests": window["requests"], "feedback": window["feedback"],
              "new_impressions": int(len(new)), "base_impressions": int(len(base))}
    drop = inspect_drop(final)
    drop.origin = origin
    log.info("serving logs: %d new impressions (%d requests, %d feedback events) + %d from the current data set",
             len(new), window["requests"], window["feedback"], len(base))
    return drop


def find_new_data(cfg: Config, root: Path, drop: str | None = None, use_serving_logs: bool | None = None
                  ) -> tuple[Drop | None, list[str]]:
    """The data set to retrain on, and notes on what was looked at / set aside.

    An explicit ``drop`` folder wins; else the newest pending drop in ``incoming_dir`` (older
    ones are superseded); else, if enabled, the serving logs."""
    notes: list[str] = []
    if drop:
        return inspect_drop(drop), notes
    pending = pending_drops(root / cfg.orchestration.incoming_dir)
    if pending:
        *older, newest = pending
        for folder in older:
            set_aside(folder, SUPERSEDED)
            notes.append(f"drop {folder.name} superseded by the newer {newest.name}")
        return inspect_drop(newest), notes
    notes.append(f"no data drop in {cfg.orchestration.incoming_dir}")
    if use_serving_logs if use_serving_logs is not None else cfg.orchestration.serving_logs:
        found = drop_from_serving_logs(cfg, root)
        if found is not None:
            return found, notes
        notes.append(f"fewer than {cfg.orchestration.min_log_impressions} new impressions in {cfg.serving.log_dir}")
    return None, notes
