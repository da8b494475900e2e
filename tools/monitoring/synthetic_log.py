"""Synthetic serving logs, and the cost of a drift report on a large window.

    python -m tools.monitoring.synthetic_log --requests 1000000 --out /tmp/biglog   # write + measure
    python -m tools.monitoring.synthetic_log --log-dir /tmp/biglog --max-requests 20000 100000  # measure only

:func:`write_log` writes records in exactly the service's format (``request_log.RequestLog``:
same keys in the same order, ``json.dumps`` defaults, files rotated at ``rotate_bytes``), with
feedback events for a share of the requests. ``shift`` moves the distributions (longer queries,
higher prices, lower ratings, lower scores) to make a drifted window.

The measurement runs :func:`prodrank.monitoring.monitor.run_monitor` with a log reference window
(the first hour: ``--reference-requests``) and the rest (``--requests``, the next two hours,
drifted by ``--shift``) as the current window, and reports the seconds of each
step (scan + sample, features, Evidently, HTML) and the peak memory. The monitoring tests use
:func:`write_log` for their logs.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from prodrank.config import load_config
from prodrank.monitoring.flow import apply_overrides
from prodrank.monitoring.monitor import run_monitor

WORDS = ["red", "blue", "black", "sofa", "lamp", "drill", "kettle", "towel", "pillow", "speaker", "hose", "led",
         "wireless", "cordless", "leather", "cotton", "steel", "under", "50", "100", "set", "pack", "small", "large"]
CATEGORIES = ["Furniture > Sofas", "Lighting > Lamps", "Tools > Drills", "Kitchen > Kettles", "Bath > Towels"]


def write_log(log_dir: str | Path, n_requests: int, start: datetime | None = None, seconds: float = 3600.0,
              candidates: int = 10, feedback_share: float = 0.3, seed: int = 0, shift: float = 0.0,
              rotate_bytes: int = 50_000_000, model_version: str = "prodrank-ranker:synthetic",
              chunk: int = 20_000) -> dict[str, Any]:
    """Write ``n_requests`` request records (+ feedback) spread over ``seconds`` from ``start``."""
    rng = np.random.default_rng(seed)
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    start = start or datetime(2026, 11, 1, tzinfo=UTC)
    step = seconds / max(n_requests, 1)
    seq, size, fh = 0, 0, None
    n_feedback, started = 0, time.perf_counter()

    def open_next(ts: datetime):
        nonlocal seq, size
        seq += 1
        size = 0
        name = f"requests-{ts.strftime('%Y%m%dT%H%M%S%fZ')}-99999-{seq:04d}.jsonl"
        return open(log_dir / name, "ab")

    try:
        for lo in range(0, n_requests, chunk):
            hi = min(lo + chunk, n_requests)
            m = hi - lo
            n_words = np.clip(rng.poisson(2.5 + 2 * shift, m), 1, 12)
            scores = rng.beta(2, 5 + 3 * shift, (m, candidates))
            prices = np.round(np.exp(rng.normal(3.5 + shift, 0.8, (m, candidates))), 2)
            ratings = np.round(np.clip(rng.normal(4.2 - shift, 0.5, (m, candidates)), 1, 5), 1)
            lines = []
            for j in range(m):
                i = lo + j
                ts = start + timedelta(seconds=i * step)
                stamp = ts.isoformat(timespec="microseconds")
                rid = f"{seed:04x}{i:028x}"
                query = " ".join(rng.choice(WORDS, n_words[j]))
                ids = [f"P{int(x):06d}" for x in rng.choice(50_000, candidates, replace=False)]
                p_click = scores[j]
                order = np.argsort(-p_click, kind="stable")
                positions = np.empty(candidates, dtype=np.int64)
                positions[order] = np.arange(1, candidates + 1)
                record = {"kind": "request", "request_id": rid, "timestamp": stamp, "model_version": model_version,
                          "query": query, "top_k": None, "candidate_ids": ids, "positions": positions.tolist(),
                          "scores": {"score": np.round(p_click * 1.6, 6).tolist(), "p_click": np.round(p_click, 6).tolist(),
                                     "p_add_to_cart": np.round(p_click * 0.3, 6).tolist(),
                                     "p_purchase": np.round(p_click * 0.1, 6).tolist()},
                          "truncated_ids": [], "prices": prices[j].tolist(), "ratings": ratings[j].tolist(),
                          "latency_ms": 12.5}
                lines.append((ts, json.dumps(record, ensure_ascii=False).encode() + b"\n"))
                if rng.random() < feedback_share:
                    k = int(order[min(int(rng.geometric(0.4)) - 1, candidates - 1)])
                    fb_ts = (ts + timedelta(seconds=1)).isoformat(timespec="microseconds")
                    for event in ("click", "add_to_cart", "purchase")[: 1 + int(rng.random() < 0.3)]:
                        fb = {"kind": "feedback", "request_id": rid, "timestamp": fb_ts, "model_version": model_version,
                              "product_id": ids[k], "event": event, "position": int(positions[k])}
                        lines.append((ts, json.dumps(fb, ensure_ascii=False).encode() + b"\n"))
                        n_feedback += 1
            for ts, line in lines:  # a file is named by the time it is opened, as the service does
                if fh is None or size >= rotate_bytes:
                    if fh is not None:
                        fh.close()
                    fh = open_next(ts)
                fh.write(line)
                size += len(line)
    finally:
        if fh is not None:
            fh.close()
    total = sum(p.stat().st_size for p in log_dir.glob("requests-*.jsonl"))
    return {"requests": n_requests, "feedback": n_feedback, "files": seq, "bytes": total,
            "seconds": round(time.perf_counter() - started, 1),
            "start": start.isoformat(), "end": (start + timedelta(seconds=seconds)).isoformat()}


def measure(log_dir: str | Path, reference_end: str, max_requests: int, out_dir: str | Path,
            params: str = "params.yaml") -> dict[str, Any]:
    """A drift report: reference = the log before ``reference_end``, current = the rest."""
    cfg = apply_overrides(load_config(params), {"reference": "log", "reference_start": None,
                                                "reference_end": reference_end, "log_dir": str(log_dir),
                                                "max_requests": max_requests, "catalogs": []})
    t0 = time.perf_counter()
    summary = run_monitor(cfg, ".", out_dir=str(out_dir), name="bench")
    return {"total_seconds": round(time.perf_counter() - t0, 1),
            "current": {k: summary["current"][k] for k in ("requests_in_window", "requests_used", "feedback_used",
                                                            "seconds", "features_seconds", "lines", "files")},
            "reference": {k: summary["reference"].get(k) for k in ("requests_in_window", "requests_used", "seconds")},
            "report_seconds": summary["report_seconds"], "verdict": summary["verdict"],
            "drifted_checks": summary["drifted_checks"],
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "html_bytes": Path(summary["reports"]["html"]).stat().st_size}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1_000_000, help="requests in the current window (with --out)")
    parser.add_argument("--reference-requests", type=int, default=100_000, help="requests in the reference window")
    parser.add_argument("--out", help="write a synthetic log here first (reference hour + drifted current hours)")
    parser.add_argument("--log-dir", help="measure an existing log (written by --out)")
    parser.add_argument("--max-requests", type=int, nargs="+", default=[20_000],
                        help="sample sizes to measure (one report each)")
    parser.add_argument("--reports", default="reports/drift/bench")
    parser.add_argument("--shift", type=float, default=0.5, help="drift of the current window")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {}
    log_dir = args.log_dir or args.out
    if not log_dir:
        parser.error("give --out DIR (write and measure) or --log-dir DIR (measure)")
    start = datetime(2026, 11, 1, tzinfo=UTC)
    if args.out:
        first = write_log(args.out, args.reference_requests, start, 3600, seed=1)
        second = write_log(args.out, args.requests, start + timedelta(hours=1), 7200, seed=2, shift=args.shift)
        result["written"] = {"reference": first, "current": second}
        print(json.dumps(result, indent=2), flush=True)
    for n in args.max_requests:
        measured = measure(log_dir, (start + timedelta(hours=1)).isoformat(), n, args.reports)
        result.setdefault("measured", []).append({"max_requests": n, **measured})
        print(json.dumps({"max_requests": n, **measured}, indent=2), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
