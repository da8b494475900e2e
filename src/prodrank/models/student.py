"""The serving student: a two-tower model distilled from the trained ranker (the teacher).

A cross-encoder reads query and product together, so every candidate costs a whole encoder
pass per request: about 1.4 GFLOP a pair for the teacher (MiniLM-L6 over ~66 tokens), and 100
candidates cannot fit in 50 ms on two cores whatever the runtime. A two-layer cross-encoder
student was still 70 ms and ranked far below its teacher (docs/experiments.md). The student
therefore splits the pair, so that the product side is paid once per product, not per request:

    product tower  the teacher's BERT, frozen, mean-pooled:
                   [CLS] title: .. brand: .. [SEP]  ->  p [H]   once per product, offline:
                   kept in a :class:`ProductIndex` by content, so a changed product is
                   encoded again and never served stale
    query tower    a copy of the teacher's BERT, fine-tuned, mean-pooled:
                   [CLS] query [SEP]                ->  q [H]   once per request
    adapter        a trainable residual map p' = p + up(gelu(down([p, product features]))),
                   starting as the identity (:class:`ProductAdapter`)
    signals        exact-match and price-limit facts of the pair, from word sets cached per
                   product (``models/signals.py``): what the teacher reads token by token
                   and two separate vectors cannot
    head           the teacher's multi-task head design (tasks, chaining, score weights)
                   over the interaction features [q, p', q * p', |q - p'|, signals,
                   product features] [4H + S + 2F], plus scale_t * cos(q, p') on each task's
                   logit (the similarity prior: the untrained student ranks as its
                   encoder's cosine)

A request costs one short encoder pass and the head per candidate, about 3 MFLOP a pair
against the teacher's 1,400, and the product side keeps the teacher's whole token budget.
The product tower stays frozen so that product vectors never go stale while the query tower
learns: they are computed once, for training and for the index alike. (One encoder for both
sides, re-encoding the products every epoch, ranked no better on validation and cost a
product pass per epoch: docs/experiments.md.)

The scorer (:class:`StudentScorer`) is a :class:`~prodrank.models.ranker.BatchScorer`, so the
evaluation, the service and the benchmark score it as they score any ranker. It runs on a
:class:`TowerBackend`: torch here (the reference, and training's), ONNX Runtime in
``models/runtime.py``.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from safetensors.numpy import load_file as load_arrays
from safetensors.numpy import save_file as save_arrays
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F
from transformers import AutoTokenizer, BertModel

from prodrank import paths
from prodrank.data.schema import CATALOG_TEXT_FIELDS
from prodrank.models.encoder import BoundedCache, InputBudget, PairEncoder, pad_rows
from prodrank.models.features import ProductFeatures
from prodrank.models.multitask import HeadConfig, HeadOutput, MultiTaskHead
from prodrank.models.ranker import BatchScorer, LoadedRanker, mean_pooling
from prodrank.models.signals import SIGNAL_NAMES, ProductTerms, product_terms, query_terms, signal_matrix

STUDENT_FILE = paths.STUDENT_FILE  # beside query_encoder/, product_encoder/, tokenizer/, head.safetensors
INDEX_FILE = paths.PRODUCT_INDEX_FILE
FORMAT_VERSION = 3  # 2: the product adapter; 3: the pair signals
HEAD_CHUNK = 4096  # pairs per head call: an evaluation scores tens of thousands at once


def interaction(query: torch.Tensor, product: torch.Tensor, signals: torch.Tensor | None,
                features: torch.Tensor | None) -> torch.Tensor:
    """The head's input per pair: q [B, H], p [B, H], signals [B, S], features [B, 2F]
    -> [B, 4H + S + 2F]. The features come last: their missing-value flags close the input."""
    parts = [query, product, query * product, (query - product).abs()]
    parts += [extra.to(query.dtype) for extra in (signals, features) if extra is not None]
    return torch.cat(parts, dim=-1)


SIDES = ("query", "product")
ENCODERS = tuple(f"{side}_encoder." for side in SIDES)  # state-dict prefixes saved as BERT checkpoints


class ProductAdapter(nn.Module):
    """A trainable residual map of the frozen product vector and the product's features:
    p' = p + W_up gelu(W_down [p, f]), [B, H] + [B, 2F] -> [B, H].

    The product tower stays frozen (so the index never goes stale), but its mean-pooled vector
    was trained for the teacher's joint reading, not for this head. The adapter lets training
    move products in the space the query tower learns to match, and fold price and rating into
    the vector, where ``q * p`` can weigh them per query. W_up starts at zero, so the untrained
    adapter is the identity and the similarity prior ranks as before. It reads the product
    alone, so it costs H * hidden multiply-adds a pair and needs nothing new in the index."""

    def __init__(self, hidden_size: int, feature_size: int, adapter_size: int, missing_flags: int) -> None:
        super().__init__()
        self.down = nn.Linear(hidden_size + feature_size, adapter_size)
        self.up = nn.Linear(adapter_size, hidden_size)
        with torch.no_grad():  # as in the head's input layer: a flag training never sets keeps weight 0
            self.down.weight[:, self.down.in_features - missing_flags :] = 0
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, product: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        inputs = product if features is None else torch.cat([product, features.to(product.dtype)], dim=-1)
        return product + self.up(F.gelu(self.down(inputs)))


class TwoTowerStudent(nn.Module):
    """The query and product towers, the product adapter and the multi-task head over their
    interaction (module doc)."""

    def __init__(self, query_encoder: BertModel, product_encoder: BertModel, head_config: HeadConfig,
                 adapter_size: int, signals: int) -> None:
        super().__init__()
        self.query_encoder = query_encoder
        self.product_encoder = product_encoder.requires_grad_(False)  # frozen: the product index never goes stale
        hidden = query_encoder.config.hidden_size
        self.adapter_size = adapter_size
        self.signals = signals  # pair signals in the head's input (0 or len(SIGNAL_NAMES))
        self.feature_size = head_config.input_size - 4 * hidden - signals
        self.product_adapter = (ProductAdapter(hidden, self.feature_size, adapter_size, head_config.missing_flags)
                                if adapter_size else None)
        self.head = MultiTaskHead(head_config)

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.head.config.tasks

    def encoder(self, side: str) -> BertModel:
        return self.query_encoder if side == "query" else self.product_encoder

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, side: str) -> torch.Tensor:
        """Texts of one side encoded alone, mean-pooled: [N, L] -> [N, H]."""
        tokens = self.encoder(side)(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pooling(tokens, attention_mask)

    def forward(self, query: torch.Tensor, product: torch.Tensor, signals: torch.Tensor | None,
                features: torch.Tensor | None) -> HeadOutput:
        """query, product [B, H] (rows of the same pairs); signals [B, S] and features [B, 2F],
        each None when the student has none."""
        if self.product_adapter is not None:
            product = self.product_adapter(product, features)
        similarity = F.cosine_similarity(query, product, dim=-1)
        return self.head(interaction(query, product, signals, features), similarity)


def build_student(teacher: LoadedRanker, query_max_tokens: int, adapter_size: int, signals: bool
                  ) -> tuple[TwoTowerStudent, PairEncoder]:
    """An untrained student of ``teacher``: its encoder copied into both towers, a fresh head of
    the same design with the similarity prior, an identity product adapter (none when
    ``adapter_size`` is 0), the pair signals when ``signals``, the teacher's product budget and
    a query budget of its own."""
    source = teacher.pair_encoder
    budget = replace(source.budget, query_max_tokens=query_max_tokens)
    pair_encoder = PairEncoder(source.tokenizer, budget, features=source.features)
    hidden = teacher.model.encoder.config.hidden_size
    features = source.features.size if source.features else 0
    n_signals = len(SIGNAL_NAMES) if signals else 0
    # the product features (and their missing flags, last) close the input as in the teacher's
    head_config = replace(teacher.model.head.config, input_size=4 * hidden + n_signals + features, similarity_prior=True)
    encoder = teacher.model.encoder
    return (TwoTowerStudent(copy.deepcopy(encoder), copy.deepcopy(encoder), head_config, adapter_size, n_signals),
            pair_encoder)


class TowerBackend(Protocol):
    """What the scorer runs: the encoder over token rows, and the head over pair vectors."""

    reads_signals: bool  # the head takes the pair signals

    def embed(self, input_ids: np.ndarray, attention_mask: np.ndarray, side: str) -> np.ndarray:
        """[N, L] int64 -> [N, H] float32; ``side`` is "query" or "product"."""

    def head(self, query: np.ndarray, product: np.ndarray, signals: np.ndarray | None,
             features: np.ndarray | None) -> dict[str, np.ndarray]:
        """[B, H], [B, H], [B, S], [B, 2F] -> {"score": [B], "<task>": p_task [B]}."""


class TorchBackend:
    """The student in torch: the reference runtime, and the one distillation validates with."""

    runtime = "torch"
    quantized = False

    def __init__(self, model: TwoTowerStudent) -> None:
        self.model = model
        self.reads_signals = model.signals > 0

    @torch.inference_mode()
    def embed(self, input_ids: np.ndarray, attention_mask: np.ndarray, side: str) -> np.ndarray:
        self.model.eval()
        return self.model.embed(torch.from_numpy(input_ids), torch.from_numpy(attention_mask), side).float().numpy()

    @torch.inference_mode()
    def head(self, query: np.ndarray, product: np.ndarray, signals: np.ndarray | None,
             features: np.ndarray | None) -> dict[str, np.ndarray]:
        self.model.eval()
        output = self.model(torch.from_numpy(query), torch.from_numpy(product),
                            *(None if x is None else torch.from_numpy(x) for x in (signals, features)))
        out = {"score": self.model.head.ranking_score(output).double().numpy()}
        out.update({t: p.double().numpy() for t, p in output.probabilities().items()})
        return out


class ProductIndex:
    """Product vectors by content digest (``EncodedProduct.content``): the packaged catalogue's,
    computed offline, and those computed since, in a bounded cache. Keyed by content, not id,
    so a product whose text or price changed is encoded again."""

    def __init__(self, vectors: Mapping[bytes, np.ndarray] | None = None, cache_size: int = 50_000) -> None:
        self.packaged: dict[bytes, np.ndarray] = dict(vectors or {})
        self.computed: MutableMapping[bytes, np.ndarray] = BoundedCache(cache_size)
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self.packaged) + len(self.computed)

    def get(self, digest: bytes) -> np.ndarray | None:
        vector = self.packaged.get(digest)
        if vector is None:
            vector = self.computed.get(digest)
        self.hits += vector is not None
        self.misses += vector is None
        return vector

    def add(self, digest: bytes, vector: np.ndarray) -> None:
        self.computed[digest] = vector

    def bound(self, size: int) -> None:
        computed = BoundedCache(size)
        computed.update(self.computed)
        self.computed = computed

    def save(self, path: str | Path) -> None:
        """Every vector held, packaged and computed (how distillation writes the catalogue's)."""
        items = {**self.packaged, **self.computed}
        digests = np.frombuffer(b"".join(items), dtype=np.uint8).reshape(len(items), -1)
        save_arrays({"digests": digests, "vectors": np.stack(list(items.values())).astype(np.float32)}, str(path))

    @classmethod
    def load(cls, path: str | Path) -> ProductIndex:
        arrays = load_arrays(str(path))
        return cls({row.tobytes(): vector for row, vector in zip(arrays["digests"], arrays["vectors"], strict=True)})


class ProductTermsCache:
    """Each product's word sets for the pair signals, made once per product content (the text
    fields and the price, which the signals read even where the head has no price feature)."""

    def __init__(self, size: int = 50_000) -> None:
        self.entries: MutableMapping[str, tuple[str, ProductTerms]] = BoundedCache(size)

    def bound(self, size: int) -> None:
        entries = BoundedCache(size)
        entries.update(self.entries)
        self.entries = entries

    def get(self, pid: str, product: Mapping[str, str | float | None]) -> ProductTerms:
        key = repr([product.get(name) for name in ("price", *CATALOG_TEXT_FIELDS)])  # repr: NaN == NaN
        cached = self.entries.get(pid)
        if cached is None or cached[0] != key:
            cached = (key, product_terms(product))
            self.entries[pid] = cached
        return cached[1]


class StudentScorer(BatchScorer):
    """Scores pairs with a two-tower student: each distinct query and each product not in the
    index through the encoder, in length-sorted batches, then the head over all pairs (with
    their signals, when the student reads them)."""

    def __init__(self, backend: TowerBackend, pair_encoder: PairEncoder, tasks: tuple[str, ...],
                 index: ProductIndex | None = None) -> None:
        self.backend = backend
        self.pair_encoder = pair_encoder
        self._tasks = tasks
        self.index = index if index is not None else ProductIndex()
        self.terms = ProductTermsCache() if backend.reads_signals else None
        self.runtime = backend.runtime
        self.quantized = backend.quantized

    @property
    def tasks(self) -> tuple[str, ...]:
        return self._tasks

    def use_product_cache(self, size: int) -> None:
        super().use_product_cache(size)
        self.index.bound(size)
        if self.terms is not None:
            self.terms.bound(size)

    def signals(self, queries: Sequence[str], product_ids: Sequence[str],
                products: Mapping[str, Mapping[str, str | float | None]], qi: np.ndarray, pi: np.ndarray
                ) -> np.ndarray | None:
        """[B, S] pair signals of the distinct ``queries`` and ``product_ids`` indexed by qi, pi."""
        if self.terms is None:
            return None
        return signal_matrix([query_terms(q) for q in queries], [self.terms.get(p, products[p]) for p in product_ids],
                             qi, pi)

    def embed_rows(self, rows: Sequence[Sequence[int]], side: str, batch_size: int) -> np.ndarray:
        """Token rows -> [N, H], in batches of similar length (each padded to its own longest)."""
        order = np.argsort([len(r) for r in rows], kind="stable")
        out: np.ndarray | None = None
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            ids, mask = pad_rows([rows[i] for i in idx], self.pair_encoder.tokenizer.pad_token_id)
            vectors = self.backend.embed(ids.numpy(), mask.numpy(), side)
            if out is None:
                out = np.empty((len(rows), vectors.shape[1]), dtype=np.float32)
            out[idx] = vectors
        return out if out is not None else np.empty((0, 0), dtype=np.float32)

    def product_vectors(self, product_ids: Sequence[str], batch_size: int) -> np.ndarray:
        """[P, H] for products passed to ``pair_encoder.encode_products``: from the index, or
        encoded now and added to it."""
        digests = [self.pair_encoder.product(p).content for p in product_ids]
        found = [self.index.get(d) for d in digests]
        todo = [i for i, v in enumerate(found) if v is None]
        if todo:
            computed = self.embed_rows(self.pair_encoder.product_rows([product_ids[i] for i in todo]), "product", batch_size)
            for i, vector in zip(todo, computed, strict=True):
                found[i] = vector
                self.index.add(digests[i], vector)
        return np.stack(found) if found else np.empty((0, 0), dtype=np.float32)

    def score(self, queries: Sequence[str], product_ids: Sequence[str],
              products: Mapping[str, Mapping[str, str | float | None]], batch_size: int = 64) -> dict[str, np.ndarray]:
        self.pair_encoder.encode_products(products)
        distinct_products = list(dict.fromkeys(product_ids))
        distinct_queries = list(dict.fromkeys(queries))
        query_rows, query_cut = self.pair_encoder.query_rows(distinct_queries)
        query_vectors = self.embed_rows(query_rows, "query", batch_size)
        product_vectors = self.product_vectors(distinct_products, batch_size)
        q_row = {q: i for i, q in enumerate(distinct_queries)}
        p_row = {p: i for i, p in enumerate(distinct_products)}
        qi = np.fromiter((q_row[q] for q in queries), dtype=np.int64, count=len(queries))
        pi = np.fromiter((p_row[p] for p in product_ids), dtype=np.int64, count=len(product_ids))
        entries = [self.pair_encoder.product(p) for p in distinct_products]
        features = np.asarray([e.features for e in entries], dtype=np.float32) if self.pair_encoder.features else None
        signals = self.signals(distinct_queries, distinct_products, products, qi, pi)
        out = {name: np.zeros(len(qi), dtype=np.float64) for name in ("score", *self.tasks)}
        for start in range(0, len(qi), HEAD_CHUNK):
            q, p = qi[start : start + HEAD_CHUNK], pi[start : start + HEAD_CHUNK]
            chunk = self.backend.head(query_vectors[q], product_vectors[p],
                                      None if signals is None else signals[start : start + HEAD_CHUNK],
                                      None if features is None else features[p])
            for name, values in chunk.items():
                out[name][start : start + len(q)] = values
        out["truncated"] = np.asarray(query_cut, dtype=bool)[qi] | np.array([e.truncated for e in entries], dtype=bool)[pi]
        return out


def student_shape(model: TwoTowerStudent, pair_encoder: PairEncoder) -> dict:
    """What /metadata and the metrics say of the student: its encoder and token budgets."""
    config = model.query_encoder.config
    query = pair_encoder.budget.query_max_tokens + 2
    return {"kind": "two_tower", "layers": config.num_hidden_layers, "hidden": config.hidden_size,
            "heads": config.num_attention_heads, "query_max_tokens": query,
            "product_max_tokens": pair_encoder.max_length - query + 1}


def trained_weights(model: TwoTowerStudent) -> dict[str, torch.Tensor]:
    """Everything but the encoders (saved as BERT checkpoints of their own): head and adapter."""
    return {k: v.detach().contiguous() for k, v in model.state_dict().items() if not k.startswith(ENCODERS)}


def save_student(model: TwoTowerStudent, pair_encoder: PairEncoder, directory: str | Path) -> None:
    """query_encoder/, product_encoder/, tokenizer/, head.safetensors (head and adapter) and
    student.json."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for side in SIDES:
        model.encoder(side).save_pretrained(directory / f"{side}_encoder", safe_serialization=True)
    pair_encoder.tokenizer.save_pretrained(directory / "tokenizer")
    save_file(trained_weights(model), str(directory / "head.safetensors"))
    meta = {"format_version": FORMAT_VERSION, "kind": "two_tower", "head": model.head.config.to_dict(),
            "adapter_size": model.adapter_size, "signals": list(SIGNAL_NAMES) if model.signals else [],
            "input_budget": pair_encoder.budget.to_dict(),
            "product_features": pair_encoder.features.to_dict() if pair_encoder.features else None}
    (directory / STUDENT_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def is_student(directory: str | Path) -> bool:
    return (Path(directory) / STUDENT_FILE).exists()


def load_student(directory: str | Path) -> tuple[TwoTowerStudent, PairEncoder]:
    directory = Path(directory)
    meta = json.loads((directory / STUDENT_FILE).read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{directory / STUDENT_FILE}: format_version {meta.get('format_version')} != {FORMAT_VERSION}")
    query, product = (BertModel.from_pretrained(directory / f"{side}_encoder", add_pooling_layer=False,
                                                use_safetensors=True) for side in SIDES)
    if meta["signals"] and meta["signals"] != list(SIGNAL_NAMES):
        raise ValueError(f"{directory / STUDENT_FILE}: trained on the pair signals {meta['signals']}, "
                         f"this version computes {list(SIGNAL_NAMES)}")
    model = TwoTowerStudent(query, product, HeadConfig.from_dict(meta["head"]), meta["adapter_size"], len(meta["signals"]))
    missing, unexpected = model.load_state_dict(load_file(str(directory / "head.safetensors")), strict=False)
    if unexpected or any(not k.startswith(ENCODERS) for k in missing):
        raise ValueError(f"{directory / 'head.safetensors'}: weights do not match student.json "
                         f"(missing {[k for k in missing if not k.startswith(ENCODERS)]}, unexpected {unexpected})")
    model.eval()
    features = meta.get("product_features")
    pair_encoder = PairEncoder(AutoTokenizer.from_pretrained(directory / "tokenizer"), InputBudget.from_dict(meta["input_budget"]),
                               features=ProductFeatures.from_dict(features) if features else None)
    pair_encoder.check_positions(product.config.max_position_embeddings)
    return model, pair_encoder


def load_index(directory: str | Path) -> ProductIndex:
    """The packaged product index, or an empty one (every product is then encoded on first use)."""
    path = Path(directory) / INDEX_FILE
    return ProductIndex.load(path) if path.exists() else ProductIndex()


def torch_student(directory: str | Path) -> StudentScorer:
    model, pair_encoder = load_student(directory)
    return StudentScorer(TorchBackend(model), pair_encoder, model.tasks, load_index(directory))
