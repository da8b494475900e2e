"""The ``package`` pipeline stage: put the gated ranker into the BentoML model store and decide
whether it serves (:mod:`prodrank.serving.promotion`)."""
from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

from prodrank import paths
from prodrank.config import Config
from prodrank.orchestration import benchmark
from prodrank.serving.promotion import (
    BenchmarkScorer,
    PackageDecision,
    StoredModel,
    headline_metric,
    package_decision,
)
from prodrank.serving.registry import (
    RegistryError,
    champion,
    model_metadata,
    promote,
    record_decision,
    save_model,
    served_dir,
    verify_files,
    write_package_manifest,
)

log = logging.getLogger(__name__)

PACKAGE_MANIFEST = paths.RANKER.parent / "package.json"


def stored_model(tag: str, cfg: Config) -> StoredModel:
    metadata = model_metadata(tag, cfg)["metadata"]
    return StoredModel(tag, metadata.get("profile"), (metadata.get("data_version") or {}).get("md5"),
                       metadata.get("metrics") or {})


def benchmark_scorer(cfg: Config, metric: str) -> BenchmarkScorer | None:
    """Scores a packaged model on the frozen benchmark, when one of this profile exists."""
    info = benchmark.manifest(cfg)
    if info is None or info.get("profile") != cfg.profile:
        return None

    def score(tag: str) -> float | None:
        meta = model_metadata(tag, cfg)
        verify_files(Path(meta["path"]), meta["metadata"].get("files") or {})
        with tempfile.TemporaryDirectory(prefix="prodrank-package-") as out:
            summary = benchmark.evaluate(cfg, served_dir(meta["path"], cfg.serving.model), Path(out),
                                         f"{tag} on the frozen benchmark")
        return benchmark.score(summary, metric)

    return score


def package(cfg: Config, ranker_dir: str | Path = paths.RANKER, metrics_path: str | Path = paths.METRICS / "evaluate.json",
            out: str | Path = PACKAGE_MANIFEST, catalog: str | Path = paths.PREPARED / "catalog.parquet",
            student_dir: str | Path | None = None) -> dict:
    """Save the ranker that passed the quality gate with its student (None: a teacher-only
    model), promote it when it should serve (module doc of :mod:`prodrank.serving.promotion`),
    say what serves, and write ``models/package.json``.
    ``catalog``: the products ``/search`` retrieves from (indexed into the packaged model)."""
    if student_dir is not None and not (Path(student_dir) / paths.STUDENT_FILE).exists():
        raise FileNotFoundError(f"{student_dir} is not a saved student: run the distill stage first")
    metrics_path = Path(metrics_path)
    if not metrics_path.exists():
        raise FileNotFoundError(f"{metrics_path} not found: run the evaluate stage first")
    metrics = json.loads(metrics_path.read_text())
    gate = metrics.get("quality_gate") or {}
    if gate.get("passed") is not True:
        raise RegistryError("quality gate failed, not packaging: " + "; ".join(gate.get("problems", ["no quality_gate"])))
    tag = save_model(ranker_dir, metrics, cfg, catalog, student_dir=student_dir)
    new = stored_model(tag, cfg)
    current = champion(cfg)
    decision = package_decision(cfg, gate, new, stored_model(current, cfg) if current else None,
                                benchmark_scorer(cfg, headline_metric(cfg, new.metrics)))
    if decision.promote:
        promote(tag, cfg, reason=decision.reason)
    record_decision(tag, decision.reason, cfg)
    manifest = write_package_manifest(tag, cfg, out, promotion=decision.as_dict())
    log.info("%s", outcome(tag, decision, manifest["champion"]))
    return manifest


def outcome(tag: str, decision: PackageDecision, serving: str | None) -> str:
    verb = "promoted to champion" if decision.promote else "stored as a candidate"
    return f"packaged {tag}: {verb} — {decision.reason}. `make serve` serves {serving}."
