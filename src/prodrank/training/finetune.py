"""Multi-task fine-tuning of the cross-encoder (the ``train`` stage).

The loop is deliberately thin: batches of query groups -> ``MultiTaskObjective`` ->
AdamW step. Everything that makes it resumable is derived from the step number: the
query order of epoch e is a permutation seeded by (seed, e) and candidate sampling at
step s is seeded by (seed, s), so a killed run restored from its last checkpoint replays
exactly the batches it would have seen.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm
from transformers import AutoTokenizer, BertModel

from prodrank.config import Config, TrainConfig
from prodrank.data.catalog import product_fields
from prodrank.data.labels import grade_range
from prodrank.io import atomic_dir, atomic_path, write_json
from prodrank.metrics import ndcg_at_k
from prodrank.models.encoder import EncodedBatch, InputBudget, PairEncoder
from prodrank.models.features import ProductFeatures
from prodrank.models.losses import (
    LISTWISE_LOSSES,
    FixedTaskWeighting,
    PointwiseBCE,
    UncertaintyWeighting,
)
from prodrank.models.multitask import HeadConfig
from prodrank.models.position_tower import PositionTower
from prodrank.models.ranker import CrossEncoderRanker, LoadedRanker, save_ranker
from prodrank.paths import EXAMINATION_FILE
from prodrank.training.distributed import DistContext, init_distributed, shutdown_distributed
from prodrank.training.groups import QueryGroup, build_groups, load_split
from prodrank.training.propensity import (
    Propensities,
    estimate_propensities,
    examined_counts,
    exposure_matrix,
)
from prodrank.training.schedule import linear_warmup_decay, seed_everything

log = logging.getLogger(__name__)


@dataclass
class Batch:
    """A global batch of sampled query groups, flattened to pairs."""

    queries: list[str]
    product_ids: list[str]
    targets: torch.Tensor  # [B, T]
    weights: torch.Tensor  # [B]
    slot_query: torch.Tensor  # [B] index of the pair's query within the batch
    slot_item: torch.Tensor  # [B] index of the pair within its query's list
    n_queries: int
    exposure: torch.Tensor | None = None  # [B, K] share of impressions per shown position

    def to(self, device: torch.device) -> Batch:
        return Batch(self.queries, self.product_ids, self.targets.to(device), self.weights.to(device),
                     self.slot_query.to(device), self.slot_item.to(device), self.n_queries,
                     None if self.exposure is None else self.exposure.to(device))


def sample_batch(groups: list[QueryGroup], candidates: int, rng: np.random.Generator) -> Batch:
    queries, pids, targets, weights, slot_q, slot_i, exposure = [], [], [], [], [], [], []
    for q, group in enumerate(groups):
        n = len(group.product_ids)
        # uniform subsampling keeps the BCE targets unbiased (no positive oversampling)
        idx = np.sort(rng.choice(n, size=candidates, replace=False)) if n > candidates else np.arange(n)
        queries += [group.query] * len(idx)
        pids += group.product_ids[idx].tolist()
        targets.append(group.targets[idx])
        weights.append(group.weights[idx])
        if group.exposure is not None:
            exposure.append(group.exposure[idx])
        slot_q += [q] * len(idx)
        slot_i += list(range(len(idx)))
    return Batch(
        queries,
        pids,
        torch.tensor(np.concatenate(targets), dtype=torch.float32),
        torch.tensor(np.concatenate(weights), dtype=torch.float32),
        torch.tensor(slot_q),
        torch.tensor(slot_i),
        len(groups),
        torch.tensor(np.concatenate(exposure), dtype=torch.float32) if exposure else None,
    )


def shard(batch: Batch, ctx: DistContext) -> Batch:
    """The rank's share of a global batch: queries rank, rank + world, ..."""
    if not ctx.enabled:
        return batch
    keep = (batch.slot_query % ctx.world_size) == ctx.rank
    kept_queries = torch.unique(batch.slot_query[keep])
    remap = torch.full((batch.n_queries,), -1, dtype=torch.long)
    remap[kept_queries] = torch.arange(len(kept_queries))
    idx = keep.nonzero().squeeze(1).tolist()
    return Batch(
        [batch.queries[i] for i in idx],
        [batch.product_ids[i] for i in idx],
        batch.targets[keep],
        batch.weights[keep],
        remap[batch.slot_query[keep]],
        batch.slot_item[keep],
        len(kept_queries),
        None if batch.exposure is None else batch.exposure[keep],
    )


