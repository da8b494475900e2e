"""Distillation of the trained ranker into the serving student (the ``distill`` stage).

1. **Pairs.** Each train query's shown products, plus products the log never showed for it:
   the BM25 top ``hard_candidates`` over the catalogue (lexically close, so the candidates a
   first-stage retrieval would hand the re-ranker) and ``random_candidates`` drawn uniformly.
   They cost nothing but teacher time to label. Validation and test queries are never used.
2. **Teacher labels.** The teacher scores every pair once: per-task probabilities, kept as
   log-odds. ``teacher_int8`` labels with a dynamically quantised copy of its encoder.
3. **Student.** The two-tower student (``models/student.py``), trained on whole query lists:
   per-task log-odds MSE plus a listwise KL per task (``models/losses.py``), optionally the
   logged labels of the shown pairs. The product tower is frozen, so every product is
   encoded once, up front, and a step trains the query tower and the head only: cheap enough
   for many epochs. The best epoch on validation NDCG@10 is kept, as in ``train``.
4. **Export.** The student is saved with its ONNX graphs (``models/runtime.py``) and the
   product index of the whole catalogue, so evaluation scores exactly what serving runs.
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from prodrank.config import Config, DistillConfig
from prodrank.io import atomic_dir, write_json
from prodrank.models.encoder import PairEncoder, pad_rows
from prodrank.models.losses import ListwiseKL, LogitMSE, PointwiseBCE
from prodrank.models.multitask import HeadOutput
from prodrank.models.ranker import LoadedRanker, load_ranker
from prodrank.models.runtime import export_onnx, load_scorer, quantize_encoder
from prodrank.models.signals import ProductTerms, query_terms, signal_matrix
from prodrank.models.student import (
    ENCODERS,
    INDEX_FILE,
    ProductIndex,
    StudentScorer,
    TorchBackend,
    TwoTowerStudent,
    build_student,
    save_student,
    student_shape,
    torch_student,
)
from prodrank.training.finetune import TrainData, evaluate_groups, load_training_data
from prodrank.training.groups import QueryGroup
from prodrank.training.schedule import linear_warmup_decay, seed_everything

log = logging.getLogger(__name__)

LOGIT_CLIP = 1e-6  # probabilities are clipped to [c, 1 - c] before taking log-odds


@dataclass
class DistillGroup:
    """One query's list for distillation: shown and added candidates with the teacher's labels."""

    query: str
    product_ids: np.ndarray  # [n] str
    teacher_logits: np.ndarray  # [n, T] the teacher's per-task log-odds
    targets: np.ndarray  # [n, T] logged labels, NaN for candidates the log never showed


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, LOGIT_CLIP, 1 - LOGIT_CLIP)
    return np.log(p) - np.log1p(-p)


def catalogue_text(catalog: pd.DataFrame) -> list[str]:
    fields = [c for c in ("title", "brand", "category") if c in catalog.columns]
    return catalog[fields].fillna("").astype(str).agg(" ".join, axis=1).tolist()


def extra_candidates(groups: list[QueryGroup], catalog: pd.DataFrame, cfg: DistillConfig, seed: int) -> list[np.ndarray]:
    """Per group: BM25 hard candidates and random catalogue products not shown for the query."""
    import bm25s  # lazy, as in the BM25 baseline: about 0.4 s on import

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    ids = catalog["product_id"].to_numpy(dtype=str)
    hard: list[list[int]] = [[] for _ in groups]
    if cfg.hard_candidates:
        retriever = bm25s.BM25()
        retriever.index(bm25s.tokenize(catalogue_text(catalog), stopwords="en", show_progress=False), show_progress=False)
        k = min(len(ids), cfg.hard_candidates + 32)  # room for shown products among the top
        results, _ = retriever.retrieve(bm25s.tokenize([g.query for g in groups], stopwords="en", show_progress=False),
                                        k=k, show_progress=False)
        hard = [list(row) for row in results]
    rng = np.random.default_rng([seed, 7])
    out = []
    for group, top in zip(groups, hard, strict=True):
        shown = set(group.product_ids)
        chosen = [ids[i] for i in top if ids[i] not in shown][: cfg.hard_candidates]
        taken = shown | set(chosen)
        randoms = [p for p in ids[rng.choice(len(ids), size=min(len(ids), 4 * cfg.random_candidates + 4), replace=False)]
                   if p not in taken][: cfg.random_candidates]
        out.append(np.array(chosen + randoms, dtype=str))
    return out


def label_with_teacher(teacher: LoadedRanker, groups: list[QueryGroup], extras: list[np.ndarray], products: dict,
                       batch_size: int) -> list[DistillGroup]:
    """The teacher's log-odds for every (query, candidate) pair, scored once."""
    lists = [np.concatenate([g.product_ids, e]) for g, e in zip(groups, extras, strict=True)]
    queries = [g.query for g, ids in zip(groups, lists, strict=True) for _ in ids]
    pids = [p for ids in lists for p in ids]
    start = time.perf_counter()
    probabilities = teacher.score(queries, pids, {p: products[p] for p in set(pids)}, batch_size=batch_size)
    log.info("teacher labelled %d pairs in %.0f s", len(pids), time.perf_counter() - start)
    logits = np.stack([logit(probabilities[t]) for t in teacher.tasks], axis=1)
    out, offset = [], 0
    for group, ids in zip(groups, lists, strict=True):
        n, shown = len(ids), len(group.product_ids)
        targets = np.full((n, len(teacher.tasks)), np.nan)
        targets[:shown] = group.targets
        out.append(DistillGroup(group.query, ids, logits[offset : offset + n], targets))
        offset += n
    return out


