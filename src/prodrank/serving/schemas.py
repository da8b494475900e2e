"""Request and response models of the ranking API, and the error format.

Every request body is validated by these pydantic models before it reaches the model:
``extra="forbid"`` rejects unknown fields, ``strict=True`` rejects wrong types instead of
coercing them (``"5"`` is not a ``top_k``), and the validators below reject an empty or
blank query, zero candidates, more candidates than ``serving.max_candidates`` and duplicate
ids. Each error carries its field path (``candidates.3.id``), which
:func:`format_validation_errors` turns into the API's error body::

    {"error": "candidates.3.id: String should have at least 1 character",
     "errors": [{"field": "candidates.3.id", "message": "String should have at least 1 character"}]}

"Blank" has one definition, :data:`BLANK_RANGES`, which the OpenAPI ``pattern`` of ``query``,
``id`` and ``title`` (:data:`NOT_BLANK`) and the validators share. It is an explicit character class
because ``\\S`` means different things to different engines: ECMA-262 (JSON Schema validators),
Python's ``str.isspace`` and schemathesis' ASCII reading each disagree on some characters
(U+001C..U+001F, U+0085, U+FEFF), and a schema-valid request was then refused as blank.

Over-long text is not an error: fields longer than ``serving.max_field_chars`` characters
are cut before tokenising, then the tokenizer budget cuts them further, and the result says
``truncated: true`` for that candidate.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, create_model, field_validator
from pydantic_core import PydanticCustomError

EVENTS = ("click", "add_to_cart", "purchase")


@dataclass
class Limits:
    """Request limits, set from ``params.yaml``'s ``serving`` section when the service starts."""

    max_candidates: int = 200
    max_id_chars: int = 200


LIMITS = Limits()


def configure_limits(serving_cfg: Any) -> None:
    """Apply ``cfg.serving`` limits to the request models (validators read them at call time)."""
    LIMITS.max_candidates = serving_cfg.max_candidates


# Blank characters: the union of Python's str.isspace, ECMA-262's \s (WhiteSpace and LineTerminator,
# what JSON Schema validators read) and Unicode's White_Space, plus U+180E, a space before Unicode 6.3.
# Spelled as literal characters, so no engine reads an escape or a class shorthand its own way.
BLANK_RANGES = ((0x09, 0x0D), (0x1C, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x180E, 0x180E),
                (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
                (0xFEFF, 0xFEFF))
# the OpenAPI pattern (a pattern matches anywhere): at least one character that is not blank
NOT_BLANK = "[^" + "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in BLANK_RANGES) + "]"
NOT_BLANK_RE = re.compile(NOT_BLANK)


def is_blank(text: str) -> bool:
    """True when ``text`` does not match the schema's :data:`NOT_BLANK` pattern: the validators
    use the schema's own pattern, so schema and validator cannot disagree on a character."""
    return NOT_BLANK_RE.search(text) is None


def _candidate_count_schema(schema: dict[str, Any]) -> None:
    """The candidate limits in the OpenAPI schema, read when it is generated (after configure_limits)."""
    schema.update(minItems=1, maxItems=LIMITS.max_candidates)


def _id_schema(schema: dict[str, Any]) -> None:
    schema.update(pattern=NOT_BLANK, maxLength=LIMITS.max_id_chars)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Candidate(_Strict):
    """One product to rank. Only ``id`` and ``title`` are required."""

    id: str = Field(min_length=1, description="product id, unique within the request", json_schema_extra=_id_schema)
    title: str = Field(description="product title", json_schema_extra={"pattern": NOT_BLANK})
    description: str | None = None
    brand: str | None = None
    category: str | None = None
    attributes: str | dict[str, str | int | float | bool] | None = Field(
        None, description='"color: red; size: xl" or {"color": "red", "size": "xl"}')
    price: float | None = Field(None, ge=0, allow_inf_nan=False,
                                description="read by a ranker trained with train.product_features; always logged")
    rating: float | None = Field(None, ge=0, allow_inf_nan=False,
                                 description="average review rating; read by a ranker trained with train.product_features")

    @field_validator("id", "title")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if is_blank(value):
            raise PydanticCustomError("blank", "must contain non-whitespace text")
        return value

    @field_validator("id")
    @classmethod
    def _id_short(cls, value: str) -> str:
        if len(value) > LIMITS.max_id_chars:
            raise PydanticCustomError("too_long", "{n} characters, more than the limit of {limit}",
                                      {"n": len(value), "limit": LIMITS.max_id_chars})
        return value

    def fields(self) -> dict[str, str | float | None]:
        """Text fields and product features in the form the ranker's pair encoder reads."""
        attributes = self.attributes
        if isinstance(attributes, dict):
            attributes = "; ".join(f"{k}: {v}" for k, v in attributes.items())
        return {"title": self.title, "brand": self.brand, "category": self.category,
                "attributes": attributes, "description": self.description, "price": self.price, "rating": self.rating}


