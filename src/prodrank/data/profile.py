"""``prodrank init-profile``: a new data set in two commands.

``prodrank init-profile NAME --judgments FILE [--catalog FILE]`` (or ``--interactions FILE
--catalog FILE``) reads the file through the documented loaders (text repaired as ingest will),
reports what it found (rows, queries, products, grade scale or events, product fields),
appends a profile ``NAME`` with the real-data recipe to params.yaml and selects it (the file's
``profile:`` key); then ``make run`` runs the whole pipeline on it and packages the model that
``make serve`` serves.

The recipe is the one chosen on the Home Depot and Best Buy validation splits: no domain
pretraining (it lowers the checkpoint's bi-encoder similarity), the similarity prior (the
untrained ranker orders as the zero-shot bi-encoder does), one task per signal in the data,
the price and rating inputs only where the catalogue has them, and model selection on
validation that includes the starting point, so training never publishes a model below the
zero-shot start on validation.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from prodrank.config import TrainConfig
from prodrank.data.ingest import load_interactions, load_judgments
from prodrank.data.repair import TextRepair
from prodrank.data.schema import CATALOG, INTERACTIONS, POSITIONS, QUERIES
from prodrank.training.propensity import estimate_propensities

NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
EVENTS = (("click", "clicks"), ("add_to_cart", "add_to_carts"), ("purchase", "purchases"))
FEATURES = ("price", "rating")


class ProfileError(ValueError):
    """The profile cannot be written (bad name, taken name, no usable signal)."""


@dataclass
class Inspection:
    """What the file holds, as the report prints it and the recipe reads it."""

    kind: str  # judgments | interactions
    files: dict[str, str]  # role -> path as given
    rows: int
    queries: int
    products: int
    grades: tuple[float, float] | None = None  # judgments: the grade scale seen
    events: dict[str, int] = field(default_factory=dict)  # interactions: counts per event column
    fields: list[str] = field(default_factory=list)  # catalogue columns with any value
    examination: list[float] | None = None  # interactions: examination by position, where the log identifies it
    examination_problem: str | None = None  # why it does not

    def tasks(self) -> list[dict]:
        if self.kind == "judgments":
            return [{"name": "relevance", "label": "grade", "kind": "graded"}]
        tasks = [{"name": name, "label": label} for name, label in EVENTS if self.events.get(label)]
        if not tasks:
            raise ProfileError(f"{self.files['interactions']}: no click, add-to-cart or purchase in the log")
        return tasks

    def report(self) -> list[str]:
        lines = [f"{self.kind}: {self.rows} rows, {self.queries} queries, {self.products} products"]
        if self.grades:
            lines.append(f"grade scale: {self.grades[0]:g} to {self.grades[1]:g}")
        if self.events:
            lines.append("events: " + ", ".join(f"{label} {n}" for label, n in self.events.items()))
        lines.append("product fields: " + (", ".join(self.fields) or "title only"))
        if self.examination:
            lines.append("examination by shown position (1 = position 1): "
                         + ", ".join(f"{v:.2f}" for v in self.examination[:10]) + f"; correction: {self.debiasing()}")
        elif self.examination_problem:
            lines.append(f"position bias: not estimated ({self.examination_problem}); correction: none")
        return lines

    def debiasing(self) -> str:
        """The default position-bias correction where the log identifies examination; else none
        (judgments have no shown positions)."""
        return TrainConfig().position_debiasing if self.examination else "none"


def inspect(judgments: str | None, interactions: str | None, catalog: str | None) -> Inspection:
    """Load the file(s) as ingest will and describe them."""
    repair = TextRepair("ftfy")
    if judgments:
        tables, kind, files = load_judgments(judgments, catalog, repair=repair), "judgments", {"judgments": judgments}
    elif interactions and catalog:
        tables, kind, files = load_interactions(interactions, catalog, repair=repair), "interactions", \
            {"interactions": interactions}
    else:
        raise ProfileError("give --judgments FILE [--catalog FILE], or --interactions FILE --catalog FILE")
    if catalog:
        files["catalog"] = catalog
    pairs, products = tables[INTERACTIONS], tables[CATALOG]
    grades = (float(pairs["grade"].min()), float(pairs["grade"].max())) if kind == "judgments" else None
    events = {label: int(pairs[label].sum()) for _, label in EVENTS} if kind == "interactions" else {}
    fields = [c for c in products.columns if c not in ("product_id", "title", "popularity") and products[c].notna().any()]
    found = Inspection(kind, files, len(pairs), tables[QUERIES]["query_id"].nunique(), len(products), grades,
                       events, fields)
    if POSITIONS in tables:
        defaults = TrainConfig()
        try:
            found.examination = estimate_propensities(tables[POSITIONS], defaults.max_position,
                                                      defaults.propensity_clip).examination.tolist()
        except ValueError as error:  # e.g. a log whose rankings never move a product
            found.examination_problem = str(error)
    return found


def recipe(found: Inspection) -> dict:
    """The profile's settings (module doc)."""
    tasks = found.tasks()
    first = tasks[0]["name"]
    features = [f for f in FEATURES if f in found.fields]
    source = {"path": found.files[found.kind], "catalog": found.files.get("catalog")}
    return {
        "data": {"source": found.kind, found.kind: source, "text_repair": "ftfy"},
        "split": {"method": "query", "valid_fraction": 0.1, "test_fraction": 0.2},
        "pretrain": {"enabled": False},
        "train": {"tasks": tasks, "chaining": False, "score_weights": {t["name"]: 1.0 for t in tasks},
                  "similarity_prior": True, "product_features": features, "candidates_per_query": 16,
                  "queries_per_batch": 4, "epochs": 1, "max_steps": 0, "eval_every": 100, "patience": 3,
                  "validate_at_start": True, "max_eval_queries": 1000,
                  "position_debiasing": found.debiasing()},
        "evaluate": {"baselines": ["random", "popularity", "bm25", "minilm_biencoder", "lambdamart"],
                     "quality_gate": {"minimum": {}, "must_beat": ["random"], "gate_metric": f"{first}.ndcg@10"},
                     "ablations": []},
        # a judged set has hundreds of queries, not the thousands distillation needs to come near its
        # teacher: the trained ranker itself serves, and the student is still built (`serving.model:
        # student` serves it once its figures in metrics/distill.json say it ranks well enough)
        "serving": {"model": "teacher"},
    }


