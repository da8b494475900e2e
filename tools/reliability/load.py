"""Open-loop HTTP load against the ranking service, and the audit of its request log.

:func:`run_load` sends ``/rank`` requests at a fixed arrival rate from a pool of keep-alive
connections and, for every ``feedback_every``-th answered request, a ``/feedback`` click on its
top result. Arrivals are scheduled, not paced by answers (open loop): a slow server meets the
same offered load, and latency is counted from the *scheduled* send time, so queueing shows
up in the percentiles instead of being hidden (coordinated omission). A request counts as
acknowledged when the server answered it 200; :func:`audit_log` then checks that every
acknowledged request and feedback is in the log exactly once and that every line parses.

Server memory (RSS of the server process and its workers) is sampled once a second.
"""
from __future__ import annotations

import http.client
import json
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import psutil

from prodrank.data.schema import CATALOG_TEXT_FIELDS, PRODUCT_FEATURES
from prodrank.serving.request_log import log_files


@dataclass
class LoadResult:
    offered_rate: float
    seconds: float = 0.0
    sent: int = 0
    status: Counter = field(default_factory=Counter)  # HTTP status (or "connection") per /rank
    feedback_status: Counter = field(default_factory=Counter)
    latency_ms: list[float] = field(default_factory=list)  # from the scheduled send time, answered 200
    service_ms: list[float] = field(default_factory=list)  # from the actual send time, answered 200
    acknowledged: list[str] = field(default_factory=list)  # request_ids answered 200
    acknowledged_feedback: list[tuple[str, str, str]] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)  # server RSS, one sample a second

    def summary(self) -> dict[str, Any]:
        lat = np.array(self.latency_ms or [np.nan])
        svc = np.array(self.service_ms or [np.nan])
        errors = sum(n for code, n in self.status.items() if code != 200)
        return {
            "offered_rate": round(self.offered_rate, 3), "seconds": round(self.seconds, 1), "sent": self.sent,
            "ok": self.status.get(200, 0), "errors": errors, "error_rate": round(errors / max(self.sent, 1), 5),
            "status": {str(k): v for k, v in sorted(self.status.items(), key=str)},
            "achieved_rate": round(self.status.get(200, 0) / self.seconds, 3) if self.seconds else None,
            "latency_ms": {f"p{q}": round(float(np.nanpercentile(lat, q)), 1) for q in (50, 95, 99)},
            "service_ms": {f"p{q}": round(float(np.nanpercentile(svc, q)), 1) for q in (50, 95, 99)},
            "feedback_ok": self.feedback_status.get(200, 0),
            "feedback_errors": sum(n for code, n in self.feedback_status.items() if code != 200),
            "rss_mb": {"start": _first(self.rss_mb), "end": _last(self.rss_mb),
                       "peak": round(max(self.rss_mb), 1) if self.rss_mb else None},
        }


def _first(values: list[float]) -> float | None:
    return round(values[0], 1) if values else None


def _last(values: list[float]) -> float | None:
    return round(values[-1], 1) if values else None


