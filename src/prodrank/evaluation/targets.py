"""Names shared by the evaluation, its report and the results pages: the ranked systems that are
not baselines and the ground-truth targets. A module of their own so that the evaluation can
import the report that renders it, and the report these names, without an import cycle."""
from __future__ import annotations

MODEL = "prodrank"  # the model that serves (serving.model: the distilled student by default)
TEACHER = "teacher"  # the trained ranker the student was distilled from, scored beside it
ORACLE = "oracle"
GRADED = "relevance_true"
TRUE_SUFFIX = "_true"  # a target measured against the ground truth, not the biased log


def is_expected_rate(target: str) -> bool:
    """An expected event rate (``click_true`` ...): positive for nearly every pair, so only
    NDCG is defined; MRR, MAP, recall and AUC need relevant/irrelevant labels."""
    return target.endswith(TRUE_SUFFIX) and target != GRADED
