"""Every pipeline stage as a Prefect flow, ``prodrank-<stage>`` (``prodrank.orchestration.stageflow``).

``dvc repro`` runs each stage as ``prodrank <stage>``, which runs it inside its flow whenever a
Prefect server answers (``make run`` starts one). To run stages as flows by hand:

    python flows/stages.py validate split      # these stages, in order, each as its own flow run

This bypasses DVC's caching (the stage runs even if nothing changed) and always uses Prefect
(``orchestration.prefect: on``: the project's server if it answers, else a temporary one).
"""
from __future__ import annotations

import os
import sys

from prodrank.orchestration.stageflow import STAGES, run_stage, stage_flow  # noqa: F401

if __name__ == "__main__":
    os.environ["PRODRANK_PREFECT"] = "on"
    from prodrank.cli import main

    for name in sys.argv[1:] or STAGES:
        if code := main([name]):
            sys.exit(code)
