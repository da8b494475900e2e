"""Ranking losses, one per module, in the style of sentence-transformers' cross-encoder losses.

Every loss returns ``sum of per-unit losses / normalizer``. ``normalizer`` defaults to the
local number (or weight) of units; under DistributedDataParallel the trainer passes the
global count, so averaging gradients over ranks gives exactly the single-process gradient.

Inputs
======
=================  ============  =================================================
argument           shape         meaning
=================  ============  =================================================
log_p, log_not_p   [B]           log p and log(1 - p) of one task per pair
target             [B]           soft label in [0, 1] (event rate over impressions)
weight             [B]           example weight (impressions)
scores             [Q, L]        per-query scores, L = longest list in the batch
gains              [Q, L]        per-query relevance gains (>= 0)
mask               [Q, L] bool   True for real items, False for padding
=================  ============  =================================================
"""
from __future__ import annotations

import torch
from torch import nn


class PointwiseBCE(nn.Module):
    """Weighted binary cross-entropy on probabilities given in log space.

    Taking log p and log(1 - p) (rather than a logit) lets the same loss train the
    chained ESMM probabilities, which are products of sigmoids and have no single logit.
    """

    def forward(
        self,
        log_p: torch.Tensor,
        log_not_p: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor,
        normalizer: float | None = None,
    ) -> torch.Tensor:
        per_pair = -(target * log_p + (1.0 - target) * log_not_p)
        total = (weight * per_pair).sum()
        return total / (normalizer if normalizer is not None else weight.sum().clamp_min(1e-12))


class ListNetLoss(nn.Module):
    """ListNet top-one cross-entropy (Cao et al., ICML 2007) per query group.

    The target distribution is the gains normalised to sum to one; the predicted one is
    the softmax of the scores over the real (unpadded) items. Queries whose gains are all
    zero carry no ranking information and are skipped.
    """

    def forward(
        self,
        scores: torch.Tensor,
        gains: torch.Tensor,
        mask: torch.Tensor,
        normalizer: float | None = None,
    ) -> torch.Tensor:
        gains = gains.masked_fill(~mask, 0.0)
        totals = gains.sum(dim=1)
        informative = totals > 0
        target = gains / totals.clamp_min(1e-12).unsqueeze(1)
        log_pred = torch.log_softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
        per_query = -(target * log_pred.masked_fill(~mask, 0.0)).sum(dim=1)
        total = per_query[informative].sum()
        count = normalizer if normalizer is not None else informative.sum().clamp_min(1)
        return total / count


class LambdaLoss(nn.Module):
    """LambdaRank-weighted pairwise logistic loss (the LambdaLoss framework's
    ``lambdaRank`` scheme, Wang et al., CIKM 2018).

    For every pair with gain_i > gain_j the logistic loss log(1 + exp(-(s_i - s_j))) is
    weighted by |delta NDCG| of swapping i and j in the current ranking, so mistakes near
    the top of the list cost more. Ranks come from the detached scores.
    """

    def forward(
        self,
        scores: torch.Tensor,
        gains: torch.Tensor,
        mask: torch.Tensor,
        normalizer: float | None = None,
    ) -> torch.Tensor:
        gains = gains.masked_fill(~mask, 0.0)
        masked_scores = scores.detach().masked_fill(~mask, float("-inf"))
        order = masked_scores.argsort(dim=1, descending=True)
        ranks = torch.empty_like(order)
        positions = torch.arange(scores.shape[1], device=scores.device).expand_as(order)
        ranks.scatter_(1, order, positions)
        discount = 1.0 / torch.log2(ranks.to(scores.dtype) + 2.0)  # [Q, L]

        ideal_gains = (2.0**gains - 1.0).sort(dim=1, descending=True).values
        ideal_discount = 1.0 / torch.log2(torch.arange(scores.shape[1], device=scores.device, dtype=scores.dtype) + 2.0)
        idcg = (ideal_gains * ideal_discount).sum(dim=1, keepdim=True)  # [Q, 1]

        gain_value = 2.0**gains - 1.0
        delta = (gain_value.unsqueeze(2) - gain_value.unsqueeze(1)).abs() * (
            discount.unsqueeze(2) - discount.unsqueeze(1)
        ).abs()
        delta = delta / idcg.unsqueeze(2).clamp_min(1e-12)
        better = (gains.unsqueeze(2) > gains.unsqueeze(1)) & mask.unsqueeze(2) & mask.unsqueeze(1)
        diff = scores.unsqueeze(2) - scores.unsqueeze(1)
        pair_loss = nn.functional.softplus(-diff)
        per_query = (delta * pair_loss).masked_fill(~better, 0.0).sum(dim=(1, 2))
        informative = better.any(dim=(1, 2))
        count = normalizer if normalizer is not None else informative.sum().clamp_min(1)
        return per_query[informative].sum() / count