def server_rss_mb(pid: int) -> float | None:
    """Resident memory of a process and all its descendants (BentoML's arbiter and worker), MB."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return None
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


class _Connection:
    """A keep-alive connection that reconnects after an error (a restarted server)."""

    def __init__(self, url: str, headers: dict[str, str], timeout: float) -> None:
        parsed = urlparse(url)
        self.host, self.port, self.timeout = parsed.hostname, parsed.port, timeout
        self.headers = {"content-type": "application/json", **headers}
        self.conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes) -> tuple[int | str, bytes]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.conn.request("POST", path, body=body, headers=self.headers)
            response = self.conn.getresponse()
            return response.status, response.read()
        except (http.client.HTTPException, OSError):
            self.close()
            return "connection", b""

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def run_load(url: str, bodies: list[bytes], rate: float, seconds: float, concurrency: int = 4,
             feedback_every: int = 3, headers: dict[str, str] | None = None, server_pid: int | None = None,
             timeout: float = 60.0, stop: threading.Event | None = None) -> LoadResult:
    """Offer ``rate`` /rank requests a second for ``seconds`` (cycling through ``bodies``)."""
    if rate <= 0 or seconds <= 0 or not bodies:
        raise ValueError("rate and seconds must be positive and bodies non-empty")
    result = LoadResult(offered_rate=rate)
    jobs: queue.Queue = queue.Queue()
    lock = threading.Lock()
    done = threading.Event()
    stop = stop or threading.Event()

    def worker() -> None:
        conn = _Connection(url, headers or {}, timeout)
        n = 0
        while True:
            job = jobs.get()
            if job is None:
                break
            scheduled, body = job
            sent = time.monotonic()
            status, raw = conn.post("/rank", body)
            answered = time.monotonic()
            feedback = None
            if status == 200:
                answer = json.loads(raw)
                n += 1
                if n % feedback_every == 0 and answer["results"]:
                    feedback = (answer["request_id"], str(answer["results"][0]["id"]), "click")
            with lock:
                result.status[status] += 1
                if status == 200:
                    result.latency_ms.append((answered - scheduled) * 1000)
                    result.service_ms.append((answered - sent) * 1000)
                    result.acknowledged.append(answer["request_id"])
            if feedback is not None:
                fb_status, _ = conn.post("/feedback", json.dumps(dict(zip(("request_id", "product_id", "event"),
                                                                          feedback, strict=True))).encode())
                with lock:
                    result.feedback_status[fb_status] += 1
                    if fb_status == 200:
                        result.acknowledged_feedback.append(feedback)
        conn.close()

    def sample_memory() -> None:
        while not done.is_set():
            if server_pid is not None and (rss := server_rss_mb(server_pid)) is not None:
                with lock:
                    result.rss_mb.append(rss)
            done.wait(1.0)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    sampler = threading.Thread(target=sample_memory, daemon=True)
    for thread in [*threads, sampler]:
        thread.start()
    started = time.monotonic()
    i = 0
    while not stop.is_set():
        scheduled = started + i / rate
        if scheduled - started >= seconds:
            break
        delay = scheduled - time.monotonic()
        if delay > 0 and stop.wait(delay):
            break
        jobs.put((scheduled, bodies[i % len(bodies)]))
        i += 1
    result.sent = i
    for _ in threads:
        jobs.put(None)
    for thread in threads:
        thread.join()
    result.seconds = time.monotonic() - started
    done.set()
    sampler.join()
    return result


def capacity(url: str, bodies: list[bytes], seconds: float = 20.0, headers: dict[str, str] | None = None) -> float:
    """Answered /rank requests a second from one connection sending back to back (closed loop):
    with one request scored at a time (the service's design), this is what the server sustains."""
    conn = _Connection(url, headers or {}, 60.0)
    answered, i = 0, 0
    started = time.monotonic()
    try:
        while time.monotonic() - started < seconds:
            status, _ = conn.post("/rank", bodies[i % len(bodies)])
            answered += status == 200
            i += 1
    finally:
        conn.close()
    return answered / (time.monotonic() - started)


def audit_log(log_dir: str | Path, acknowledged: list[str],
              acknowledged_feedback: list[tuple[str, str, str]]) -> dict[str, Any]:
    """Every acknowledged record in the log exactly once, and every line whole."""
    requests: Counter = Counter()
    feedback: Counter = Counter()
    lines = unreadable = 0
    for path in log_files(log_dir):
        with open(path, "rb") as fh:
            for line in fh:
                if not line.strip():
                    continue
                lines += 1
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    unreadable += 1
                    continue
                if record.get("kind") == "request":
                    requests[record["request_id"]] += 1
                elif record.get("kind") == "feedback":
                    feedback[(record["request_id"], record["product_id"], record["event"])] += 1
    return {
        "files": len(log_files(log_dir)), "lines": lines, "unreadable_lines": unreadable,
        "acknowledged_requests": len(acknowledged),
        "missing_requests": sum(1 for rid in acknowledged if requests[rid] == 0),
        "duplicated_requests": sum(1 for n in requests.values() if n > 1),
        "logged_but_unacknowledged": len(set(requests) - set(acknowledged)),  # answered, but the client lost the answer
        "acknowledged_feedback": len(acknowledged_feedback),
        "missing_feedback": sum(1 for key in acknowledged_feedback if feedback[key] == 0),
        "duplicated_feedback": sum(1 for n in feedback.values() if n > 1),
    }


def rank_bodies(catalog, queries: list[str], n: int, candidates: int, seed: int = 0) -> list[bytes]:
    """``n`` /rank bodies: a query and ``candidates`` products drawn from ``catalog`` (the
    prepared catalogue table), with every field the service accepts that the catalogue has."""
    rng = np.random.default_rng(seed)
    fields = list(CATALOG_TEXT_FIELDS)
    numeric = [f for f in PRODUCT_FEATURES if f in catalog.columns]
    rows = catalog[["product_id", *fields, *numeric]].to_dict("records")
    bodies = []
    for _ in range(n):
        picked = rng.choice(len(rows), size=min(candidates, len(rows)), replace=False)
        items = []
        for j in picked:
            row = rows[int(j)]
            item = {"id": str(row["product_id"]), **{f: str(row[f]) for f in fields if isinstance(row[f], str) and row[f]}}
            item.update({f: float(row[f]) for f in numeric if row[f] == row[f]})  # not NaN
            items.append(item)
        bodies.append(json.dumps({"query": str(queries[int(rng.integers(len(queries)))]), "candidates": items}).encode())
    return bodies
