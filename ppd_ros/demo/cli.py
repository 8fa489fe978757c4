"""``ppd-demo``: the end-to-end demo, on a CPU, in a few minutes.

    bash scripts/demo.sh [--out out/demo] [--frames 24] [--width 320 --height 240] [--rate 5]

1. writes a synthetic RGB-D bag (demo_bag): colour, camera info, the RGB-D sensor's depth
   (corrupted: holes, noise, flying pixels) and the exact depth, to OUT/bag;
2. runs ``ppd-eval --mode live --launch-node --reference-topic <sensor depth>``: the real
   depth_node in its own process (depth.mode fusion: the sensor depth where it is right,
   PPD made metric and locally corrected by it everywhere else), fed by a publisher and
   recorded by a subscriber in this process, over ROS 2
   -> OUT/eval (live_summary.json, live_frames.csv, live_metrics.png, live_bag/, live_node.log);
3. the reference rows on the same frames (comparison_rows): the same fusion with PPD replaced
   by inpainting of the sensor, and PPD alone aligned to the sensor;
4. from the recording: OUT/depth_mm/ (16-bit millimetre PNGs), OUT/depth_color/, a PLY cloud
   of one frame, the comparison picture and OUT/demo_summary.json;
5. prints a summary table and where every output is.

ROS traffic stays on this machine, in its own domain (ros_isolation). Exit status: 0 done,
2 bad input (e.g. the model checkpoint is missing), 1 the node failed or published no depth.
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ppd_ros.cli.tool_main import EXIT_FAILED, ToolArgumentParser, ToolError, tool_main
from ppd_ros.demo.demo_bag import (GT_TOPIC, IMAGE_TOPIC, INFO_TOPIC, SENSOR_DEPTH_TOPIC,
                                   write_demo_bag)
from ppd_ros.demo.ros_isolation import isolate_ros
from ppd_ros.evaluation.node_process import last_problem_line
from ppd_ros.pipeline.package_paths import candidate_paths, resolve_package_path
from ppd_ros.pipeline.predictor_loading import TINY_CHECKPOINT, synthetic_model_notice
from ppd_ros.synthetic.depth_sensor_model import DepthSensorModel

PROG = 'ppd-demo'
EXIT_NO_DEPTH = EXIT_FAILED
NODE_NAMESPACE = '/ppd_demo'
DEMO_DEPTH_MODE = 'fusion'
#: Output names under --out.
BAG_DIR, EVAL_DIR, MM_DIR, COLOUR_DIR = 'bag', 'eval', 'depth_mm', 'depth_color'
SUMMARY_FILE, PICTURE_FILE = 'demo_summary.json', 'comparison.png'
#: Marks a folder as ppd-demo's own, so a later run may replace what is in it.
MARKER_FILE = '.ppd_demo'


def build_parser() -> argparse.ArgumentParser:
    p = ToolArgumentParser(
        prog=PROG, description='End-to-end ppd_ros demo: synthetic RGB-D bag -> depth_node '
        '(depth-sensor fusion) across processes -> depth PNGs, PLY, comparison, summary.')
    p.add_argument('--out', type=Path, default=Path('out/demo'),
                   help='output folder (default: %(default)s); earlier demo outputs in it '
                        'are replaced')
    p.add_argument('--checkpoint', default=TINY_CHECKPOINT,
                   help='ppd_ros model checkpoint (default: %(default)s)')
    p.add_argument('--frames', type=int, default=24, help='frames (default: %(default)s)')
    p.add_argument('--width', type=int, default=320,
                   help='image width in pixels (default: %(default)s)')
    p.add_argument('--height', type=int, default=240,
                   help='image height in pixels (default: %(default)s)')
    p.add_argument('--rate', type=float, default=5.0,
                   help='camera rate, Hz, at which frames are played (default: %(default)s)')
    p.add_argument('--seed', type=int, default=0, help='scene and sensor noise seed')
    sensor = p.add_argument_group('simulated RGB-D sensor depth')
    sensor.add_argument('--holes', type=float, default=0.30,
                        help='share of pixels without depth (default: %(default)s)')
    sensor.add_argument('--noise', type=float, default=0.01,
                        help='depth noise, relative (default: %(default)s)')
    sensor.add_argument('--flying', type=float, default=0.5,
                        help='share of depth-edge pixels that fly (default: %(default)s)')
    node = p.add_argument_group('depth node')
    node.add_argument('--device', default='auto', help='auto, cpu, cuda (default: %(default)s)')
    node.add_argument('--num-threads', type=int, default=1,
                      help='torch CPU threads of the node; 0: torch default (default: 1, '
                           'enough for the tiny model at 5 Hz and it leaves the other cores '
                           'to the player and recorder)')
    node.add_argument('--steps', type=int, default=4, help='diffusion steps (default: 4)')
    node.add_argument('--node-param', action='append', default=[], metavar='NAME:=VALUE',
                      help='extra depth_node parameter (repeatable)')
    return p


def _missing_checkpoint(checkpoint: str) -> str | None:
    """One line naming the missing checkpoint and how to get it; None when it exists."""
    if resolve_package_path(checkpoint) is not None:
        return None
    looked = ', '.join(str(p) for p in candidate_paths(checkpoint))
    return (f"model checkpoint '{checkpoint}' not found (looked in: {looked}); "
            f'the trained tiny model ships in the repository as {TINY_CHECKPOINT} '
            f'(restore it with `git checkout -- {TINY_CHECKPOINT}`), or pass '
            f'--checkpoint PATH to a ppd_ros .safetensors (e.g. one made with `ppd-train`)')


def _check_arguments(args: argparse.Namespace) -> str | None:
    if args.frames < 1 or args.width < 16 or args.height < 16 or args.rate <= 0:
        return 'need --frames >= 1, --width/--height >= 16 and --rate > 0'
    try:
        DepthSensorModel(hole_fraction=args.holes, noise_rel=args.noise,
                         flying_fraction=args.flying)
    except ValueError as err:
        return f'sensor settings: {err}'
    return _missing_checkpoint(args.checkpoint)


def _check_eval_arguments(args: argparse.Namespace) -> None:
    """ToolError now, before any work, for node options ppd-eval would refuse later."""
    from ppd_ros.evaluation import cli as evaluation
    parsed = evaluation.build_parser().parse_args(
        _eval_arguments(args, args.out / BAG_DIR, args.out / EVAL_DIR))
    evaluation.settings_from_args(parsed)


def _unusable_checkpoint(checkpoint: str) -> str | None:
    """One line saying why the (existing) checkpoint cannot be loaded; None when it loads.
    Checked before any work, so a damaged file is one clear line, not a failed node."""
    from ppd_ros.model import CheckpointError, load_checkpoint
    from ppd_ros.pipeline.package_paths import resolve_package_path
    try:
        load_checkpoint(resolve_package_path(checkpoint))
    except CheckpointError as error:
        return str(error)
    return None


def _foreign_folder(out: Path) -> str | None:
    if out.exists() and any(out.iterdir()) and not (out / MARKER_FILE).exists():
        return (f'{out} is not empty and not a ppd-demo output folder; '
                'pick a new or empty --out')
    return None


def _clear_outputs(out: Path) -> None:
    """Remove an earlier run's outputs (only ever called on a marked folder)."""
    for name in (BAG_DIR, EVAL_DIR, MM_DIR, COLOUR_DIR):
        if (out / name).exists():
            shutil.rmtree(out / name)
    for old in [*out.glob('cloud_frame_*.ply'), out / PICTURE_FILE, out / SUMMARY_FILE]:
        old.unlink(missing_ok=True)


