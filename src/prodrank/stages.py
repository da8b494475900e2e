"""The pipeline stages, each one function: dvc.yaml (through the CLI), the Prefect flows
and the tests all call these, so stage logic exists exactly once.

Each stage imports the modules it runs inside its function: a stage then loads only its own
code (no torch for ingest), and dvc.yaml declares exactly that code as the stage's deps
(tests/unit/test_dvc_deps.py follows these imports)."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from prodrank import paths
from prodrank.config import Config
from prodrank.data.schema import SPLITS
from prodrank.io import atomic_dir, sha256_file, write_json

log = logging.getLogger(__name__)


def read_tables(directory: str | Path) -> dict[str, pd.DataFrame]:
    directory = Path(directory)
    return {p.stem: pd.read_parquet(p) for p in sorted(directory.glob("*.parquet"))}


def write_tables(tables: dict[str, pd.DataFrame], directory: str | Path, records: dict[str, dict] | None = None) -> None:
    """Write all tables (and small JSON ``records`` beside them) into a fresh directory and swap
    it in only when every write worked."""
    with atomic_dir(directory) as tmp:
        for name, frame in tables.items():
            frame.to_parquet(tmp / f"{name}.parquet", index=False)
        for name, record in (records or {}).items():
            write_json(record, tmp / name)


def inputs(cfg: Config, out: str | Path = paths.INPUTS) -> dict:
    """Hash the configured input files, so DVC reruns ingest when one changes (data/inputs.py)."""
    from prodrank.data.inputs import fingerprint

    record = fingerprint(cfg.data)
    write_json(record, out)
    log.info("inputs of %s: %s", cfg.data.source, record["files"] or "none (generated from params)")
    return record


def ingest(cfg: Config, out_dir: str | Path = paths.RAW) -> dict[str, int]:
    """Build the canonical raw tables from the configured source; a real source's text is
    repaired as it is read, and what changed is recorded beside the tables."""
    repair = None
    if cfg.data.source == "synthetic":
        from prodrank.sim.world import generate_world

        tables = generate_world(cfg.world, cfg.seed)
    else:
        from prodrank.data.ingest import ingest as ingest_source
        from prodrank.data.repair import TextRepair

        repair = TextRepair(cfg.data.text_repair)
        tables = ingest_source(cfg.data, cfg.seed, repair=repair)
    write_tables(tables, out_dir, {paths.TEXT_REPAIR_FILE: repair.summary()} if repair else {})
    counts = {name: len(frame) for name, frame in tables.items()}
    log.info("ingested %s into %s: %s", cfg.data.source, out_dir, counts)
    return counts


def validate(cfg: Config, raw_dir: str | Path = paths.RAW, reports_dir: str | Path = paths.VALIDATION_REPORTS) -> None:
    """Run the GX suites on the raw tables; raises DataValidationError on failure."""
    from prodrank.data.validate import check, validate_tables

    repaired = Path(raw_dir) / paths.TEXT_REPAIR_FILE
    text_repair = json.loads(repaired.read_text()) if repaired.exists() else None
    report = validate_tables(read_tables(raw_dir), paths.SUITES, reports_dir, cfg.validation.max_example_rows,
                             text_repair=text_repair, repair_setting=cfg.data.text_repair)
    check(report)
    log.info("%s", report.format().split("\n\n")[0])  # the verdict, where the reports are, the text repair


def split(cfg: Config, raw_dir: str | Path = paths.RAW, out_dir: str | Path = paths.PREPARED,
          reports_dir: str | Path = paths.VALIDATION_REPORTS) -> dict[str, int]:
    """Split by query, check for leakage with the splits suite, write data/prepared/."""
    from prodrank.data.split import split_tables
    from prodrank.data.validate import check, validate_splits

    tables = read_tables(raw_dir)
    splits = split_tables(tables, cfg.split, cfg.seed)
    check(validate_splits(splits, paths.SUITES, reports_dir, cfg.validation.max_example_rows))
    with atomic_dir(out_dir) as tmp:
        tables["catalog"].to_parquet(tmp / "catalog.parquet", index=False)
        for name in SPLITS:
            (tmp / name).mkdir()
            for table, frame in splits[name].items():
                frame.to_parquet(tmp / name / f"{table}.parquet", index=False)
    counts = {name: len(splits[name]["queries"]) for name in SPLITS}
    log.info("split %d queries by %s: %s", sum(counts.values()), cfg.split.method, counts)
    return counts


def pretrain(cfg: Config) -> dict:
    from prodrank.training.pretrain import pretrain as run

    return run(cfg, paths.PREPARED, paths.PRETRAINED, paths.PLOTS / "pretrain.csv", paths.METRICS / "pretrain.json")


def train(cfg: Config) -> dict:
    from prodrank.training.finetune import finetune

    return finetune(cfg, paths.PREPARED, paths.PRETRAINED, paths.RANKER, paths.PLOTS, paths.METRICS / "train.json",
                    paths.CHECKPOINTS / "train")


def distill(cfg: Config) -> dict:
    from prodrank.training.distill import distill as run

    return run(cfg, paths.PREPARED, paths.RANKER, paths.STUDENT, paths.METRICS / "distill.json", paths.METRICS / "train.json")


def evaluate(cfg: Config) -> dict:
    """The model that serves (``serving.model``) beside the teacher and the baselines on the
    test split; raises QualityGateError when the gate fails."""
    from prodrank.evaluation.evaluate import evaluate_split

    student = cfg.serving.model == "student"
    return evaluate_split(cfg, paths.PREPARED, paths.STUDENT if student else paths.RANKER,
                          paths.METRICS / "evaluate.json", paths.EVALUATION_REPORTS, paths.PLOTS,
                          teacher_dir=paths.RANKER if student else None)


def evaluate_validation(cfg: Config, ranker_dir: str | Path, out_dir: str | Path) -> dict:
    """`prodrank evaluate --split valid`: the same report on the validation split, for
    model selection that never reads the test split."""
    from prodrank.evaluation.evaluate import evaluate_split

    out_dir = Path(out_dir)
    return evaluate_split(cfg, paths.PREPARED, Path(ranker_dir), out_dir / "metrics.json", out_dir, None, split="valid")


def evaluate_external(cfg: Config, judgments: str | None, interactions: str | None, catalog: str | None,
                      ranker_dir: str | Path, out_dir: str | Path) -> dict:
    """`prodrank evaluate --judgments FILE` / `--interactions FILE --catalog FILE`."""
    from prodrank.data.ingest import load_interactions, load_judgments
    from prodrank.data.repair import TextRepair
    from prodrank.evaluation.evaluate import evaluate_tables

    repair = TextRepair(cfg.data.text_repair)
    if judgments:
        tables, source = load_judgments(judgments, catalog, repair=repair), judgments
    elif interactions and catalog:
        tables, source = load_interactions(interactions, catalog, repair=repair), interactions
    else:
        raise ValueError("give --judgments FILE [--catalog FILE], or --interactions FILE --catalog FILE")
    out_dir = Path(out_dir)
    files = {name: sha256_file(name) for name in (judgments, interactions, catalog) if name}
    title = f"prodrank evaluation — {source} (sha256 {files[source][:12]})"
    return evaluate_tables(cfg, tables, Path(ranker_dir), out_dir / "metrics.json", out_dir, title, inputs=files)


def package(cfg: Config) -> dict:
    """Put the gated ranker into the BentoML model store; writes models/package.json."""
    from prodrank.serving.packaging import package as run

    return run(cfg, student_dir=paths.STUDENT)


def ablate(cfg: Config) -> object:
    """Train and evaluate every variant in evaluate.ablations beside the main model."""
    from prodrank.evaluation.ablation import run_ablations

    return run_ablations(cfg, paths.PREPARED, paths.PRETRAINED, paths.RANKER, paths.ABLATIONS,
                         paths.ABLATION_REPORTS)


def report(cfg: Config) -> Path:
    """`prodrank report`: record this profile's results; regenerate docs/results.md and the README table."""
    from prodrank.evaluation.results import report as run

    return run(cfg)
