"""The serving student: a small cross-encoder built from the trained ranker (the teacher).

A search page gives a re-ranker about 50 ms for 100 candidates. The teacher (MiniLM-L6,
hidden 384, about 66 tokens per pair) costs about 1.4 GFLOP per pair, so 100 pairs cannot fit
on two cores whatever the runtime. The student is the same kind of model, much smaller:

    encoder   BERT, ``distill.layers`` layers of ``distill.hidden`` (2 x 256 by default),
              the teacher's WordPiece vocabulary
    input     a tighter token budget (``distill.query_max_tokens``, ``distill.fields``)
    head      the teacher's multi-task head design (same tasks, chaining, score weights,
              product features), sized to the student's hidden width

Its word, position and type embeddings start as the teacher's, projected onto their top
``hidden`` principal directions: the domain-pretrained embeddings are where the teacher's
synonyms ("couch" ~ "sofa") live, and a projection keeps most of that geometry, which a
random start would have to relearn from the distillation pairs alone. The transformer layers
start at random; distillation (``training/distill.py``) trains them to reproduce the teacher.
"""
from __future__ import annotations

from dataclasses import replace

import torch
from transformers import BertConfig, BertModel

from prodrank.models.encoder import InputBudget, PairEncoder
from prodrank.models.ranker import CrossEncoderRanker, LoadedRanker


def principal_projection(weights: torch.Tensor, size: int) -> torch.Tensor:
    """Top-``size`` principal directions of the rows of ``weights`` [V, H]: a [H, size] matrix
    with orthonormal columns (the rows' centred covariance eigenvectors, largest first). A
    student wider than its teacher gets zero columns beyond H (its extra dimensions start empty)."""
    centred = weights.double() - weights.double().mean(dim=0, keepdim=True)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    projection = torch.zeros(weights.shape[1], size, dtype=torch.float64)
    kept = min(size, vh.shape[0])
    projection[:, :kept] = vh[:kept].T
    return projection.to(weights.dtype)


def project_embeddings(student: BertModel, teacher: BertModel) -> None:
    """Initialise the student's embeddings as the teacher's projected onto the principal
    directions of the teacher's word embeddings (module doc). Word, position and type vectors
    share one projection, so their relative sizes are the teacher's; the embedding LayerNorm
    (identity at the start) then normalises their sum as in any BERT."""
    source, target = teacher.embeddings, student.embeddings
    projection = principal_projection(source.word_embeddings.weight.detach(), student.config.hidden_size)
    with torch.no_grad():
        target.word_embeddings.weight.copy_(source.word_embeddings.weight @ projection)
        positions = target.position_embeddings.weight.shape[0]
        target.position_embeddings.weight.copy_(source.position_embeddings.weight[:positions] @ projection)
        target.token_type_embeddings.weight.copy_(source.token_type_embeddings.weight @ projection)


def student_encoder_config(teacher: BertModel, layers: int, hidden: int, heads: int, positions: int) -> BertConfig:
    return BertConfig(
        vocab_size=teacher.config.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        max_position_embeddings=positions,
        type_vocab_size=teacher.config.type_vocab_size,
        pad_token_id=teacher.config.pad_token_id,
        # no dropout: the student fits the teacher's soft labels on many unlabeled pairs, which
        # regularises it already, and the dropout masks took 14 % of a training step on CPU
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )


def kept_layers(teacher_layers: int, layers: int) -> list[int]:
    """Evenly spaced teacher layers, the first and the last always among them (the last is the
    one the head was trained on)."""
    return sorted({round(i * (teacher_layers - 1) / max(1, layers - 1)) for i in range(layers)})


def copy_teacher(student: CrossEncoderRanker, teacher: CrossEncoderRanker) -> None:
    """A student as wide as its teacher starts as a shallower teacher: the same embeddings and
    head, and ``kept_layers`` of its transformer layers (as DistilBERT started from every other
    layer of BERT)."""
    source, target = teacher.encoder, student.encoder
    with torch.no_grad():
        state = source.embeddings.state_dict()
        positions = target.embeddings.position_embeddings.weight.shape[0]  # the student's shorter input
        state["position_embeddings.weight"] = state["position_embeddings.weight"][:positions]
        state.pop("position_ids", None)
        state.pop("token_type_ids", None)
        target.embeddings.load_state_dict(state, strict=False)
        chosen = kept_layers(len(source.encoder.layer), len(target.encoder.layer))
        for layer, index in zip(target.encoder.layer, chosen, strict=True):
            layer.load_state_dict(source.encoder.layer[index].state_dict())
        student.head.load_state_dict(teacher.head.state_dict(), strict=False)


def build_student(teacher: LoadedRanker, layers: int, hidden: int, heads: int, budget: InputBudget
                  ) -> tuple[CrossEncoderRanker, PairEncoder]:
    """An untrained student of ``teacher`` (module doc) with its own pair encoder."""
    features = teacher.pair_encoder.features
    pair_encoder = PairEncoder(teacher.pair_encoder.tokenizer, budget, features=features)
    teacher_config = teacher.model.encoder.config
    inherit = hidden == teacher_config.hidden_size and layers <= teacher_config.num_hidden_layers
    config = student_encoder_config(teacher.model.encoder, layers, hidden, heads, pair_encoder.max_length)
    if inherit:  # inherited layers keep the teacher's heads, FFN width and activation: their weights need them
        config = BertConfig(**{**teacher_config.to_dict(), **{k: getattr(config, k) for k in (
            "num_hidden_layers", "max_position_embeddings", "hidden_dropout_prob", "attention_probs_dropout_prob")}})
    head_config = replace(teacher.model.head.config, input_size=hidden + (features.size if features else 0),
                          similarity_prior=False)
    student = CrossEncoderRanker(BertModel(config, add_pooling_layer=False), head_config)
    if inherit:
        copy_teacher(student, teacher.model)
    else:
        project_embeddings(student.encoder, teacher.model.encoder)
    return student, pair_encoder
