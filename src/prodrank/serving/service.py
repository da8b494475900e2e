"""The BentoML ranking service: ``bentoml serve prodrank.serving.service:ProdrankRanker``.

Endpoints (schemas in :mod:`prodrank.serving.schemas`):

- ``POST /rank``      {query, candidates: [{id, title, description?, brand?, category?, attributes?, price?, rating?}], top_k?}
                      -> {request_id, model_version, results: [{id, rank, score, p_<task>..., truncated}]}
- ``POST /search``    {query, k?, n?} -> BM25 over the packaged catalogue returns n candidates, the ranker
                      orders them: {request_id, model_version, candidates, server_ms, retrieval_ms,
                      results: [top k with p_<task>..., product fields, retrieval_rank], retrieval: [BM25 top k]}
- ``POST /feedback``  {request_id, product_id, event: click|add_to_cart|purchase} -> {status: "recorded", ...}
- ``GET /metadata``   model tag, tasks, score formula, evaluation metrics, provenance, serving settings
- ``GET /healthz``    alive (503 if loading the model failed, e.g. a tampered file)
- ``GET /readyz``     200 only once the model is loaded and a warm-up request passed
- ``GET /``           the search page (:mod:`prodrank.serving.page`); BentoML's API docs at ``/docs``

Which model: ``$PRODRANK_MODEL_TAG``, else (inside a built bento) the model tag it was
built with, else the registry's champion, else the newest packaged model. Configuration: ``params.yaml``
(``$PRODRANK_PARAMS``; profile ``$PRODRANK_PROFILE``), section ``serving``; the model store:
``$BENTOML_HOME`` (the Makefile sets ``.bentoml/``).

Concurrency: one worker process, and ``threads=1`` for the synchronous ``/rank`` so one
request at a time owns the model, which itself runs ``serving.threads`` torch threads; the
async ``/feedback`` and ``/metadata`` never wait behind scoring. BentoML adaptive batching
is off (``batchable=False``): each request is already one batched forward pass, and on a
2-core CPU merging requests adds queueing delay without adding throughput (README, Serving).
"""
from __future__ import annotations

import os
import sys

# Before torch loads OpenMP: idle OpenMP threads sleep instead of spinning. On a small CPU
# shared with anything else (the HTTP stack, other processes) spinning threads wait for a
# descheduled peer at every parallel region: measured here, rank@100 with 2 threads took
# 430-620 ms with the default policy and 10 ms with PASSIVE (1 thread: 8-14 ms).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
_TORCH_PRELOADED = "torch" in sys.modules

import asyncio  # noqa: E402
import logging  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import OrderedDict  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import bentoml  # noqa: E402
import numpy as np  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from prodrank.config import Config, load_config  # noqa: E402
from prodrank.serving import registry  # noqa: E402
from prodrank.serving.engine import RankingEngine, RankOutcome  # noqa: E402
from prodrank.serving.guard import PROBE_PATHS, ApiKeyGuard, OpenAPIDocument, RequestGuard  # noqa: E402
from prodrank.serving.page import DOCS_PATH, PAGE_PATHS, SearchPage  # noqa: E402
from prodrank.serving.request_log import RequestLog, utc_now  # noqa: E402
from prodrank.serving.retrieval import CatalogIndex  # noqa: E402
from prodrank.serving.schemas import (  # noqa: E402
    SEARCH_DEFAULT_K,
    Candidate,
    FeedbackRequest,
    FeedbackResponse,
    RankRequest,
    RetrievedProduct,
    SearchRequest,
    configure_limits,
    error_body,
    response_models,
    search_default_n,
    search_response_model,
)

log = logging.getLogger("prodrank.serving")
if _TORCH_PRELOADED:
    log.warning("torch was imported before the service: OMP_WAIT_POLICY=PASSIVE may not apply; "
                "export it in the server's environment")


