"""Reading a window of the serving log: time bounds, uniform sampling of large windows with the
feedback of exactly the sampled requests, torn lines, files written by the service itself."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from prodrank.monitoring.features import Context, from_log, load_catalogs
from prodrank.monitoring.logwindow import read_window, request_hash, window_name
from prodrank.serving.request_log import RequestLog, read_log
from tools.monitoring.synthetic_log import write_log

START = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("log")
    write_log(directory, 3000, START, 3000, seed=1, rotate_bytes=200_000)  # one request per second, many files
    return directory


def test_window_bounds_match_read_log(log_dir):
    start, end = START + timedelta(seconds=500), START + timedelta(seconds=1700)
    window = read_window(log_dir, start, end)
    expected = read_log(log_dir, start, end, kind="request")
    assert sorted(window.requests["request_id"]) == sorted(expected["request_id"])
    assert len(window.requests) == 1200 and not window.sampled
    assert window.requests["timestamp"].min() >= pd.Timestamp(start)
    assert window.requests["timestamp"].max() < pd.Timestamp(end)
    fb = read_log(log_dir, kind="feedback")
    ids = set(window.requests["request_id"])
    assert len(window.feedback) == int(fb["request_id"].isin(ids).sum()) > 0
    assert window.stats["files"] > 5


def test_large_window_is_a_uniform_sample_with_its_feedback(log_dir):
    window = read_window(log_dir, max_requests=500, seed=3)
    assert window.sampled and len(window.requests) == 500 and window.stats["requests_in_window"] == 3000
    everything = read_log(log_dir, kind="request")
    hashes = sorted((request_hash(r, 3), r) for r in everything["request_id"])
    assert set(window.requests["request_id"]) == {r for _, r in hashes[:500]}  # bottom-k of the hash
    fb = read_log(log_dir, kind="feedback")
    kept = fb[fb["request_id"].isin(set(window.requests["request_id"]))]
    assert len(window.feedback) == len(kept) and set(window.feedback["request_id"]) <= set(window.requests["request_id"])
    # uniform over time: the sample's mean timestamp is near the middle of the window
    middle = (window.requests["timestamp"] - pd.Timestamp(START)).dt.total_seconds().mean()
    assert 1300 < middle < 1700
    other = read_window(log_dir, max_requests=500, seed=4)
    assert set(other.requests["request_id"]) != set(window.requests["request_id"])


def test_torn_and_foreign_lines(tmp_path):
    path = tmp_path / "requests-20261101T000000000000Z-1-0001.jsonl"
    good = {"kind": "request", "request_id": "a" * 32, "timestamp": "2026-11-01T00:00:01.000000+00:00",
            "model_version": "m:1", "query": "red sofa", "top_k": None, "candidate_ids": ["P1"], "positions": [1],
            "scores": {"score": [0.5]}, "prices": [10.0], "truncated_ids": [], "latency_ms": 1.0}
    other_order = {"timestamp": "2026-11-01T00:00:02Z", "request_id": "b" * 32, "kind": "request",
                   "query": "lamp", "candidate_ids": ["P2"], "positions": [1], "scores": {"score": [0.1]},
                   "model_version": "m:1"}
    path.write_text(json.dumps(good) + "\n" + json.dumps(other_order, separators=(",", ":")) + "\n" + '{"kind": "requ')
    window = read_window(tmp_path)
    assert list(window.requests["request_id"]) == ["a" * 32, "b" * 32]
    assert window.stats["unreadable_lines"] == 1


def test_the_services_own_log_is_read(tmp_path):
    writer = RequestLog(tmp_path, fsync_seconds=0.1)
    for i in range(5):
        writer.write({"kind": "request", "request_id": f"{i:032x}", "timestamp": f"2026-11-01T00:00:0{i}.000000+00:00",
                      "model_version": "m:1", "query": "q", "top_k": None, "candidate_ids": ["P1", "P2"],
                      "positions": [1, 2], "scores": {"score": [0.2, 0.1]}, "truncated_ids": [], "prices": [1.0, None],
                      **({} if i == 2 else {"ratings": [None, 4.5]}), "latency_ms": 1.0})  # 2: an older record
    writer.write({"kind": "feedback", "request_id": f"{1:032x}", "timestamp": "2026-11-01T00:00:09.000000+00:00",
                  "model_version": "m:1", "product_id": "P2", "event": "click", "position": 2})
    writer.close()
    window = read_window(tmp_path, "2026-11-01T00:00:01", "2026-11-01T00:00:04")
    assert list(window.requests["request_id"]) == [f"{i:032x}" for i in (1, 2, 3)]
    assert list(window.feedback["event"]) == ["click"]
    catalog, _, _ = load_catalogs([])
    cand = from_log(window.requests, window.feedback, Context(catalog, frozenset(), None, None, "words"), 10).candidates
    np.testing.assert_array_equal(cand["price"], [1.0, np.nan] * 3)  # the values sent; null -> NaN
    np.testing.assert_array_equal(cand["rating"], [np.nan, 4.5, np.nan, np.nan, np.nan, 4.5])
    assert window_name(pd.Timestamp("2026-11-01T00:00:01Z"), None) == "20261101T000001Z--open"


def test_a_window_holds_one_endpoints_requests(tmp_path):
    """/search always ranks n candidates: a window of /rank traffic must not take /search requests
    (nor their feedback), or its candidate counts would read as drift against /rank's reference."""
    log = RequestLog(tmp_path)
    def record(i: int, endpoint: str | None, n: int) -> dict:
        body = {"kind": "request", "request_id": f"{endpoint}-{i}", "model_version": "m:1",
                "timestamp": (START + timedelta(seconds=i)).isoformat(timespec="microseconds"),
                "query": 'sofa "endpoint": "search"',  # a client's text cannot pass for the field
                "top_k": 10, "candidate_ids": [f"P{j}" for j in range(n)], "positions": list(range(1, n + 1)),
                "scores": {"score": [0.5] * n}, "prices": [1.0] * n, "ratings": [4.0] * n}
        return body if endpoint is None else {"kind": "request", "endpoint": endpoint, **body}
    for i in range(30):
        log.write(record(i, None, 5))  # written before records named their endpoint: /rank
        log.write(record(i, "rank", 8))
        log.write(record(i, "search", 100))
        log.write({"kind": "feedback", "request_id": f"search-{i}", "product_id": "P0", "event": "click",
                   "timestamp": (START + timedelta(seconds=i, milliseconds=500)).isoformat(timespec="microseconds")})
    log.close()
    rank = read_window(tmp_path, endpoint="rank")
    assert len(rank.requests) == 60 and set(rank.requests["endpoint"].fillna("rank")) == {"rank"}
    assert rank.feedback.empty and rank.stats["requests_of_other_endpoints"] == 30
    assert sorted(rank.requests["candidate_ids"].map(len).unique()) == [5, 8]
    search = read_window(tmp_path, endpoint="search", max_requests=100)
    assert len(search.requests) == 30 and len(search.feedback) == 30
    assert set(search.requests["candidate_ids"].map(len)) == {100}
    assert len(read_window(tmp_path).requests) == 90  # no endpoint given: every request
