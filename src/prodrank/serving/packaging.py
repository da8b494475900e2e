"""The ``package`` pipeline stage: put the gated ranker into the BentoML model store."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from prodrank import paths
from prodrank.config import Config
from prodrank.serving.registry import RegistryError, champion, promote, save_model, write_package_manifest

log = logging.getLogger(__name__)

PACKAGE_MANIFEST = paths.RANKER.parent / "package.json"


def package(cfg: Config, ranker_dir: str | Path = paths.RANKER, metrics_path: str | Path = paths.METRICS / "evaluate.json",
            out: str | Path = PACKAGE_MANIFEST) -> dict:
    """Save the ranker that passed the quality gate; make it champion if there is none yet
    (later promotions are the retraining flow's decision); write ``models/package.json``."""
    metrics_path = Path(metrics_path)
    if not metrics_path.exists():
        raise FileNotFoundError(f"{metrics_path} not found: run the evaluate stage first")
    metrics = json.loads(metrics_path.read_text())
    gate = metrics.get("quality_gate") or {}
    if gate.get("passed") is not True:
        raise RegistryError("quality gate failed, not packaging: " + "; ".join(gate.get("problems", ["no quality_gate"])))
    tag = save_model(ranker_dir, metrics, cfg)
    if champion(cfg) is None:
        promote(tag, cfg, reason="first packaged model")
    manifest = write_package_manifest(tag, cfg, out)
    log.info("packaged %s (champion: %s) into %s", tag, manifest["champion"], manifest["bentoml_home"])
    return manifest