def _load_service_config() -> Config:
    params = Path(os.environ.get("PRODRANK_PARAMS", "params.yaml"))
    profile = os.environ.get("PRODRANK_PROFILE") or None
    if params.exists():
        return load_config(params, profile)
    log.warning("%s not found: serving with the default configuration", params)
    return Config()


def _api_key(serving) -> str | None:
    """The key when ``serving.require_api_key`` is on; refusing to start without one beats
    silently serving an open API that was meant to be closed."""
    if not serving.require_api_key:
        return None
    key = os.environ.get(serving.api_key_env, "").strip()
    if len(key) < 16:
        raise RuntimeError(f"serving.require_api_key is on but ${serving.api_key_env} is "
                           f"{'unset' if not key else 'shorter than 16 characters'}: export a random key, e.g. "
                           f"{serving.api_key_env}=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return key


def _bento_model_tag() -> str | None:
    """Inside a built bento: the model tag packed with it, so a bento serves what it was built
    with, not today's champion. BentoML imports a bento's service with the working directory
    set to ``<bento>/src`` (and in a container this module lives under it too)."""
    import yaml

    cwd = Path.cwd().resolve()
    for parent in (cwd, cwd.parent, *Path(__file__).resolve().parents):
        if (parent / "bento.yaml").is_file():
            info = yaml.safe_load((parent / "bento.yaml").read_text()) or {}
            for service in info.get("services") or []:
                for model in service.get("models") or []:
                    if str(model.get("tag", "")).startswith(f"{SERVING.model_name}:"):
                        return str(model["tag"])
            return None
    return None


CFG = _load_service_config()
SERVING = CFG.serving
configure_limits(SERVING)
API_KEY = _api_key(SERVING)
MODEL_TAG = os.environ.get("PRODRANK_MODEL_TAG") or _bento_model_tag() or registry.serving_tag(CFG)
# a tampered or corrupted model stops the server here, before it binds the port, with the file
# named; the background load repeats the check on the bytes it actually reads
registry.verify_packaged(MODEL_TAG, CFG)
TASKS = tuple(registry.model_metadata(MODEL_TAG, CFG)["metadata"].get("tasks") or ())
RankedResult, RankResponse = response_models(TASKS)  # p_<task> per task of the served model
SearchResponse = search_response_model(TASKS)
JSON_PATHS = ("/rank", "/search", "/feedback")
_INSTANCE: ProdrankRanker | None = None


class _RecentRequests:
    """request_id -> the ids it showed, in order, for the last N requests (checks /feedback).
    Kept as one joined string per request (~1 KB for rank@100), not a dict per request."""

    SEP = "\x1f"

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, request_id: str, shown_ids: list[str]) -> None:
        with self._lock:
            self._items[request_id] = self.SEP.join(shown_ids)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def position(self, request_id: str, product_id: str) -> int | None:
        """1-based shown position; None if not shown; raises KeyError for an unknown request."""
        with self._lock:
            joined = self._items[request_id]
        try:
            return joined.split(self.SEP).index(product_id) + 1
        except ValueError:
            return None


def _display_fields(product: dict[str, Any]) -> dict[str, Any]:
    """What the search page shows of a product besides the scores."""
    return {name: product.get(name) for name in ("title", "brand", "category", "price", "rating")}


def _not_ready(instance: ProdrankRanker) -> JSONResponse:
    reason = instance.load_error or "the model is still loading; poll /readyz"
    return JSONResponse(error_body([("service", reason)]), status_code=503, headers={"retry-after": "5"})


async def _metadata(_: Request) -> JSONResponse:
    if _INSTANCE is None:
        return JSONResponse(error_body([("service", "not started")]), status_code=503)
    return JSONResponse(_INSTANCE.describe())


_meta_app = Starlette(routes=[Route("/metadata", _metadata, methods=["GET"])])


