"""Paired comparison of two models evaluated on the same held-out frames.

For a metric m, the per-frame differences d_s = m_A(s) - m_B(s) over the seeds s both models
were scored on (NaNs skipped: an edge metric is NaN where a frame has no edge band) give
    mean        the mean difference (negative: A is lower)
    ci_low/high a percentile bootstrap interval of that mean (frames resampled with replacement)
    share_lower the share of frames where A is strictly lower
Pairing removes the frame-to-frame spread that two separate means carry, so small but
consistent differences (one model better on most frames) show as an interval that excludes 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

COMPARED_METRICS = ('abs_rel', 'd1', 'edge_chamfer_m', 'flying_pixel_ratio')


@dataclass(frozen=True)
class PairedDifference:
    metric: str
    mean: float
    ci_low: float
    ci_high: float
    share_lower: float
    n_frames: int
    confidence: float


def paired_difference(frames_a: Sequence[dict], frames_b: Sequence[dict], metric: str,
                      n_boot: int = 5000, confidence: float = 0.95, seed: int = 0) -> PairedDifference:
    """Mean of metric(A) - metric(B) over shared seeds, with a bootstrap interval."""
    by_seed = {frame['seed']: frame[metric] for frame in frames_b}
    diffs = np.array([frame[metric] - by_seed[frame['seed']] for frame in frames_a
                      if frame['seed'] in by_seed], dtype=np.float64)
    diffs = diffs[np.isfinite(diffs)]
    if diffs.size == 0:
        raise ValueError(f'no frame has a finite {metric} for both models')
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, diffs.size, size=(n_boot, diffs.size))].mean(axis=1)
    tail = 50.0 * (1.0 - confidence)
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return PairedDifference(metric, float(diffs.mean()), float(low), float(high),
                            float((diffs < 0).mean()), int(diffs.size), confidence)


def compare_models(report: dict, name_a: str, name_b: str,
                   metrics: Sequence[str] = COMPARED_METRICS, **kwargs) -> list[PairedDifference]:
    """Paired differences A - B for each metric of an evaluate_checkpoints report."""
    models = report['models']
    for name in (name_a, name_b):
        if name not in models:
            raise KeyError(f'{name!r} is not in the report (it has {", ".join(models)})')
    return [paired_difference(models[name_a]['frames'], models[name_b]['frames'], metric, **kwargs)
            for metric in metrics]


def format_differences(name_a: str, name_b: str, differences: Sequence[PairedDifference]) -> str:
    """Markdown table of paired differences."""
    level = f'{differences[0].confidence:.0%} CI' if differences else 'CI'
    lines = [f'| metric | mean {name_a} − {name_b} | {level} | {name_a} lower on | frames |',
             '|---|---|---|---|---|']
    for d in differences:
        lines.append(f'| {d.metric} | {d.mean:+.4f} | {d.ci_low:+.4f} … {d.ci_high:+.4f} | '
                     f'{d.share_lower:.0%} | {d.n_frames} |')
    return '\n'.join(lines)