def _eval_arguments(args: argparse.Namespace, bag: Path, out: Path) -> list[str]:
    argv = [str(bag), '--mode', 'live', '--launch-node', '--out', str(out),
            '--image-topic', IMAGE_TOPIC, '--camera-info-topic', INFO_TOPIC,
            '--depth-topic', GT_TOPIC, '--reference-topic', SENSOR_DEPTH_TOPIC,
            '--checkpoint', str(resolve_package_path(args.checkpoint)),
            '--device', args.device, '--num-threads', str(args.num_threads),
            '--steps', str(args.steps), '--rate', str(args.rate),
            '--node-namespace', NODE_NAMESPACE, '--no-progress',
            '--node-param', f'depth.mode:={DEMO_DEPTH_MODE}']
    for param in args.node_param:  # after the demo's own: they win
        argv += ['--node-param', param]
    return argv


def _frame_row(csv_path: Path, index: int) -> dict:
    with open(csv_path, newline='') as handle:
        return next((r for r in csv.DictReader(handle) if int(r['index']) == index), {})


def _panel_note(values: dict) -> str:
    def value(key):
        v = values.get(key)
        return float('nan') if v is None else float(v)
    return (f"coverage {value('coverage'):.0%}  AbsRel {value('abs_rel'):.3f}\n"
            f"flying px {value('flying_pixel_ratio'):.0%}  "
            f"edge Chamfer {value('edge_chamfer_m') * 1e3:.0f} mm")


