"""The position tower (PAL): logged probability = p(seen) * p(event | seen), against float64."""
from __future__ import annotations

import numpy as np
import torch

from prodrank.models.position_tower import PositionTower


def test_observed_probability_is_seen_times_relevance_in_float64():
    torch.manual_seed(0)
    tower = PositionTower(np.array([1.0, 0.5, 0.3, 0.2]), tasks=("click", "purchase"))
    torch.nn.init.normal_(tower.logits)
    exposure = torch.tensor([[1.0, 0, 0, 0], [0.25, 0.25, 0.5, 0]])
    p = torch.tensor([0.3, 0.9])
    log_seen = tower.log_seen(exposure)
    log_obs, log_not_obs = tower.observed(torch.log(p), log_seen[:, 1])
    curve = tower.examination().double()
    seen = exposure.double() @ curve[:, 1]
    reference = p.double() * seen
    torch.testing.assert_close(log_obs.exp().double(), reference, rtol=1e-6, atol=0)
    torch.testing.assert_close(log_not_obs.exp().double(), 1 - reference, rtol=1e-6, atol=0)


def test_record_is_each_tasks_curve_normalised_at_position_1():
    tower = PositionTower(np.array([0.9, 0.45, 0.3]), tasks=("click",))
    record = tower.record()
    np.testing.assert_allclose(record["click"], [1.0, 0.5, 1 / 3], rtol=1e-5)  # starts at the given curve
    curve = tower.examination().detach()[:, 0]
    assert record["click"][0] == 1.0
    torch.testing.assert_close(torch.tensor(record["click"]), curve / curve[0], rtol=1e-5, atol=1e-6)
