"""The configured input files and their content: how DVC sees that an input file changed.

DVC reruns a stage when the content of one of its deps changes. The files a real source reads
are named in params (``data.judgments.path``, ``data.interactions.catalog``, the Home Depot zip,
the Best Buy folder), often inside a profile, which DVC's templating cannot resolve: it reads
the raw params file. So the ``inputs`` stage, which DVC runs on every ``dvc repro`` (it only hashes
files), resolves the configuration like every stage does and writes ``data/inputs.json``: the
source and the sha256 of every file it reads. ``ingest`` depends on that file. When no input
changed, the JSON is byte-identical and DVC skips ingest and everything after it; when one byte
of an input changed, ingest and everything downstream run again.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prodrank.config import DataConfig
from prodrank.data.ingest import BESTBUY_CATALOG_FILE, BESTBUY_CLICK_FILES
from prodrank.io import sha256_file


def input_files(cfg: DataConfig) -> list[str]:
    """The files ``cfg.source`` reads, as configured (relative to the project root); none for
    the synthetic world, which is generated from params alone."""
    if cfg.source == "judgments":
        return [p for p in (cfg.judgments.path, cfg.judgments.catalog) if p]
    if cfg.source == "interactions":
        return [p for p in (cfg.interactions.path, cfg.interactions.catalog) if p]
    if cfg.source == "home_depot":
        return [cfg.home_depot.path]
    if cfg.source == "bestbuy":
        return [str(Path(cfg.bestbuy.dir) / name) for name in (BESTBUY_CATALOG_FILE, *BESTBUY_CLICK_FILES)]
    return []


def fingerprint(cfg: DataConfig, root: Path = Path(".")) -> dict[str, Any]:
    """``{"source", "files": {path: sha256}}``; a missing file is an error naming the setting."""
    files = {}
    for name in input_files(cfg):
        path = root / name
        if not path.is_file():
            raise FileNotFoundError(f"data.{cfg.source}: input file {name} not found")
        files[name] = sha256_file(path)
    return {"source": cfg.source, "files": files}
