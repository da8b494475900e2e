"""The model store: packaged rankers in BentoML's store, plus which one is the champion.

- :func:`save_model` copies a saved ranker directory into the BentoML model store
  (``bentoml.models.create``, name ``serving.model_name``) under ``ranker/``, and the search
  index of the catalogue under ``retrieval/`` (:mod:`prodrank.serving.retrieval`), with metadata:
  the evaluation summary, a hash of the resolved params, the git revision, the DVC data
  version of ``data/prepared`` and the sha256 of every file (tamper check). It refuses a
  model whose evaluation says the quality gate failed.
- :func:`champion`, :func:`promote`, :func:`rollback`: which packaged model is served.
- :func:`load_packaged` verifies every file against its recorded sha256 and loads the ranker.

Where the champion is recorded. BentoML 1.4.40 writes a model's labels into its
``model.yaml`` once, when the model is saved; ``ModelInfo`` is a frozen attrs class and no
public API changes labels afterwards (rewriting ``model.yaml`` by hand would change a
stored artefact behind BentoML's back). So labels hold what never changes (``stage=candidate``
at creation, ``gate=passed``, ``profile``), and the *mutable* stage lives in a small JSON
registry beside the store, ``$BENTOML_HOME/prodrank-registry.json``, updated under a file
lock with an atomic rename::

    {"champion": "prodrank-ranker:abc", "models": {"prodrank-ranker:abc": {"stage": "champion", ...}},
     "history": [{"action": "promote", "tag": ..., "previous": ..., "at": ...}, ...]}

Stages: ``candidate`` (packaged, never served), ``champion`` (served), ``previous`` (a
former champion, kept for :func:`rollback`), ``rolled_back`` (demoted by a rollback).
Nothing is deleted, so every former champion stays loadable.

``BENTOML_HOME``: the environment variable wins; otherwise ``serving.bentoml_home`` in
params.yaml (default ``.bentoml`` in the project, git-ignored) — see :func:`bentoml_home`.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from prodrank import paths
from prodrank.config import Config
from prodrank.io import jsonable, sha256_file, write_json
from prodrank.serving import retrieval
from prodrank.serving.promotion import headline_metric

REGISTRY_FILE = "prodrank-registry.json"
RANKER_SUBDIR = "ranker"  # the trained ranker (the teacher)
STUDENT_SUBDIR = "student"  # its distilled student with ONNX graphs, when one was packaged
MODEL_SUBDIRS = {"teacher": RANKER_SUBDIR, "student": STUDENT_SUBDIR}  # serving.model -> folder
PREPARED_DATA = "data/prepared"


class RegistryError(RuntimeError):
    """A registry operation is impossible (unknown tag, nothing to roll back to, failed gate)."""


class TamperedModelError(RuntimeError):
    """A packaged model's files do not match the sha256 recorded when it was packaged."""


# -- locations ---------------------------------------------------------------------------
def bentoml_home(cfg: Config | None = None) -> Path:
    """The BentoML home: ``$BENTOML_HOME`` if set, else ``cfg.serving.bentoml_home``
    (default ``.bentoml``) made absolute."""
    env = os.environ.get("BENTOML_HOME")
    if env:
        return Path(env).expanduser().resolve()
    return Path(cfg.serving.bentoml_home if cfg is not None else ".bentoml").expanduser().resolve()


def _store(cfg: Config | None = None):
    """A BentoML ModelStore on :func:`bentoml_home`'s ``models/``, built
    per call and passed to ``bentoml.models.*`` explicitly: the store does not depend on
    when BentoML's global container first read BENTOML_HOME in this process."""
    from bentoml._internal.models import ModelStore

    directory = bentoml_home(cfg) / "models"
    directory.mkdir(parents=True, exist_ok=True)
    return ModelStore(str(directory))


# -- provenance ----------------------------------------------------------------------------
def file_hashes(directory: Path) -> dict[str, str]:
    """sha256 of every file under ``directory``, keyed by POSIX relative path."""
    return {p.relative_to(directory).as_posix(): sha256_file(p)
            for p in sorted(directory.rglob("*")) if p.is_file()}


def content_digest(hashes: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(dict(sorted(hashes.items()))).encode()).hexdigest()