class QueryRequest(_Strict):
    """A request with the shopper's query: what ``/rank`` and ``/search`` share."""

    query: str = Field(description="the shopper's search text", json_schema_extra={"pattern": NOT_BLANK})

    @field_validator("query")
    @classmethod
    def _query_not_blank(cls, value: str) -> str:
        if is_blank(value):
            raise PydanticCustomError("blank", "must contain non-whitespace text")
        return value


class RankRequest(QueryRequest):
    """``POST /rank`` body."""

    candidates: list[Candidate] = Field(description="products to rank (1 .. serving.max_candidates), ids unique",
                                        json_schema_extra=_candidate_count_schema)
    top_k: int | None = Field(None, ge=1, description="return only the best top_k (default: all)")

    @field_validator("candidates")
    @classmethod
    def _candidates_count_and_unique(cls, value: list[Candidate]) -> list[Candidate]:
        if not value:
            raise PydanticCustomError("too_short", "at least one candidate is required")
        if len(value) > LIMITS.max_candidates:
            raise PydanticCustomError("too_long", "{n} candidates, more than the limit of {limit}",
                                      {"n": len(value), "limit": LIMITS.max_candidates})
        seen: dict[str, int] = {}
        for i, candidate in enumerate(value):
            if candidate.id in seen:
                raise PydanticCustomError(
                    "duplicate_id", "duplicate id '{id}' (candidates {first} and {second})",
                    {"id": candidate.id, "first": seen[candidate.id], "second": i})
            seen[candidate.id] = i
        return value


SEARCH_DEFAULT_K = 10
SEARCH_MAX_K = 50
SEARCH_DEFAULT_N = 100  # capped at serving.max_candidates


def search_default_n() -> int:
    """The first-stage candidates of a search that does not say: 100, or fewer when
    ``serving.max_candidates`` is lower."""
    return min(SEARCH_DEFAULT_N, LIMITS.max_candidates)


def _n_schema(schema: dict[str, Any]) -> None:
    schema.update(maximum=LIMITS.max_candidates)


