"""A time window of the serving log, read in one streaming pass with bounded memory.

The serving log (:mod:`prodrank.serving.request_log`) is JSON Lines, one record per request and
one per feedback event. :func:`read_window` returns the window's requests and their feedback;
when the window holds more than ``max_requests`` requests it keeps a **uniform sample** of
exactly ``max_requests`` of them (a bottom-k sample on a seeded hash of ``request_id``) and the
feedback of exactly those requests, so per-request statistics stay unbiased and feedback stays
joined to its request.

Cost: a line is parsed as JSON only if it is kept. ``kind``, ``request_id`` and ``timestamp`` are
read from the raw bytes (the writer's key order, ``json.dumps`` separators); a line that does not
look like that is parsed in full, so the fast path is an optimisation, never a requirement.
Files that hold only records older than ``start`` are skipped by name.

Endpoints: ``/rank`` and ``/search`` write the same request record, with ``endpoint`` saying
which (a record without it predates ``/search`` and came from ``/rank``). Their traffic differs
by design (a search always ranks the first stage's n candidates), so a window holds one
endpoint's requests (``endpoint``) and is compared with a reference of the same kind.
"""
from __future__ import annotations

import hashlib
import heapq
import json
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from prodrank.serving.request_log import files_after, log_files

log = logging.getLogger(__name__)

_KIND = re.compile(rb'"kind": "(request|feedback)"')
_ENDPOINT = re.compile(rb'"endpoint": "(\w+)"')
DEFAULT_ENDPOINT = "rank"  # of a request record written before records named their endpoint
_RID = re.compile(rb'"request_id": "([^"\\]+)"')
_TS = re.compile(rb'"timestamp": "(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00)"')
_ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"


def as_utc(value: str | datetime | pd.Timestamp | None) -> pd.Timestamp | None:
    """A UTC timestamp (naive input is taken as UTC); None stays None."""
    if value is None or value == "":
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def iso(ts: pd.Timestamp | None) -> str | None:
    """The log's own timestamp format, so that string order is time order."""
    return None if ts is None else ts.tz_convert("UTC").strftime(_ISO_FORMAT)


def request_hash(request_id: str, seed: int = 0) -> int:
    """A uniform 64-bit hash of a request id (the sampling key), stable across processes."""
    return int.from_bytes(hashlib.blake2b(f"{seed}:{request_id}".encode(), digest_size=8).digest(), "big")


@dataclass
class Window:
    """Requests (one row each, list columns as logged) and feedback events of a log window."""

    requests: pd.DataFrame
    feedback: pd.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def sampled(self) -> bool:
        return bool(self.stats.get("sampled"))


def _fields(line: bytes) -> tuple[str | None, str | None, str | None, str, dict | None]:
    """(kind, request_id, timestamp, endpoint, parsed record or None) of one log line."""
    kind, rid, ts = _KIND.search(line), _RID.search(line), _TS.search(line)
    if kind and rid and ts:
        endpoint = _ENDPOINT.search(line)  # the writer puts it before any text a client sent
        return (kind.group(1).decode(), rid.group(1).decode(), ts.group(1).decode(),
                endpoint.group(1).decode() if endpoint else DEFAULT_ENDPOINT, None)
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None, None, None, DEFAULT_ENDPOINT, None
    stamp = as_utc(record.get("timestamp")) if record.get("timestamp") else None
    return (record.get("kind"), record.get("request_id"), iso(stamp), record.get("endpoint") or DEFAULT_ENDPOINT,
            record)


