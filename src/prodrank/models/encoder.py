"""Cross-encoder input: ``[CLS] query [SEP] title: ... brand: ... [SEP]`` with a token
budget per product field.

Each field is truncated on its own budget, so a long description cannot push the title
or brand out of the input, which a single tail truncation of the concatenated text would
do. Product encodings are cached by product id: in a ranking request or a training batch
the same products recur, and tokenising them once is the cheapest speed win. A cached entry
keeps the content it was made from, so a product whose text or price changed under the same
id is encoded again, never served stale.
"""
from __future__ import annotations

import hashlib
import itertools
from collections import OrderedDict
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from prodrank.data.schema import CATALOG_TEXT_FIELDS
from prodrank.models.features import ProductFeatures

FIELD_ORDER = CATALOG_TEXT_FIELDS  # the order of the product side: "title: ... brand: ..."


class BoundedCache(OrderedDict):
    """A dict that forgets its oldest entries beyond ``maxsize``: a long-running server's
    caches (product encodings, product vectors) must not grow without bound."""

    def __init__(self, maxsize: int) -> None:
        super().__init__()
        self.maxsize = maxsize

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        while len(self) > self.maxsize:
            self.popitem(last=False)


class EncodedProduct(NamedTuple):
    content: bytes  # digest of the values it was encoded from (text fields, then product features)
    token_ids: list[int]  # with field markers, each field cut to its budget
    truncated: bool  # some field was cut by the budget
    features: list[float]  # the product feature vector (empty without product features)


@dataclass(frozen=True)
class InputBudget:
    query_max_tokens: int
    fields: Mapping[str, int]  # field name -> token budget (0 drops it)

    def to_dict(self) -> dict:
        return {"query_max_tokens": self.query_max_tokens, "fields": dict(self.fields)}

    @classmethod
    def from_dict(cls, data: Mapping) -> InputBudget:
        return cls(int(data["query_max_tokens"]), dict(data["fields"]))


@dataclass
class EncodedSides:
    """The batch's distinct queries and products, each encoded alone (``[CLS] text [SEP]``),
    for the bi-encoder similarity prior; ``query_index``/``product_index`` map pairs to rows."""

    query_ids: torch.Tensor  # [Q, Lq]
    query_mask: torch.Tensor  # [Q, Lq]
    product_ids: torch.Tensor  # [P, Lp]
    product_mask: torch.Tensor  # [P, Lp]
    query_index: torch.Tensor  # [B]
    product_index: torch.Tensor  # [B]

    def to(self, device: torch.device) -> EncodedSides:
        return EncodedSides(*(t.to(device) for t in (self.query_ids, self.query_mask, self.product_ids,
                                                      self.product_mask, self.query_index, self.product_index)))


@dataclass
class EncodedBatch:
    input_ids: torch.Tensor  # [B, L] padded to the longest pair in the batch
    attention_mask: torch.Tensor  # [B, L]
    token_type_ids: torch.Tensor  # [B, L]
    truncated: torch.Tensor  # [B] bool: some text was cut by the budget
    sides: EncodedSides | None = None  # only for a ranker with the similarity prior
    features: torch.Tensor | None = None  # [B, 2F] product features, only for a ranker that uses them

    def to(self, device: torch.device) -> EncodedBatch:
        return EncodedBatch(self.input_ids.to(device), self.attention_mask.to(device),
                            self.token_type_ids.to(device), self.truncated,
                            self.sides.to(device) if self.sides is not None else None,
                            self.features.to(device) if self.features is not None else None)