LISTWISE_LOSSES: dict[str, type[nn.Module]] = {"listnet": ListNetLoss, "lambdaloss": LambdaLoss}


class FixedTaskWeighting(nn.Module):
    """Sum of task losses with fixed weights (1 for tasks not listed)."""

    def __init__(self, tasks: tuple[str, ...], weights: dict[str, float]) -> None:
        super().__init__()
        self.weights = {t: float(weights.get(t, 1.0)) for t in tasks}

    def forward(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(self.weights[t] * loss for t, loss in losses.items())

    def current_weights(self) -> dict[str, float]:
        return dict(self.weights)


class UncertaintyWeighting(nn.Module):
    """Homoscedastic-uncertainty task weighting (Kendall et al., CVPR 2018).

    total = sum_t exp(-s_t) * L_t + s_t with learned s_t = log sigma_t^2: a task whose loss
    stays large (noisy, sparse) is down-weighted, and the + s_t term stops all weights
    from collapsing to zero.
    """

    def __init__(self, tasks: tuple[str, ...]) -> None:
        super().__init__()
        self.tasks = tasks
        self.log_variance = nn.Parameter(torch.zeros(len(tasks)))

    def forward(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(
            torch.exp(-self.log_variance[i]) * losses[t] + self.log_variance[i]
            for i, t in enumerate(self.tasks)
        )

    def current_weights(self) -> dict[str, float]:
        return {t: float(torch.exp(-self.log_variance[i].detach())) for i, t in enumerate(self.tasks)}


class LogitMSE(nn.Module):
    """Mean squared error between student and teacher log-odds of one task (soft-label
    distillation, Hinton et al. 2015, on logits as in Ba & Caruana 2014).

    Log-odds rather than probabilities: a purchase probability of 1e-3 against 1e-2 is a large
    difference in ranking terms and a negligible one in probability terms. With chained tasks
    the log-odds of the unconditional p_k are log p_k - log(1 - p_k).

    student_log_p, student_log_not_p  [B]  the student's log p and log(1 - p)
    teacher_logit                     [B]  the teacher's log-odds
    """

    def forward(self, student_log_p: torch.Tensor, student_log_not_p: torch.Tensor,
                teacher_logit: torch.Tensor) -> torch.Tensor:
        return ((student_log_p - student_log_not_p) - teacher_logit).pow(2).mean()


class ListwiseKL(nn.Module):
    """KL(teacher || student) of the per-query softmax over candidates (listwise distillation):
    the student matches how the teacher spreads probability over a query's list, which is what
    a ranking uses, rather than each score on its own.

    student_scores, teacher_scores  [Q, L]  per-query scores (log p of a task)
    mask                            [Q, L]  True for real items
    """

    def forward(self, student_scores: torch.Tensor, teacher_scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        target = torch.softmax(teacher_scores.masked_fill(~mask, float("-inf")), dim=1)
        log_student = torch.log_softmax(student_scores.masked_fill(~mask, float("-inf")), dim=1)
        log_target = torch.log(target.clamp_min(1e-30))
        per_query = (target * (log_target - log_student)).masked_fill(~mask, 0.0).sum(dim=1)
        return per_query.mean()
