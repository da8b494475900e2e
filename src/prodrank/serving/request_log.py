"""Durable log of every served ranking request and every feedback event, for monitoring.

Format: JSON Lines, one record per line, in ``<log_dir>/requests-<UTC start>-<pid>-<seq>.jsonl``.
Two kinds of record share the stream (``kind`` tells them apart)::

    {"kind": "request", "request_id", "timestamp", "model_version", "query", "top_k",
     "candidate_ids": [request order], "positions": [shown position per candidate, null if cut by top_k],
     "scores": {"score": [...], "p_click": [...], ...} (request order), "truncated_ids": [...],
     "prices": [...], "ratings": [...] (as sent, null when absent), "latency_ms"}
    {"kind": "feedback", "request_id", "timestamp", "model_version", "product_id", "event", "position"}

A background thread appends the records: every batch is one ``write`` system call on an
unbuffered file, so a killed process leaves whole lines (nothing half-written sits in a user
space buffer), and it is ``fsync``-ed every ``fsync_seconds`` and on close (a crashed
*machine* loses at most that window). :meth:`RequestLog.write` returns at once;
``write(record, acknowledge=True)`` returns once the record is in the file (handed to the
OS, not yet fsync-ed), which the service does before it answers, so a killed server has
logged every request it acknowledged. Group commit keeps that cheap: the writer takes
everything queued in one system call, so waiting costs about one ``write`` (tens of
microseconds), not one per concurrent request. A clean shutdown (:meth:`RequestLog.close`,
called from the service's shutdown hook and at interpreter exit) drains the queue, then
flushes and fsyncs, so no record is lost. Files rotate when they reach ``rotate_bytes`` or
are ``rotate_seconds`` old; rotated files are never rewritten.

A log folder that cannot be written (missing permissions, a full disk) never stops the
service: the failure is logged with its reason, counted in :attr:`RequestLog.errors` and
kept in :attr:`RequestLog.last_error` (the service shows both in ``/metadata``), and every
later batch tries again, so logging resumes once the disk has room.

:func:`read_log` reads the files back into a DataFrame (monitoring's entry point).
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import pandas as pd

log = logging.getLogger(__name__)

FILE_PREFIX = "requests-"
FILE_SUFFIX = ".jsonl"
_STOP = object()


def utc_now() -> str:
    """ISO 8601 UTC timestamp with microseconds, e.g. 2026-11-25T12:00:00.123456+00:00."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


