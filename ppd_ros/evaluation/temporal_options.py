"""The depth node's temporal.* parameters as ppd-eval options: same meaning and defaults
(ppd_ros.pipeline.temporal_smoothing.RECOMMENDED)."""
from __future__ import annotations

import argparse

from ppd_ros.cli.tool_main import ToolError
from ppd_ros.pipeline.temporal_smoothing import RECOMMENDED, TemporalSettings


def add_temporal_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group('temporal (the depth node parameters temporal.*)')
    group.add_argument('--temporal-smoothing', type=float, default=RECOMMENDED.smoothing,
                       metavar='W', help='weight of the previous frame in the smoothed relative '
                       'depth, 0 <= W < 1; 0 turns smoothing off (default %(default)s)')
    group.add_argument('--temporal-max-difference', type=float,
                       default=RECOMMENDED.max_difference, metavar='D',
                       help='pixels whose relative depth changed by D or more are not smoothed '
                            '(default %(default)s)')
    group.add_argument('--no-motion-compensation', action='store_true',
                       help='blend with the previous frame without warping it by optical flow')
    group.add_argument('--temporal-keep-edges', action=argparse.BooleanOptionalAction,
                       default=RECOMMENDED.keep_edges,
                       help='keep the depth edges of each frame: a smoothed value between the '
                            'two sides of an edge takes the nearer side (default: %(default)s)')
    group.add_argument('--scene-change-threshold', type=float,
                       default=RECOMMENDED.scene_change_threshold, metavar='S',
                       help='image-change score above which a frame starts a new scene '
                            '(smoothing restarts) (default %(default)s)')


def temporal_settings_from_args(args: argparse.Namespace) -> TemporalSettings:
    """TemporalSettings of parsed add_temporal_arguments options; ToolError for impossible
    values."""
    if not 0.0 <= args.temporal_smoothing < 1.0:
        raise ToolError(f'--temporal-smoothing must be in [0, 1), got {args.temporal_smoothing}')
    if args.temporal_max_difference <= 0 or args.scene_change_threshold <= 0:
        raise ToolError('--temporal-max-difference and --scene-change-threshold must be > 0')
    return TemporalSettings(args.temporal_smoothing, args.temporal_max_difference,
                            not args.no_motion_compensation, args.scene_change_threshold,
                            args.temporal_keep_edges)
