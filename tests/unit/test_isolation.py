"""`make test` works in stores of its own, never in the user's (tests/conftest.py)."""
from __future__ import annotations

import os
from pathlib import Path

from prodrank.serving.registry import bentoml_home
from tests.conftest import PROJECT_ROOT, store_listing


def test_the_tests_bentoml_and_prefect_homes_are_outside_the_project():
    for home in (bentoml_home(), Path(os.environ["PREFECT_HOME"])):
        assert not home.resolve().is_relative_to(PROJECT_ROOT), home


def test_the_store_check_sees_a_new_a_changed_and_a_removed_file(tmp_path):
    (tmp_path / ".bentoml" / "models").mkdir(parents=True)
    registry = tmp_path / ".bentoml" / "prodrank-registry.json"
    registry.write_text('{"champion": "prodrank-ranker:a"}')
    before = store_listing(tmp_path)
    assert list(before) == [".bentoml/prodrank-registry.json"]
    registry.write_text('{"champion": "prodrank-ranker:bb"}')
    assert store_listing(tmp_path) != before
    (tmp_path / "logs" / "serving").mkdir(parents=True)
    (tmp_path / "logs" / "serving" / "requests.jsonl").write_text("{}\n")
    assert "logs/serving/requests.jsonl" in store_listing(tmp_path)
    registry.unlink()
    assert ".bentoml/prodrank-registry.json" not in store_listing(tmp_path)