class DistillObjective(torch.nn.Module):
    """The distillation losses of a batch of whole query lists (module doc, step 3)."""

    def __init__(self, tasks: tuple[str, ...], cfg: DistillConfig) -> None:
        super().__init__()
        self.tasks = tasks
        self.cfg = cfg
        self.mse, self.kl, self.bce = LogitMSE(), ListwiseKL(), PointwiseBCE()

    def forward(self, output: HeadOutput, groups: list[DistillGroup]) -> torch.Tensor:
        sizes = [len(g.product_ids) for g in groups]
        mask = torch.zeros((len(groups), max(sizes)), dtype=torch.bool)
        for q, n in enumerate(sizes):
            mask[q, :n] = True
        teacher = torch.tensor(np.concatenate([g.teacher_logits for g in groups]), dtype=torch.float32)
        targets = torch.tensor(np.concatenate([g.targets for g in groups]), dtype=torch.float32)
        total = torch.zeros(())
        for t, task in enumerate(self.tasks):
            log_p, log_not_p = output.log_p[task], output.log_not_p[task]
            if self.cfg.mse_weight:
                total = total + self.cfg.mse_weight * self.mse(log_p, log_not_p, teacher[:, t])
            if self.cfg.listwise_weight:
                teacher_log_p = torch.nn.functional.logsigmoid(teacher[:, t])
                total = total + self.cfg.listwise_weight * self.kl(
                    torch.zeros(mask.shape).masked_scatter(mask, log_p),
                    torch.zeros(mask.shape).masked_scatter(mask, teacher_log_p), mask)
            shown = ~torch.isnan(targets[:, t])
            if self.cfg.label_weight and shown.any():
                total = total + self.cfg.label_weight * self.bce(log_p[shown], log_not_p[shown], targets[shown, t],
                                                                 torch.ones(int(shown.sum())))
        return total


