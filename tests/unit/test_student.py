"""The two-tower student's parts: the interaction features, the product index (by content,
bounded, saved and loaded), and the distillation losses against float64 references."""
from __future__ import annotations

import numpy as np
import torch

from prodrank.models.losses import ListwiseKL, LogitMSE
from prodrank.models.student import ProductIndex, interaction


def test_interaction_features_in_float64():
    q = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    p = torch.tensor([[3.0, 0.5]], dtype=torch.float64)
    s = torch.tensor([[0.5]], dtype=torch.float64)
    f = torch.tensor([[0.25, 1.0]], dtype=torch.float64)
    expected = [1.0, -2.0, 3.0, 0.5, 3.0, -1.0, 2.0, 2.5, 0.5, 0.25, 1.0]  # the features' flags last
    assert interaction(q, p, s, f).tolist() == [expected]
    assert interaction(q, p, None, f).tolist() == [expected[:8] + expected[9:]]
    assert interaction(q, p, None, None).shape == (1, 8)


def test_product_index_is_by_content_bounded_and_round_trips(tmp_path):
    packaged = {bytes([i]) * 16: np.full(3, i, dtype=np.float32) for i in range(3)}
    index = ProductIndex(packaged, cache_size=2)
    assert index.get(bytes([1]) * 16)[0] == 1 and index.get(b"x" * 16) is None
    assert (index.hits, index.misses) == (1, 1)
    for i in range(5):  # computed vectors are bounded; packaged ones are never dropped
        index.add(bytes([10 + i]) * 16, np.full(3, 10 + i, dtype=np.float32))
    assert len(index.computed) == 2 and len(index.packaged) == 3
    assert index.get(bytes([10]) * 16) is None and index.get(bytes([14]) * 16)[0] == 14
    index.bound(1)
    assert len(index.computed) == 1
    index.save(tmp_path / "index.safetensors")
    loaded = ProductIndex.load(tmp_path / "index.safetensors")
    assert len(loaded.packaged) == 4 and loaded.get(bytes([14]) * 16)[0] == 14 and loaded.get(bytes([2]) * 16)[0] == 2


def test_logit_mse_matches_a_float64_reference():
    torch.manual_seed(1)
    logits = torch.randn(7, dtype=torch.float64)
    log_p, log_not_p = torch.nn.functional.logsigmoid(logits), torch.nn.functional.logsigmoid(-logits)
    teacher = torch.randn(7, dtype=torch.float64)
    expected = float(np.mean((logits.numpy() - teacher.numpy()) ** 2))
    assert abs(float(LogitMSE()(log_p, log_not_p, teacher)) - expected) < 1e-12


def test_listwise_kl_matches_a_float64_reference_and_ignores_padding():
    torch.manual_seed(2)
    student, teacher = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]], dtype=torch.bool)
    expected = []
    for q in range(3):
        n = int(mask[q].sum())
        t = np.exp(teacher[q, :n].numpy()) / np.exp(teacher[q, :n].numpy()).sum()
        s = np.exp(student[q, :n].numpy()) / np.exp(student[q, :n].numpy()).sum()
        expected.append(float((t * np.log(t / s)).sum()))
    got = ListwiseKL()(student, teacher, mask)
    assert abs(float(got) - np.mean(expected)) < 1e-10
    padded = student.clone()
    padded[~mask] = 1e3  # values in padding must not matter
    assert abs(float(ListwiseKL()(padded, teacher, mask)) - float(got)) < 1e-10
    assert float(ListwiseKL()(teacher, teacher, mask)) < 1e-12
