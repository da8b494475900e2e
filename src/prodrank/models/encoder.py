"""Cross-encoder input: ``[CLS] query [SEP] title: ... brand: ... [SEP]`` with a token
budget per product field.

Each field is truncated on its own budget, so a long description cannot push the title
or brand out of the input, which a single tail truncation of the concatenated text would
do. Product encodings are cached by product id: in a ranking request or a training batch
the same products recur, and tokenising them once is the cheapest speed win.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

FIELD_ORDER = ("title", "brand", "category", "attributes", "description")


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
class EncodedBatch:
    input_ids: torch.Tensor  # [B, L] padded to the longest pair in the batch
    attention_mask: torch.Tensor  # [B, L]
    token_type_ids: torch.Tensor  # [B, L]
    truncated: torch.Tensor  # [B] bool: some text was cut by the budget

    def to(self, device: torch.device) -> EncodedBatch:
        return EncodedBatch(self.input_ids.to(device), self.attention_mask.to(device),
                            self.token_type_ids.to(device), self.truncated)


class PairEncoder:
    """Turns (query, product) pairs into padded cross-encoder tensors."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, budget: InputBudget) -> None:
        self.tokenizer = tokenizer
        self.budget = budget
        self._product_cache: dict[str, tuple[list[int], bool]] = {}
        self._markers = {
            name: tokenizer(f"{name}:", add_special_tokens=False)["input_ids"] for name in FIELD_ORDER
        }

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

    def encode_products(self, products: Mapping[str, Mapping[str, str | None]]) -> None:
        """Tokenise and cache products (id -> {field: text}) not cached yet."""
        todo = [pid for pid in products if pid not in self._product_cache]
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
            self._product_cache[pid] = (ids, cut)

    def encode(self, queries: Sequence[str], product_ids: Sequence[str]) -> EncodedBatch:
        """Encode pairs; every product id must have been passed to ``encode_products``."""
        tok = self.tokenizer
        query_tokens = self._tokens(queries)
        rows, types, truncated = [], [], []
        for q_ids, pid in zip(query_tokens, product_ids, strict=True):
            p_ids, p_cut = self._product_cache[pid]
            q_cut = len(q_ids) > self.budget.query_max_tokens
            q_ids = q_ids[: self.budget.query_max_tokens]
            first = [tok.cls_token_id, *q_ids, tok.sep_token_id]
            second = [*p_ids, tok.sep_token_id]
            rows.append(first + second)
            types.append([0] * len(first) + [1] * len(second))
            truncated.append(q_cut or p_cut)
        length = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), length), tok.pad_token_id, dtype=torch.long)
        token_type_ids = torch.zeros((len(rows), length), dtype=torch.long)
        attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, (row, type_row) in enumerate(zip(rows, types, strict=True)):
            input_ids[i, : len(row)] = torch.tensor(row)
            token_type_ids[i, : len(row)] = torch.tensor(type_row)
            attention_mask[i, : len(row)] = 1
        return EncodedBatch(input_ids, attention_mask, token_type_ids, torch.tensor(truncated))

    def pair_lengths(self, queries: Sequence[str], product_ids: Sequence[str]) -> list[int]:
        """Token count of each pair, used to sort pairs by length before batching."""
        q_lens = [min(len(t), self.budget.query_max_tokens) for t in self._tokens(queries)]
        return [q + len(self._product_cache[p][0]) + 3 for q, p in zip(q_lens, product_ids, strict=True)]
