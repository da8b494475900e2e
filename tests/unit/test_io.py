"""Atomic writes: a failed write keeps the old artefact; a killed writer's leftovers are undone
by the next write to the same target."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prodrank.io import atomic_dir, atomic_path, jsonable, write_json


def test_failed_directory_write_keeps_the_last_good_one(tmp_path):
    target = tmp_path / "ranker"
    with atomic_dir(target) as tmp:
        (tmp / "weights").write_text("v1")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "weights").write_text("half of v2")
        raise RuntimeError("killed")
    assert (target / "weights").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ranker"]


def test_leftovers_of_a_killed_directory_swap_are_undone(tmp_path):
    target = tmp_path / "ranker"
    # the state a SIGKILL between atomic_dir's two renames leaves: the old one parked, a new one unfinished
    (tmp_path / ".ranker.old").mkdir()
    (tmp_path / ".ranker.old" / "weights").write_text("v1")
    (tmp_path / ".ranker.tmp-dead").mkdir()
    (tmp_path / ".ranker.tmp-dead" / "weights").write_text("half")
    (tmp_path / "ranker.v2").mkdir()  # a different artefact with a similar name is left alone
    with pytest.raises(RuntimeError), atomic_dir(target):
        assert (target / "weights").read_text() == "v1"  # the last good one is back before writing starts
        raise RuntimeError("failed again")
    assert (target / "weights").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ranker", "ranker.v2"]


def test_file_leftovers_are_removed_and_the_file_replaced(tmp_path):
    target = tmp_path / "metrics.json"
    write_json({"a": 1}, target)
    (tmp_path / ".metrics.json.tmp-dead").write_text('{"a": ')  # a killed writer's half file
    with atomic_path(target) as tmp:
        tmp.write_text('{"a": 2}')
    assert target.read_text() == '{"a": 2}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_jsonable_types_and_missing_values():
    value = {1: (np.int64(2), np.float32(0.5), {"a"}), "t": pd.Timestamp("2026-01-01", tz="UTC"),
             "missing": [None, pd.NA, pd.NaT, float("nan"), np.float64("nan")], "other": Path("x")}
    assert jsonable(value) == {"1": [2, 0.5, ["a"]], "t": "2026-01-01T00:00:00+00:00",
                               "missing": [None] * 5, "other": "x"}
    assert json.loads(json.dumps(jsonable(value), allow_nan=False)) == jsonable(value)


@pytest.mark.parametrize(("rule", "expected"), [("null", [None, None, None]), ("string", [None, "inf", "-inf"])])
def test_jsonable_non_finite_rules(rule, expected):
    assert jsonable([math.nan, np.float64(math.inf), -math.inf], non_finite=rule) == expected


def test_jsonable_for_metadata_keeps_non_finite_floats_and_drops_none():
    value = {"a": None, "b": [1, None, pd.NaT], "c": [math.nan, math.inf]}
    out = jsonable(value, non_finite="keep", drop_none=True)
    assert "a" not in out and out["b"] == [1]
    assert math.isnan(out["c"][0]) and out["c"][1] == math.inf
