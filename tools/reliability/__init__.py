"""Reliability and security checks with figures (``make reliability``, docs/reliability.md).

- :mod:`~tools.reliability.load`: an open-loop HTTP load generator against the real service,
  latency percentiles, server memory, and the audit that every acknowledged request and
  feedback record is in the request log exactly once;
- :mod:`~tools.reliability.faults`: injected faults (server killed mid-load, a tampered
  model, a full disk, an unwritable log folder, a DVC stage killed mid-write) each checked
  for what must hold;
- :mod:`~tools.reliability.security`: secrets in the repository, the API key, pickle-free weights;
- :mod:`~tools.reliability.fuzzing`: the full fuzzing run's record and the digest of the schema
  it fuzzed, which ``make test`` compares with the served schema;
- :mod:`~tools.reliability.suite`: runs everything (with schemathesis fuzzing and the
  Prefect failure tests) and writes the results table.
"""
