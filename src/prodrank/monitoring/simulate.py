"""``prodrank simulate-traffic``: shopper sessions from the synthetic world, replayed against the
running BentoML server over HTTP, with feedback from the world's user model.

Per session (the world's own session plan, :func:`prodrank.sim.world.plan_sessions`):

1. ``POST /rank`` with the session's query and its candidate set: every product the world's
   log ever showed for that query (what the ``interactions`` table and so the test split hold
   for it), with title, description, brand, category, attributes, price and rating from the catalogue;
   ``top_k`` = ``world.list_size``.
2. The shopper examines the *served* ranking: position k with probability
   ``k ** -world.position_bias``, clicks an examined result with the pair's ``p_click``, adds it
   to the cart with ``p_cart`` and buys with ``p_buy`` (:class:`prodrank.sim.world.Pools`).
3. ``POST /feedback`` for each event (click, then add_to_cart, then purchase).

Scenarios set the world's drift knobs (``world.drift``): ``control`` (none: the world the model
was trained on), ``category_shift``, ``new_vocabulary``, ``new_products``, ``price_shift``, and
``all``; ``--drift key=value`` sets a knob directly. Bounded: at most ``requests`` requests, at
most ``rate`` requests per second, at most ``duration`` seconds; loopback URLs only.

The catalogue of the (drifted) world is written to ``catalog_out`` (merged with what is there),
so that the monitor can look up the category and brand of products the training catalogue does
not know (``monitoring.catalogs``).
"""
from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from prodrank.config import Config, WorldConfig
from prodrank.data.schema import PRODUCT_FEATURES
from prodrank.io import write_parquet
from prodrank.sim.world import InteractionTotals, World, build_world, plan_sessions, simulate_sessions

log = logging.getLogger("prodrank.monitoring.simulate")

SCENARIOS: dict[str, dict[str, float]] = {
    "control": {},
    "category_shift": {"category_shift": 0.7},
    "new_vocabulary": {"new_vocabulary": 0.6},
    "new_products": {"new_products": 0.5},
    "price_shift": {"price_shift": 0.8},
    "all": {"category_shift": 0.7, "new_vocabulary": 0.6, "new_products": 0.5, "price_shift": 0.8},
}
DRIFT_KEYS = ("category_shift", "new_vocabulary", "new_products", "price_shift")
# the drift check(s) each scenario is built to move (others may drift as consequences, e.g. the
# prediction checks): what the drift demo and the monitoring benchmark expect to see flagged
EXPECTED_CHECKS: dict[str, set[str]] = {
    "category_shift": {"category"},
    "new_vocabulary": {"query_oov_share"},
    "new_products": {"unseen_product"},
    "price_shift": {"price"},
}
EXPECTED_CHECKS["all"] = set().union(*EXPECTED_CHECKS.values())
DEFAULT_CATALOG_OUT = "logs/simulator/catalog.parquet"


