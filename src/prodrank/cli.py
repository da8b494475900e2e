"""``prodrank`` command line: one sub-command per pipeline stage."""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from pathlib import Path

from prodrank import paths, stages
from prodrank.config import ConfigError, load_config
from prodrank.data.profile import init_profile
from prodrank.data.validate import DataValidationError
from prodrank.evaluation.evaluate import QualityGateError
from prodrank.monitoring import commands as monitoring
from prodrank.orchestration import commands as orchestration
from prodrank.orchestration.stageflow import run_stage
from prodrank.serving.registry import (
    RegistryError,
    TamperedModelError,
    bentoml_home,
    serving_notice,
    serving_tag,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prodrank", description=__doc__)
    parser.add_argument("--params", default=str(paths.PARAMS), help="params file (default: params.yaml)")
    parser.add_argument("--profile", default=None, help="profile in params.yaml (default: its `profile` key)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("inputs", help="hash the configured input files into data/inputs.json (ingest's DVC dep)")
    sub.add_parser("ingest", help="build data/raw from the configured source (synthetic world or real data)")
    gen = sub.add_parser("generate", help="generate the synthetic world into a folder")
    gen.add_argument("--out", default=str(paths.RAW))
    sub.add_parser("validate", help="run the Great Expectations suites on data/raw")
    sub.add_parser("split", help="split data/raw by query into data/prepared")
    sub.add_parser("pretrain", help="domain-adaptive MLM pretraining")
    sub.add_parser("train", help="multi-task fine-tuning of the cross-encoder")
    sub.add_parser("distill", help="distil the ranker into the small student that serves, with its ONNX graphs")
    ev = sub.add_parser("evaluate", help="model vs baselines on the test split, or on an outside data set")
    ev.add_argument("--judgments", help="judgments table (docs/data_formats.md)")
    ev.add_argument("--interactions", help="interactions log (docs/data_formats.md)")
    ev.add_argument("--catalog", help="catalogue table for --interactions (optional for --judgments)")
    ev.add_argument("--model", default=str(paths.RANKER), help="saved ranker directory")
    ev.add_argument("--split", choices=("test", "valid"), default="test",
                    help="valid: score the validation split (model selection; no quality gate)")
    ev.add_argument("--out", help="where an outside or validation evaluation is written "
                                  "(default reports/external, reports/validation_split)")
    sub.add_parser("ablate", help="train and evaluate the variants in evaluate.ablations")
    sub.add_parser("report", help="record this profile's metrics in docs/results/, regenerate docs/results.md "
                                  "and the README's results table")
    sub.add_parser("config", help="print the resolved, validated configuration")
    ip = sub.add_parser("init-profile", help="a profile for your own data: inspect the file, write and select the "
                                             "profile in params.yaml with the real-data recipe (then: make run)")
    ip.add_argument("name", help="profile name (lowercase letters, digits, _)")
    ip.add_argument("--judgments", help="judgments table (docs/data_formats.md)")
    ip.add_argument("--interactions", help="interactions log (docs/data_formats.md); needs --catalog")
    ip.add_argument("--catalog", help="catalogue table (required with --interactions)")
    sub.add_parser("package", help="put the gated ranker into the BentoML model store (models/package.json)")
    sv = sub.add_parser("serve", help="serve the champion (or --tag) with BentoML: `bentoml serve` on serving.host:port")
    sv.add_argument("--tag", help="model tag to serve (default: $PRODRANK_MODEL_TAG, else the champion)")
    sv.add_argument("--host", help="default: serving.host")
    sv.add_argument("--port", type=int, help="default: serving.port")
    orchestration.add_parsers(sub)  # retrain, rollback (docs/orchestration.md)
    monitoring.add_parsers(sub)  # monitor, simulate-traffic (docs/monitoring.md)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("great_expectations", "httpx", "urllib3", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        cfg = load_config(args.params, args.profile)
        if args.command == "config":
            print(cfg.model_dump_json(indent=2))
        elif args.command == "init-profile":
            print("\n".join(init_profile(Path(args.params), args.name, args.judgments, args.interactions, args.catalog)))
        elif args.command == "generate":
            stages.ingest(cfg.model_copy(update={"data": cfg.data.model_copy(update={"source": "synthetic"})}), args.out)
        elif args.command == "serve":
            return _serve(cfg, args)
        elif args.command == "evaluate" and (args.judgments or args.interactions):
            stages.evaluate_external(cfg, args.judgments, args.interactions, args.catalog, args.model,
                                     args.out or "reports/external")
        elif args.command == "report":
            print(f"written {stages.report(cfg)} and the README's results table")
        elif args.command == "evaluate" and args.split == "valid":
            stages.evaluate_validation(cfg, args.model, args.out or "reports/validation_split")
        elif args.command in ("monitor", "simulate-traffic"):  # docs/monitoring.md
            return monitoring.run(cfg, args)
        elif args.command in ("retrain", "rollback"):
            return orchestration.retrain(cfg, args) if args.command == "retrain" else orchestration.rollback(cfg)
        else:  # a pipeline stage: inside a Prefect flow when a server answers (prodrank.orchestration.stageflow)
            run_stage(args.command, cfg, args.params, args.profile)
    except (ConfigError, DataValidationError, QualityGateError, RegistryError, TamperedModelError, ValueError,
            FileNotFoundError, KeyError) as err:
        if args.verbose:
            raise
        print(f"prodrank {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


def _serve(cfg, args) -> int:
    """Replace this process with `bentoml serve` (same PID: stop it with SIGTERM)."""
    env = dict(os.environ, PRODRANK_PARAMS=args.params)
    env.setdefault("BENTOML_HOME", str(bentoml_home(cfg)))
    env.setdefault("BENTOML_DO_NOT_TRACK", "true")
    env.setdefault("HF_HUB_OFFLINE", "1")
    if args.profile:
        env["PRODRANK_PROFILE"] = args.profile
    if args.tag:
        env["PRODRANK_MODEL_TAG"] = args.tag
    for line in serving_notice(args.tag or serving_tag(cfg), cfg):
        print(line, file=sys.stderr)
    exe = shutil.which("bentoml", path=str(Path(sys.executable).parent)) or shutil.which("bentoml") or "bentoml"
    cmd = [exe, "serve", "prodrank.serving.service:ProdrankRanker",
           "--host", args.host or cfg.serving.host, "--port", str(args.port or cfg.serving.port)]
    print("+", " ".join(cmd), file=sys.stderr)
    os.execve(exe, cmd, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