class MultiTaskObjective(nn.Module):
    """Ranker plus its losses; one module so DistributedDataParallel wraps all trainables."""

    def __init__(self, model: CrossEncoderRanker, config: TrainConfig, propensities: Propensities | None = None) -> None:
        super().__init__()
        self.model = model
        self.tasks = model.tasks
        # training only: the ranker saved and served is ``model`` alone
        # the tower starts at the examination curve estimated from the log (models/position_tower.py)
        self.position_tower = (PositionTower(propensities.curve(config.max_position), self.tasks)
                               if config.position_debiasing == "tower" else None)
        self.bce = PointwiseBCE()
        self.listwise = LISTWISE_LOSSES[config.listwise_loss]() if config.listwise_loss != "none" else None
        self.listwise_weight = config.listwise_weight
        self.debiasing = config.position_debiasing
        self.weighting = (
            UncertaintyWeighting(self.tasks)
            if config.task_weighting == "uncertainty"
            else FixedTaskWeighting(self.tasks, config.task_weights)
        )

    def forward(
        self, encoded: EncodedBatch, batch: Batch, normalizers: dict[str, float]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        output = self.model(encoded)
        task_losses, parts = {}, {}
        shape = (max(batch.n_queries, 1), int(batch.slot_item.max()) + 1 if len(batch.slot_item) else 1)
        device = batch.targets.device
        mask = torch.zeros(shape, dtype=torch.bool, device=device)
        mask[batch.slot_query, batch.slot_item] = True
        log_seen = self.position_tower.log_seen(batch.exposure) if self.position_tower is not None else None
        for t, task in enumerate(self.tasks):
            target = batch.targets[:, t]
            log_p, log_not_p = output.log_p[task], output.log_not_p[task]
            if log_seen is not None:  # the logged rate is p(seen) * p(event | seen)
                log_p, log_not_p = self.position_tower.observed(log_p, log_seen[:, t])
            loss = self.bce(log_p, log_not_p, target, batch.weights, normalizers["bce"])
            parts[f"{task}/bce"] = loss.detach()
            if self.listwise is not None:
                scores = torch.zeros(shape, device=device).index_put((batch.slot_query, batch.slot_item), log_p)
                gains = torch.zeros(shape, device=device).index_put((batch.slot_query, batch.slot_item), target)
                listwise = self.listwise(scores, gains, mask, normalizers[f"{task}/listwise"])
                parts[f"{task}/listwise"] = listwise.detach()
                loss = loss + self.listwise_weight * listwise
            task_losses[task] = loss
        total = self.weighting(task_losses)
        return total, parts


def global_normalizers(batch: Batch, tasks: tuple[str, ...], world_size: int) -> dict[str, float]:
    """Loss denominators over the global batch, divided by the world size because
    DistributedDataParallel averages (not sums) gradients over ranks."""
    norms = {"bce": float(batch.weights.sum().clamp_min(1e-12)) / world_size}
    informative = torch.zeros((batch.n_queries, len(tasks)))
    informative.index_add_(0, batch.slot_query, (batch.targets > 0).float())
    for t, task in enumerate(tasks):
        norms[f"{task}/listwise"] = max(1.0, float((informative[:, t] > 0).sum())) / world_size
    return norms


def evaluate_groups(ranker: LoadedRanker, groups: list[QueryGroup], products: dict, k: int, batch_size: int) -> float:
    """Mean NDCG@k of the ranking score over groups with any gain."""
    queries = [g.query for g in groups for _ in g.product_ids]
    pids = [p for g in groups for p in g.product_ids]
    scores = ranker.score(queries, pids, {p: products[p] for p in set(pids)}, batch_size=batch_size)["score"]
    values, start = [], 0
    for g in groups:
        end = start + len(g.product_ids)
        value = ndcg_at_k(g.gains, scores[start:end], k)
        if not math.isnan(value):
            values.append(value)
        start = end
    return float(np.mean(values)) if values else float("nan")


# The code a checkpoint was trained by (the train stage's code deps in dvc.yaml). A rerun after a
# code change must start over: resuming would publish a model of the old code (a finished run
# would even be republished without a single new step).
TRAINING_CODE = (Path(__file__).parent, Path(__file__).parent.parent / "models")


def _files(path: Path, pattern: str = "*") -> list[tuple[str, Path]]:
    """(name relative to ``path``, file) for a folder's files, or the file itself."""
    if not path.is_dir():
        return [(path.name, path)]
    return [(str(f.relative_to(path)), f) for f in sorted(path.rglob(pattern)) if f.is_file()]


def _fingerprint(cfg: Config, paths: list[Path]) -> str:
    """Config, data and init files, and the training code's sources: a checkpoint resumes only
    when all of them are unchanged."""
    digest = hashlib.sha256(json.dumps([cfg.seed, cfg.train.model_dump(mode="json")], sort_keys=True).encode())
    files = [f for path in paths for f in _files(Path(path))]
    files += [f for code in TRAINING_CODE for f in _files(Path(code), "*.py")]
    for name, file in files:
        digest.update(name.encode())
        digest.update(hashlib.md5(file.read_bytes()).digest())
    return digest.hexdigest()


def build_model(cfg: TrainConfig, init_dir: Path, features: ProductFeatures | None = None
                ) -> tuple[CrossEncoderRanker, PairEncoder]:
    encoder = BertModel.from_pretrained(init_dir, add_pooling_layer=False, use_safetensors=True)  # never pickle
    head = HeadConfig(
        input_size=encoder.config.hidden_size + (features.size if features else 0),
        tasks=tuple(t.name for t in cfg.tasks),
        architecture=cfg.architecture,
        n_experts=cfg.n_experts,
        task_experts=cfg.task_experts,
        expert_hidden=cfg.expert_hidden,
        tower_hidden=cfg.tower_hidden,
        dropout=cfg.dropout,
        chaining=cfg.chaining,
        score_weights=dict(cfg.score_weights),
        similarity_prior=cfg.similarity_prior,
        similarity_scale=cfg.similarity_scale,
        missing_flags=len(features.names) if features else 0,
    )
    tokenizer = AutoTokenizer.from_pretrained(init_dir)
    pair_encoder = PairEncoder(tokenizer, InputBudget(cfg.query_max_tokens, cfg.fields.model_dump()),
                               with_sides=cfg.similarity_prior, features=features)
    pair_encoder.check_positions(encoder.config.max_position_embeddings)
    return CrossEncoderRanker(encoder, head), pair_encoder


def _optimizer(objective: MultiTaskObjective, cfg: TrainConfig) -> torch.optim.Optimizer:
    encoder_decay, encoder_no_decay, head = [], [], []
    for name, param in objective.named_parameters():
        if name.startswith("model.encoder."):
            # no weight decay on biases and LayerNorm, as in BERT's own recipe
            (encoder_no_decay if param.ndim == 1 else encoder_decay).append(param)
        else:
            head.append(param)
    return torch.optim.AdamW(
        [
            {"params": encoder_decay, "lr": cfg.learning_rate, "weight_decay": cfg.weight_decay},
            {"params": encoder_no_decay, "lr": cfg.learning_rate, "weight_decay": 0.0},
            {"params": head, "lr": cfg.head_learning_rate, "weight_decay": cfg.weight_decay},
        ]
    )


def _write_plots(history: dict[str, list[dict]], tasks: tuple[str, ...], plots_dir: Path) -> None:
    """DVC plot files: total loss, one file per task (so any task list plots), validation NDCG."""
    loss = pd.DataFrame(history["train_loss"])
    tables = {"train_loss.csv": loss[["step", "loss", "grad_norm"]], "valid_ndcg.csv": pd.DataFrame(history["valid_ndcg"])}
    for task in tasks:
        columns = {c: c.split("/", 1)[1] for c in loss.columns if c.startswith(f"{task}/")}
        tables[f"train_tasks/{task}.csv"] = loss[["step", *columns]].rename(columns=columns)
    for name, frame in tables.items():
        with atomic_path(plots_dir / name) as tmp:
            frame.to_csv(tmp, index=False)


@dataclass
class TrainState:
    """Progress of a run: what a checkpoint restores besides weights, optimiser and scheduler."""

    step: int = 0
    best_metric: float = -1.0
    best_step: int = -1
    bad_evals: int = 0
    stopped_early: bool = False
    history: dict[str, list[dict]] = field(default_factory=lambda: {"train_loss": [], "valid_ndcg": []})


@dataclass
class TrainData:
    """The query groups a run trains and selects on, and the product fields they show."""

    catalog: pd.DataFrame
    products: dict[str, dict]
    train_groups: list[QueryGroup]
    valid_groups: list[QueryGroup]
    propensities: Propensities | None = None  # estimated on the train log when debiasing


@dataclass
class Run:
    """What every training step touches: model, its objective and optimiser, the step budget."""

    model: CrossEncoderRanker
    pair_encoder: PairEncoder
    objective: MultiTaskObjective
    trainable: nn.Module  # the objective, wrapped in DistributedDataParallel when distributed
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    steps_per_epoch: int
    total_steps: int
    ctx: DistContext


def load_training_data(cfg: Config, prepared_dir: Path) -> TrainData:
    """Train and validation groups, subsampled to ``max_train_queries``/``max_eval_queries``
    (validation keeps only queries with some gain: NDCG is undefined without one)."""
    tcfg = cfg.train
    catalog = pd.read_parquet(prepared_dir / "catalog.parquet")
    train, valid = load_split(prepared_dir, "train"), load_split(prepared_dir, "valid")
    grades = grade_range(train["interactions"], tcfg.tasks)
    debiased = debias_splits(cfg, train, valid)
    train_groups = build_groups(debiased.train, train["queries"], tcfg.tasks, tcfg.score_weights, grades,
                                debiased.exposure)
    valid_groups = build_groups(debiased.valid, valid["queries"], tcfg.tasks, tcfg.score_weights, grades)
    rng = np.random.default_rng(cfg.seed)
    if tcfg.max_train_queries and len(train_groups) > tcfg.max_train_queries:
        train_groups = [train_groups[i] for i in np.sort(rng.choice(len(train_groups), tcfg.max_train_queries, replace=False))]
    valid_groups = [g for g in valid_groups if g.gains.max() > 0]
    if len(valid_groups) > tcfg.max_eval_queries:
        valid_groups = [valid_groups[i] for i in np.sort(rng.choice(len(valid_groups), tcfg.max_eval_queries, replace=False))]
    if not train_groups or not valid_groups:
        raise ValueError(f"need training and validation queries, got {len(train_groups)} and {len(valid_groups)}")
    return TrainData(catalog, product_fields(catalog), train_groups, valid_groups, debiased.propensities)


@dataclass
class DebiasedSplits:
    """The interactions a run trains and selects on, after the position-bias correction."""

    train: pd.DataFrame
    valid: pd.DataFrame
    exposure: np.ndarray | None = None  # [n_train, K] for the position tower
    propensities: Propensities | None = None


def debias_splits(cfg: Config, train: dict[str, pd.DataFrame], valid: dict[str, pd.DataFrame]) -> DebiasedSplits:
    """``train.position_debiasing``: ipw trains on events per examined impression
    (training/propensity.py), tower on the logged counts with each pair's exposure per position. Either way validation gains are
    IPW-corrected, because NDCG on logged engagement rewards agreeing with the logging ranker
    and would select against the correction. Propensities come from the train log only."""
    tcfg = cfg.train
    if tcfg.position_debiasing == "none":
        return DebiasedSplits(train["interactions"], valid["interactions"])
    if "positions" not in train or "positions" not in valid:
        raise ValueError(f"train.position_debiasing: {tcfg.position_debiasing} needs per-position counts (the "
                         f"positions table), which data source {cfg.data.source!r} does not log; set it to none")
    propensities = estimate_propensities(train["positions"], tcfg.max_position, tcfg.propensity_clip)
    log.info("examination by position (estimated on the train log, 1 = position 1): %s",
             np.round(propensities.examination, 3).tolist())
    valid_counts = examined_counts(valid["interactions"], valid["positions"], propensities)
    if tcfg.position_debiasing == "ipw":
        return DebiasedSplits(examined_counts(train["interactions"], train["positions"], propensities),
                              valid_counts, propensities=propensities)
    exposure = exposure_matrix(train["interactions"], train["positions"], tcfg.max_position)
    return DebiasedSplits(train["interactions"], valid_counts, exposure, propensities)


def examination_record(run: Run, data: TrainData) -> dict | None:
    """What the model learned about examination, saved beside it for the evaluation report:
    the curve estimated on the train log, and the position tower's own where it has one."""
    if data.propensities is None:
        return None
    record = {**data.propensities.to_dict(), "method": run.objective.debiasing}
    if run.objective.position_tower is not None:
        record["tower"] = run.objective.position_tower.record()
    return record


def set_up(cfg: Config, data: TrainData, init_dir: Path, ctx: DistContext) -> Run:
    """Model (product features fitted on the training products), objective, optimiser, schedule."""
    tcfg = cfg.train
    train_products = data.catalog["product_id"].isin({p for g in data.train_groups for p in g.product_ids})
    features = ProductFeatures.fit(data.catalog[train_products], tcfg.product_features) if tcfg.product_features else None
    model, pair_encoder = build_model(tcfg, init_dir, features)
    objective = MultiTaskObjective(model, tcfg, data.propensities).to(ctx.device)
    optimizer = _optimizer(objective, tcfg)
    steps_per_epoch = math.ceil(len(data.train_groups) / tcfg.queries_per_batch)
    total_steps = tcfg.epochs * steps_per_epoch
    if tcfg.max_steps:
        total_steps = min(total_steps, tcfg.max_steps)
    scheduler = linear_warmup_decay(optimizer, int(tcfg.warmup_ratio * total_steps), total_steps)
    trainable = DistributedDataParallel(objective) if ctx.enabled else objective
    return Run(model, pair_encoder, objective, trainable, optimizer, scheduler, steps_per_epoch, total_steps, ctx)


def resume(run: Run, state_path: Path, fingerprint: str) -> TrainState:
    """The checkpointed state when it was trained by this config, data and code; else a fresh one."""
    if not state_path.exists():
        return TrainState()
    saved = torch.load(state_path, weights_only=True, map_location="cpu")
    if saved["fingerprint"] != fingerprint:
        log.info("ignoring checkpoint %s: config or data changed", state_path)
        return TrainState()
    run.objective.load_state_dict(saved["objective"])
    run.optimizer.load_state_dict(saved["optimizer"])
    run.scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["torch_rng"])  # dropout masks continue as if never stopped
    state = TrainState(**saved["progress"])
    log.info("resuming from %s at step %d of %d", state_path, state.step, run.total_steps)
    return state


