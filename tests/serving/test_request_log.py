"""The request/feedback log: non-blocking writes, nothing lost on a clean close, rotation,
torn lines skipped, and the reader's time window."""
from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pandas as pd

from prodrank.serving import request_log as rl
from prodrank.serving.request_log import RequestLog, log_files, read_log


def record(i: int, kind: str = "request", ts: str | None = None) -> dict:
    return {"kind": kind, "request_id": f"r{i}", "timestamp": ts or rl.utc_now(), "model_version": "m:1",
            "query": f"query {i}", "candidate_ids": ["a", "b"], "positions": [1, 2],
            "scores": {"score": [0.5, 0.25]}, "latency_ms": 1.0}


def test_concurrent_writers_lose_nothing_on_close(tmp_path):
    log = RequestLog(tmp_path, rotate_bytes=4_000)  # small: forces many rotations
    threads = [threading.Thread(target=lambda k=k: [log.write(record(k * 1000 + i)) for i in range(250)])
               for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    frame = read_log(tmp_path)
    assert len(frame) == 1000 and frame["request_id"].is_unique and log.written == 1000
    assert len(log_files(tmp_path)) > 5  # rotated by size
    assert all(p.stat().st_size < 4_000 + 2_000 for p in log_files(tmp_path))
    log.close()  # idempotent


def test_write_does_not_wait_for_the_disk(tmp_path, monkeypatch):
    log = RequestLog(tmp_path)
    real_append = log._append

    def slow_append(records):
        time.sleep(0.2)
        real_append(records)

    monkeypatch.setattr(log, "_append", slow_append)
    started = time.perf_counter()
    for i in range(20):
        log.write(record(i))
    assert time.perf_counter() - started < 0.1  # returned long before the (slow) writes
    log.close()
    assert len(read_log(tmp_path)) == 20


def test_flush_makes_records_readable_while_open(tmp_path):
    log = RequestLog(tmp_path)
    log.write(record(1))
    log.write(record(2, kind="feedback"))
    log.flush()
    assert list(read_log(tmp_path)["request_id"]) == ["r1", "r2"]
    assert list(read_log(tmp_path, kind="feedback")["request_id"]) == ["r2"]
    log.close()


def test_time_rotation_and_window(tmp_path):
    log = RequestLog(tmp_path, rotate_seconds=0.2, fsync_seconds=0.05)
    now = datetime.now(UTC)
    log.write(record(1, ts=(now - timedelta(hours=2)).isoformat()))
    log.flush()
    time.sleep(0.35)
    log.write(record(2, ts=now.isoformat()))
    log.close()
    assert len(log_files(tmp_path)) == 2
    recent = read_log(tmp_path, start=now - timedelta(minutes=5))
    assert list(recent["request_id"]) == ["r2"]
    old = read_log(tmp_path, end=(now - timedelta(hours=1)).replace(tzinfo=None))  # naive = UTC
    assert list(old["request_id"]) == ["r1"]
    assert isinstance(recent["timestamp"].dtype, pd.DatetimeTZDtype)


def test_torn_line_is_skipped_and_empty_log_reads(tmp_path):
    assert read_log(tmp_path).empty
    log = RequestLog(tmp_path)
    log.write(record(1))
    log.close()
    with open(log_files(tmp_path)[0], "ab") as fh:
        fh.write(b'{"kind": "request", "request_id": "r2", "times')  # a crash mid-write
    assert list(read_log(tmp_path)["request_id"]) == ["r1"]


def test_unserialisable_record_is_counted_not_fatal(tmp_path):
    log = RequestLog(tmp_path)
    log.write({**record(1), "bad": object()})
    log.write(record(2))
    log.close()
    assert log.errors == 1 and list(read_log(tmp_path)["request_id"]) == ["r2"]