class RequestLog:
    """Append-only JSONL writer with a background thread, rotation and clean shutdown."""

    def __init__(self, log_dir: str | Path, rotate_bytes: int = 50_000_000, rotate_seconds: float = 3600,
                 fsync_seconds: float = 1.0, max_queue: int = 100_000, acknowledge_timeout: float = 5.0) -> None:
        self.log_dir = Path(log_dir)
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.fsync_seconds = fsync_seconds
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._fh: IO[bytes] | None = None
        self._opened_at = 0.0
        self._last_fsync = 0.0
        self._seq = 0
        self._closed = False
        self._close_lock = threading.Lock()
        self.acknowledge_timeout = acknowledge_timeout
        self.written = 0  # records appended so far
        self.errors = 0  # records that could not be written (see the log)
        self.last_error: str | None = None  # why the latest failed batch failed
        self._thread = threading.Thread(target=self._run, name="prodrank-request-log", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # -- producer side -------------------------------------------------------------------
    def write(self, record: dict[str, Any], acknowledge: bool = False) -> bool:
        """Queue one record. Returns at once (blocking only while ``max_queue`` records are
        pending: back-pressure rather than dropping records), or with ``acknowledge`` once the
        record is in the file. Returns False only when an acknowledged write failed or took
        longer than ``acknowledge_timeout`` (a stuck disk must not hang the service)."""
        if self._closed:
            raise RuntimeError("request log is closed")
        if not acknowledge:
            self._queue.put(record)
            return True
        receipt = _Receipt()
        self._queue.put((record, receipt))
        if not receipt.done.wait(self.acknowledge_timeout):
            log.error("request log: record %s not written after %.1f s", record.get("request_id"),
                      self.acknowledge_timeout)
            return False
        return receipt.ok

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every record queued so far is written and flushed (tests, shutdown)."""
        done = threading.Event()
        self._queue.put(done)
        if not done.wait(timeout):
            raise TimeoutError("request log did not flush in time")

    def close(self, timeout: float = 30.0) -> None:
        """Drain the queue, flush and fsync, close the file. Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("request log writer did not stop within %.0f s; %d records pending",
                      timeout, self._queue.qsize())
        atexit.unregister(self.close)

    # -- writer thread -------------------------------------------------------------------
    def _open(self) -> IO[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self._seq += 1
        path = self.log_dir / f"{FILE_PREFIX}{stamp}-{os.getpid()}-{self._seq:04d}{FILE_SUFFIX}"
        self._opened_at = time.monotonic()
        # unbuffered: each batch below is a single write(2), never split across a kill
        return open(path, "ab", buffering=0)

    def _sync(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._last_fsync = time.monotonic()

    def _rotate(self) -> None:
        if self._fh is not None:
            self._sync()
            self._fh.close()
        self._fh = self._open()

    def _append(self, records: list[dict[str, Any]]) -> None:
        lines = []
        for record in records:
            try:
                lines.append(json.dumps(record, ensure_ascii=False, default=_json_default).encode("utf-8") + b"\n")
            except (TypeError, ValueError) as err:
                self.errors += 1
                log.error("request log: record %s not serialisable: %s", record.get("request_id"), err)
        if not lines:
            return
        if self._fh is None or time.monotonic() - self._opened_at >= self.rotate_seconds:
            self._rotate()
        assert self._fh is not None
        size, pending = self._fh.tell(), []
        for line in lines:  # a file holds at most rotate_bytes plus one record
            if size >= self.rotate_bytes:
                self._write_all(b"".join(pending))
                pending = []
                self._rotate()
                size = 0
            pending.append(line)
            size += len(line)
        self._write_all(b"".join(pending))
        self.written += len(lines)
        if time.monotonic() - self._last_fsync >= self.fsync_seconds:
            self._sync()

    def _write_all(self, data: bytes) -> None:
        assert self._fh is not None
        view = memoryview(data)
        while view:  # a regular file takes it in one call; the loop covers a short write
            view = view[self._fh.write(view):]

    def _run(self) -> None:
        stop = False
        while not stop:
            try:
                item = self._queue.get(timeout=self.fsync_seconds)
            except queue.Empty:
                self._timed_housekeeping()
                continue
            batch, receipts, events = [], [], []
            while True:  # drain what is queued: one write per batch (group commit)
                if item is _STOP:
                    stop = True
                elif isinstance(item, threading.Event):
                    events.append(item)
                elif isinstance(item, tuple):
                    batch.append(item[0])
                    receipts.append(item[1])
                else:
                    batch.append(item)
                if stop or len(batch) >= 1000:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            ok = self._append_batch(batch)
            for receipt in receipts:  # acknowledged before the fsync: the OS holds the bytes
                receipt.ok = ok
                receipt.done.set()
            if events or stop:
                self._try(self._sync)
            for event in events:
                event.set()
        if self._fh is not None:
            self._try(self._sync)
            self._drop_file()

    def _append_batch(self, batch: list[dict[str, Any]]) -> bool:
        try:
            self._append(batch)
            return True
        except OSError as err:  # disk full, permissions: keep serving, say so loudly
            self.errors += len(batch)
            self.last_error = f"{type(err).__name__}: {err}"
            log.error("request log: could not write %d records to %s: %s", len(batch), self.log_dir, self.last_error)
            self._drop_file()  # a file left half-open on ENOSPC: start a fresh one on the next batch
            return False

    def _try(self, step) -> None:
        try:
            step()
        except OSError as err:
            self.last_error = f"{type(err).__name__}: {err}"
            log.error("request log: %s failed: %s", step.__name__, self.last_error)

    def _drop_file(self) -> None:
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError:
                pass
            self._fh = None

    def _timed_housekeeping(self) -> None:
        try:
            if self._fh is not None and time.monotonic() - self._last_fsync >= self.fsync_seconds:
                self._sync()
            if self._fh is not None and time.monotonic() - self._opened_at >= self.rotate_seconds:
                self._sync()  # close an old file while idle; the next record opens a new one
                self._fh.close()
                self._fh = None
        except OSError:
            log.exception("request log: fsync/rotation failed")


class _Receipt:
    """Signals a writer waiting in ``write(..., acknowledge=True)`` that its batch was written."""

    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def log_files(log_dir: str | Path) -> list[Path]:
    """The log's files, oldest first (names sort by start time)."""
    return sorted(Path(log_dir).glob(f"{FILE_PREFIX}*{FILE_SUFFIX}"))


def _file_key(path: Path) -> tuple[str, datetime] | None:
    """(writer pid, time the file was opened) from ``requests-<stamp>-<pid>-<seq>.jsonl``."""
    try:
        stamp, pid, _ = path.name[len(FILE_PREFIX):-len(FILE_SUFFIX)].split("-", 2)
        return pid, datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def files_after(files: list[Path], start: pd.Timestamp | None) -> list[Path]:
    """Drop files that hold only records older than ``start``: a writer opens its next file
    after every record of the previous one was timestamped, so each file's records are older
    than the opening time of the same writer's next file."""
    if start is None:
        return files
    by_writer: dict[str, list[tuple[datetime, Path]]] = {}
    keep = []
    for path in files:
        key = _file_key(path)
        if key is None:
            keep.append(path)
        else:
            by_writer.setdefault(key[0], []).append((key[1], path))
    for series in by_writer.values():
        series.sort()
        for (_, path), nxt in zip(series, [*series[1:], None], strict=True):
            if nxt is None or nxt[0] > start:
                keep.append(path)
    return sorted(keep)


def _as_utc(value: str | datetime | pd.Timestamp | None) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _records(path: Path) -> Iterable[dict[str, Any]]:
    """A file's parseable records; a torn last line (a crash mid-write) is skipped with a warning."""
    with open(path, "rb") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s:%d: skipping an unreadable (torn?) line", path, n)


def read_log(log_dir: str | Path, start: str | datetime | None = None, end: str | datetime | None = None,
             kind: str | None = None) -> pd.DataFrame:
    """Records with ``start <= timestamp < end`` (UTC; naive times are taken as UTC) as a
    DataFrame, oldest first, one row per record, ``timestamp`` as a tz-aware datetime.

    Request rows keep their list columns (``candidate_ids``, ``positions``, ``truncated_ids``)
    and ``scores`` as a dict of lists; feedback rows have ``product_id``, ``event``, ``position``.
    ``kind="request"`` or ``"feedback"`` selects one kind. Join feedback to requests on
    ``request_id``.
    """
    start_ts, end_ts = _as_utc(start), _as_utc(end)
    records = []
    for path in files_after(log_files(log_dir), start_ts):
        records.extend(r for r in _records(path) if kind is None or r.get("kind") == kind)
    columns = ["kind", "request_id", "timestamp", "model_version"]
    if not records:
        frame = pd.DataFrame(columns=columns)
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        return frame
    frame = pd.DataFrame.from_records(records)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    if start_ts is not None:
        frame = frame[frame["timestamp"] >= start_ts]
    if end_ts is not None:
        frame = frame[frame["timestamp"] < end_ts]
    ordered = [c for c in columns if c in frame.columns] + [c for c in frame.columns if c not in columns]
    return frame[ordered].sort_values("timestamp", kind="stable").reset_index(drop=True)
