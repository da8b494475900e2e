"""Multi-task heads: gates, chaining, shapes for every architecture."""
import pytest
import torch

from prodrank.models.multitask import HeadConfig, MultiTaskHead, log1mexp

TASKS = ("click", "add_to_cart", "purchase")


def head(architecture: str, chaining: bool = True) -> MultiTaskHead:
    torch.manual_seed(0)
    config = HeadConfig(input_size=16, tasks=TASKS, architecture=architecture, n_experts=3, task_experts=2,
                        expert_hidden=8, tower_hidden=4, dropout=0.0, chaining=chaining,
                        score_weights={"click": 1.0, "add_to_cart": 2.0, "purchase": 4.0})
    return MultiTaskHead(config).eval()


@pytest.mark.parametrize("architecture", ["shared_bottom", "mmoe", "ple"])
def test_outputs_per_task_and_gates_sum_to_one(architecture):
    out = head(architecture)(torch.randn(5, 16))
    assert set(out.logits) == set(TASKS) and all(v.shape == (5,) for v in out.log_p.values())
    if architecture == "shared_bottom":
        assert out.gates is None
    else:
        n_inputs = 3 if architecture == "mmoe" else 3 + 2
        assert out.gates.shape == (5, 3, n_inputs)
        torch.testing.assert_close(out.gates.sum(-1), torch.ones(5, 3))


@pytest.mark.parametrize("architecture", ["shared_bottom", "mmoe", "ple"])
def test_chained_probabilities_follow_the_funnel(architecture):
    probs = head(architecture, chaining=True)(torch.randn(64, 16) * 3).probabilities()
    assert torch.all(probs["purchase"] <= probs["add_to_cart"]) and torch.all(probs["add_to_cart"] <= probs["click"])


def test_log_p_and_log_not_p_are_complementary():
    out = head("mmoe", chaining=True)(torch.randn(32, 16) * 4)
    for task in TASKS:
        torch.testing.assert_close(out.log_p[task].exp() + out.log_not_p[task].exp(), torch.ones(32))


def test_log1mexp_accurate_at_both_ends():
    x = torch.tensor([-1e-9, -1e-3, -0.5, -5.0, -50.0], dtype=torch.float64)
    expected = torch.log(-torch.expm1(x))
    torch.testing.assert_close(log1mexp(x), expected)


def test_ranking_score_is_expected_gain():
    h = head("mmoe")
    out = h(torch.randn(4, 16))
    probs = out.probabilities()
    torch.testing.assert_close(h.ranking_score(out), probs["click"] + 2 * probs["add_to_cart"] + 4 * probs["purchase"])