def check_loopback(url: str) -> tuple[str, int]:
    """(host, port) of an http URL on the loopback interface; ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"--url must be http://127.0.0.1:<port> (got {url!r})")
    host = parts.hostname
    ok = host == "localhost"
    if not ok:
        try:
            ok = ipaddress.ip_address(host).is_loopback
        except ValueError:
            ok = False
    if not ok:
        raise ValueError(f"the traffic simulator only talks to loopback addresses (127.0.0.1, ::1, localhost); "
                         f"got {host!r}")
    return host, parts.port or 80


def world_config(base: WorldConfig, scenario: str, overrides: dict[str, float] | None = None) -> WorldConfig:
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; scenarios: {', '.join(SCENARIOS)}")
    drift = {**base.drift.model_dump(), **SCENARIOS[scenario], **(overrides or {})}
    unknown = set(drift) - set(DRIFT_KEYS)
    if unknown:
        raise ValueError(f"unknown drift knob(s) {sorted(unknown)}; knobs: {', '.join(DRIFT_KEYS)}")
    return base.model_copy(update={"drift": base.drift.model_validate(drift)})


@dataclass
class Traffic:
    """What the simulator replays: sessions (query index per session), candidate pair indices per
    query, the catalogue as request payloads, and the user model."""

    world: World
    session_query: np.ndarray
    candidates: list[np.ndarray]  # per query: pair indices, in logged position order
    payload: list[dict[str, Any]]  # per product index: the candidate JSON
    query_text: np.ndarray
    catalog: pd.DataFrame


def prepare(cfg: Config, scenario: str = "control", overrides: dict[str, float] | None = None) -> Traffic:
    """Build the (drifted) world, its session plan and each query's candidate set."""
    wcfg = world_config(cfg.world, scenario, overrides)
    world = build_world(wcfg, cfg.seed)
    plan = plan_sessions(world)
    totals = InteractionTotals(world)
    for batch in simulate_sessions(world, plan):
        totals.add(batch)
    pools = world.pools
    shown = np.nonzero(totals.impressions)[0]
    position = totals.position_sum[shown] / totals.impressions[shown]
    shown = shown[np.lexsort((position, pools.query[shown]))]
    by_query = pools.query[shown]
    bounds = np.searchsorted(by_query, np.arange(len(world.queries) + 1))
    candidates = [shown[bounds[q]:bounds[q + 1]] for q in range(len(world.queries))]
    catalog = world.catalog.frame()
    payload = []
    for row in catalog.itertuples(index=False):
        item = {"id": str(row.product_id), "title": str(row.title)}
        for key in ("description", "brand", "category", "attributes"):
            value = getattr(row, key)
            if isinstance(value, str) and value.strip():
                item[key] = value
        for key in PRODUCT_FEATURES:
            value = getattr(row, key)
            if pd.notna(value):
                item[key] = float(value)
        payload.append(item)
    return Traffic(world, plan.query, candidates, payload, world.queries.text, catalog)


@dataclass
class TrafficStats:
    scenario: str
    url: str
    requests: int = 0
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    feedback: dict[str, int] = field(default_factory=lambda: {"click": 0, "add_to_cart": 0, "purchase": 0})
    feedback_errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    started_at: str | None = None
    finished_at: str | None = None
    seconds: float = 0.0
    model_versions: set[str] = field(default_factory=set)

    def summary(self) -> dict[str, Any]:
        lat = np.array(self.latencies_ms) if self.latencies_ms else np.array([np.nan])
        return {"scenario": self.scenario, "url": self.url, "requests": self.requests, "ok": self.ok,
                "errors": self.errors, "feedback": self.feedback, "feedback_errors": self.feedback_errors,
                "started_at": self.started_at, "finished_at": self.finished_at, "seconds": round(self.seconds, 2),
                "requests_per_second": round(self.requests / self.seconds, 2) if self.seconds else None,
                "latency_ms": {"p50": float(np.nanpercentile(lat, 50)), "p95": float(np.nanpercentile(lat, 95))},
                "model_versions": sorted(self.model_versions)}