@dataclass
class ProductVectors:
    """The distillation products' vectors (the frozen product tower's), features and word sets
    (for the pair signals; None when the student reads none)."""

    vectors: torch.Tensor  # [P, H]
    features: torch.Tensor | None  # [P, 2F]
    terms: list[ProductTerms] | None  # [P]
    row: dict[str, int]

    @classmethod
    def encode(cls, scorer: StudentScorer, product_ids: list[str], products: dict, batch_size: int) -> ProductVectors:
        vectors = scorer.product_vectors(product_ids, batch_size)
        features = ([scorer.pair_encoder.product(p).features for p in product_ids] if scorer.pair_encoder.features
                    else None)
        terms = [scorer.terms.get(p, products[p]) for p in product_ids] if scorer.terms is not None else None
        return cls(torch.from_numpy(vectors), None if features is None else torch.tensor(features, dtype=torch.float32),
                   terms, {p: i for i, p in enumerate(product_ids)})

    def head_inputs(self, groups: list[DistillGroup]) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """The groups' candidates, in order: vectors [B, H], signals [B, S], features [B, 2F]."""
        rows = np.array([self.row[p] for g in groups for p in g.product_ids])
        signals = None
        if self.terms is not None:
            query_index = np.repeat(np.arange(len(groups)), [len(g.product_ids) for g in groups])
            signals = torch.from_numpy(signal_matrix([query_terms(g.query) for g in groups], self.terms,
                                                     query_index, rows))
        idx = torch.from_numpy(rows)
        return self.vectors[idx], signals, None if self.features is None else self.features[idx]


def student_step(student: TwoTowerStudent, pair_encoder: PairEncoder, products: ProductVectors,
                 groups: list[DistillGroup]) -> HeadOutput:
    """The student's outputs for whole query lists: queries encoded with gradients, products
    from their precomputed vectors."""
    rows, _ = pair_encoder.query_rows([g.query for g in groups])
    ids, mask = pad_rows(rows, pair_encoder.tokenizer.pad_token_id)
    queries = student.embed(ids, mask, "query")
    index = torch.tensor([q for q, g in enumerate(groups) for _ in g.product_ids])
    return student(queries[index], *products.head_inputs(groups))


def train_student(cfg: Config, teacher: LoadedRanker, data: TrainData, groups: list[DistillGroup], best_dir: Path
                  ) -> tuple[dict, ProductIndex]:
    """Epochs over the distillation groups; the best epoch on validation NDCG@10 is saved to
    ``best_dir``. Also returns the product vectors computed on the way (the frozen tower's, so
    valid for the saved student too)."""
    dcfg = cfg.distill
    student, pair_encoder = build_student(teacher, dcfg.query_max_tokens, dcfg.product_adapter_size, dcfg.pair_signals)
    scorer = StudentScorer(TorchBackend(student), pair_encoder, student.tasks)
    product_ids = list(dict.fromkeys(p for g in groups for p in g.product_ids))
    pair_encoder.encode_products({p: data.products[p] for p in
                                  set(product_ids) | {p for g in data.valid_groups for p in g.product_ids}})
    objective = DistillObjective(student.tasks, dcfg)
    products = ProductVectors.encode(scorer, product_ids, data.products, cfg.train.score_batch_size)
    optimizer = torch.optim.AdamW([{"params": student.query_encoder.parameters(), "lr": dcfg.learning_rate},
                                   {"params": [p for name, p in student.named_parameters() if not name.startswith(ENCODERS)],
                                    "lr": dcfg.head_learning_rate}],
                                  weight_decay=dcfg.weight_decay)
    steps_per_epoch = math.ceil(len(groups) / dcfg.queries_per_batch)
    total = dcfg.epochs * steps_per_epoch
    scheduler = linear_warmup_decay(optimizer, int(dcfg.warmup_ratio * total), total)
    history, best = [], {"epoch": -1, "ndcg@10": -1.0}
    progress = tqdm(total=total, desc="distill")
    for epoch in range(dcfg.epochs):
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(groups))
        student.train()
        for step in range(steps_per_epoch):
            chosen = [groups[i] for i in order[step * dcfg.queries_per_batch : (step + 1) * dcfg.queries_per_batch]]
            loss = objective(student_step(student, pair_encoder, products, chosen), chosen)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for p in student.parameters() if p.requires_grad], dcfg.grad_clip)
            optimizer.step()
            scheduler.step()
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.4f}")
        metric = evaluate_groups(scorer, data.valid_groups, data.products, 10, cfg.train.score_batch_size)
        history.append({"epoch": epoch + 1, "loss": loss.item(), "ndcg@10": metric})
        log.info("distill epoch %d: validation NDCG@10 = %.4f", epoch + 1, metric)
        if metric > best["ndcg@10"]:
            best = {"epoch": epoch + 1, "ndcg@10": metric}
            with atomic_dir(best_dir) as tmp:
                save_student(student, pair_encoder, tmp)
    progress.close()
    return ({"best_epoch": best["epoch"], "best_valid_ndcg@10": best["ndcg@10"], "history": history,
             "steps": total, "pairs": int(sum(len(g.product_ids) for g in groups))}, scorer.index)


