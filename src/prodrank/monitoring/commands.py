"""``prodrank monitor`` and ``prodrank simulate-traffic`` (the CLI keeps only the dispatch)."""
from __future__ import annotations

import json
import re
import sys
from typing import Any

import pandas as pd

from prodrank.config import Config
from prodrank.io import jsonable

COMMANDS = ("monitor", "simulate-traffic")


def add_parsers(sub) -> None:
    mo = sub.add_parser("monitor", help="Evidently drift report of a serving-log window vs the reference "
                                        "(reports/drift/; docs/monitoring.md)")
    mo.add_argument("--start", help="current window start, ISO 8601 (UTC if no zone); default: open")
    mo.add_argument("--end", help="current window end (exclusive); default: open")
    mo.add_argument("--last", help="current window = the last DURATION before --end/now, e.g. 1h, 30m, 2d")
    mo.add_argument("--name", help="report name (default: <start>--<end>)")
    mo.add_argument("--out", help="report folder (default: monitoring.reports_dir)")
    mo.add_argument("--reference", choices=["evaluation", "log"], help="default: monitoring.reference")
    mo.add_argument("--reference-start", help="reference log window start (with --reference log)")
    mo.add_argument("--reference-end", help="reference log window end (with --reference log)")
    mo.add_argument("--log-dir", help="serving log folder (default: monitoring.log_dir or serving.log_dir)")
    mo.add_argument("--max-requests", type=int, help="sample windows larger than this (default: monitoring.max_requests)")
    mo.add_argument("--endpoint", choices=["rank", "search"],
                    help="whose traffic: /rank or /search requests (default: monitoring.endpoint)")
    mo.add_argument("--action", choices=["report", "trigger"], help="on drift: report only, or trigger retraining")
    mo.add_argument("--compare-model", help="model tag whose top-k is compared with the served one")
    mo.add_argument("--json", action="store_true", help="print the JSON summary instead of the table")
    mo.add_argument("--fail-on-drift", action="store_true", help="exit status 3 when the verdict is drift")
    st = sub.add_parser("simulate-traffic", help="replay synthetic-world shoppers against the running server "
                                                 "(loopback only) with feedback events")
    st.add_argument("--url", help="server URL (default: http://127.0.0.1:<serving.port>)")
    st.add_argument("--scenario", default="control",
                    help="control | category_shift | new_vocabulary | new_products | price_shift | all")
    st.add_argument("--drift", action="append", metavar="KNOB=VALUE", help="set a world.drift knob (repeatable)")
    st.add_argument("--requests", type=int, default=500, help="at most this many /rank requests (default 500)")
    st.add_argument("--rate", type=float, default=20.0, help="at most this many requests per second (default 20)")
    st.add_argument("--duration", type=float, default=300.0, help="stop after this many seconds (default 300)")
    st.add_argument("--seed", type=int, default=0, help="session start and shopper behaviour")
    st.add_argument("--no-feedback", dest="feedback", action="store_false", help="send no /feedback events")
    st.add_argument("--catalog-out", default=None,
                    help="merge the world's catalogue into this parquet file (default logs/simulator/catalog.parquet)")


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")


def parse_duration(text: str) -> pd.Timedelta:
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"--last expects a duration like 30m, 1h, 2d (got {text!r})")
    value, unit = float(match.group(1)), match.group(2)
    return pd.Timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]: value})


def run(cfg: Config, args) -> int:
    if args.command == "monitor":
        return monitor(cfg, args)
    return simulate(cfg, args)


def monitor(cfg: Config, args) -> int:
    # every prodrank command builds its parser from this module: the monitor (scipy, about a
    # second) and the simulator load only when these commands run
    from prodrank.monitoring import flow
    from prodrank.monitoring.monitor import format_summary

    overrides: dict[str, Any] = {}
    for key, attr in (("reference", "reference"), ("reference_start", "reference_start"),
                      ("reference_end", "reference_end"), ("log_dir", "log_dir"), ("max_requests", "max_requests"),
                      ("endpoint", "endpoint")):
        if getattr(args, attr) is not None:
            overrides[key] = getattr(args, attr)
    start, end = args.start, args.end
    if args.last:
        end_ts = pd.Timestamp(end) if end else pd.Timestamp.now(tz="UTC")
        end_ts = end_ts.tz_localize("UTC") if end_ts.tzinfo is None else end_ts
        start, end = (end_ts - parse_duration(args.last)).isoformat(), end_ts.isoformat()
    summary = flow.run(cfg, args.params, args.profile, start=start, end=end, name=args.name, out_dir=args.out,
                       compare_model=args.compare_model, action=args.action, overrides=overrides or None)
    if args.json:
        print(json.dumps(jsonable({k: v for k, v in summary.items() if k not in ("evidently", "settings")}),
                         indent=2))
    else:
        print(format_summary(summary))
    retrain = summary.get("retrain") or {}
    if retrain.get("triggered") and retrain.get("status") == "failed":
        print(f"prodrank monitor: the triggered retrain failed: {retrain.get('error')}", file=sys.stderr)
    return 3 if (args.fail_on_drift and summary["drift"]) else 0


def simulate(cfg: Config, args) -> int:
    # loaded only for this command (see monitor)
    from prodrank.monitoring.simulate import DEFAULT_CATALOG_OUT, parse_overrides, simulate_traffic

    url = args.url or f"http://127.0.0.1:{cfg.serving.port}"
    stats = simulate_traffic(cfg, url, scenario=args.scenario, requests=args.requests, rate=args.rate,
                             duration=args.duration, seed=args.seed, overrides=parse_overrides(args.drift),
                             feedback=args.feedback, catalog_out=args.catalog_out or DEFAULT_CATALOG_OUT)
    print(json.dumps(stats, indent=2, default=str))
    return 0 if stats["ok"] else 1
