"""``ppd-eval``: evaluate PPD depth on a rosbag2 bag, offline (default) or live through depth_node.

    ppd-eval BAG --image-topic /camera/image_raw --depth-topic /camera/depth/image_raw \
        --out out/eval [--start 0 --end 100 --stride 2] [--pictures 4]
    ppd-eval BAG ... --mode live --launch-node --rate 5
    ppd-eval BAG ... --mode live --launch-node --reference-topic /camera/aligned_depth/image_raw
    ppd-eval BAG ... --depth-topic /gt --reference-topic /camera/aligned_depth/image_raw

Offline writes frames.csv, summary.json, depth_bag/, pictures/ and metrics_over_time.png to
--out and resumes an interrupted run when given the same command again; with
--reference-topic it also scores depth-sensor fusion (the sensor, ppd_ros fused, the same
fusion with inpainting instead of PPD, PPD aligned) and prints that table. Live mode plays the
bag into a running (or --launch-node: spawned) depth_node and writes live_frames.csv,
live_summary.json, live_bag/ and live_metrics.png; with --reference-topic it also plays that
metric depth into the node's depth_reference (metric node: depth.mode reference). Exit
status: 0 done, 2 bad input (topic, checkpoint, arguments), 1 the live node failed, 130
interrupted.
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path
from typing import Sequence

from ppd_ros.cli.tool_main import (EXIT_FAILED, EXIT_INTERRUPTED,
                                   ToolArgumentParser, ToolError, refuse_overwriting_inputs,
                                   tool_main)
from ppd_ros.evaluation.bag_topics import AUTO
from ppd_ros.evaluation.eval_settings import (OUTPUT_STORAGES, InputSpec, LiveSettings,
                                              OfflineSettings, OutputSpec)
from ppd_ros.evaluation.frame_metrics import EdgeMetricParams
from ppd_ros.evaluation.frame_selection import FrameSelection, picture_indices
from ppd_ros.evaluation.model_options import add_model_arguments, model_options_from_args
from ppd_ros.evaluation.temporal_options import (add_temporal_arguments,
                                                 temporal_settings_from_args)

PROG = 'ppd-eval'
EXIT_NODE_FAILED = EXIT_FAILED
#: What a run writes or replaces under --out (an input bag must not be among them).
OFFLINE_OUTPUTS = ('depth_bag', 'depth_bag.partial', 'frames', 'pictures', 'frames.csv',
                   'summary.json', 'metrics_over_time.png')
LIVE_OUTPUTS = ('live_bag', 'live_bag.partial', 'live_frames.csv', 'live_summary.json',
                'live_metrics.png', 'live_node.log')


class _TqdmHandler(logging.Handler):
    """Log lines that do not tear the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm
        tqdm.write(self.format(record), file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = ToolArgumentParser(
        prog=PROG, description='Evaluate PPD depth on a rosbag2 bag, offline (default) or '
        'live through depth_node. Exit status: 0 done, 2 bad input, 1 live node failed.')
    parser.add_argument('bag', type=Path, help='rosbag2 bag (directory, .db3 or .mcap)')
    parser.add_argument('--mode', choices=('offline', 'live'), default='offline',
                        help='offline: every frame through the model in this process; live: '
                             'play the bag into depth_node over ROS 2 (default: %(default)s)')
    parser.add_argument('--out', type=Path, default=Path('out/eval'),
                        help='output folder (default: %(default)s)')
    topics = parser.add_argument_group('topics')
    topics.add_argument('--image-topic', default='/camera/image_raw',
                        help="colour images: sensor_msgs/Image or CompressedImage (the "
                             "'/compressed' sibling is found automatically; default: %(default)s)")
    topics.add_argument('--depth-topic', default=None,
                        help='ground-truth depth, 16UC1 millimetres or 32FC1 metres; without '
                             'it no accuracy metrics and the output depth stays relative')
    topics.add_argument('--camera-info-topic', default=AUTO,
                        help="sensor_msgs/CameraInfo; 'auto': the camera_info beside the image "
                             "topic if the bag has one; 'none': no intrinsics (no edge metrics, "
                             'no points) (default: %(default)s)')
    topics.add_argument('--pose-topic', default=AUTO,
                        help="geometry_msgs/PoseStamped of the camera's optical frame in a "
                             "fixed frame, for flicker; 'auto': the 'pose' beside the image "
                             "topic if the bag has one; 'none': no flicker "
                             '(default: %(default)s)')
    topics.add_argument('--gt-max-dt', type=float, default=0.005,
                        help='largest stamp difference [s] between an image and its GT depth '
                             '(default: %(default)s)')
    add_model_arguments(parser)
    add_temporal_arguments(parser)
    frames = parser.add_argument_group('frames')
    frames.add_argument('--start', type=int, default=0, help='first frame index (inclusive)')
    frames.add_argument('--end', type=int, default=None, help='last frame index (exclusive)')
    frames.add_argument('--stride', type=int, default=1, help='evaluate every n-th frame')
    outputs = parser.add_argument_group('outputs')
    outputs.add_argument('--pictures', default='4',
                         help="side-by-side pictures: a count (evenly spaced), 'none', or frame "
                              "indices like '0,10,20' (default: %(default)s)")
    outputs.add_argument('--output-storage', choices=OUTPUT_STORAGES, default='same',
                         help='storage of the output bag (default: %(default)s)')
    outputs.add_argument('--output-namespace', default='/ppd',
                         help='offline output bag topics: <ns>/depth/image (metres, with GT) '
                              'or <ns>/depth/relative, <ns>/depth/camera_info, <ns>/points '
                              '(default: %(default)s)')
    outputs.add_argument('--fresh', action='store_true',
                         help='discard per-frame results of an earlier run in --out')
    outputs.add_argument('--no-progress', action='store_true', help='no progress bar')
    metrics = parser.add_argument_group('metrics')
    metrics.add_argument('--edge-band-px', type=int, default=3,
                         help='half-width of the GT depth-edge band, pixels (default: %(default)s)')
    metrics.add_argument('--flying-tau', type=float, default=0.02,
                         help='flying-pixel threshold relative to the GT depth '
                              '(default: %(default)s)')
    metrics.add_argument('--ransac-seed', type=int, default=0, help='seed of the RANSAC alignment')
    live = parser.add_argument_group('live mode')
    live.add_argument('--rate', type=float, default=0.0,
                      help="publish rate [Hz]; 0 (default) follows the bag's stamps")
    live.add_argument('--sim-time', action='store_true',
                      help='keep the bag stamps and publish /clock (a launched node gets '
                           'use_sim_time:=true); otherwise frames are stamped with the wall time')
    live.add_argument('--reference-topic', default=None,
                      help="metric depth (16UC1 mm / 32FC1 m Image, e.g. an RGB-D camera's "
                           'registered depth), paired to the images by stamp like '
                           "--depth-topic. Live: played into the node's depth_reference (a "
                           'launched node gets depth.mode reference) and its metres are scored '
                           'as published. Offline (needs --depth-topic): the fusion comparison '
                           '(sensor; ppd_ros fused; fused with inpainting; PPD aligned)')
    live.add_argument('--launch-node', action='store_true',
                      help='spawn depth_node with the model options above and stop it afterwards')
    live.add_argument('--node-namespace', default='/ppd_eval',
                      help="the node's namespace: its outputs are <ns>/depth/image or "
                           "<ns>/depth/relative, <ns>/points, ... "
                           '(default: %(default)s)')
    live.add_argument('--node-param', action='append', default=[], metavar='NAME:=VALUE',
                      help='extra parameter for a launched node (repeatable)')
    live.add_argument('--node-timeout', type=float, default=120.0,
                      help='seconds to wait for the node to come up (default: %(default)s)')
    live.add_argument('--settle', type=float, default=3.0,
                      help='seconds to wait for outputs after the last publish / output '
                           '(default: %(default)s)')
    return parser


def settings_from_args(args: argparse.Namespace):
    """OfflineSettings or LiveSettings of parsed arguments; ToolError for impossible values."""
    info = None if args.camera_info_topic.lower() == 'none' else args.camera_info_topic
    pose = None if args.pose_topic.lower() == 'none' else args.pose_topic
    try:
        selection = FrameSelection(args.start, args.end, args.stride)
        picture_indices(args.pictures, [])  # checks the --pictures syntax
    except ValueError as err:
        raise ToolError(err) from None
    spec = InputSpec(bag=args.bag, image_topic=args.image_topic, gt_topic=args.depth_topic,
                     info_topic=info, gt_max_dt_s=args.gt_max_dt, selection=selection,
                     reference_topic=args.reference_topic, pose_topic=pose)
    output = OutputSpec(out_dir=args.out, storage=args.output_storage,
                        namespace=args.output_namespace, pictures=args.pictures)
    if args.edge_band_px < 0 or args.flying_tau <= 0:
        raise ToolError('--edge-band-px must be >= 0 and --flying-tau > 0')
    if args.gt_max_dt < 0:
        raise ToolError(f'--gt-max-dt must be >= 0, got {args.gt_max_dt}')
    outputs = OFFLINE_OUTPUTS if args.mode == 'offline' else LIVE_OUTPUTS
    refuse_overwriting_inputs([args.bag], [args.out / name for name in outputs],
                              'choose another --out')
    edge = EdgeMetricParams(band_px=args.edge_band_px, flying_tau_rel=args.flying_tau,
                            ransac_seed=args.ransac_seed)
    model = model_options_from_args(args)
    temporal = temporal_settings_from_args(args)
    if args.mode == 'offline':
        if args.reference_topic is not None and args.depth_topic is None:
            raise ToolError('--reference-topic offline scores the fusion against ground '
                            'truth: give --depth-topic too')
        return OfflineSettings(spec, model, output, edge, fresh=args.fresh,
                               progress=not args.no_progress, temporal=temporal)
    for param in args.node_param:
        if ':=' not in param:
            raise ToolError(f"--node-param must look like NAME:=VALUE, got '{param}'")
    if args.rate < 0 or args.settle < 0 or args.node_timeout <= 0:
        raise ToolError('--rate and --settle must be >= 0 and --node-timeout > 0')
    return LiveSettings(spec, model, output, edge, rate_hz=args.rate, sim_time=args.sim_time,
                        launch_node=args.launch_node, node_namespace=args.node_namespace,
                        node_params=tuple(args.node_param),
                        startup_timeout_s=args.node_timeout, settle_s=args.settle,
                        temporal=temporal)


def _input_errors() -> tuple[type[BaseException], ...]:
    from ppd_ros.bag.reader import MissingTopicError
    from ppd_ros.evaluation.bag_topics import TopicTypeError
    from ppd_ros.evaluation.eval_input import EmptySelectionError
    from ppd_ros.evaluation.frame_results import StoreMismatchError
    from ppd_ros.pipeline.predictor_loading import ModelUnavailableError
    return (MissingTopicError, TopicTypeError, EmptySelectionError, StoreMismatchError,
            ModelUnavailableError, FileNotFoundError)


def _print_offline(summary: dict, out: Path) -> None:
    counts, mean = summary['counts'], summary['metrics']['mean']
    line = (f"{PROG}: {counts['evaluated']} frame(s) evaluated, {counts['corrupt']} corrupt, "
            f"{counts['without_gt']} without GT ({summary['run']['frames_processed']} processed "
            f"by this run, {summary['run']['frames_reused']} reused)")
    if counts['with_gt']:
        line += (f"; RANSAC-log AbsRel {mean['ransac_log_abs_rel']:.4f} "
                 f"δ1 {mean['ransac_log_d1']:.4f}; LSQ AbsRel {mean['lsq_abs_rel']:.4f}")
        if math.isfinite(mean['flicker']):
            line += f"; flicker {100 * mean['flicker']:.2f} %"
        if math.isfinite(mean['confidence_ause']):
            line += (f"; confidence: Spearman {mean['confidence_spearman']:.3f}, AUSE "
                     f"{mean['confidence_ause']:.4f} (random {mean['confidence_ause_random']:.4f})")
    print(line + f'; results in {out}')
    if 'fusion_comparison' in summary:
        print(summary['fusion_comparison']['table'])


def _print_live(summary: dict, out: Path) -> None:
    lat, frames = summary['latency'], summary['frames']

    def ms(value):
        return 'n/a' if value is None else f'{value * 1e3:.1f} ms'
    mean = summary['metrics']['mean']
    accuracy = ''
    if math.isfinite(mean.get('node_abs_rel', math.nan)):
        accuracy = f"; metric AbsRel {mean['node_abs_rel']:.4f} δ1 {mean['node_d1']:.4f}"
        if math.isfinite(mean.get('reference_abs_rel', math.nan)):
            accuracy += (f" (reference depth: AbsRel {mean['reference_abs_rel']:.4f}, "
                         f"coverage {mean['reference_coverage']:.2f})")
    print(f"{PROG}: live: {frames['received']}/{frames['published']} frames received, "
          f"{frames['dropped']} dropped; latency p50 {ms(lat['p50_s'])} p95 {ms(lat['p95_s'])} "
          f"max {ms(lat['max_s'])}; output rate {summary['rates']['output_hz'] or 0:.2f} Hz"
          f'{accuracy}; results in {out}')


@tool_main(PROG, _input_errors)
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter(f'{PROG}: %(levelname)s: %(message)s'))
    logger = logging.getLogger('ppd_ros.evaluation')
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    settings = settings_from_args(args)
    if args.mode == 'live':
        from ppd_ros.evaluation.live import NodeFailedError, run_live
        try:
            _print_live(run_live(settings), args.out)
        except NodeFailedError as err:
            raise ToolError(str(err), EXIT_NODE_FAILED) from err
        return 0
    from ppd_ros.evaluation.offline import run_offline
    try:
        _print_offline(run_offline(settings), args.out)
    except KeyboardInterrupt:
        print(f'\n{PROG}: interrupted; run the same command again to resume', file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


if __name__ == '__main__':
    sys.exit(main())