def _frame_scores(row: dict, prefix: str) -> dict:
    """{score: value} of one live frames.csv row for a column prefix."""
    return {key[len(prefix) + 1:]: float(value) for key, value in row.items()
            if key.startswith(prefix + '_') and value not in ('', None)}


def _colour_range(depths) -> tuple[float, float]:
    """One colour range for every depth picture: 1st .. 99th percentile of the exact depth."""
    pooled = np.concatenate([d.depth_m[np.isfinite(d.depth_m)] for d in depths])
    if pooled.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(pooled, [1, 99])
    return float(lo), float(max(hi, lo + 1e-3))


def _reference_rows(args: argparse.Namespace, out: Path, node_depths, shown_stamp: int):
    """comparison_rows on the frames the node answered, with the node's model settings."""
    from ppd_ros.demo.comparison_rows import reference_rows
    from ppd_ros.pipeline.predictor_loading import load_predictor_from_paths
    predictor = load_predictor_from_paths(str(resolve_package_path(args.checkpoint)), '', '',
                                          device=args.device, num_threads=args.num_threads)
    topics = {'image': IMAGE_TOPIC, 'info': INFO_TOPIC, 'sensor': SENSOR_DEPTH_TOPIC,
              'gt': GT_TOPIC}
    return reference_rows(out / BAG_DIR, topics, node_depths, shown_stamp, predictor,
                          args.steps, 0)