def params_hash(cfg: Config) -> str:
    """sha256 of the resolved, validated configuration (profile applied)."""
    return hashlib.sha256(json.dumps(cfg.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def git_revision(root: Path = Path(".")) -> str | None:
    """HEAD's commit, read from .git without running git (None outside a repository)."""
    git = root.resolve()
    while not (git / ".git").exists():
        if git.parent == git:
            return None
        git = git.parent
    git = git / ".git"
    if git.is_file():  # worktree / submodule: "gitdir: <path>"
        git = (git.parent / git.read_text().split(":", 1)[1].strip()).resolve()
    try:
        head = (git / "HEAD").read_text().strip()
    except OSError:
        return None
    if not head.startswith("ref:"):
        return head
    ref = head.split(":", 1)[1].strip()
    if (git / ref).exists():
        return (git / ref).read_text().strip()
    packed = git / "packed-refs"
    if packed.exists():
        for line in packed.read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    return None


def dvc_data_version(lock_path: Path = Path("dvc.lock"), data_path: str = PREPARED_DATA) -> dict | None:
    """The md5 DVC recorded for ``data/prepared`` in dvc.lock ({path, md5, stage}), or None."""
    if not lock_path.exists():
        return None
    lock = yaml.safe_load(lock_path.read_text()) or {}
    for stage, body in (lock.get("stages") or {}).items():
        for out in (body or {}).get("outs", []) or []:
            if out.get("path") == data_path and out.get("md5"):
                return {"path": data_path, "md5": out["md5"], "stage": stage}
    return None


def metrics_summary(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The model's own numbers from an evaluate.json: ``{"quality_gate": {...}, "click.ndcg@10": ...}``
    (flat ``<target>.<metric>`` keys of ``methods.prodrank``, confidence intervals left out)."""
    model = (metrics.get("methods") or {}).get("prodrank") or {}
    flat = {f"{target}.{name}": float(value) for target, per in model.items() if isinstance(per, Mapping)
            for name, value in per.items() if isinstance(value, int | float) and not isinstance(value, bool)}
    gate = metrics.get("quality_gate") or {}
    return {"quality_gate": {"passed": bool(gate.get("passed", False)), "problems": list(gate.get("problems", []))},
            "n_queries": metrics.get("n_queries"), **flat}


# -- the JSON registry ---------------------------------------------------------------------
@contextlib.contextmanager
def _locked_registry(cfg: Config | None) -> Iterator[dict[str, Any]]:
    """Read-modify-write the registry under an exclusive lock; written atomically on exit."""
    home = bentoml_home(cfg)
    home.mkdir(parents=True, exist_ok=True)
    path = home / REGISTRY_FILE
    with open(home / (REGISTRY_FILE + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text()) if path.exists() else {}
        data.setdefault("champion", None)
        data.setdefault("models", {})
        data.setdefault("history", [])
        before = json.dumps(data, sort_keys=True)
        yield data
        if json.dumps(data, sort_keys=True) != before:
            fd, tmp = tempfile.mkstemp(prefix=".registry.", dir=home)
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh, indent=2, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)


def read_registry(cfg: Config | None = None) -> dict[str, Any]:
    path = bentoml_home(cfg) / REGISTRY_FILE
    data = json.loads(path.read_text()) if path.exists() else {}
    return {"champion": data.get("champion"), "models": data.get("models", {}), "history": data.get("history", [])}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _get(tag: str, cfg: Config | None = None):
    import bentoml
    from bentoml.exceptions import BentoMLException

    store = _store(cfg)
    try:
        return bentoml.models.get(tag, _model_store=store)
    except BentoMLException:  # NotFound, or a malformed tag
        raise RegistryError(f"model {tag!r} is not in the BentoML store at {bentoml_home(cfg) / 'models'}"
                            " (run `prodrank package`)") from None


def _list(cfg: Config | None = None) -> list:
    """Every stored model named ``serving.model_name`` (empty list, not NotFound, if none)."""
    import bentoml
    from bentoml.exceptions import NotFound

    name = cfg.serving.model_name if cfg is not None else "prodrank-ranker"
    try:
        return bentoml.models.list(name, _model_store=_store(cfg))
    except NotFound:
        return []


# -- public API ----------------------------------------------------------------------------
def served_dir(model_path: str | Path, model: str) -> Path:
    """The folder of a packaged model that ``serving.model`` names; the teacher for a model
    packaged without a student."""
    student = Path(model_path) / STUDENT_SUBDIR
    return student if model == "student" and student.is_dir() else Path(model_path) / RANKER_SUBDIR


def student_summary(student_dir: Path) -> dict[str, Any]:
    """Shape and export record of a distilled student, for /metadata."""
    from transformers import BertConfig  # lazy: transformers, only when a student is packaged

    encoder = BertConfig.from_pretrained(student_dir / "query_encoder")  # the product tower has the same shape
    meta = json.loads((student_dir / paths.STUDENT_FILE).read_text())
    onnx = json.loads((student_dir / "onnx.json").read_text()) if (student_dir / "onnx.json").exists() else None
    return {"kind": meta["kind"], "layers": encoder.num_hidden_layers, "hidden": encoder.hidden_size,
            "heads": encoder.num_attention_heads, "input_budget": meta["input_budget"], "onnx": onnx}


def save_model(ranker_dir: str | Path, metrics: Mapping[str, Any], cfg: Config,
               catalog: str | Path = paths.PREPARED / "catalog.parquet", student_dir: str | Path | None = None) -> str:
    """Package a saved ranker that passed the quality gate, with its distilled student
    (``student_dir``, when there is one) and the search index of ``catalog`` beside it
    (:mod:`prodrank.serving.retrieval`); returns its tag ``name:version``.

    Packaging the same ranker files again returns the existing tag instead of a duplicate.
    """
    import bentoml

    ranker_dir = Path(ranker_dir)
    if not (ranker_dir / "ranker.json").exists():
        raise FileNotFoundError(f"{ranker_dir} is not a saved ranker (no ranker.json)")
    gate = metrics.get("quality_gate")
    if not isinstance(gate, Mapping) or gate.get("passed") is not True:
        problems = "; ".join((gate or {}).get("problems", [])) if isinstance(gate, Mapping) else "no quality_gate"
        raise RegistryError(f"refusing to package {ranker_dir}: the quality gate did not pass ({problems})")
    hashes = {f"{RANKER_SUBDIR}/{k}": v for k, v in file_hashes(ranker_dir).items()}
    if student_dir is not None:
        hashes.update({f"{STUDENT_SUBDIR}/{k}": v for k, v in file_hashes(Path(student_dir)).items()})
    # the catalogue is part of what is packaged: the same ranker over a changed catalogue (or a
    # model packaged before it had a search index) is a new model
    digest = content_digest({**hashes, **retrieval.catalog_identity(catalog)})
    name = cfg.serving.model_name
    store = _store(cfg)
    for existing in _list(cfg):
        if existing.info.metadata.get("content_sha256") == digest:
            with _locked_registry(cfg) as reg:
                reg["models"].setdefault(str(existing.tag), {"stage": "candidate", "packaged_at": _now()})
            return str(existing.tag)
    ranker_meta = json.loads((ranker_dir / "ranker.json").read_text())
    head = ranker_meta.get("head", {})
    metadata = {
        "prodrank_format": 1,
        "ranker_format_version": ranker_meta.get("format_version"),
        "tasks": list(head.get("tasks", [])),
        "score_weights": dict(head.get("score_weights", {})),
        "architecture": head.get("architecture"),
        "chaining": head.get("chaining"),
        "score_formula": "sum_t score_weight_t * p_t",
        "input_budget": ranker_meta.get("input_budget"),
        # numeric fields a /rank candidate should carry besides its text ([]: none)
        "product_features": (ranker_meta.get("product_features") or {}).get("names", []),
        "metrics": metrics_summary(metrics),
        "params_hash": params_hash(cfg),
        "profile": cfg.profile,
        "git_revision": git_revision(),
        "data_version": dvc_data_version(),
        "files": dict(hashes),
        "student": student_summary(Path(student_dir)) if student_dir is not None else None,
        "content_sha256": digest,
        "packaged_at": _now(),
    }
    labels = {"stage": "candidate", "gate": "passed", "profile": cfg.profile, "project": "prodrank"}
    with bentoml.models.create(name, labels=labels, metadata=jsonable(metadata, non_finite="keep", drop_none=True), _model_store=store) as model:
        shutil.copytree(ranker_dir, model.path_of(RANKER_SUBDIR))
        if student_dir is not None:
            shutil.copytree(student_dir, model.path_of(STUDENT_SUBDIR))
        model.info.metadata["files"].update(retrieval.build_index(catalog, model.path_of(retrieval.INDEX_SUBDIR)))
    tag = str(model.tag)
    with _locked_registry(cfg) as reg:
        reg["models"][tag] = {"stage": "candidate", "packaged_at": metadata["packaged_at"]}
        reg["history"].append({"action": "package", "tag": tag, "at": metadata["packaged_at"]})
    return tag


def champion(cfg: Config | None = None) -> str | None:
    """The champion's tag, or None if none was promoted (or it vanished from the store)."""
    tag = read_registry(cfg)["champion"]
    if tag is None:
        return None
    try:
        _get(tag, cfg)
    except RegistryError:
        return None
    return tag


def promote(tag: str, cfg: Config | None = None, reason: str = "") -> None:
    """Make ``tag`` the champion; the former champion becomes ``previous`` (kept, loadable)."""
    model = _get(tag, cfg)
    tag = str(model.tag)
    if model.info.labels.get("gate") != "passed":
        raise RegistryError(f"{tag} was not packaged by prodrank after a passed quality gate")
    with _locked_registry(cfg) as reg:
        previous = reg["champion"]
        if previous == tag:
            return
        if previous is not None:
            reg["models"].setdefault(previous, {})["stage"] = "previous"
        reg["models"].setdefault(tag, {})["stage"] = "champion"
        reg["models"][tag]["promoted_at"] = _now()
        reg["champion"] = tag
        reg["history"].append({"action": "promote", "tag": tag, "previous": previous, "at": _now(), "reason": reason})


def rollback(cfg: Config | None = None) -> str:
    """Make the champion before the current one champion again; returns its tag.
    The demoted champion is marked ``rolled_back`` (kept in the store)."""
    with _locked_registry(cfg) as reg:
        current = reg["champion"]
        if current is None:
            raise RegistryError("no champion to roll back from")
        # walk promotions newest first: the champion that preceded the current one and still exists
        candidates = [h["previous"] for h in reversed(reg["history"])
                      if h["action"] in ("promote", "rollback") and h.get("tag") == current and h.get("previous")]
        target = None
        for tag in candidates:
            if tag != current and reg["models"].get(tag, {}).get("stage") != "rolled_back":
                try:
                    _get(tag, cfg)
                except RegistryError:
                    continue
                target = tag
                break
        if target is None:
            raise RegistryError(f"nothing to roll back to: {current} has no earlier champion in the store")
        reg["models"].setdefault(current, {})["stage"] = "rolled_back"
        reg["models"].setdefault(target, {})["stage"] = "champion"
        reg["champion"] = target
        reg["history"].append({"action": "rollback", "tag": target, "previous": current, "at": _now()})
    return target


def model_metadata(tag: str, cfg: Config | None = None) -> dict[str, Any]:
    """Tag, labels, metadata, creation time and path of a stored model (no weights loaded)."""
    model = _get(tag, cfg)
    return {"tag": str(model.tag), "labels": dict(model.info.labels), "metadata": dict(model.info.metadata),
            "creation_time": model.info.creation_time.isoformat(), "path": str(model.path)}


def verify_files(model_path: Path, expected: Mapping[str, str]) -> None:
    """Raise TamperedModelError naming every changed, missing or unexpected file."""
    actual = {f"{subdir}/{k}": v for subdir in (RANKER_SUBDIR, STUDENT_SUBDIR, retrieval.INDEX_SUBDIR)
              for k, v in file_hashes(model_path / subdir).items()}
    changed = sorted(k for k in expected if k in actual and actual[k] != expected[k])
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    if changed or missing or extra:
        parts = [f"{label}: {', '.join(names)}" for label, names in
                 (("changed", changed), ("missing", missing), ("unexpected", extra)) if names]
        raise TamperedModelError(f"packaged model at {model_path} does not match its recorded sha256 "
                                 f"({'; '.join(parts)}); refusing to load it")


def verify_packaged(tag: str, cfg: Config | None = None):
    """The stored model, after checking every file against the sha256 recorded at packaging
    (raises :class:`TamperedModelError` naming the files that differ)."""
    model = _get(tag, cfg)
    expected = model.info.metadata.get("files")
    if not expected:
        raise TamperedModelError(f"{model.tag} has no recorded file hashes; it was not packaged by prodrank")
    verify_files(Path(model.path), expected)
    return model


def load_packaged(tag: str, cfg: Config | None = None):
    """(BatchScorer, metadata) for a packaged model, after :func:`verify_packaged`: the model
    ``serving.model`` names, on ``serving.runtime`` (``metadata["serving"]`` says which)."""
    from prodrank.models.runtime import load_scorer  # lazy: torch

    serving = (cfg or Config()).serving
    model = verify_packaged(tag, cfg)
    metadata = dict(model.info.metadata)
    directory = served_dir(model.path, serving.model)
    scorer = load_scorer(directory, serving.runtime, serving.quantize, serving.threads)
    metadata["tag"] = str(model.tag)
    metadata["labels"] = dict(model.info.labels)
    metadata["serving"] = {"model": "student" if directory.name == STUDENT_SUBDIR else "teacher",
                           "runtime": scorer.runtime, "quantized": scorer.quantized,
                           "max_tokens": scorer.pair_encoder.max_length}
    return scorer, metadata


def load_search_index(tag: str, cfg: Config | None = None) -> retrieval.CatalogIndex | None:
    """The packaged model's search index; None for a model packaged without one (before
    ``/search`` existed, or without a catalogue). Call after :func:`load_packaged`, which
    checked its files."""
    directory = Path(_get(tag, cfg).path) / retrieval.INDEX_SUBDIR
    return retrieval.CatalogIndex.load(directory) if directory.is_dir() else None


def newest(cfg: Config | None = None) -> str | None:
    """The most recently packaged model of ``serving.model_name`` in the store, or None."""
    models = _list(cfg)
    return str(max(models, key=lambda m: m.info.creation_time).tag) if models else None


def serving_tag(cfg: Config | None = None) -> str:
    """What the service serves: ``$PRODRANK_MODEL_TAG``, else the champion, else the newest
    packaged model."""
    if tag := os.environ.get("PRODRANK_MODEL_TAG"):
        return tag
    if tag := champion(cfg):
        return tag
    if tag := newest(cfg):
        return tag
    name = cfg.serving.model_name if cfg is not None else "prodrank-ranker"
    raise RegistryError(f"no packaged {name!r} model in {bentoml_home(cfg)}: run `prodrank package` "
                        "(or `make run`) first, or set PRODRANK_MODEL_TAG")


def record_decision(tag: str, reason: str, cfg: Config | None = None) -> None:
    """Keep why the package stage did or did not promote ``tag``, for :func:`serving_notice`."""
    with _locked_registry(cfg) as reg:
        reg["models"].setdefault(tag, {"stage": "candidate"})["decision"] = reason


def serving_notice(tag: str, cfg: Config) -> list[str]:
    """What ``make serve`` prints first: the model it serves (stage, profile, headline metric),
    and the newest packaged model when that is not the one served, with the reason."""
    registry = read_registry(cfg)
    metadata = model_metadata(tag, cfg)["metadata"]
    metrics = metadata.get("metrics") or {}
    metric = headline_metric(cfg, metrics)
    value = metrics.get(metric)
    score = (f"{metric} {value:.4f} on {metrics.get('n_queries')} test queries" if isinstance(value, int | float)
             else f"{metric} not recorded")
    stage = registry["models"].get(tag, {}).get("stage", "candidate")
    lines = [f"serving {tag} ({stage}, profile {metadata.get('profile')!r}, {score})"]
    latest = newest(cfg)
    if latest and latest != tag:
        why = registry["models"].get(latest, {}).get("decision", "not promoted")
        lines.append(f"the newest packaged model {latest} is not served: {why}")
    return lines


def write_package_manifest(tag: str, cfg: Config, out: str | Path = paths.RANKER.parent / "package.json",
                           promotion: Mapping[str, Any] | None = None) -> dict:
    """``models/package.json``: the package stage's output (tag, champion, the promotion
    decision, metadata)."""
    info = model_metadata(tag, cfg)
    manifest = {"tag": info["tag"], "champion": champion(cfg), "promotion": dict(promotion or {}), "labels": info["labels"],
                "metadata": info["metadata"], "bentoml_home": str(bentoml_home(cfg))}
    write_json(manifest, out)
    return manifest
