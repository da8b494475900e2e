"""The drift-monitoring flow, ``prodrank-monitor`` (defined in ``prodrank.monitoring.flow``).

    python flows/monitor.py                          # the whole log vs the reference (monitoring.reference)
    python flows/monitor.py --last 1h                # the last hour
    python flows/monitor.py --start 2026-11-25T12:00 --end 2026-11-25T13:00 --action trigger

Same options as ``prodrank monitor`` (which runs this flow when a Prefect server answers).
Prefect entrypoint: ``flows/monitor.py:monitor``. Reports: ``reports/drift/<window>.html|json``
and a markdown artifact ``prodrank-drift``. See docs/monitoring.md.
"""
from __future__ import annotations

import os
import sys

from prodrank.monitoring.flow import monitor_body, monitor_flow  # noqa: F401

monitor = monitor_flow()  # the flow object, for `prefect deploy flows/monitor.py:monitor`

if __name__ == "__main__":
    os.environ.setdefault("PRODRANK_PREFECT", "on")
    from prodrank.cli import main

    sys.exit(main(["monitor", *sys.argv[1:]]))
