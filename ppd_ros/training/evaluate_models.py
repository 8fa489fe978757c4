"""Held-out evaluation of trained checkpoints on synthetic frames (seeds >= EVAL_SEED_START).

Per frame: predict relative depth (``steps`` Euler steps, noise seeded by the frame's seed),
align it with the paper's RANSAC log-affine fit (ppd_ros.evaluation.align_ransac_log), then
    abs_rel, d1           depth_metrics of the aligned depth over the valid GT pixels
    edge_chamfer_m        edge-aware Chamfer distance (GT depth-edge band, metres)
    flying_pixel_ratio    share of edge-band points off both local GT surfaces
Summaries are means over frames (NaN-skipping for the edge metrics, whose band may be empty),
plus the pooled flying-pixel ratio (all flying / all band pixels).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ppd_ros.evaluation.alignment_eval import align_ransac_log
from ppd_ros.evaluation.edge_chamfer import edge_chamfer_distance
from ppd_ros.evaluation.flying_pixels import flying_pixel_ratio
from ppd_ros.evaluation.metrics import depth_metrics
from ppd_ros.model.checkpoint import require_file

from .datasets import DEFAULT_TRAIN_HEIGHT, DEFAULT_TRAIN_WIDTH
from .seed_splits import eval_seeds, is_eval_seed
from .stage1_regressor import Stage1Predictor, is_stage1_checkpoint, load_stage1, require_stage1_files

SUMMARY_COLUMNS = (('abs_rel', 'AbsRel'), ('d1', 'δ1'), ('edge_chamfer_m', 'edge Chamfer (m)'),
                   ('flying_pixel_ratio', 'flying-pixel ratio'))


def load_any_predictor(path: str | os.PathLike, device: str = 'cpu', precision: str = 'fp32'):
    """Stage1Predictor for a stage-1 file (always fp32), else load_predictor(checkpoint=path)."""
    if is_stage1_checkpoint(path):
        return Stage1Predictor(load_stage1(path), device)
    from ppd_ros.model.predictor import load_predictor
    return load_predictor(checkpoint=path, device=device, precision=precision)


def held_out_frames(n_frames: int, width: int = DEFAULT_TRAIN_WIDTH, height: int = DEFAULT_TRAIN_HEIGHT,
                    start_seed: int | None = None) -> list:
    """(seed, SyntheticFrame) for ``n_frames`` held-out seeds."""
    from ppd_ros.synthetic import generate_frame
    seeds = eval_seeds(n_frames) if start_seed is None else eval_seeds(n_frames, start_seed)
    return [(seed, generate_frame(seed, width, height)) for seed in seeds]


def evaluate_frame(predictor, frame, steps: int = 4, noise_seed: int = 0) -> dict:
    prediction = predictor.predict(frame.rgb, steps=steps, seed=noise_seed)
    gt, valid = frame.depth, frame.valid
    intr = frame.intrinsics
    intrinsics = (intr.fx, intr.fy, intr.cx, intr.cy)
    metric = align_ransac_log(prediction.depth, gt, valid, seed=0).depth
    result = depth_metrics(metric, gt, valid)
    chamfer = edge_chamfer_distance(metric, gt, intrinsics, valid)
    flying = flying_pixel_ratio(metric, gt, intrinsics, valid)
    result.update(edge_chamfer_m=chamfer.chamfer_m, flying_pixel_ratio=flying.ratio,
                  n_band=flying.n_band, n_flying=int(flying.flying.sum()))
    return result


def summarise(frames: Sequence[dict]) -> dict:
    summary = {key: float(np.nanmean([f[key] for f in frames]))
               for key in ('abs_rel', 'd05', 'd1', 'd2', 'd3', 'edge_chamfer_m', 'flying_pixel_ratio')}
    band = sum(f['n_band'] for f in frames)
    summary['flying_pixel_ratio_pooled'] = sum(f['n_flying'] for f in frames) / band if band else float('nan')
    summary['n_frames'] = len(frames)
    return summary


def evaluate_predictor(predictor, frames: Iterable, steps: int = 4, progress: bool = False,
                       label: str = 'evaluating') -> dict:
    from tqdm import tqdm
    results = []
    for seed, frame in tqdm(list(frames), disable=not progress, mininterval=5, desc=label,
                            unit='frame'):
        if not is_eval_seed(seed):
            raise ValueError(f'seed {seed} is a training seed')
        results.append({'seed': seed, **evaluate_frame(predictor, frame, steps, noise_seed=seed)})
    return {'summary': summarise(results), 'frames': results}


def format_table(summaries: dict[str, dict]) -> str:
    """Markdown table: one row per model."""
    header = '| model | ' + ' | '.join(label for _, label in SUMMARY_COLUMNS) + ' |'
    lines = [header, '|' + '---|' * (len(SUMMARY_COLUMNS) + 1)]
    for name, summary in summaries.items():
        lines.append(f'| {name} | ' + ' | '.join(f'{summary[key]:.4f}' for key, _ in SUMMARY_COLUMNS) + ' |')
    return '\n'.join(lines)


def default_names(paths: Sequence[str | os.PathLike]) -> list[str]:
    """File stems, with the parent folder where stems repeat (out/a/final, out/b/final)."""
    stems = [Path(p).stem for p in paths]
    return [f'{Path(p).parent.name}/{stem}' if stems.count(stem) > 1 else stem
            for p, stem in zip(paths, stems)]


def evaluate_checkpoints(paths: Sequence[str | os.PathLike], names: Sequence[str] | None = None,
                         n_frames: int = 200, steps: int = 4, device: str = 'cpu',
                         json_path: str | os.PathLike | None = None, progress: bool = True,
                         precision: str = 'fp32') -> dict:
    """Evaluate every checkpoint on the same held-out frames; print the table; write JSON."""
    names = list(names) if names else default_names(paths)
    if len(names) != len(paths):
        raise ValueError(f'give one name per checkpoint ({len(paths)} checkpoints, '
                         f'{len(names)} names)')
    if len(set(names)) != len(names):
        raise ValueError(f'model names must differ, got {names}')
    for path in paths:  # a missing file fails now, not after the models before it
        if is_stage1_checkpoint(path):
            require_stage1_files(path)
        else:
            require_file(path)
    frames = held_out_frames(n_frames)
    report = {'n_frames': n_frames, 'steps': steps, 'precision': precision,
              'seeds': [frames[0][0], frames[-1][0]], 'models': {}}
    for number, (name, path) in enumerate(zip(names, paths), 1):
        label = f'{name} ({number}/{len(paths)})' if len(paths) > 1 else name
        result = evaluate_predictor(load_any_predictor(path, device, precision), frames, steps,
                                    progress, label)
        report['models'][name] = {'checkpoint': str(path), **result}
    summaries = {name: r['summary'] for name, r in report['models'].items()}
    print(format_table(summaries))
    if json_path is not None:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(report, indent=1))
    return report
