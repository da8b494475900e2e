"""Drift monitoring of the serving log with Evidently (docs/monitoring.md).

- :mod:`.logwindow`  a window of the request/feedback log, sampled for large windows
- :mod:`.features`   the monitored features of a window (input, prediction, feedback)
- :mod:`.report`     the Evidently report, the checks and the verdict; HTML + JSON
- :mod:`.monitor`    ``prodrank monitor``: reference + current window -> report (-> retrain)
- :mod:`.trigger`    a drift verdict triggers the retrain flow
- :mod:`.flow`       the ``prodrank-monitor`` Prefect flow (flows/monitor.py)
- :mod:`.simulate`   ``prodrank simulate-traffic``: the synthetic world's shoppers over HTTP
- :mod:`.demo`       ``make demo-drift``: serve -> control -> monitor -> drift -> monitor -> retrain
- :mod:`.bench`      a report on a large synthetic log (sampling cost)
"""