def pad_rows(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token rows to the longest: (ids [N, L], attention mask [N, L]). One vectorised
    fill (the mask's True cells, row-major, are exactly the rows' tokens in order) instead of a
    tensor per row: at rank@100 with a small served model the per-row copies were a visible
    share of the request."""
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    mask = np.arange(int(lengths.max())) < lengths[:, None]
    ids = np.full(mask.shape, pad_id, dtype=np.int64)
    ids[mask] = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=int(lengths.sum()))
    return torch.from_numpy(ids), torch.from_numpy(mask.astype(np.int64))


def _digest(values: list) -> bytes:
    """16 bytes for a product's input values: a cache entry keeps this, not the text itself (a
    service caches tens of thousands of products). NaN, a missing value read from a table, is
    written as None, since it compares unequal to itself."""
    clean = [None if v != v else v for v in values]
    return hashlib.blake2b(repr(clean).encode(), digest_size=16).digest()


class PairEncoder:
    """Turns (query, product) pairs into padded cross-encoder tensors."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, budget: InputBudget, with_sides: bool = False,
                 features: ProductFeatures | None = None) -> None:
        self.tokenizer = tokenizer
        self.budget = budget
        self.with_sides = with_sides  # also encode queries and products alone (similarity prior)
        self.features = features  # numeric product features for the head (train.product_features)
        self._product_cache: dict[str, EncodedProduct] = {}
        self._markers = {
            name: tokenizer(f"{name}:", add_special_tokens=False)["input_ids"] for name in FIELD_ORDER
        }

    def use_product_cache(self, cache: MutableMapping[str, EncodedProduct]) -> None:
        """Cache product encodings in ``cache`` from now on (a service passes a bounded one)."""
        self._product_cache = cache

    @property
    def max_length(self) -> int:
        """The longest pair this encoder can produce: [CLS] query [SEP], then each field's marker
        and budget, [SEP]. The encoder needs at least this many position embeddings."""
        fields = sum(len(self._markers[name]) + budget for name, budget in self.budget.fields.items() if budget > 0)
        return 3 + self.budget.query_max_tokens + fields

    def check_positions(self, max_position_embeddings: int) -> None:
        """Fail early (training, loading) rather than on the first long pair in serving."""
        if self.max_length > max_position_embeddings:
            raise ValueError(f"pairs can be {self.max_length} tokens (train.query_max_tokens + train.fields + field "
                             f"markers + 3) but the encoder has {max_position_embeddings} positions: lower the budgets "
                             "or pretrain with more positions")

    def _tokens(self, texts: Sequence[str]) -> list[list[int]]:
        return self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]

    def _query_tokens(self, queries: Sequence[str]) -> list[list[int]]:
        """Each distinct query tokenised once: a ranking request repeats one query per candidate."""
        distinct = list(dict.fromkeys(queries))
        tokens = dict(zip(distinct, self._tokens(distinct), strict=True))
        return [tokens[q] for q in queries]

    def encode_products(self, products: Mapping[str, Mapping[str, str | float | None]]) -> None:
        """Tokenise and cache products (id -> {field: text, feature: number}) not cached yet, or
        cached from other content."""
        inputs = (*FIELD_ORDER, *(self.features.names if self.features else ()))
        content = {pid: _digest([products[pid].get(name) for name in inputs]) for pid in products}
        todo = [pid for pid in products if (pid not in self._product_cache
                                            or self._product_cache[pid].content != content[pid])]
        if not todo:
            return
        per_field: dict[str, list[list[int]]] = {}
        for name in FIELD_ORDER:
            if self.budget.fields.get(name, 0) > 0:
                per_field[name] = self._tokens([str(products[pid].get(name) or "") for pid in todo])
        for i, pid in enumerate(todo):
            ids: list[int] = []
            cut = False
            for name, tokenised in per_field.items():
                tokens = tokenised[i]
                if not tokens:
                    continue
                limit = self.budget.fields[name]
                cut |= len(tokens) > limit
                ids += self._markers[name] + tokens[:limit]
            self._product_cache[pid] = EncodedProduct(content[pid], ids, cut,
                                                      self.features.vector(products[pid]) if self.features else [])

    def product(self, pid: str) -> EncodedProduct:
        """The cached encoding of a product passed to ``encode_products``."""
        return self._product_cache[pid]

    def query_rows(self, queries: Sequence[str]) -> tuple[list[list[int]], list[bool]]:
        """Each query alone, ``[CLS] query [SEP]`` cut to the query budget, and whether it was cut."""
        tok, limit = self.tokenizer, self.budget.query_max_tokens
        tokens = self._query_tokens(queries)
        return [[tok.cls_token_id, *q[:limit], tok.sep_token_id] for q in tokens], [len(q) > limit for q in tokens]

    def product_rows(self, product_ids: Sequence[str]) -> list[list[int]]:
        """Each product alone, ``[CLS] title: .. brand: .. [SEP]`` (every id passed to ``encode_products``)."""
        tok = self.tokenizer
        return [[tok.cls_token_id, *self._product_cache[pid].token_ids, tok.sep_token_id] for pid in product_ids]

    def encode(self, queries: Sequence[str], product_ids: Sequence[str]) -> EncodedBatch:
        """Encode pairs; every product id must have been passed to ``encode_products``."""
        tok = self.tokenizer
        query_tokens = self._query_tokens(queries)
        rows, types, truncated, features = [], [], [], []
        for q_ids, pid in zip(query_tokens, product_ids, strict=True):
            _, p_ids, p_cut, p_features = self._product_cache[pid]
            q_cut = len(q_ids) > self.budget.query_max_tokens
            q_ids = q_ids[: self.budget.query_max_tokens]
            first = [tok.cls_token_id, *q_ids, tok.sep_token_id]
            second = [*p_ids, tok.sep_token_id]
            rows.append(first + second)
            types.append([0] * len(first) + [1] * len(second))
            truncated.append(q_cut or p_cut)
            features.append(p_features)
        input_ids, attention_mask = pad_rows(rows, tok.pad_token_id)
        token_type_ids, _ = pad_rows(types, 0)
        sides = self._sides(query_tokens, product_ids) if self.with_sides else None
        feature_tensor = torch.tensor(features, dtype=torch.float32) if self.features else None
        return EncodedBatch(input_ids, attention_mask, token_type_ids, torch.tensor(truncated), sides, feature_tensor)

    def _sides(self, query_tokens: Sequence[Sequence[int]], product_ids: Sequence[str]) -> EncodedSides:
        """Each distinct query and product of the batch once, with the same budgets as the pair."""
        tok = self.tokenizer
        query_rows: dict[tuple[int, ...], int] = {}
        product_rows: dict[str, int] = {}
        query_index = [query_rows.setdefault(tuple(q[: self.budget.query_max_tokens]), len(query_rows))
                       for q in query_tokens]
        product_index = [product_rows.setdefault(pid, len(product_rows)) for pid in product_ids]
        query_ids, query_mask = pad_rows([[tok.cls_token_id, *q, tok.sep_token_id] for q in query_rows], tok.pad_token_id)
        product_tokens, product_mask = pad_rows(self.product_rows(list(product_rows)), tok.pad_token_id)
        return EncodedSides(query_ids, query_mask, product_tokens, product_mask,
                            torch.tensor(query_index), torch.tensor(product_index))

    def pair_lengths(self, queries: Sequence[str], product_ids: Sequence[str]) -> list[int]:
        """Token count of each pair, used to sort pairs by length before batching."""
        q_lens = [min(len(t), self.budget.query_max_tokens) for t in self._query_tokens(queries)]
        return [q + len(self._product_cache[p].token_ids) + 3 for q, p in zip(q_lens, product_ids, strict=True)]
