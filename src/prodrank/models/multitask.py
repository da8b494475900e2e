"""Multi-task heads on a BERT cross-encoder: shared-bottom, MMoE and PLE.

The encoder's ``[CLS]`` vector feeds a multi-task head with one tower per task. The
head families differ only in how much the tasks share, which is what decides whether the
sparse tasks (add-to-cart, purchase) borrow strength from the dense one (click) or fight
it ("negative transfer"):

- shared-bottom: one MLP shared by all tasks, then the towers;
- MMoE (Ma et al., KDD 2018): N shared experts, one softmax gate per task mixing them;
- PLE (Tang et al., RecSys 2020): task-specific experts plus shared experts, each task's
  gate mixing its own and the shared ones, so conflicting tasks can keep private capacity.

With ``chaining`` (ESMM, Ma et al., SIGIR 2018) the tower of task k predicts the
conditional probability of task k given task k-1, and the model outputs the unconditional
probability p_k = p_{k-1} * p(k | k-1), so the funnel order p_purchase <= p_add_to_cart <=
p_click holds by construction and every task is trained on all impressions.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class HeadConfig:
    """Everything needed to rebuild a head; saved beside the weights as JSON."""

    input_size: int
    tasks: tuple[str, ...]
    architecture: str = "mmoe"
    n_experts: int = 4
    task_experts: int = 1
    expert_hidden: int = 256
    tower_hidden: int = 64
    dropout: float = 0.1
    chaining: bool = True
    score_weights: dict[str, float] = field(default_factory=dict)
    similarity_prior: bool = False
    similarity_scale: float = 5.0
    missing_flags: int = 0  # the last inputs: one "value unknown" flag per product feature

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> HeadConfig:
        return cls(**{**data, "tasks": tuple(data["tasks"])})


def input_layer(config: HeadConfig, out_size: int) -> nn.Linear:
    """The head's first layer over ``[CLS]`` (and the product features).

    The weights of the missing-value flags start at 0. A flag that training never sets gets
    no gradient and stays 0, so a product whose price is unknown scores as one with the
    average price (z = 0), never through random weights. A flag that training does set learns
    its weight like any other input."""
    layer = nn.Linear(config.input_size, out_size)
    with torch.no_grad():
        layer.weight[:, config.input_size - config.missing_flags:].zero_()
    return layer


class Expert(nn.Module):
    """A one-hidden-layer MLP over the [CLS] vector (with the product features, when the ranker uses them)."""

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.net = nn.Sequential(
            input_layer(config, config.expert_hidden),
            nn.GELU(),
            nn.Dropout(config.dropout),
        )

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:  # [B, H] -> [B, E]
        return self.net(hidden)


class Gate(nn.Module):
    """Softmax weights over ``n_inputs`` experts, computed from the same input as the experts."""

    def __init__(self, config: HeadConfig, n_inputs: int) -> None:
        super().__init__()
        self.proj = input_layer(config, n_inputs)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:  # [B, H] -> [B, n_inputs]
        return torch.softmax(self.proj(hidden), dim=-1)


class Tower(nn.Module):
    """Task-specific MLP from the mixed expert output to one logit."""

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(config.expert_hidden, config.tower_hidden),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.tower_hidden, 1),
        )

    def forward(self, mixed: torch.Tensor) -> torch.Tensor:  # [B, E] -> [B]
        return self.net(mixed).squeeze(-1)


def _mix(gate: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
    """gate [B, N], experts [B, N, E] -> [B, E]."""
    return torch.einsum("bn,bne->be", gate, experts)


class SharedBottom(nn.Module):
    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.bottom = Expert(config)
        self.n_tasks = len(config.tasks)

    def forward(self, hidden: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        shared = self.bottom(hidden)
        return [shared] * self.n_tasks, None


class MMoE(nn.Module):
    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.experts = nn.ModuleList(Expert(config) for _ in range(config.n_experts))
        self.gates = nn.ModuleList(Gate(config, config.n_experts) for _ in config.tasks)

    def forward(self, hidden: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        experts = torch.stack([e(hidden) for e in self.experts], dim=1)
        gates = torch.stack([g(hidden) for g in self.gates], dim=1)  # [B, T, N]
        return [_mix(gates[:, t], experts) for t in range(gates.shape[1])], gates


class PLE(nn.Module):
    """One extraction layer of PLE: each task gates over its own experts plus the shared ones."""

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.shared = nn.ModuleList(Expert(config) for _ in range(config.n_experts))
        self.private = nn.ModuleList(
            nn.ModuleList(Expert(config) for _ in range(config.task_experts)) for _ in config.tasks
        )
        n_inputs = config.n_experts + config.task_experts
        self.gates = nn.ModuleList(Gate(config, n_inputs) for _ in config.tasks)

    def forward(self, hidden: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        shared = [e(hidden) for e in self.shared]
        mixed, gates = [], []
        for private, gate in zip(self.private, self.gates, strict=True):
            experts = torch.stack([e(hidden) for e in private] + shared, dim=1)
            weights = gate(hidden)
            mixed.append(_mix(weights, experts))
            gates.append(weights)
        return mixed, torch.stack(gates, dim=1)


ARCHITECTURES: dict[str, type[nn.Module]] = {"shared_bottom": SharedBottom, "mmoe": MMoE, "ple": PLE}


def log1mexp(log_p: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(log_p)) for log_p <= 0, accurate at both ends (Maechler, 2012)."""
    log_p = log_p.clamp(max=-1e-12)  # p = 1 exactly would make log(1 - p) = -inf
    return torch.where(
        log_p > -math.log(2.0), torch.log(-torch.expm1(log_p)), torch.log1p(-torch.exp(log_p))
    )


