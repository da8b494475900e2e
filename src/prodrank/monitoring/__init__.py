"""Drift monitoring of the serving log with Evidently (docs/monitoring.md).

- :mod:`.logwindow`  a window of the request/feedback log, sampled for large windows
- :mod:`.features`   the monitored features of a window (input, prediction, feedback)
- :mod:`.report`     the Evidently report, the checks and the verdict; HTML + JSON
- :mod:`.monitor`    ``prodrank monitor``: reference + current window -> report (-> retrain)
- :mod:`.trigger`    a drift verdict triggers retraining through the callable it is given
- :mod:`.flow`       the ``prodrank-monitor`` Prefect flow (flows/monitor.py), which gives the
                     monitor the orchestration's retrain flow
- :mod:`.simulate`   ``prodrank simulate-traffic``: the synthetic world's shoppers over HTTP

The drift demo (``make demo-drift``) and the large-log benchmark are in ``tools/monitoring/``.
"""