def _write_products(args: argparse.Namespace, out: Path, stamps_ns, live: dict) -> tuple:
    """Depth PNGs, PLY, reference rows, comparison picture; returns the outputs part of the
    summary and the reference rows' means."""
    from ppd_ros.demo.cloud_ply import write_cloud_ply
    from ppd_ros.demo.comparison_picture import Panel, write_comparison_picture
    from ppd_ros.demo.depth_pngs import write_depth_pngs
    from ppd_ros.demo.recorded_outputs import read_at_stamp, read_depths
    from ppd_ros.evaluation.output_bag import OutputTopics

    topics = OutputTopics.under(NODE_NAMESPACE, metric=True)
    live_bag = out / EVAL_DIR / live['outputs']['bag']
    recorded = read_depths(live_bag, topics.depth, stamps_ns)
    depth_range = _colour_range(read_depths(out / BAG_DIR, GT_TOPIC, stamps_ns))
    (out / MM_DIR).mkdir()
    (out / COLOUR_DIR).mkdir()
    for r in recorded:
        write_depth_pngs(r.index, r.depth_m, out / MM_DIR, out / COLOUR_DIR, depth_range)

    shown = recorded[len(recorded) // 2]
    cloud = read_at_stamp(live_bag, [topics.points], shown.stamp_ns).get(topics.points)
    ply, points = None, 0
    if cloud is not None:
        ply = out / f'cloud_frame_{shown.index:06d}.ply'
        points = write_cloud_ply(ply, cloud, [
            f"ppd_ros depth_node points (depth.mode {live['node']['depth_mode']}), "
            f'frame {shown.index}',
            'camera optical frame: x right, y down, z forward; metres'])
    print(f'[{PROG}] 3/4 reference rows on the same {len(recorded)} frames: the same fusion '
          'with inpainting instead of PPD, and PPD alone aligned', flush=True)
    rows = _reference_rows(args, out, {r.stamp_ns: r.depth_m for r in recorded},
                           shown.stamp_ns)
    inputs = read_at_stamp(out / BAG_DIR, [IMAGE_TOPIC, SENSOR_DEPTH_TOPIC, GT_TOPIC],
                           shown.stamp_ns)
    row = _frame_row(out / EVAL_DIR / live['outputs']['csv'], shown.index)
    blank = np.full(shown.depth_m.shape, np.nan, np.float32)
    write_comparison_picture(out / PICTURE_FILE, [
        Panel('RGB input', inputs[IMAGE_TOPIC], f'frame {shown.index}'),
        Panel('RGB-D sensor depth (input)', inputs[SENSOR_DEPTH_TOPIC],
              _panel_note(_frame_scores(row, 'reference'))),
        Panel('ground truth', inputs[GT_TOPIC], 'exact synthetic depth'),
        Panel(f"ppd_ros fused (node, depth.mode {live['node']['depth_mode']})",
              shown.depth_m, _panel_note(_frame_scores(row, 'node'))),
        Panel('same fusion, inpainting instead of PPD',
              rows.shown.get('fused_inpainting', blank),
              _panel_note(_frame_scores(rows.shown_scores, 'fused_inpainting'))),
        Panel('PPD alone, aligned to the sensor', rows.shown.get('ppd_aligned', blank),
              _panel_note(_frame_scores(rows.shown_scores, 'ppd_aligned'))),
    ], depth_range, per_row=3,
        title=f'ppd_ros depth-sensor fusion, frame {shown.index}: scores against the exact '
              'depth (coverage, AbsRel, flying pixels, edge Chamfer)')
    outputs = {'comparison_picture': PICTURE_FILE, 'comparison_frame': shown.index,
               'point_cloud': ply.name if ply else None, 'point_cloud_points': points,
               'depth_png_mm': f'{MM_DIR}/', 'depth_png_color': f'{COLOUR_DIR}/',
               'depth_png_frames': len(recorded), 'color_range_m': list(depth_range),
               'eval_summary': f'{EVAL_DIR}/live_summary.json',
               'eval_frames_csv': f'{EVAL_DIR}/live_frames.csv',
               'eval_plot': f"{EVAL_DIR}/{live['outputs']['plot']}",
               'node_log': f'{EVAL_DIR}/live_node.log',
               'recorded_bag': f"{EVAL_DIR}/{live['outputs']['bag']}",
               'input_bag': f'{BAG_DIR}/'}
    return outputs, rows


def _print_outputs(out: Path, outputs: dict) -> None:
    rows = [
        (outputs['comparison_picture'], 'RGB | RGB-D sensor depth | ground truth, and '
         'ppd_ros fused | fusion with inpainting instead of PPD | PPD alone aligned, frame '
         f"{outputs['comparison_frame']}"),
        (outputs['point_cloud'], f"{outputs['point_cloud_points']} points, x y z + rgb, "
         'metres, camera optical frame'),
        (outputs['depth_png_mm'], f"{outputs['depth_png_frames']} 16-bit PNGs, millimetres "
         '(0 = no depth)'),
        (outputs['depth_png_color'], '{} colourised PNGs ({:.2f} .. {:.2f} m)'.format(
            outputs['depth_png_frames'], *outputs['color_range_m'])),
        (SUMMARY_FILE, 'this summary (JSON)'),
        (outputs['eval_summary'], 'ppd-eval live report; also live_frames.csv, '
         'live_metrics.png, live_bag/ (the recorded topics), live_node.log'),
        (outputs['input_bag'], 'the synthetic input bag (rosbag2)'),
    ]
    print(f'outputs in {out.resolve()}:')
    width = max(len(str(name)) for name, _ in rows if name)
    for name, what in rows:
        if name:
            print(f'  {name:<{width}}  {what}')


@tool_main(PROG)
def main(argv: Sequence[str] | None = None) -> int:
    started = time.monotonic()
    args = build_parser().parse_args(argv)
    problem = (_check_arguments(args) or _foreign_folder(args.out)
               or _unusable_checkpoint(args.checkpoint))
    if problem:
        raise ToolError(problem)
    _check_eval_arguments(args)
    notice = synthetic_model_notice(resolve_package_path(args.checkpoint))
    if notice:
        print(f'[{PROG}] note: {notice}', flush=True)
    ros = isolate_ros()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER_FILE).touch()
    _clear_outputs(out)
    sensor = DepthSensorModel(hole_fraction=args.holes, noise_rel=args.noise,
                              flying_fraction=args.flying, seed=args.seed)

    print(f'[{PROG}] 1/4 synthetic RGB-D bag: {args.frames} frames, {args.width}x{args.height}'
          f' at {args.rate:g} Hz -> {out / BAG_DIR}', flush=True)
    bag = write_demo_bag(out / BAG_DIR, args.frames, args.width, args.height, args.rate,
                         args.seed, sensor)

    print(f'[{PROG}] 2/4 ppd-eval live: player -> depth_node (own process; the sensor depth '
          f"is its depth_reference) -> recorder; ROS_DOMAIN_ID {ros['ROS_DOMAIN_ID']}, "
          f"discovery {ros['ROS_AUTOMATIC_DISCOVERY_RANGE']}", flush=True)
    from ppd_ros.evaluation.cli import main as eval_main
    status = eval_main(_eval_arguments(args, bag.path, out / EVAL_DIR))
    if status != 0:  # ppd-eval has said why, in one line
        return status
    live = json.loads((out / EVAL_DIR / 'live_summary.json').read_text())
    if live['frames']['received'] == 0:
        log = out / EVAL_DIR / 'live_node.log'
        raise ToolError(f'the node published no metric depth for any frame; last node '
                        f'message: {last_problem_line(log)} (full log: {log})', EXIT_NO_DEPTH)

    outputs, rows = _write_products(args, out, bag.stamps_ns, live)
    print(f'[{PROG}] 4/4 depth PNGs, point cloud, comparison picture, summary', flush=True)
    from ppd_ros.demo.summary_table import (ACCURACY_MEANING, accuracy_from_live,
                                            format_table, latency_from_live)
    from ppd_ros.evaluation.summary import write_json
    summary = {
        'tool': PROG,
        'input': {'frames': args.frames, 'width': args.width, 'height': args.height,
                  'rate_hz': args.rate, 'seed': args.seed, 'sensor_model': asdict(sensor),
                  'topics': {'image': IMAGE_TOPIC, 'camera_info': INFO_TOPIC,
                             'sensor_depth': SENSOR_DEPTH_TOPIC, 'ground_truth': GT_TOPIC}},
        'model': {'checkpoint': args.checkpoint, 'device': args.device, 'steps': args.steps},
        'node': {'depth_mode': live['node']['depth_mode'], 'namespace': NODE_NAMESPACE,
                 'ros': ros},
        'frames': {k: live['frames'][k] for k in ('published', 'received', 'dropped')},
        'latency': latency_from_live(live),
        'accuracy': accuracy_from_live(live, rows.means),
        'reference_rows_frames': rows.frames,
        'accuracy_definition': ACCURACY_MEANING,
        'outputs': outputs,
        'wall_s': time.monotonic() - started,
    }
    write_json(out / SUMMARY_FILE, summary)
    print()
    print(format_table(summary))
    _print_outputs(out, outputs)
    print(f'[{PROG}] done in {summary["wall_s"]:.0f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