def save_checkpoint(run: Run, state: TrainState, state_path: Path, fingerprint: str) -> None:
    if run.ctx.is_main:
        payload = {"fingerprint": fingerprint, "objective": run.objective.state_dict(),
                   "optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict(),
                   "progress": asdict(state), "torch_rng": torch.get_rng_state()}
        with atomic_path(state_path) as tmp:
            torch.save(payload, tmp)


def train_step(cfg: Config, run: Run, data: TrainData, state: TrainState) -> dict[str, float]:
    """One optimiser step on the batch the step number determines (module doc); returns its log row."""
    tcfg, step = cfg.train, state.step
    epoch, position = divmod(step, run.steps_per_epoch)
    order = np.random.default_rng([cfg.seed, epoch]).permutation(len(data.train_groups))
    chosen = [data.train_groups[i] for i in order[position * tcfg.queries_per_batch : (position + 1) * tcfg.queries_per_batch]]
    global_batch = sample_batch(chosen, tcfg.candidates_per_query, np.random.default_rng([cfg.seed, 1_000_003, step]))
    normalizers = global_normalizers(global_batch, run.model.tasks, run.ctx.world_size)
    batch = shard(global_batch, run.ctx)
    encoded = run.pair_encoder.encode(batch.queries, batch.product_ids).to(run.ctx.device)
    loss, parts = run.trainable(encoded, batch.to(run.ctx.device), normalizers)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(run.objective.parameters(), tcfg.grad_clip)
    run.optimizer.step()
    run.scheduler.step()
    state.step = step + 1
    row = {"step": state.step, "loss": loss.item(), "grad_norm": grad_norm.item()}
    row.update({k: float(v) for k, v in parts.items()})
    row.update({f"{t}/weight": w for t, w in run.objective.weighting.current_weights().items()})
    state.history["train_loss"].append(row)
    return row


