"""Artefact locations, relative to the project root. dvc.yaml declares the same paths."""
from pathlib import Path

PARAMS = Path("params.yaml")
SUITES = Path("expectations")
RAW = Path("data/raw")
PREPARED = Path("data/prepared")
PRETRAINED = Path("models/pretrained")
RANKER = Path("models/ranker")
CHECKPOINTS = Path("checkpoints")
METRICS = Path("metrics")
PLOTS = Path("reports/plots")
VALIDATION_REPORTS = Path("reports/validation")
EVALUATION_REPORTS = Path("reports/evaluation")
ABLATIONS = Path("models/ablations")
ABLATION_REPORTS = Path("reports/ablations")
