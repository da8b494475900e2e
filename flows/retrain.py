"""The scheduled-retraining flow, ``prodrank-retrain`` (defined in ``prodrank.orchestration.retrain``).

    python flows/retrain.py                   # one run now: newest drop in data/incoming, or serving logs
    python flows/retrain.py --drop DIR        # a given data drop folder
    python flows/retrain.py --force           # re-run the pipeline even without new data
    python flows/retrain.py serve             # the cron deployment (what `make schedule` runs)

Same as ``prodrank retrain [...]`` / ``make schedule``. Prefect entrypoint: ``flows/retrain.py:retrain``
(or the module path ``prodrank.orchestration.retrain.retrain``). See docs/orchestration.md.
"""
from __future__ import annotations

import sys

from prodrank.orchestration.retrain import decide, retrain, run_retrain  # noqa: F401 - the flow and its parts

if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        from prodrank.orchestration.schedule import main as schedule_main

        sys.exit(schedule_main(["serve", *sys.argv[2:]]))
    from prodrank.cli import main

    sys.exit(main(["retrain", *sys.argv[1:]]))
