"""Scene cuts in depth.mode 'reference': how fast the metric scale settles on a new room.

ROOMS x FRAMES_PER_ROOM frames (ppd_ros.synthetic.generate_room_walks: the camera walks
through one room, then is carried to the next), each with a simulated RGB-D sensor depth
(DepthSensorModel: 30 % holes, 1 % noise, flying pixels) as the depth reference, go through
DepthPipeline + ReferenceScaler exactly as depth_node runs them (tiny model, 4 steps,
seed 0, the node's temporal and scale defaults). Variants:

  fresh per room      a new pipeline and scale filter for every room (the goal)
  stream              one pipeline and filter for all frames: depth_node today
  stream, before      the same without temporal smoothing and without the scene-change
                      restart of the scale filter (depth_node before this change)
  stream, glitches    as 'stream', but in every room frame FRAMES_PER_ROOM // 2 has a bad
                      reference (every depth 30 % too far): the outlier test must hold the
                      scale there, as before

Columns: AbsRel of the published metres against the exact depth (mean over frames, pixels
where both are valid), its ratio to 'fresh per room', and the frames after each cut until
the applied scale settles: the first frame of the room from which on the scale's depth at
the frame's median prediction stays within 5 % of fresh-per-room's (0 = on the cut frame),
max and mean over the cuts ('never' if it does not within the room).

Run: python bench/scene_cut_recovery.py [--rooms 10 --frames-per-room 10 --width 320
     --height 240 --seed 1000500]
"""
from __future__ import annotations

import argparse
import hashlib
import math
from dataclasses import replace

import numpy as np

from ppd_ros.evaluation.metrics import depth_metrics
from ppd_ros.model import load_predictor
from ppd_ros.pipeline.depth_pipeline import DepthPipeline, PipelineOptions
from ppd_ros.pipeline.metric_scaler import ReferenceScaler, ScaleSettings
from ppd_ros.pipeline.package_paths import resolve_package_path
from ppd_ros.pipeline.temporal_smoothing import RECOMMENDED, TemporalSettings
from ppd_ros.synthetic import DepthSensorModel, generate_room_walks

SETTLED_WITHIN = 0.05
GLITCH_FACTOR = 1.3
NODE_OPTIONS = PipelineOptions(steps=4, seed=0, cloud=False, colorize=False,
                               temporal=RECOMMENDED)
BEFORE_OPTIONS = replace(NODE_OPTIONS, temporal=TemporalSettings(
    smoothing=0.0, scene_change_threshold=math.inf))


class MemoPredictor:
    """The model, run once per distinct image (every variant sees the same frames)."""

    def __init__(self, predictor):
        self.predictor = predictor
        self._memo = {}

    def predict(self, rgb, steps=4, seed=None):
        key = (hashlib.sha1(np.ascontiguousarray(rgb).tobytes()).digest(), steps, seed)
        if key not in self._memo:
            self._memo[key] = self.predictor.predict(rgb, steps=steps, seed=seed)
        return self._memo[key]


def stream(frames, predictor, options, fresh_per_room=False, glitch_at=None):
    """Per frame: (metres or None, applied (a, b), median relative prediction)."""
    outputs, pipeline, scaler, room_before = [], None, None, None
    for index, (room, frame, reference) in enumerate(frames):
        if pipeline is None or (fresh_per_room and room != room_before):
            pipeline = DepthPipeline(predictor, overlap=False)
            scaler = ReferenceScaler(ScaleSettings())
        room_before = room
        if glitch_at is not None and glitch_at(index):
            reference = reference * GLITCH_FACTOR
        scaler.begin_frame(index * 0.1, reference)
        result = pipeline.process(frame.rgb, None, options, scaler)
        status = scaler.status
        outputs.append((result.metres, (status.a, status.b),
                        float(np.median(result.relative))))
    return outputs


def settle_frames(room_slice, run, fresh):
    """Frames after the cut until run's scale stays within SETTLED_WITHIN of fresh's."""
    settled = None
    for k, index in enumerate(room_slice):
        _, (a, b), median = run[index]
        _, (fa, fb), _ = fresh[index]
        depth, goal = np.expm1(a * median + b), np.expm1(fa * median + fb)
        close = np.isfinite(depth) and abs(depth / goal - 1.0) <= SETTLED_WITHIN
        if not close:
            settled = None
        elif settled is None:
            settled = k
    return settled


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rooms', type=int, default=10)
    parser.add_argument('--frames-per-room', type=int, default=10)
    parser.add_argument('--width', type=int, default=320)
    parser.add_argument('--height', type=int, default=240)
    parser.add_argument('--seed', type=int, default=1_000_500,
                        help='room r is seed + r (held-out seeds: >= 1000000)')
    parser.add_argument('--checkpoint', default='models/tiny_ppd.safetensors')
    args = parser.parse_args(argv)

    import torch
    torch.manual_seed(0)
    predictor = MemoPredictor(load_predictor(str(resolve_package_path(args.checkpoint)),
                                             device='cpu'))
    sensor = DepthSensorModel()
    per_room = args.frames_per_room
    frames = [(room, frame, sensor.corrupt(frame.depth, i)) for i, (room, frame) in
              enumerate(generate_room_walks(args.seed, args.rooms * per_room, per_room,
                                            args.width, args.height))]
    truths = [frame.depth for _, frame, _ in frames]
    runs = {
        'fresh per room': stream(frames, predictor, NODE_OPTIONS, fresh_per_room=True),
        'stream': stream(frames, predictor, NODE_OPTIONS),
        'stream, before': stream(frames, predictor, BEFORE_OPTIONS),
        'stream, glitches': stream(frames, predictor, NODE_OPTIONS,
                                   glitch_at=lambda i: i % per_room == per_room // 2),
    }
    fresh = runs['fresh per room']
    rooms = [range(r * per_room, (r + 1) * per_room) for r in range(args.rooms)]
    rows = []
    for name, run in runs.items():
        scores = [depth_metrics(m, t)['abs_rel'] if m is not None else math.nan
                  for (m, _, _), t in zip(run, truths)]
        settles = [settle_frames(room, run, fresh) for room in rooms[1:]]
        rows.append((name, float(np.nanmean(scores)), int(np.sum(np.isnan(scores))), settles))
    base = rows[0][1]
    print(f'{args.rooms} rooms x {per_room} frames, {args.width}x{args.height}, '
          f'reference mode (simulated RGB-D sensor), tiny model, 4 steps, seed 0')
    print(f'{"variant":<18} {"AbsRel":>7} {"ratio":>6} {"no depth":>8} '
          f'{"settle max":>10} {"settle mean":>11}')
    for name, abs_rel, missing, settles in rows:
        never = any(s is None for s in settles)
        worst = 'never' if never else str(max(settles, default=0))
        mean = 'n/a' if never else f'{np.mean(settles):.1f}'
        print(f'{name:<18} {abs_rel:7.4f} {abs_rel / base:6.3f} {missing:8d} {worst:>10} '
              f'{mean:>11}')


if __name__ == '__main__':
    main()
