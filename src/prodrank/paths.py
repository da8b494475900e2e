"""Artefact locations, relative to the project root. dvc.yaml declares the same paths."""
from pathlib import Path

PARAMS = Path("params.yaml")
SUITES = Path("expectations")
INPUTS = Path("data/inputs.json")  # the configured input files and their sha256 (data/inputs.py)
RAW = Path("data/raw")
TEXT_REPAIR_FILE = "text_repair.json"  # in RAW: what ingest's text repair changed, per column
PREPARED = Path("data/prepared")
PRETRAINED = Path("models/pretrained")
RANKER = Path("models/ranker")  # the trained multi-task ranker (the teacher)
EXAMINATION_FILE = "examination.json"  # in a ranker trained with a position-bias correction: its examination curve
STUDENT = Path("models/student")  # its distilled two-tower student, with ONNX graphs (the served model)
STUDENT_FILE = "student.json"  # marks a saved student (models/student.py)
PRODUCT_INDEX_FILE = "product_index.safetensors"  # in a student: the catalogue's product vectors
CHECKPOINTS = Path("checkpoints")
METRICS = Path("metrics")
PLOTS = Path("reports/plots")
VALIDATION_REPORTS = Path("reports/validation")
EVALUATION_REPORTS = Path("reports/evaluation")
ABLATIONS = Path("models/ablations")
ABLATION_REPORTS = Path("reports/ablations")