class _Client:
    """One keep-alive HTTP/1.1 connection (reconnects once on a dropped connection)."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        data = json.dumps(body).encode()
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request("POST", path, body=data, headers={"content-type": "application/json"})
                response = self.conn.getresponse()
                raw = response.read()
                try:
                    return response.status, json.loads(raw)
                except ValueError:
                    return response.status, raw.decode("utf-8", "replace")
            except (http.client.HTTPException, ConnectionError, OSError):
                self.close()
                if attempt:
                    raise
        raise RuntimeError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def simulate_traffic(cfg: Config, url: str, scenario: str = "control", requests: int = 500, rate: float = 20.0,
                     duration: float = 300.0, seed: int = 0, overrides: dict[str, float] | None = None,
                     feedback: bool = True, catalog_out: str | Path | None = DEFAULT_CATALOG_OUT,
                     traffic: Traffic | None = None, timeout: float = 30.0) -> dict[str, Any]:
    """Replay sessions against ``url`` (module doc); returns the run's statistics."""
    host, port = check_loopback(url)
    if rate <= 0 or duration <= 0 or requests <= 0:
        raise ValueError("requests, rate and duration must be positive")
    t0 = time.perf_counter()
    traffic = traffic or prepare(cfg, scenario, overrides)
    prepare_s = time.perf_counter() - t0
    if catalog_out:
        write_catalog(traffic.catalog, catalog_out)
    world, pools = traffic.world, traffic.world.pools
    rng = np.random.default_rng([seed, 7])
    n_sessions = len(traffic.session_query)
    first = int(rng.integers(0, n_sessions))
    top_k = min(world.cfg.list_size, world.cfg.candidate_pool)
    examine = np.arange(1, 10_000, dtype=float) ** -world.cfg.position_bias
    client = _Client(host, port, timeout)
    stats = TrafficStats(scenario, url, started_at=pd.Timestamp.now(tz="UTC").isoformat())
    started = time.monotonic()
    interval = 1.0 / rate
    try:
        for i in range(requests):
            due = started + i * interval
            now = time.monotonic()
            if now - started >= duration:
                break
            if due > now:
                time.sleep(due - now)
            q = int(traffic.session_query[(first + i) % n_sessions])
            pairs = traffic.candidates[q]
            if not len(pairs):
                continue
            by_product = {str(world.catalog.product_id[pools.product[p]]): int(p) for p in pairs}
            body = {"query": str(traffic.query_text[q]),
                    "candidates": [traffic.payload[int(pools.product[p])] for p in pairs],
                    "top_k": int(min(top_k, len(pairs)))}
            sent = time.perf_counter()
            status, answer = client.post("/rank", body)
            stats.requests += 1
            if status != 200:
                stats.errors[str(status)] = stats.errors.get(str(status), 0) + 1
                if stats.errors[str(status)] <= 3:
                    log.warning("/rank answered %s: %s", status, str(answer)[:300])
                continue
            stats.latencies_ms.append((time.perf_counter() - sent) * 1000)
            stats.ok += 1
            stats.model_versions.add(str(answer.get("model_version")))
            if not feedback:
                continue
            for result in answer["results"]:
                pair = by_product.get(str(result["id"]))
                if pair is None or rng.random() >= examine[int(result["rank"]) - 1]:
                    continue
                events = []
                if rng.random() < pools.p_click[pair]:
                    events.append("click")
                    if rng.random() < pools.p_cart[pair]:
                        events.append("add_to_cart")
                        if rng.random() < pools.p_buy[pair]:
                            events.append("purchase")
                for event in events:
                    fb_status, fb_answer = client.post("/feedback", {"request_id": answer["request_id"],
                                                                     "product_id": str(result["id"]), "event": event})
                    if fb_status == 200:
                        stats.feedback[event] += 1
                    else:
                        stats.feedback_errors += 1
                        if stats.feedback_errors <= 3:
                            log.warning("/feedback answered %s: %s", fb_status, str(fb_answer)[:300])
    finally:
        client.close()
        stats.seconds = time.monotonic() - started
        stats.finished_at = pd.Timestamp.now(tz="UTC").isoformat()
    out = stats.summary()
    out.update(prepare_seconds=round(prepare_s, 2), world={"drift": world.cfg.drift.model_dump(),
               "n_products": len(world.catalog), "n_queries": len(world.queries),
               "shift_department": world.shift_department}, catalog_out=str(catalog_out) if catalog_out else None)
    log.info("simulated %s traffic: %d requests (%d ok) in %.1fs, feedback %s", scenario, stats.requests, stats.ok,
             stats.seconds, stats.feedback)
    return out


def write_catalog(catalog: pd.DataFrame, path: str | Path) -> None:
    """Merge ``catalog`` into the parquet file at ``path`` (new rows win), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        catalog = pd.concat([pd.read_parquet(path), catalog], ignore_index=True).drop_duplicates(
            "product_id", keep="last")
    write_parquet(catalog, path)


def parse_overrides(items: list[str] | None) -> dict[str, float]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--drift expects key=value (got {item!r})")
        if key not in DRIFT_KEYS:
            raise ValueError(f"--drift: unknown knob {key!r}; knobs: {', '.join(DRIFT_KEYS)}")
        out[key] = float(value)
    return out