@dataclass
class HeadOutput:
    """Per-task outputs, each [B]: logits of the towers and log p / log(1 - p)."""

    logits: dict[str, torch.Tensor]
    log_p: dict[str, torch.Tensor]
    log_not_p: dict[str, torch.Tensor]
    gates: torch.Tensor | None  # [B, T, N] expert weights per task, None for shared-bottom

    def probabilities(self) -> dict[str, torch.Tensor]:
        return {task: lp.exp() for task, lp in self.log_p.items()}


class MultiTaskHead(nn.Module):
    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        self.mixture = ARCHITECTURES[config.architecture](config)
        self.towers = nn.ModuleList(Tower(config) for _ in config.tasks)
        # similarity prior: logit_t = tower_t(...) + scale_t * cos(query, product). The towers start
        # near zero, so the untrained ranker already orders by the bi-encoder's cosine and the
        # cross-encoder learns corrections to it instead of relearning relevance from scratch.
        self.similarity_scale = (
            nn.Parameter(torch.full((len(config.tasks),), config.similarity_scale)) if config.similarity_prior else None
        )

    def forward(self, hidden: torch.Tensor, similarity: torch.Tensor | None = None) -> HeadOutput:
        """hidden [B, H]; similarity [B], required with ``similarity_prior`` and ignored without."""
        mixed, gates = self.mixture(hidden)
        logits = {t: tower(m) for t, tower, m in zip(self.config.tasks, self.towers, mixed, strict=True)}
        if self.similarity_scale is not None:
            logits = {t: logits[t] + self.similarity_scale[i] * similarity for i, t in enumerate(self.config.tasks)}
        log_p, log_not_p = {}, {}
        previous = None
        for task in self.config.tasks:
            own = F.logsigmoid(logits[task])
            if self.config.chaining and previous is not None:
                # unconditional p_k = p_{k-1} * p(k | k-1), kept in log space for stability
                log_p[task] = previous + own
                log_not_p[task] = log1mexp(log_p[task])
            else:
                log_p[task] = own
                log_not_p[task] = F.logsigmoid(-logits[task])
            previous = log_p[task]
        return HeadOutput(logits, log_p, log_not_p, gates)

    def ranking_score(self, output: HeadOutput) -> torch.Tensor:
        """Expected gain sum_t w_t * p_t: the ranking score recorded with the model."""
        weights = self.config.score_weights or {t: 1.0 for t in self.config.tasks}
        return sum(w * output.log_p[t].exp() for t, w in weights.items())

    def listwise_scores(self, output: HeadOutput) -> dict[str, torch.Tensor]:
        """Scores fed to listwise losses: log p_t, monotone in p_t, and finite."""
        return output.log_p
