"""Monitoring tools run from the project root, outside the library:

- :mod:`~tools.monitoring.demo_drift`: the drift demo (``make demo-drift``);
- :mod:`~tools.monitoring.synthetic_log`: large synthetic serving logs in the service's format,
  and the cost of a drift report on them (the monitoring tests write their logs with it).
"""
