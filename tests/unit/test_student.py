"""The student's construction: principal projection of the teacher's embeddings, shapes, and the
distillation losses against float64 references."""
from __future__ import annotations

import numpy as np
import torch
from transformers import BertConfig, BertModel

from prodrank.models.losses import ListwiseKL, LogitMSE
from prodrank.models.student import principal_projection, project_embeddings, student_encoder_config


def test_principal_projection_is_orthonormal_and_keeps_the_largest_variance():
    rng = np.random.default_rng(0)
    # 500 rows in 8 dims, variance concentrated in the first 3 directions of a random rotation
    rotation, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    rows = rng.normal(size=(500, 8)) * np.array([10, 8, 6, 0.1, 0.1, 0.1, 0.1, 0.1]) @ rotation.T
    p = principal_projection(torch.tensor(rows, dtype=torch.float32), 3).double()
    assert p.shape == (8, 3)
    assert torch.allclose(p.T @ p, torch.eye(3, dtype=torch.float64), atol=1e-5)
    centred = rows - rows.mean(axis=0)
    kept = np.linalg.norm(centred @ p.numpy()) ** 2 / np.linalg.norm(centred) ** 2
    assert kept > 0.999


def test_a_wider_student_gets_empty_extra_dimensions():
    p = principal_projection(torch.randn(100, 4), 6)
    assert p.shape == (4, 6) and torch.all(p[:, 4:] == 0)


def test_projected_embeddings_keep_the_teachers_similarities():
    torch.manual_seed(0)
    teacher = BertModel(BertConfig(vocab_size=300, hidden_size=64, num_hidden_layers=1, num_attention_heads=2,
                                   intermediate_size=64), add_pooling_layer=False)
    with torch.no_grad():  # low-rank structure, as trained embeddings have
        teacher.embeddings.word_embeddings.weight.copy_(torch.randn(300, 12) @ torch.randn(12, 64))
    student = BertModel(student_encoder_config(teacher, layers=1, hidden=16, heads=2, positions=32),
                        add_pooling_layer=False)
    project_embeddings(student, teacher)
    t = torch.nn.functional.normalize(teacher.embeddings.word_embeddings.weight[:50], dim=1)
    s = torch.nn.functional.normalize(student.embeddings.word_embeddings.weight[:50], dim=1)
    teacher_cos, student_cos = (t @ t.T).flatten().detach().numpy(), (s @ s.T).flatten().detach().numpy()
    assert np.corrcoef(teacher_cos, student_cos)[0, 1] > 0.95


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
