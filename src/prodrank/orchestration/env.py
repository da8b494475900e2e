"""Prefect's environment for prodrank, set before ``import prefect``.

- ``PREFECT_HOME`` defaults to ``.prefect/`` in the project (git-ignored), not ``~/.prefect``:
  the SQLite database, the server's log and PID file live there.
- Analytics/telemetry off (offline machines log errors otherwise; stack notes, gotcha 5).
- Loggers ``prodrank.*`` are Prefect "extra loggers": inside a flow run their records go to the
  Prefect API too, so stage logs show in the UI.
- The server binds to loopback.
- Dask (``task_runner: dask``) logs warnings only.

Variables already set in the environment win (``os.environ.setdefault``).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

PREFECT_DIR = ".prefect"

DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "prodrank",
    "PREFECT_SERVER_API_HOST": "127.0.0.1",
    "PREFECT_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "BENTOML_DO_NOT_TRACK": "true",
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    # the Dask task runner's scheduler and workers log ~60 INFO lines per cluster; keep warnings
    "DASK_LOGGING__DISTRIBUTED": "warning",
}


def prefect_home(root: str | Path | None = None) -> Path:
    """``$PREFECT_HOME`` if set, else ``<root>/.prefect`` (root: the working directory)."""
    if env := os.environ.get("PREFECT_HOME"):
        return Path(env).expanduser().resolve()
    return (Path(root) if root is not None else Path.cwd()).resolve() / PREFECT_DIR


def configure(root: str | Path | None = None) -> dict[str, str]:
    """Put prodrank's Prefect defaults into ``os.environ`` (existing values win); returns them."""
    os.environ.setdefault("PREFECT_HOME", str(prefect_home(root)))
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    return {key: os.environ[key] for key in ("PREFECT_HOME", *DEFAULTS)}


def import_prefect():
    """``import prefect`` after :func:`configure`, keeping this process's logging set-up:
    Prefect's import re-configures the root logger (level WARNING, its console handler), which
    would hide the stages' INFO lines on the console."""
    configure()
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    import prefect

    if handlers:
        root.handlers[:] = handlers
        root.setLevel(level)
    return prefect
