"""Cost of the temporal features: K noise draws in one batch, and the temporal stage.

1. Ensembles: DepthPredictor.predict(rgb, samples=K) with the shipped tiny model on a
   320 x 240 image (network 96 x 128), 4 steps: K = 1, 2, 4, 8 in one batch and K = 4 as
   four separate calls, wall time and the predictor's encoder / DiT times; ratios against
   K = 1. The target is K = 4 batched <= 2.5 x one sample.
2. Temporal stage: TemporalDepth.update (scene-change test, DIS optical flow, warp, affine
   fit, blend) with the node's defaults, on consecutive frames of a synthetic camera walk at
   320 x 240, 640 x 480 and 1280 x 720: median ms per frame; and the scene-change test alone.

Both run in this process with torch and OpenCV limited to --threads threads (default 1: the
machine is shared; ratios matter more than absolute times). The ensemble table also gives the
process's CPU time per variant: with one thread it is the work done, which other jobs on a
shared machine disturb much less than the wall time.
Run: flock /work/coord/heavy.lock python bench/bench_temporal.py
"""
from __future__ import annotations

import argparse
import time

import numpy as np

WALK = ((320, 240), (640, 480), (1280, 720))


def median_seconds(function, runs: int) -> float:
    function()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def ensemble_table(checkpoint: str, runs: int) -> None:
    """The variants take turns, run after run, so that load on a shared machine hits them
    alike; medians over the runs."""
    from ppd_ros.model import load_predictor
    from ppd_ros.pipeline.package_paths import resolve_package_path
    from ppd_ros.synthetic import generate_frame
    predictor = load_predictor(str(resolve_package_path(checkpoint)), device='cpu')
    rgb = generate_frame(1_000_000, 320, 240).rgb
    h, w = predictor.network_size(240, 320)
    variants = {'K = 1': lambda: [predictor.predict(rgb, steps=4, seed=0)]}
    for k in (2, 4, 8):
        variants[f'K = {k}, one batch'] = (
            lambda k=k: [predictor.predict(rgb, steps=4, seed=0, samples=k)])
    variants['K = 4, four calls'] = lambda: [predictor.predict(rgb, steps=4, seed=s)
                                             for s in range(4)]
    times = {name: [] for name in variants}
    for run in range(runs + 1):
        for name, function in variants.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            predictions = function()
            if run:  # the first round warms up
                times[name].append((time.perf_counter() - start,
                                    sum(p.timings['semantics'] for p in predictions),
                                    sum(p.timings['dit'] for p in predictions),
                                    time.process_time() - cpu_start))
    medians = {name: np.median(np.array(values), axis=0) for name, values in times.items()}
    one = medians['K = 1']
    print(f'ensembles: tiny model, 320x240 input (network {h}x{w}), 4 steps, '
          f'medians of {runs} interleaved runs')
    print(f'{"draws":<20} {"total ms":>9} {"x one":>6} {"encoder ms":>11} {"DiT ms":>8} '
          f'{"DiT x one":>10} {"CPU ms":>8} {"CPU x one":>10}')
    for name, (total, encoder, dit, cpu) in medians.items():
        print(f'{name:<20} {1e3 * total:9.1f} {total / one[0]:6.2f} {1e3 * encoder:11.1f} '
              f'{1e3 * dit:8.1f} {dit / one[2]:10.2f} {1e3 * cpu:8.1f} {cpu / one[3]:10.2f}')


def temporal_table() -> None:
    from ppd_ros.pipeline.scene_change import SceneChangeDetector
    from ppd_ros.pipeline.temporal_smoothing import RECOMMENDED, TemporalDepth
    from ppd_ros.synthetic import generate_sequence
    print('\ntemporal stage (node defaults: smoothing 0.8, motion compensation), ms per frame')
    print(f'{"image":>10} {"temporal stage":>15} {"scene test only":>16}')
    for width, height in WALK:
        frames = list(generate_sequence(1_000_000, 2, width, height))
        rng = np.random.default_rng(0)
        relative = [(np.log1p(np.nan_to_num(f.depth, nan=20.0)) / 3.0
                     + rng.normal(0, 0.01, f.depth.shape)).astype(np.float32) for f in frames]
        temporal = TemporalDepth()
        detector = SceneChangeDetector()
        state = {'k': 0}

        def stage():
            k = state['k'] = 1 - state['k']
            temporal.update(relative[k], frames[k].rgb, RECOMMENDED)

        def scene_test():
            k = state['k'] = 1 - state['k']
            detector.update(frames[k].rgb)
        print(f'{f"{width}x{height}":>10} {1e3 * median_seconds(stage, 30):15.2f} '
              f'{1e3 * median_seconds(scene_test, 30):16.2f}')


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--checkpoint', default='models/tiny_ppd.safetensors')
    parser.add_argument('--runs', type=int, default=15)
    args = parser.parse_args(argv)
    import cv2
    import torch
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    ensemble_table(args.checkpoint, args.runs)
    temporal_table()


if __name__ == '__main__':
    main()
