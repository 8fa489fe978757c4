"""Which ensemble statistic: mean or median of K draws as the depth, and which per-pixel
spread ranks the error best.

Held-out frames (seeds from 1,000,000, never trained on) at the tiny model's own 128 x 96,
K noise draws in one batch (seed 0, 4 steps). Per frame, each depth candidate (draw 0 alone,
mean, median of the K) is aligned with the paper's RANSAC fit and scored (AbsRel); the error
map |aligned mean - GT| / GT is then ranked by each uncertainty candidate (standard
deviation, range, interquartile range and median absolute deviation of the K draws, and the
gradient magnitude of the mean, a common cheap proxy): Spearman per frame (mean) and pooled
over all pixels, and AUSE (ppd_ros.evaluation.uncertainty) against a random ranking's.

Run: python bench/confidence_measures.py [--frames 30 --samples 8]
"""
from __future__ import annotations

import argparse

import cv2
import numpy as np

from ppd_ros.evaluation.alignment_eval import align_ransac_log
from ppd_ros.evaluation.metrics import depth_metrics
from ppd_ros.evaluation.uncertainty import relative_error, sparsification, spearman


def spreads(draws: np.ndarray, mean: np.ndarray) -> dict[str, np.ndarray]:
    median = np.median(draws, axis=0)
    q25, q75 = np.quantile(draws, [0.25, 0.75], axis=0)
    gradient = np.hypot(cv2.Sobel(mean, cv2.CV_32F, 1, 0), cv2.Sobel(mean, cv2.CV_32F, 0, 1))
    return {'standard deviation': draws.std(axis=0),
            'range (max - min)': draws.max(axis=0) - draws.min(axis=0),
            'interquartile range': q75 - q25,
            'median absolute deviation': np.median(np.abs(draws - median), axis=0),
            'gradient of the mean (proxy)': gradient}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--frames', type=int, default=30)
    parser.add_argument('--samples', type=int, default=8)
    parser.add_argument('--checkpoint', default='models/tiny_ppd.safetensors')
    args = parser.parse_args(argv)
    from ppd_ros.model import load_predictor
    from ppd_ros.pipeline.package_paths import resolve_package_path
    from ppd_ros.synthetic import generate_frame
    from ppd_ros.training.seed_splits import eval_seeds
    predictor = load_predictor(str(resolve_package_path(args.checkpoint)), device='cpu')
    abs_rel = {'one draw': [], 'mean': [], 'median': []}
    per_frame, pooled_u, pooled_e, ause, ause_random = {}, {}, [], {}, []
    for seed in eval_seeds(args.frames):
        frame = generate_frame(seed, 128, 96)
        draws = predictor.predict(frame.rgb, steps=4, seed=0,
                                  samples=args.samples).network_samples
        assert draws.shape[1:] == frame.depth.shape, 'expects the network size = image size'
        candidates = {'one draw': draws[0], 'mean': draws.mean(axis=0),
                      'median': np.median(draws, axis=0)}
        for name, depth in candidates.items():
            aligned = align_ransac_log(depth, frame.depth).depth
            abs_rel[name].append(depth_metrics(aligned, frame.depth)['abs_rel'])
            if name == 'mean':
                error = relative_error(aligned, frame.depth)
        valid = np.isfinite(error)
        pooled_e.append(error[valid])
        for name, u in spreads(draws, candidates['mean']).items():
            per_frame.setdefault(name, []).append(spearman(u, error))
            pooled_u.setdefault(name, []).append(u[valid])
            curve = sparsification(u, error)
            ause.setdefault(name, []).append(curve.ause)
        ause_random.append(curve.ause_random)
    print(f'{args.frames} held-out frames, 128x96, K = {args.samples}, 4 steps, seed 0')
    print(f'{"depth":<12} {"AbsRel":>7}')
    for name, values in abs_rel.items():
        print(f'{name:<12} {np.mean(values):7.4f}')
    errors = np.concatenate(pooled_e)
    print(f'\n{"uncertainty":<30} {"Spearman/frame":>14} {"pooled":>7} {"AUSE":>7}')
    for name in per_frame:
        print(f'{name:<30} {np.mean(per_frame[name]):14.3f} '
              f'{spearman(np.concatenate(pooled_u[name]), errors):7.3f} '
              f'{np.mean(ause[name]):7.4f}')
    print(f'{"random ranking":<30} {0.0:14.3f} {0.0:7.3f} {np.mean(ause_random):7.4f}')


if __name__ == '__main__':
    main()