def validate_and_keep_best(cfg: Config, run: Run, data: TrainData, state: TrainState, best_dir: Path) -> None:
    """Validation NDCG@10; the best model so far is saved to ``best_dir``; patience decides early stopping."""
    metric = evaluate_groups(LoadedRanker(run.model, run.pair_encoder), data.valid_groups, data.products, 10,
                             cfg.train.score_batch_size)
    run.model.train()
    state.history["valid_ndcg"].append({"step": state.step, "ndcg@10": metric})
    log.info("step %d: validation NDCG@10 = %.4f (best %.4f)", state.step, metric, state.best_metric)
    if metric > state.best_metric:
        state.best_metric, state.best_step, state.bad_evals = metric, state.step, 0
        if run.ctx.is_main:
            with atomic_dir(best_dir) as tmp:
                save_ranker(run.model, run.pair_encoder, tmp)
                record = examination_record(run, data)
                if record is not None:
                    write_json(record, tmp / EXAMINATION_FILE)
    else:
        state.bad_evals += 1
    if state.bad_evals >= cfg.train.patience:
        log.info("early stopping at step %d: no gain in %d evaluations", state.step, cfg.train.patience)
        state.stopped_early = True


def finetune(
    cfg: Config,
    prepared_dir: str | Path,
    init_dir: str | Path,
    out_dir: str | Path,
    plots_dir: str | Path,
    metrics_path: str | Path,
    checkpoint_dir: str | Path,
) -> dict:
    """Train the multi-task ranker; save the best-on-validation model to ``out_dir``."""
    tcfg = cfg.train
    ctx = init_distributed()
    torch.set_num_threads(cfg.runtime.threads)
    seed_everything(cfg.seed)
    prepared_dir, init_dir, checkpoint_dir = Path(prepared_dir), Path(init_dir), Path(checkpoint_dir)
    data = load_training_data(cfg, prepared_dir)
    run = set_up(cfg, data, init_dir, ctx)
    fingerprint = _fingerprint(cfg, [prepared_dir / "train", prepared_dir / "valid", init_dir / "model.safetensors"])
    state_path, best_dir = checkpoint_dir / "state.pt", checkpoint_dir / "best"
    state = resume(run, state_path, fingerprint)
    # tokenise only the products these queries show, not the whole catalogue
    shown = {p for g in data.train_groups + data.valid_groups for p in g.product_ids}
    run.pair_encoder.encode_products({pid: data.products[pid] for pid in shown})
    log.info(
        "training %s (%s, chaining=%s, listwise=%s, weighting=%s) on %d queries for %d steps, %d process(es)",
        "/".join(run.model.tasks), tcfg.architecture, tcfg.chaining, tcfg.listwise_loss, tcfg.task_weighting,
        len(data.train_groups), run.total_steps, ctx.world_size,
    )
    if tcfg.validate_at_start and state.step == 0 and not state.history["valid_ndcg"]:
        validate_and_keep_best(cfg, run, data, state, best_dir)  # the start competes with every later step
    progress = tqdm(total=run.total_steps, initial=state.step, desc="train", disable=not ctx.is_main)
    run.objective.train()
    while state.step < run.total_steps and not state.stopped_early:
        row = train_step(cfg, run, data, state)
        progress.update(1)
        progress.set_postfix(loss=f"{row['loss']:.4f}")
        if state.step % tcfg.eval_every == 0 or state.step == run.total_steps:
            validate_and_keep_best(cfg, run, data, state, best_dir)
        if state.step % tcfg.checkpoint_every == 0 or state.stopped_early or state.step == run.total_steps:
            save_checkpoint(run, state, state_path, fingerprint)
    progress.close()
    summary = {
        "best_valid_ndcg@10": state.best_metric,
        "best_step": state.best_step,
        "steps": state.step,
        "total_steps": run.total_steps,
        "stopped_early": state.stopped_early,
        "train_queries": len(data.train_groups),
        "valid_queries": len(data.valid_groups),
        "world_size": ctx.world_size,
        "final_task_weights": run.objective.weighting.current_weights(),
    }
    if ctx.is_main:
        _write_plots(state.history, run.model.tasks, Path(plots_dir))
        with atomic_dir(out_dir) as tmp:
            shutil.copytree(best_dir, tmp, dirs_exist_ok=True)
        write_json(summary, metrics_path)
    ctx.barrier()
    shutdown_distributed(ctx)
    return summary