def read_window(log_dir: str | Path, start: str | datetime | None = None, end: str | datetime | None = None,
                max_requests: int | None = None, seed: int = 0, endpoint: str | None = None) -> Window:
    """Requests with ``start <= timestamp < end`` and the feedback on them (feedback may arrive
    after ``end``: it is kept while it refers to a request of the window, up to ``end`` plus one
    hour). At most ``max_requests`` requests, sampled uniformly (module doc). ``endpoint``
    (``rank``, ``search``): only that endpoint's requests; None: all."""
    started = time.perf_counter()
    start_ts, end_ts = as_utc(start), as_utc(end)
    lo, hi = iso(start_ts), iso(end_ts)
    fb_hi = iso(end_ts + pd.Timedelta(hours=1)) if end_ts is not None else None
    limit = max_requests if max_requests and max_requests > 0 else None
    heap: list[tuple[int, str, bytes | dict]] = []  # max-heap on hash (negated): the kept requests
    feedback: list[tuple[int, str, bytes | dict]] = []
    threshold = None  # hash of the k-th smallest request so far (a request above it is never kept)
    n_requests = n_feedback = n_lines = n_bad = n_other_endpoint = 0
    first_ts = last_ts = None
    files = files_after(log_files(Path(log_dir)), start_ts)  # skips files older than start
    for path in files:
        with open(path, "rb") as fh:
            for line in fh:
                n_lines += 1
                if not line.strip():
                    continue
                kind, rid, ts, served_by, record = _fields(line)
                if kind is None or rid is None or ts is None:
                    n_bad += 1
                    continue
                if kind == "request":
                    if (lo is not None and ts < lo) or (hi is not None and ts >= hi):
                        continue
                    if endpoint is not None and served_by != endpoint:
                        n_other_endpoint += 1
                        continue
                    n_requests += 1
                    first_ts = ts if first_ts is None or ts < first_ts else first_ts
                    last_ts = ts if last_ts is None or ts > last_ts else last_ts
                    h = request_hash(rid, seed)
                    item = (-h, rid, record if record is not None else line)
                    if limit is None:
                        heap.append(item)
                    elif len(heap) < limit:
                        heapq.heappush(heap, item)
                        if len(heap) == limit:
                            threshold = -heap[0][0]
                    elif h < threshold:
                        heapq.heapreplace(heap, item)
                        threshold = -heap[0][0]
                elif kind == "feedback":
                    if (lo is not None and ts < lo) or (fb_hi is not None and ts >= fb_hi):
                        continue
                    h = request_hash(rid, seed)
                    if threshold is None or h <= threshold:  # could still belong to a kept request
                        feedback.append((h, rid, record if record is not None else line))
    kept_ids = {rid for _, rid, _ in heap}
    requests = [item if isinstance(item, dict) else json.loads(item) for _, _, item in heap]
    events = [item if isinstance(item, dict) else json.loads(item) for _, rid, item in feedback if rid in kept_ids]
    n_feedback = len(events)
    req = _frame(requests, ["request_id", "timestamp", "endpoint", "model_version", "query", "top_k", "candidate_ids",
                            "positions", "scores", "prices", "ratings", "truncated_ids",
                            "latency_ms"])
    fb = _frame(events, ["request_id", "timestamp", "product_id", "event", "position", "model_version"])
    stats = {
        "log_dir": str(log_dir), "files": len(files), "lines": n_lines, "unreadable_lines": n_bad,
        "start": lo, "end": hi, "first_request": first_ts, "last_request": last_ts,
        "requests_in_window": n_requests, "requests_used": len(req), "feedback_used": n_feedback,
        "endpoint": endpoint, "requests_of_other_endpoints": n_other_endpoint,
        "sampled": limit is not None and n_requests > limit, "sample_rate": (len(req) / n_requests) if n_requests else None,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if n_bad:
        log.warning("%s: %d unreadable log lines skipped", log_dir, n_bad)
    return Window(req, fb, stats)


def _frame(records: list[dict], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=columns)
    for column in columns:
        if column not in frame.columns:
            frame[column] = None
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    return frame.sort_values(["timestamp", "request_id"], kind="stable").reset_index(drop=True)


def window_name(start: pd.Timestamp | None, end: pd.Timestamp | None) -> str:
    """``<start>--<end>`` in compact UTC (e.g. 20261125T130000Z--20261125T140000Z)."""
    def fmt(ts: pd.Timestamp | None) -> str:
        return "open" if ts is None else ts.tz_convert("UTC").strftime("%Y%m%dT%H%M%SZ")

    return f"{fmt(start)}--{fmt(end)}"
