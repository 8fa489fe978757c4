"""Per-frame metric alignment time (fit_log_affine + apply_log_affine), median of 50 runs.

Synthetic scene: planes and boxes, a PPD-like prediction (normalised log depth, noise,
unknown affine) and a sensor-like reference (1 % noise, 5 % outliers, 30 % holes).
Run: python bench/bench_alignment.py
"""
import time

import numpy as np

from ppd_ros.alignment import apply_log_affine, fit_log_affine

RUNS = 50
TARGET_MS = 5.0


def synthetic_frame(height, width, rng):
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    focal = 0.9 * width
    floor = np.where(v > height / 2 + 1, 1.2 * focal / np.maximum(v - height / 2, 1e-3), np.inf)
    depth = np.minimum(floor, 7.0 + 2.0 * u / width)
    depth[(u > 0.3 * width) & (u < 0.5 * width) & (v > 0.35 * height) & (v < 0.7 * height)] = 2.5
    log_depth = np.log1p(depth)
    q2, q98 = np.quantile(log_depth[::4, ::4], [0.02, 0.98])
    pred = (0.8 * (log_depth - q2) / (q98 - q2) + 0.1
            + rng.normal(0, 0.005, depth.shape)).astype(np.float32)
    ref = (depth * (1 + 0.01 * rng.normal(size=depth.shape))).astype(np.float32)
    outliers = rng.random(depth.shape) < 0.05
    ref[outliers] = rng.uniform(0.3, 20.0, outliers.sum())
    ref[rng.random(depth.shape) < 0.3] = np.nan
    return pred, ref


def median_ms(function, runs=RUNS):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def main():
    rng = np.random.default_rng(0)
    print(f'{"resolution":>12} {"fit ms":>8} {"apply ms":>9} {"total ms":>9}'
          f'  (target total <= {TARGET_MS} ms at 1280x720)')
    for width, height in ((640, 480), (1280, 720)):
        pred, ref = synthetic_frame(height, width, rng)
        fit = fit_log_affine(pred, ref)
        assert fit.ok, fit.reason
        fit_ms = median_ms(lambda: fit_log_affine(pred, ref))
        apply_ms = median_ms(lambda: apply_log_affine(pred, fit.a, fit.b, 0.1, 20.0))
        total_ms = median_ms(lambda: align_frame(pred, ref))
        print(f'{f"{width}x{height}":>12} {fit_ms:8.2f} {apply_ms:9.2f} {total_ms:9.2f}')


def align_frame(pred, ref):
    fit = fit_log_affine(pred, ref)
    return apply_log_affine(pred, fit.a, fit.b, 0.1, 20.0)


if __name__ == '__main__':
    main()
