"""``prodrank`` command line: one sub-command per pipeline stage."""
from __future__ import annotations

import argparse
import logging
import sys

from prodrank import paths
from prodrank.config import ConfigError, load_config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prodrank", description=__doc__)
    parser.add_argument("--params", default=str(paths.PARAMS), help="params file (default: params.yaml)")
    parser.add_argument("--profile", default=None, help="profile in params.yaml (default: its `profile` key)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("ingest", help="build data/raw from the configured source (synthetic world or real data)")
    gen = sub.add_parser("generate", help="generate the synthetic world into a folder")
    gen.add_argument("--out", default=str(paths.RAW))
    sub.add_parser("validate", help="run the Great Expectations suites on data/raw")
    sub.add_parser("split", help="split data/raw by query into data/prepared")
    sub.add_parser("pretrain", help="domain-adaptive MLM pretraining")
    sub.add_parser("train", help="multi-task fine-tuning of the cross-encoder")
    ev = sub.add_parser("evaluate", help="model vs baselines on the test split, or on an outside data set")
    ev.add_argument("--judgments", help="judgments table (docs/data_formats.md)")
    ev.add_argument("--interactions", help="interactions log (docs/data_formats.md)")
    ev.add_argument("--catalog", help="catalogue table for --interactions (optional for --judgments)")
    ev.add_argument("--model", default=str(paths.RANKER), help="saved ranker directory")
    ev.add_argument("--out", default="reports/external", help="where an outside evaluation is written")
    sub.add_parser("config", help="print the resolved, validated configuration")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("great_expectations", "httpx", "urllib3", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from prodrank import stages
    from prodrank.data.validate import DataValidationError
    from prodrank.evaluation.evaluate import QualityGateError

    try:
        cfg = load_config(args.params, args.profile)
        if args.command == "config":
            print(cfg.model_dump_json(indent=2))
        elif args.command == "generate":
            stages.ingest(cfg.model_copy(update={"data": cfg.data.model_copy(update={"source": "synthetic"})}), args.out)
        elif args.command == "evaluate" and (args.judgments or args.interactions):
            stages.evaluate_external(cfg, args.judgments, args.interactions, args.catalog, args.model, args.out)
        else:
            getattr(stages, args.command)(cfg)
    except (ConfigError, DataValidationError, QualityGateError, ValueError, FileNotFoundError, KeyError) as err:
        if args.verbose:
            raise
        print(f"prodrank {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
