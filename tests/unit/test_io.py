"""Atomic writes: a failed write keeps the old artefact; a killed writer's leftovers are undone
by the next write to the same target."""
from __future__ import annotations

import pytest

from prodrank.io import atomic_dir, atomic_path, write_json


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
