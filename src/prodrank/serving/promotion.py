"""Which packaged model serves: the champion/challenger decision, shared by the ``package``
stage and the retrain flow.

:func:`decide` is the pure rule (no I/O). :func:`package_decision` applies it at packaging
time, so the model ``make run`` just built is the model ``make serve`` serves, or the user is
told why not:

- no champion yet: the new model becomes champion;
- the champion comes from another profile or from other data (the DVC version of
  ``data/prepared`` differs): its numbers were measured on other queries and say nothing about
  this data set, so the new model replaces it, and the reason names the difference;
- otherwise both are compared on the same held-out queries, as the retrain flow does: the frozen
  benchmark once one exists for this profile, before that the current test split (same data
  version, so the champion's recorded test metrics are on exactly these queries);
- inside a retrain flow run (``$PRODRANK_RETRAIN_RUN``), the stage only stores the model: the
  flow compares champion and challenger on the frozen benchmark and promotes itself.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from prodrank.config import Config

log = logging.getLogger(__name__)

RETRAIN_RUN_ENV = "PRODRANK_RETRAIN_RUN"  # set by the retrain flow for its `dvc repro`


def decide(metric: str, margin: float, gate: dict[str, Any] | None, challenger_tag: str | None,
           champion_tag: str | None, challenger_score: float | None, champion_score: float | None,
           on: str = "the benchmark") -> dict[str, Any]:
    """Promote or not, and why. Pure: no I/O. ``on`` names the queries both were scored on.

    - the challenger's quality gate must have passed;
    - no champion yet: promote;
    - the challenger is the champion (same packaged files): nothing to do;
    - else the challenger must beat the champion on ``metric`` by ``delta >= margin`` and ``delta > 0``
      (a tie never replaces the champion).
    """
    out: dict[str, Any] = {"metric": metric, "margin": margin, "champion_score": champion_score,
                           "challenger_score": challenger_score, "delta": None}
    if challenger_score is not None and champion_score is not None:
        out["delta"] = challenger_score - champion_score
    if not gate or not gate.get("passed"):
        problems = "; ".join((gate or {}).get("problems") or ["no quality gate result"])
        return {**out, "promote": False, "reason": f"challenger failed the quality gate: {problems}"}
    if challenger_tag is None:
        return {**out, "promote": False, "reason": "no challenger was packaged"}
    if champion_tag is None:
        return {**out, "promote": True, "reason": "no champion yet: the challenger passed the quality gate"}
    if challenger_tag == champion_tag:
        return {**out, "promote": False, "reason": "the challenger is the champion (identical model files)"}
    if challenger_score is None:
        return {**out, "promote": False, "reason": f"{metric} was not computed for the challenger on {on}"}
    if champion_score is None:
        return {**out, "promote": True,
                "reason": f"{metric} was not computed for the champion on {on}; the challenger has it"}
    delta = out["delta"]
    if delta > 0 and delta >= margin:
        return {**out, "promote": True, "reason": f"challenger beats the champion on {metric}: "
                f"{challenger_score:.4f} vs {champion_score:.4f} on {on} (Δ {delta:+.4f} ≥ margin {margin})"}
    return {**out, "promote": False, "reason": f"challenger does not beat the champion on {metric} by the margin: "
            f"{challenger_score:.4f} vs {champion_score:.4f} on {on} (Δ {delta:+.4f}, margin {margin})"}


@dataclass(frozen=True)
class PackageDecision:
    """What the ``package`` stage did with the model it stored, and why (``models/package.json``)."""

    promote: bool
    reason: str
    champion_before: str | None
    compared_on: str | None = None  # "frozen benchmark" | "test split" | None (no comparison)
    metric: str | None = None
    new_score: float | None = None
    champion_score: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StoredModel:
    """What the decision needs to know of a packaged model."""

    tag: str
    profile: str | None
    data_md5: str | None
    metrics: Mapping[str, Any]  # flat "<task>.<metric>" summary recorded at packaging


def headline_metric(cfg: Config, metrics: Mapping[str, Any]) -> str:
    """``orchestration.promotion_metric`` when the model has it, else the quality gate's metric
    (a profile whose tasks have no click, such as graded judgments, is compared on its own task)."""
    preferred = cfg.orchestration.promotion_metric
    return preferred if preferred in metrics else cfg.evaluate.quality_gate.gate_metric


def difference(new: StoredModel, champion: StoredModel) -> str | None:
    """Why the champion's numbers are not comparable with the new model's, or None."""
    if champion.profile != new.profile:
        return f"the champion {champion.tag} was built with profile {champion.profile!r}, this model with {new.profile!r}"
    if not new.data_md5 or champion.data_md5 != new.data_md5:
        return (f"the champion {champion.tag} was trained on other data (data/prepared {champion.data_md5 or 'unknown'}, "
                f"now {new.data_md5 or 'unknown'})")
    return None


BenchmarkScorer = Callable[[str], float | None]  # tag -> its headline metric on the frozen benchmark


def package_decision(cfg: Config, gate: dict[str, Any], new: StoredModel, champion: StoredModel | None,
                     benchmark_scorer: BenchmarkScorer | None) -> PackageDecision:
    """The package stage's decision (module doc). ``benchmark_scorer`` is given when a frozen
    benchmark of this profile exists; it evaluates a packaged model on it."""
    champion_tag = champion.tag if champion is not None else None
    if os.environ.get(RETRAIN_RUN_ENV):
        return PackageDecision(False, f"stored only: retrain run {os.environ[RETRAIN_RUN_ENV]} compares champion and "
                                      "challenger on the frozen benchmark", champion_tag)
    if champion is None or champion.tag == new.tag:
        rule = decide(headline_metric(cfg, new.metrics), cfg.orchestration.promotion_margin, gate, new.tag,
                      champion_tag, None, None)
        return PackageDecision(rule["promote"], rule["reason"], champion_tag)
    if reason := difference(new, champion):
        return PackageDecision(True, reason + ": its numbers say nothing about this data set", champion_tag)
    metric = headline_metric(cfg, new.metrics)
    if benchmark_scorer is not None:
        compared_on, new_score, champion_score = "frozen benchmark", benchmark_scorer(new.tag), benchmark_scorer(champion.tag)
    else:
        compared_on, new_score, champion_score = "test split", new.metrics.get(metric), champion.metrics.get(metric)
    rule = decide(metric, cfg.orchestration.promotion_margin, gate, new.tag, champion.tag, new_score, champion_score,
                  on=f"the {compared_on}")
    return PackageDecision(rule["promote"], rule["reason"], champion_tag, compared_on, metric, new_score, champion_score)
