"""Training and evaluation labels: per-task targets in [0, 1] from the canonical interactions table."""
from __future__ import annotations

import numpy as np
import pandas as pd

from prodrank.config import TaskConfig


def task_targets(frame: pd.DataFrame, tasks: tuple[TaskConfig, ...], grade_range: tuple[float, float]) -> np.ndarray:
    """Targets in [0, 1]: event rates for binary tasks, min-max scaled grades for graded ones."""
    columns = []
    for task in tasks:
        if task.label not in frame.columns:
            raise KeyError(f"task {task.name!r}: label column {task.label!r} not in data {list(frame.columns)}")
        values = frame[task.label].to_numpy(dtype=np.float64)
        if task.kind == "binary":
            columns.append(np.clip(values / frame["impressions"].to_numpy(dtype=np.float64), 0.0, 1.0))
        else:
            low, high = grade_range
            columns.append(np.clip((values - low) / max(high - low, 1e-12), 0.0, 1.0))
    return np.stack(columns, axis=1)


def grade_range(frame: pd.DataFrame, tasks: tuple[TaskConfig, ...]) -> tuple[float, float]:
    """The (min, max) grade over the graded tasks' label columns; (0, 1) without graded tasks."""
    graded = [t.label for t in tasks if t.kind == "graded"]
    if not graded:
        return (0.0, 1.0)
    values = frame[graded].to_numpy(dtype=np.float64)
    return float(np.nanmin(values)), float(np.nanmax(values))
