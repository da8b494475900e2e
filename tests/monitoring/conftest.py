"""Monitoring fixtures: the serving tests' tiny trained model and real `bentoml serve`
(tests/serving/conftest.py) are reused for the end-to-end drift test."""
from __future__ import annotations

from tests.serving.conftest import server, serving_data  # noqa: F401 - fixtures for test_demo.py
