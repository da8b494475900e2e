"""Losses against independent float64 references (values and gradients) and padding invariance."""
import math

import numpy as np
import pytest
import torch

from prodrank.models.losses import LambdaLoss, ListNetLoss, PointwiseBCE, UncertaintyWeighting

torch.manual_seed(0)


def reference_bce(p, y, w):
    return sum(wi * -(yi * math.log(pi) + (1 - yi) * math.log(1 - pi)) for pi, yi, wi in zip(p, y, w, strict=False)) / sum(w)


def reference_listnet(scores, gains):
    total, count = 0.0, 0
    for s, g in zip(scores, gains, strict=False):
        if sum(g) == 0:
            continue
        z = sum(math.exp(x) for x in s)
        total += -sum((gi / sum(g)) * math.log(math.exp(si) / z) for si, gi in zip(s, g, strict=False))
        count += 1
    return total / count


def reference_lambda(scores, gains):
    total, count = 0.0, 0
    for s, g in zip(scores, gains, strict=False):
        order = sorted(range(len(s)), key=lambda i: -s[i])
        rank = {item: r for r, item in enumerate(order)}
        ideal = sorted(g, reverse=True)
        idcg = sum((2**gi - 1) / math.log2(r + 2) for r, gi in enumerate(ideal))
        q_total, informative = 0.0, False
        for i in range(len(s)):
            for j in range(len(s)):
                if g[i] > g[j]:
                    informative = True
                    delta = abs((2 ** g[i] - 1) - (2 ** g[j] - 1)) * abs(1 / math.log2(rank[i] + 2) - 1 / math.log2(rank[j] + 2)) / idcg
                    q_total += delta * math.log1p(math.exp(-(s[i] - s[j])))
        if informative:
            total += q_total
            count += 1
    return total / count


def test_bce_matches_float64_reference_value_and_gradient():
    logits = torch.randn(7, dtype=torch.float64, requires_grad=True)
    y = torch.rand(7, dtype=torch.float64)
    w = torch.randint(1, 5, (7,)).double()
    loss = PointwiseBCE()(torch.nn.functional.logsigmoid(logits), torch.nn.functional.logsigmoid(-logits), y, w)
    p = torch.sigmoid(logits).tolist()
    assert loss.item() == pytest.approx(reference_bce(p, y.tolist(), w.tolist()), rel=1e-10)
    loss.backward()
    # d/dlogit of weighted BCE = w (p - y) / sum(w)
    expected = (w * (torch.sigmoid(logits.detach()) - y) / w.sum()).numpy()
    np.testing.assert_allclose(logits.grad.numpy(), expected, rtol=1e-10)


def test_listnet_matches_reference_and_skips_all_zero_queries():
    scores = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    gains = torch.tensor([[0.2, 0.0, 0.5, 0.0], [0, 0, 0, 0], [0.1, 0.1, 0.0, 0.3]], dtype=torch.float64)
    mask = torch.ones(3, 4, dtype=torch.bool)
    loss = ListNetLoss()(scores, gains, mask)
    assert loss.item() == pytest.approx(reference_listnet(scores.tolist(), gains.tolist()), rel=1e-10)
    loss.backward()
    assert torch.all(scores.grad[1] == 0)


def test_lambdaloss_matches_reference_value_and_gradient():
    scores = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    gains = torch.tensor([[0, 1, 0, 2, 0], [1, 0, 0, 0, 0]], dtype=torch.float64)
    mask = torch.ones(2, 5, dtype=torch.bool)
    loss = LambdaLoss()(scores, gains, mask)
    assert loss.item() == pytest.approx(reference_lambda(scores.tolist(), gains.tolist()), rel=1e-10)
    loss.backward()
    eps = 1e-6
    numeric = torch.zeros_like(scores)
    for idx in np.ndindex(*scores.shape):
        plus, minus = scores.detach().clone(), scores.detach().clone()
        plus[idx] += eps
        minus[idx] -= eps
        # ranks are piecewise constant, so central differences match away from ties
        numeric[idx] = (reference_lambda(plus.tolist(), gains.tolist()) - reference_lambda(minus.tolist(), gains.tolist())) / (2 * eps)
    np.testing.assert_allclose(scores.grad.numpy(), numeric.numpy(), atol=1e-6)


@pytest.mark.parametrize("loss_cls", [ListNetLoss, LambdaLoss])
def test_listwise_losses_are_padding_invariant(loss_cls):
    scores = torch.randn(2, 4, dtype=torch.float64)
    gains = torch.tensor([[1.0, 0.0, 0.5, 0.0], [0.0, 2.0, 1.0, 0.0]], dtype=torch.float64)
    mask = torch.ones(2, 4, dtype=torch.bool)
    base = loss_cls()(scores, gains, mask)
    padded_scores = torch.cat([scores, torch.tensor([[9.0, -3.0], [7.0, 4.0]], dtype=torch.float64)], dim=1)
    padded_gains = torch.cat([gains, torch.tensor([[5.0, 5.0], [3.0, 1.0]], dtype=torch.float64)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(2, 2, dtype=torch.bool)], dim=1)
    assert loss_cls()(padded_scores, padded_gains, padded_mask).item() == pytest.approx(base.item(), rel=1e-12)


def test_uncertainty_weighting_formula_and_gradient():
    weighting = UncertaintyWeighting(("a", "b")).double()
    with torch.no_grad():
        weighting.log_variance.copy_(torch.tensor([0.5, -1.0], dtype=torch.float64))
    losses = {"a": torch.tensor(2.0, dtype=torch.float64), "b": torch.tensor(0.3, dtype=torch.float64)}
    total = weighting(losses)
    expected = math.exp(-0.5) * 2.0 + 0.5 + math.exp(1.0) * 0.3 - 1.0
    assert total.item() == pytest.approx(expected, rel=1e-12)
    total.backward()
    np.testing.assert_allclose(weighting.log_variance.grad.numpy(), [1 - math.exp(-0.5) * 2.0, 1 - math.exp(1.0) * 0.3])