def index_catalogue(scorer: StudentScorer, products: dict, directory: Path, batch_size: int) -> dict:
    """Encode every catalogue product with the saved student and write its product index."""
    start = time.perf_counter()
    scorer.index.bound(len(scorer.index) + len(products))  # room for the whole catalogue
    scorer.pair_encoder.encode_products(products)
    scorer.product_vectors(list(products), batch_size)
    scorer.index.save(directory / INDEX_FILE)
    return {"products": len(scorer.index), "seconds": round(time.perf_counter() - start, 1)}


def sample_rows(pair_encoder: PairEncoder, data: TrainData) -> list[list[int]]:
    """Token rows of a few validation queries and their products: the ONNX export's check."""
    sample = data.valid_groups[:4]
    pair_encoder.encode_products({p: data.products[p] for g in sample for p in g.product_ids})
    queries, _ = pair_encoder.query_rows([g.query for g in sample])
    return queries + pair_encoder.product_rows([p for g in sample for p in g.product_ids])


def distill(cfg: Config, prepared_dir: str | Path, teacher_dir: str | Path, out_dir: str | Path,
            metrics_path: str | Path, teacher_metrics: str | Path | None = None) -> dict:
    """Train, export and save the student of the ranker in ``teacher_dir`` (module doc)."""
    dcfg = cfg.distill
    torch.set_num_threads(cfg.runtime.threads)
    seed_everything(cfg.seed)
    start = time.perf_counter()
    teacher = load_ranker(teacher_dir)
    data = load_training_data(cfg, Path(prepared_dir))
    train_groups = data.train_groups
    if dcfg.max_queries and len(train_groups) > dcfg.max_queries:
        keep = np.sort(np.random.default_rng([cfg.seed, 3]).choice(len(train_groups), dcfg.max_queries, replace=False))
        train_groups = [train_groups[i] for i in keep]
    extras = extra_candidates(train_groups, data.catalog, dcfg, cfg.seed)
    # a quantised copy labels; the student's towers start from the fp32 teacher's encoder
    labeller = quantize_encoder(teacher) if dcfg.teacher_int8 else teacher
    groups = label_with_teacher(labeller, train_groups, extras, data.products, dcfg.teacher_batch_size)
    labelled = time.perf_counter()
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        summary, computed = train_student(cfg, teacher, data, groups, Path(tmp))
        best = torch_student(tmp)
        best.index = computed  # the frozen product tower's vectors: only the rest of the catalogue is encoded
        summary["index"] = index_catalogue(best, data.products, Path(tmp), cfg.train.score_batch_size)
        summary["onnx"] = export_onnx(best.backend.model, tmp, sample_rows(best.pair_encoder, data),
                                      best.pair_encoder.tokenizer.pad_token_id)
        summary["shape"] = student_shape(best.backend.model, best.pair_encoder)
        for name, quantize in (("onnx_fp32", False), ("onnx_int8", True)):
            scorer = load_scorer(tmp, "onnx", quantize=quantize, threads=cfg.runtime.threads)
            summary[f"valid_ndcg@10_{name}"] = evaluate_groups(scorer, data.valid_groups, data.products, 10,
                                                               cfg.serving.max_batch_size)
    if teacher_metrics and Path(teacher_metrics).exists():
        summary["teacher_valid_ndcg@10"] = json.loads(Path(teacher_metrics).read_text()).get("best_valid_ndcg@10")
    summary.update({"train_queries": len(train_groups), "valid_queries": len(data.valid_groups),
                    "teacher_seconds": round(labelled - start, 1),
                    "seconds": round(time.perf_counter() - start, 1)})
    write_json(summary, metrics_path)
    return summary
