"""Per-frame cost of edge-aware upsampling plus depth-sensor fusion, median of N runs.

A synthetic room rendered at the camera size gives the exact depth and the colour image; the
RGB-D sensor is the demo's DepthSensorModel (30 % holes, 1 % noise, flying pixels at depth
edges; hole size scaled with the image width); PPD's network output is the exact relative
depth at the network size of `tiny` and of `large` (nearest-sampled), so that the depth edges
are those of the scene. Each row is timed in this process, one after the other, as the node
runs it: wall-clock and CPU (process) milliseconds. Run it alone (the machine is shared):

    flock /work/coord/heavy.lock python bench/bench_fusion.py [--runs 30]
"""
from __future__ import annotations

import argparse
import os
import time

import cv2
import numpy as np

from ppd_ros.fusion.depth_fusion import FusionSettings, fuse_depth
from ppd_ros.geometry.depth_upsampling import upsample_depth
from ppd_ros.model.network_resolution import bounded_network_size
from ppd_ros.synthetic import DepthSensorModel, generate_frame

TARGET_MS = 15.0
#: Network areas of the shipped variants (training areas).
NETWORK_AREAS = {'tiny': 128 * 96, 'large': 1024 * 768}


def timed(function, runs: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds of ``function()`` over ``runs`` calls (after one)."""
    function()
    wall, cpu = [], []
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        function()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return 1e3 * float(np.median(wall)), 1e3 * float(np.median(cpu))


def scene(width: int, height: int, seed: int = 1_000_007):
    frame = generate_frame(seed, width, height)
    exact = np.where(frame.valid, frame.depth, np.nan).astype(np.float32)
    sensor = DepthSensorModel(hole_size_px=16.0 * width / 320).corrupt(exact)
    log_depth = np.log1p(np.where(frame.valid, frame.depth, 20.0)).astype(np.float32)
    return frame.rgb, sensor, log_depth


def rows_for(width: int, height: int, runs: int) -> list[tuple[str, float, float]]:
    rgb, sensor, log_depth = scene(width, height)
    rows = []
    for variant, area in NETWORK_AREAS.items():
        h, w = bounded_network_size(height, width, area)
        network = cv2.resize(log_depth, (w, h), interpolation=cv2.INTER_NEAREST_EXACT)
        network_rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)

        def upsample(method='edge_aware'):
            return upsample_depth(network, height, width, method, rgb, network_rgb, step=0.04)

        def upsample_and_fuse():
            return fuse_depth(upsample(), sensor, rgb)

        name = f'{variant} ({w}x{h})'
        rows.append((f'{name}: upsample bilinear (reference)',
                     *timed(lambda: upsample('bilinear'), runs)))
        rows.append((f'{name}: upsample edge_aware', *timed(upsample, runs)))
        rows.append((f'{name}: upsample edge_aware + fusion', *timed(upsample_and_fuse, runs)))
    fused_input = upsample_depth(log_depth, height, width)
    rows.append(('fusion alone', *timed(lambda: fuse_depth(fused_input, sensor, rgb), runs)))
    rows.append(('fusion alone, with source map',
                 *timed(lambda: fuse_depth(fused_input, sensor, rgb, with_source=True), runs)))
    full = FusionSettings(work_width=width)
    rows.append(('fusion alone, working grid = full size (for comparison)',
                 *timed(lambda: fuse_depth(fused_input, sensor, rgb, full), max(3, runs // 5))))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--runs', type=int, default=30)
    parser.add_argument('--sizes', default='1280x720,640x480')
    args = parser.parse_args()
    print(f'cv2 threads {cv2.getNumThreads()}, load average '
          f'{" ".join(f"{v:.1f}" for v in os.getloadavg())}; target: upsample + fusion '
          f'<= {TARGET_MS:g} ms at 1280x720')
    for size in args.sizes.split(','):
        width, height = (int(v) for v in size.split('x'))
        print(f'\n| {width}x{height} | wall ms | CPU ms |\n|---|---:|---:|')
        for name, wall, cpu in rows_for(width, height, args.runs):
            print(f'| {name} | {wall:.2f} | {cpu:.2f} |')


if __name__ == '__main__':
    main()