class SearchRequest(QueryRequest):
    """``POST /search`` body: a query, answered from the packaged catalogue."""

    k: int = Field(SEARCH_DEFAULT_K, ge=1, le=SEARCH_MAX_K, description="results returned, best first")
    n: int | None = Field(None, ge=1, json_schema_extra=_n_schema,
                          description=f"first-stage (BM25) candidates the ranker orders: k .. serving.max_candidates; "
                                      f"default {SEARCH_DEFAULT_N} (at most serving.max_candidates)")

    @field_validator("n")
    @classmethod
    def _n_in_range(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is None:
            return value
        if value > LIMITS.max_candidates:
            raise PydanticCustomError("too_large", "{n} candidates, more than the limit of {limit}",
                                      {"n": value, "limit": LIMITS.max_candidates})
        k = info.data.get("k")
        if isinstance(k, int) and value < k:  # the ranker cannot return more than it was given
            raise PydanticCustomError("less_than_k", "{n} is less than k ({k})", {"n": value, "k": k})
        return value


class _RankedBase(BaseModel):
    id: str
    rank: int
    score: float  # sum_t score_weight_t * p_t: the ranking key


def response_models(tasks: Iterable[str]) -> tuple[type[BaseModel], type[BaseModel]]:
    """(RankedResult, RankResponse) for a model's task list: one ``p_<task>`` field per task,
    so the OpenAPI schema and BentoML's clients see every field the service returns."""
    fields: dict[str, Any] = {f"p_{task}": (float, Field(ge=0, le=1)) for task in tasks}
    fields["truncated"] = (bool, Field(False, description="text of this pair was cut to fit the budget"))
    result = create_model("RankedResult", __base__=_RankedBase, **fields)
    response = create_model("RankResponse", request_id=(str, ...), model_version=(str, ...),
                            results=(list[result], ...))  # type: ignore[valid-type]
    return result, response


class _SearchedBase(_RankedBase):
    retrieval_rank: int = Field(description="position in the first-stage (BM25) order, 1 = best")
    retrieval_score: float = Field(description="BM25 score")
    title: str
    brand: str | None = None
    category: str | None = None
    price: float | None = None
    rating: float | None = None


class RetrievedProduct(BaseModel):
    """A product of the first-stage order, with where the ranker put it among the n."""

    id: str
    retrieval_rank: int
    retrieval_score: float
    model_rank: int = Field(description="the ranker's position for it among the n candidates")
    title: str


def search_response_model(tasks: Iterable[str]) -> type[BaseModel]:
    """SearchResponse for a model's task list (one ``p_<task>`` per task, as for /rank)."""
    fields: dict[str, Any] = {f"p_{task}": (float, Field(ge=0, le=1)) for task in tasks}
    fields["truncated"] = (bool, Field(False, description="text of this pair was cut to fit the budget"))
    result = create_model("SearchResult", __base__=_SearchedBase, **fields)
    return create_model(
        "SearchResponse", request_id=(str, ...), model_version=(str, ...),
        candidates=(int, Field(description="products the first stage returned (at most n)")),
        server_ms=(float, Field(description="time in the service, retrieval and ranking included")),
        retrieval_ms=(float, Field(description="time of the first stage alone")),
        results=(list[result], Field(description="the top k by the ranker")),  # type: ignore[valid-type]
        retrieval=(list[RetrievedProduct], Field(description="the top k of the first stage, in its order")))


# the default model's tasks (click, add-to-cart, purchase); the service builds its own from the served model
RankedResult, RankResponse = response_models(("click", "add_to_cart", "purchase"))


class FeedbackRequest(_Strict):
    """``POST /feedback`` body: engagement with a product served in an earlier response."""

    request_id: str = Field(min_length=1, max_length=64)
    product_id: str = Field(min_length=1)
    event: Literal["click", "add_to_cart", "purchase"]


class FeedbackResponse(BaseModel):
    status: Literal["recorded"] = "recorded"
    request_id: str
    product_id: str
    event: str
    position: int  # the rank the product was shown at


def field_path(loc: Iterable[Any]) -> str:
    """("candidates", 3, "id") -> "candidates.3.id"; the empty path is the whole body."""
    parts = [str(p) for p in loc]
    return ".".join(parts) if parts else "body"


def error_body(errors: list[tuple[str, str]]) -> dict[str, Any]:
    """The API's error body from (field, message) pairs."""
    return {"error": "; ".join(f"{f}: {m}" for f, m in errors),
            "errors": [{"field": f, "message": m} for f, m in errors]}


def format_validation_errors(detail: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Pydantic's ``errors()`` list -> the API's error body (field paths first)."""
    pairs = []
    for err in detail:
        loc = list(err.get("loc", ()))
        # pydantic names the union member it tried, e.g. attributes.str / attributes.dict[...]:
        # keep the path a client sent, not pydantic's internals
        loc = [p for p in loc if not (isinstance(p, str) and (p in {"str", "float", "int", "bool"} or "[" in p))]
        pairs.append((field_path(loc), str(err.get("msg", "invalid value"))))
    deduped = list(dict.fromkeys(pairs))
    return error_body(deduped)
