"""Prefect orchestration of the prodrank pipeline (docs/orchestration.md).

- :mod:`.env`        Prefect's environment: ``PREFECT_HOME`` in the project, analytics off, loopback.
- :mod:`.server`     a local Prefect server for ``make run`` / ``make schedule`` (start, find, stop).
- :mod:`.stageflow`  every pipeline stage as a Prefect flow (``prodrank <stage>`` runs it in one when
                     a server answers), with retries and a timeout from ``params.yaml``.
- :mod:`.drops`      new data: drops in ``orchestration.incoming_dir`` and serving logs, validated
                     with the GX suites and versioned with ``dvc add``.
- :mod:`.benchmark`  the frozen benchmark that champion and challenger are compared on.
- :mod:`.retrain`    the retrain flow (``flows/retrain.py``, ``prodrank retrain``) and its decision.
- :mod:`.schedule`   the cron deployment (``make schedule``).

Nothing here re-implements a stage: stage logic lives once in :mod:`prodrank.stages`, and the
retrain flow runs the pipeline with ``dvc repro``.
"""