@bentoml.asgi_app(_meta_app, path="/")
@bentoml.service(
    name="prodrank",
    workers=1,
    threads=1,
    traffic={"timeout": SERVING.request_timeout_s, "max_concurrency": SERVING.max_concurrency},
    resources={"cpu": str(SERVING.threads)},
    http={"host": SERVING.host, "port": SERVING.port},
    logging={"access": {"enabled": True, "skip_paths": ["/healthz", "/livez", "/readyz", "/metrics"]}},
)
class ProdrankRanker:
    # declared for `bentoml build`, which packs this model into the bento; loading goes
    # through registry.load_packaged, which checks every file's sha256 first
    model_ref = bentoml.models.BentoModel(MODEL_TAG)

    def __init__(self) -> None:
        global _INSTANCE
        self.cfg = CFG
        self.tag = MODEL_TAG
        self.engine: RankingEngine | None = None
        self.index: CatalogIndex | None = None  # None: packaged without a search index (/search answers 503)
        self.metadata: dict[str, Any] = {}
        self.load_error: str | None = None
        self.warmup_ms: float | None = None
        self._ready = threading.Event()
        self.recent = _RecentRequests(SERVING.max_tracked_requests)
        self.request_log = RequestLog(SERVING.log_dir, SERVING.log_rotate_bytes, SERVING.log_rotate_seconds,
                                      SERVING.log_fsync_seconds)
        _INSTANCE = self
        # load in the background: /healthz answers at once, /readyz turns 200 after warm-up
        threading.Thread(target=self._load, name="prodrank-model-load", daemon=True).start()

    def _load(self) -> None:
        try:
            started = time.perf_counter()
            ranker, metadata = registry.load_packaged(self.tag, self.cfg)
            engine = RankingEngine(ranker, threads=SERVING.threads, max_batch_size=SERVING.max_batch_size, max_query_chars=SERVING.max_query_chars,
                                   max_field_chars=SERVING.max_field_chars,
                                   product_cache_size=SERVING.product_cache_size)
            self.index = registry.load_search_index(self.tag, self.cfg)
            loaded = time.perf_counter()
            engine.warm_up()
            self.warmup_ms = (time.perf_counter() - loaded) * 1000
            self.engine, self.metadata = engine, metadata
            self._ready.set()
            served = metadata["serving"]
            log.info("serving %s: the %s on %s%s (tasks %s): loaded in %.1f s, warm-up %.0f ms", self.tag,
                     served["model"], served["runtime"], " int8" if served["quantized"] else "",
                     ",".join(engine.tasks), loaded - started, self.warmup_ms)
            where = f"http://{SERVING.host}:{SERVING.port}"
            log.info("search page %s/ (%s), API docs %s%s", where,
                     f"{len(self.index)} products" if self.index else "no search index: /search answers 503",
                     where, DOCS_PATH)
        except Exception as err:  # noqa: BLE001 - reported by /healthz, /readyz and /rank
            self.load_error = f"cannot serve {self.tag}: {type(err).__name__}: {err}"
            log.exception("model load failed")

    # -- probes ------------------------------------------------------------------------
    def __is_ready__(self) -> bool:
        return self._ready.is_set()

    def __is_alive__(self) -> bool:
        return self.load_error is None

    # -- APIs --------------------------------------------------------------------------
    @bentoml.api(route="/rank", input_spec=RankRequest, output_spec=RankResponse, batchable=False)
    def rank(self, query: str, candidates: list[Candidate], top_k: int | None = None) -> RankResponse:
        if not self._ready.is_set() or self.engine is None:
            return _not_ready(self)  # type: ignore[return-value]
        started, received_at = time.perf_counter(), utc_now()
        request_id = uuid.uuid4().hex
        outcome = self.engine.rank(query, [{"id": c.id, "fields": c.fields()} for c in candidates], top_k)
        results = outcome.results()
        self.recent.add(request_id, [item["id"] for item in results])
        # acknowledged: the record is in the log file before the response leaves
        self.request_log.write(self._request_record(
            "rank", request_id, received_at, query, top_k, outcome, outcome.positions(),
            [c.price for c in candidates], [c.rating for c in candidates], started), acknowledge=True)
        return RankResponse(request_id=request_id, model_version=self.tag,
                            results=[RankedResult(**item) for item in results])

    @bentoml.api(route="/search", input_spec=SearchRequest, output_spec=SearchResponse, batchable=False)
    def search(self, query: str, k: int = SEARCH_DEFAULT_K, n: int | None = None) -> SearchResponse:
        if not self._ready.is_set() or self.engine is None:
            return _not_ready(self)  # type: ignore[return-value]
        if self.index is None:
            return JSONResponse(error_body([("service", f"{self.tag} was packaged without a search index (packaged "
                                             "before /search existed, or without data/prepared/catalog.parquet): "
                                             "package the model again (`prodrank package`); POST /rank works")]),
                                status_code=503)  # type: ignore[return-value]
        started, received_at = time.perf_counter(), utc_now()
        request_id = uuid.uuid4().hex
        n = n or search_default_n()
        retrieved = self.index.search(query, n)
        retrieval_ms = (time.perf_counter() - started) * 1000
        # every retrieved candidate is ranked (not only the top k): the first-stage column
        # shows where the ranker put each of them; a query sharing no word with the catalogue
        # has nothing to rank
        outcome = (self.engine.rank(query, [{"id": i, "fields": f} for i, f in zip(retrieved.ids, retrieved.products,
                                                                                  strict=True)])
                   if retrieved.ids else RankOutcome([], {}, np.zeros(0, bool), np.zeros(0, np.int64), self.engine.tasks))
        ranked = outcome.results()
        model_rank = outcome.positions()
        shown = [p if p is not None and p <= k else None for p in model_rank]
        results = [{**item, **_display_fields(retrieved.products[i]), "retrieval_rank": i + 1,
                    "retrieval_score": float(retrieved.scores[i])}
                   for item, i in zip(ranked[:k], outcome.order[:k], strict=True)]
        self.recent.add(request_id, [item["id"] for item in results])
        record = self._request_record("search", request_id, received_at, query, k, outcome, shown,
                                      [p.get("price") for p in retrieved.products],
                                      [p.get("rating") for p in retrieved.products], started)
        self.request_log.write({**record, "n": n, "retrieval_ms": round(retrieval_ms, 3)}, acknowledge=True)
        return SearchResponse(
            request_id=request_id, model_version=self.tag, candidates=len(retrieved.ids),
            server_ms=round((time.perf_counter() - started) * 1000, 3), retrieval_ms=round(retrieval_ms, 3),
            results=results,
            retrieval=[RetrievedProduct(id=pid, retrieval_rank=j + 1, retrieval_score=float(retrieved.scores[j]),
                                        model_rank=model_rank[j], title=retrieved.products[j]["title"])
                       for j, pid in enumerate(retrieved.ids[:k])])

    def _request_record(self, endpoint: str, request_id: str, received_at: str, query: str, top_k: int | None,
                        outcome: RankOutcome, positions: list[int | None], prices: list[float | None],
                        ratings: list[float | None], started: float) -> dict[str, Any]:
        """The request log's record of one served ranking (request_log.py has the format);
        ``endpoint`` comes first so monitoring can select by it without parsing the line."""
        return {
            "kind": "request", "endpoint": endpoint, "request_id": request_id, "timestamp": received_at,
            "model_version": self.tag, "query": query, "top_k": top_k, "candidate_ids": outcome.ids,
            "positions": positions,
            "scores": {("score" if k == "score" else f"p_{k}"): v.round(6).tolist() for k, v in outcome.scores.items()},
            "truncated_ids": [outcome.ids[i] for i in outcome.truncated.nonzero()[0]],
            "prices": prices, "ratings": ratings,
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        }

    @bentoml.api(route="/feedback", input_spec=FeedbackRequest, output_spec=FeedbackResponse, batchable=False)
    async def feedback(self, request_id: str, product_id: str, event: str) -> FeedbackResponse:
        try:
            position = self.recent.position(request_id, product_id)
        except KeyError:
            return JSONResponse(error_body([("request_id", f"unknown request_id {request_id!r}: not served by this "
                                             f"server (or older than its last {SERVING.max_tracked_requests} requests)")]),
                                status_code=404)  # type: ignore[return-value]
        if position is None:
            return JSONResponse(error_body([("product_id", f"{product_id!r} was not shown in request {request_id} "
                                             "(not a candidate, or cut by top_k)")]),
                                status_code=422)  # type: ignore[return-value]
        record = {"kind": "feedback", "request_id": request_id, "timestamp": utc_now(), "model_version": self.tag,
                  "product_id": product_id, "event": event, "position": position}
        # in a worker thread: waiting for the write must not stall the event loop
        await asyncio.to_thread(self.request_log.write, record, True)
        return FeedbackResponse(request_id=request_id, product_id=product_id, event=event, position=position)

    def describe(self) -> dict[str, Any]:
        """GET /metadata."""
        meta = self.metadata
        return {
            "model_tag": self.tag,
            "profile": meta.get("profile"),  # the profile the served model was built with
            "ready": self._ready.is_set(),
            "load_error": self.load_error,
            "tasks": list(self.engine.tasks) if self.engine else meta.get("tasks"),
            "score_weights": meta.get("score_weights"),
            "score_formula": meta.get("score_formula"),
            "architecture": meta.get("architecture"),
            "product_features": meta.get("product_features", []),  # numeric fields to send per candidate
            "metrics": meta.get("metrics"),
            "params_hash": meta.get("params_hash"),
            "git_revision": meta.get("git_revision"),
            "data_version": meta.get("data_version"),
            "packaged_at": meta.get("packaged_at"),
            "labels": meta.get("labels"),
            "search_index": {"products": len(self.index)} if self.index else None,
            # which model serves (student or teacher), on which runtime, and its shape
            "served_model": meta.get("serving"),
            "student": meta.get("student"),
            "serving": {"quantize": SERVING.quantize, "threads": SERVING.threads,
                        "max_candidates": SERVING.max_candidates, "max_body_bytes": SERVING.max_body_bytes,
                        "max_batch_size": SERVING.max_batch_size, "warmup_ms": self.warmup_ms,
                        "profile": self.cfg.profile, "adaptive_batching": False,
                        "require_api_key": SERVING.require_api_key},
            "request_log": {"dir": str(self.request_log.log_dir), "written": self.request_log.written,
                            "errors": self.request_log.errors, "last_error": self.request_log.last_error},
        }

    @bentoml.on_shutdown
    def _close_log(self) -> None:
        """Clean shutdown: drain the request log queue, flush and fsync."""
        self.request_log.close()
        log.info("request log closed: %d records written", self.request_log.written)


# BentoML wraps the service in its middlewares in the order they are added, the first outermost
if API_KEY is not None:  # first = outermost: a request without the key is never parsed
    # the page's files hold no data and a browser cannot send a header when it opens a page
    ProdrankRanker.add_asgi_middleware(ApiKeyGuard, api_key=API_KEY, open_paths=PROBE_PATHS | PAGE_PATHS)
ProdrankRanker.add_asgi_middleware(RequestGuard, max_body_bytes=SERVING.max_body_bytes, paths=JSON_PATHS)
ProdrankRanker.add_asgi_middleware(OpenAPIDocument, max_body_bytes=SERVING.max_body_bytes, json_paths=JSON_PATHS,
                                  api_key=API_KEY is not None)
# inside the key check: it moves /docs to BentoML's "/", which the key guard leaves open for the page
ProdrankRanker.add_asgi_middleware(SearchPage)