def append_profile(params: Path, name: str, settings: dict, found: Inspection) -> None:
    """Add ``profiles.NAME`` at the end of params.yaml, keeping the rest of the file (and its
    comments) as it is: ``profiles`` is the file's last section."""
    if not NAME.match(name):
        raise ProfileError(f"profile name {name!r}: use lowercase letters, digits and _ (starting with a letter)")
    text = params.read_text()
    existing = yaml.safe_load(text) or {}
    if name in (existing.get("profiles") or {}):
        raise ProfileError(f"{params} already has a profile {name!r}: choose another name or remove it first")
    if not re.search(r"^profiles:\s*$", text, re.MULTILINE) or list(existing)[-1] != "profiles":
        raise ProfileError(f"{params}: expected `profiles:` as the last section")
    body = yaml.safe_dump({name: settings}, sort_keys=False, default_flow_style=None, width=110)
    comment = f"  # written by `prodrank init-profile` from {', '.join(found.files.values())}\n"
    block = comment + "".join(f"  {line}\n" for line in body.splitlines())
    params.write_text(text.rstrip("\n") + "\n" + block)


def select_profile(params: Path, name: str) -> str:
    """Point params.yaml's ``profile:`` key at ``name``; returns the profile it replaced."""
    text = params.read_text()
    found = re.search(r"^profile:[ \t]*([^\s#]+).*$", text, re.MULTILINE)
    if found is None:
        raise ProfileError(f"{params}: no top-level `profile:` key to select {name!r} with")
    params.write_text(text[:found.start()] + f"profile: {name}" + text[found.end():])
    return found.group(1)


def init_profile(params: Path, name: str, judgments: str | None, interactions: str | None,
                 catalog: str | None) -> list[str]:
    """Inspect, write and select the profile; return the lines to print (findings, then the next command)."""
    found = inspect(judgments, interactions, catalog)
    append_profile(params, name, recipe(found), found)
    previous = select_profile(params, name)
    return [*found.report(), f"profile {name!r} written to {params} and selected (was {previous!r})",
            "next: make run   (then make serve; `profile: " + previous + "` in params.yaml switches back)"]
