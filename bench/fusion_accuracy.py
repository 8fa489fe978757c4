"""Accuracy of depth-sensor fusion on held-out synthetic rooms: the fusion comparison table.

Every room (held-out seeds, never used in training) is rendered at 320x240; the RGB-D sensor
is the demo's DepthSensorModel (30 % holes, 1 % noise, flying pixels at depth edges); PPD is
the shipped tiny model (4 steps, seed 0, edge-aware upsampling). Each room is scored with
ppd_ros.evaluation.fusion_comparison (the node's fusion code, one fit per room) against the
exact depth: the sensor; ppd_ros fused; the same fusion with PPD replaced by inpainting of
the sensor; PPD alone, aligned. Prints a markdown table of the means.

    flock /work/coord/heavy.lock python bench/fusion_accuracy.py [--rooms 60] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from tqdm import tqdm

from ppd_ros.evaluation.fusion_comparison import (COMPARISON_COLUMNS, COMPARISON_COUNT_COLUMNS,
                                                  comparison_depths, comparison_table,
                                                  score_comparison)
from ppd_ros.evaluation.summary import metric_means
from ppd_ros.geometry.camera_model import camera_from_info_fields
from ppd_ros.model import load_predictor
from ppd_ros.pipeline.package_paths import resolve_package_path
from ppd_ros.synthetic import DepthSensorModel, generate_frame
from ppd_ros.training.seed_splits import eval_seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rooms', type=int, default=60)
    parser.add_argument('--width', type=int, default=320)
    parser.add_argument('--height', type=int, default=240)
    parser.add_argument('--checkpoint', default='models/tiny_ppd.safetensors')
    parser.add_argument('--json', default=None, help='also write the per-room scores here')
    args = parser.parse_args()
    predictor = load_predictor(str(resolve_package_path(args.checkpoint)), device='cpu')
    sensor = DepthSensorModel()
    rows = []
    started = time.monotonic()
    for index, seed in enumerate(tqdm(eval_seeds(args.rooms), desc='rooms', unit='room')):
        frame = generate_frame(seed, args.width, args.height)
        exact = np.where(frame.valid, frame.depth, np.nan).astype(np.float32)
        sensed = sensor.corrupt(exact, index)
        relative = predictor.predict(frame.rgb, steps=4, seed=0).depth
        info = frame.camera_info
        camera = camera_from_info_fields(info.k, info.p, info.width, info.height)
        depths = comparison_depths(relative, sensed, frame.rgb)
        rows.append({'seed': seed, **score_comparison(depths, exact, camera)})
    columns = [c for c in COMPARISON_COLUMNS if c not in COMPARISON_COUNT_COLUMNS]
    means = metric_means(rows, columns)['mean']
    print(f'{args.rooms} held-out rooms at {args.width}x{args.height}, '
          f'{time.monotonic() - started:.0f} s, load average '
          f'{" ".join(f"{v:.1f}" for v in os.getloadavg())}\n')
    print(comparison_table(means))
    fused, sensed = means['fused_flying_pixel_ratio_sensor_valid'], \
        means['sensor_flying_pixel_ratio_sensor_valid']
    print(f'\nfused / sensor: flying pixels on sensor-valid edge pixels {fused / sensed:.2f}x, '
          f"edge Chamfer {means['fused_edge_chamfer_m'] / means['sensor_edge_chamfer_m']:.2f}x "
          f"(on sensor-valid pixels "
          f"{means['fused_edge_chamfer_m_sensor_valid'] / means['sensor_edge_chamfer_m']:.2f}x)")
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump({'means': means, 'rooms': rows}, handle, indent=1)


if __name__ == '__main__':
    main()
