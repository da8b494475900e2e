"""``prodrank retrain`` and ``prodrank rollback`` (the CLI keeps only the argument parsing)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from prodrank.config import Config
from prodrank.orchestration import bento, env, server
from prodrank.serving import registry


def add_parsers(sub) -> None:
    rt = sub.add_parser("retrain", help="retrain on new data and promote the challenger only if it beats the "
                                         "champion (Prefect flow; docs/orchestration.md)")
    rt.add_argument("--drop", help="a data drop folder to use (default: the newest in orchestration.incoming_dir)")
    rt.add_argument("--force", action="store_true", help="run the pipeline even without new data")
    logs = rt.add_mutually_exclusive_group()
    logs.add_argument("--logs", dest="use_serving_logs", action="store_true", default=None,
                      help="use new serving logs as data (default: orchestration.serving_logs)")
    logs.add_argument("--no-logs", dest="use_serving_logs", action="store_false")
    rt.add_argument("--no-bento", dest="build", action="store_false", default=None,
                    help="promote without building a bento")
    sub.add_parser("rollback", help="make the previous champion the champion again (BentoML registry)")


def retrain(cfg: Config, args) -> int:
    """Run the retrain flow once (against the project's Prefect server if one answers, else a
    temporary one). Exit status 0: promoted, rejected, unchanged or skipped; 1: the run failed."""
    env.configure()
    if (found := server.discover()) is not None:
        os.environ["PREFECT_API_URL"] = found.api_url
        print(f"prefect: reporting to {found.ui_url}", file=sys.stderr)
    prefect = env.import_prefect()  # noqa: F841 - keeps the CLI's logging after Prefect's import
    from prodrank.orchestration.retrain import retrain as flow  # lazy: prefect, once the environment is set

    state = flow(drop=args.drop, use_serving_logs=args.use_serving_logs, force=args.force, build=args.build,
                 params=args.params, profile=args.profile, return_state=True)
    latest = Path("reports/retrain/latest.json")
    summary = json.loads(latest.read_text()) if latest.exists() else {}
    run_id = getattr(state.state_details, "flow_run_id", None)
    if summary and str(summary.get("flow_run_id")) == str(run_id):  # not an older run's report
        print(f"retrain {summary.get('run_id')}: {summary.get('status')} — "
              f"{(summary.get('decision') or {}).get('reason') or summary.get('error')}")
        print(f"report: {(summary.get('reports') or {}).get('markdown')}")
    if state.is_failed() or state.is_crashed():
        print(f"prodrank retrain: failed: {state.message}", file=sys.stderr)
        return 1
    return 0


def rollback(cfg: Config) -> int:
    before = registry.champion(cfg)
    tag = registry.rollback(cfg)
    print(f"champion: {before} -> {tag}")
    bentos = bento.bentos_for_model(tag, cfg)
    if bentos:
        print(f"its bento: {bentos[-1]}  (bentoml serve {bentos[-1]})")
    print("`prodrank serve` / `make serve` now serve it (a running server: restart it).")
    return 0
