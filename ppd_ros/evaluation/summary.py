"""Aggregate per-frame metric rows into summary statistics, and write JSON summaries.

Means are over frames where the metric is finite (a frame without GT, or without camera info
for the edge metrics, does not count); ``frames`` says how many frames each mean covers.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from ppd_ros.evaluation.frame_metrics import COUNT_COLUMNS, METRIC_COLUMNS


def metric_means(rows: Iterable[Mapping], columns=METRIC_COLUMNS) -> dict:
    """{'mean': {metric: value}, 'median': {...}, 'frames': {metric: count}}; NaN when none."""
    rows = list(rows)
    mean, median, frames = {}, {}, {}
    for key in columns:
        if key in COUNT_COLUMNS:
            continue
        values = np.array([float(r[key]) for r in rows], dtype=np.float64)
        values = values[np.isfinite(values)]
        frames[key] = int(values.size)
        mean[key] = float(values.mean()) if values.size else math.nan
        median[key] = float(np.median(values)) if values.size else math.nan
    return {'mean': mean, 'median': median, 'frames': frames}


def timing_stats(seconds: Iterable[float]) -> dict:
    values = np.array(list(seconds), dtype=np.float64)
    if values.size == 0:
        return {'frames': 0, 'mean_s': math.nan, 'median_s': math.nan, 'fps': math.nan}
    mean = float(values.mean())
    return {'frames': int(values.size), 'mean_s': mean, 'median_s': float(np.median(values)),
            'fps': 1.0 / mean if mean > 0 else math.nan}


def _json_safe(value):
    """NaN / inf -> None (JSON null), numpy scalars -> Python numbers, paths -> str."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def write_json(path: Path, data: Mapping) -> None:
    """Pretty JSON (NaN written as null), replaced atomically."""
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(json.dumps(_json_safe(data), indent=2) + '\n')
    os.replace(tmp, path)
