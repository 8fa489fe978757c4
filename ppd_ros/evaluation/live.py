"""Live evaluation: play a bag into depth_node, record its outputs, report latency and accuracy.

    [--launch-node: spawn depth_node in <node-namespace>, remapped to the bag's topics;
     with --reference-topic also depth_reference:=<that topic> and depth.mode reference]
    publish each selected frame (camera info, [reference depth,] then image; /clock first
        with --sim-time) at --rate Hz or following the bag stamps
    record <ns>/depth/relative (or, from a metric node, <ns>/depth/image),
        <ns>/depth/camera_info and <ns>/points until every frame has its depth
        or nothing arrived for --settle seconds
    -> live_frames.csv, live_summary.json, live_bag/, live_metrics.png (+ live_node.log)

Without --sim-time each frame is restamped with the wall time at publishing (its reference
depth gets the same stamp); with it the bag stamps are kept. Accuracy (live_scoring): a
relative node is scored exactly like offline mode (RANSAC-log / LSQ alignment to the bag's
GT); a metric node (depth.mode reference / fusion / range) is scored as published, and the
played reference depth beside it. rclpy is imported only when live mode runs.
"""
from __future__ import annotations

import csv
import dataclasses
import logging
import math
import time
from pathlib import Path

from ppd_ros.bag.message_builders import header_msg
from ppd_ros.bag.typestore import typestore
from ppd_ros.bag.writer import BagWriter
from ppd_ros.evaluation.bag_frames import FrameDecodeError, decode_rgb, iter_frames
from ppd_ros.evaluation.dds_environment import large_message_profile
from ppd_ros.evaluation.eval_input import EvalInput, open_input
from ppd_ros.evaluation.eval_settings import LiveSettings, resolve_storage
from ppd_ros.evaluation.frame_metrics import METRIC_COLUMNS
from ppd_ros.evaluation.frame_results import FailedFrame, format_value
from ppd_ros.evaluation.latency import latency_stats, rate_hz
from ppd_ros.evaluation.live_outputs import (NodeOutput, PublishedFrame, latency_s,
                                             match_outputs)
from ppd_ros.evaluation.live_scoring import (NODE_PREFIX, REFERENCE_PREFIX, count_columns,
                                             score_columns, score_outputs)
from ppd_ros.evaluation.node_process import DepthNodeProcess, depth_node_command
from ppd_ros.evaluation.output_bag import OutputTopics
from ppd_ros.evaluation.report_figures import (Panel, metric_depth_panels, metric_panels,
                                               plot_over_time, plot_title)
from ppd_ros.evaluation.summary import metric_means, write_json
from ppd_ros.pipeline.metric_scaler import REFERENCE_MODES

log = logging.getLogger('ppd_ros.evaluation')

CSV_FILE = 'live_frames.csv'
SUMMARY_FILE = 'live_summary.json'
BAG_DIR = 'live_bag'
PLOT_FILE = 'live_metrics.png'
NODE_LOG = 'live_node.log'
FRAME_COLUMNS = ('index', 'stamp_ns', 'sent_stamp_ns', 'sent_wall_ns', 'received',
                 'latency_s')
#: Columns of a relative run; a metric run has score_columns(settings) after FRAME_COLUMNS.
CSV_COLUMNS = FRAME_COLUMNS + METRIC_COLUMNS
METRIC_ACCURACY = ('metres as published, scored against GT without alignment '
                   '(node_*: the node output; reference_*: the played reference depth)')
RELATIVE_ACCURACY = "relative depth aligned to GT per frame (the paper's RANSAC-log, and LSQ)"
#: Pause after the node is connected, so that it also sees our subscriptions (lazy nodes).
DISCOVERY_SETTLE_S = 1.0


class NodeFailedError(RuntimeError):
    """The depth node did not come up or died during the run."""


def _node_command(settings: LiveSettings, source: EvalInput) -> list[str]:
    """The launched node's command: the weight files it loads (resolved; nothing it would
    ignore), the model options, and remappings to the bag's topics."""
    model = settings.model
    files = model.resolved_weight_files()
    params: dict[str, object] = {}
    if 'checkpoint' in files:
        params['checkpoint'] = str(files['checkpoint'])
    else:
        params.update(checkpoint='', variant=model.variant,
                      dit_checkpoint=str(files['dit_checkpoint']),
                      encoder_checkpoint=str(files['encoder_checkpoint']))
    params.update(device=model.device, precision=model.precision,
                  num_threads=model.num_threads, network_area=model.network_area,
                  upsampling=model.upsampling, compile=model.compile,
                  steps=model.steps, seed=model.seed, samples=model.samples,
                  image_transport='compressed' if source.topics.compressed else 'raw',
                  lazy=False)
    params.update({'temporal.smoothing': settings.temporal.smoothing,
                   'temporal.max_difference': settings.temporal.max_difference,
                   'temporal.motion_compensation': settings.temporal.motion_compensation,
                   'temporal.scene_change_threshold': settings.temporal.scene_change_threshold,
                   'temporal.keep_edges': settings.temporal.keep_edges})
    if settings.sim_time:
        params['use_sim_time'] = True
    topics = source.topics
    remaps = ({'image/compressed': topics.image} if topics.compressed
              else {'image': topics.image})
    if topics.info:
        remaps['camera_info'] = topics.info
    if topics.reference:
        remaps['depth_reference'] = topics.reference
        params['depth.mode'] = 'reference'
    return depth_node_command(settings.node_namespace, remaps, params, settings.node_params)


def startup_failure(log_tail: str) -> str:
    """The node's own FATAL message (one line) from its log, else the log's last lines."""
    fatal = [line for line in log_tail.splitlines() if '[FATAL]' in line]
    if fatal:
        return fatal[-1].split(']: ', 1)[-1]
    return 'last output: ' + ' | '.join(log_tail.splitlines()[-3:])


def _node_problem(node: DepthNodeProcess) -> str:
    """startup_failure of the node's log, and where the log is."""
    return f'{startup_failure(node.log_tail())} (full log: {node.log_path})'


def _serialized(msg, stamp: int) -> bytes:
    """CDR bytes of a rosbags message with its header stamp replaced."""
    msg = dataclasses.replace(msg, header=header_msg(stamp, msg.header.frame_id))
    return bytes(typestore().serialize_cdr(msg, msg.__msgtype__))


def _wait_connected(session, node: DepthNodeProcess | None, timeout_s: float,
                    depth_topic: str, reference_topic: str | None) -> None:
    deadline = time.monotonic() + timeout_s
    while not session.connected():
        if node is not None and not node.alive():
            raise NodeFailedError(f'depth_node exited during start-up: {_node_problem(node)}')
        if time.monotonic() > deadline:
            tail = f'; its log says: {_node_problem(node)}' if node is not None else ''
            also = f' and subscribing to {reference_topic}' if reference_topic else ''
            raise NodeFailedError(f'no depth node connected to the bag topics within '
                                  f'{timeout_s:.0f} s (expected one publishing '
                                  f'{depth_topic}{also}; start one, or pass --launch-node, or '
                                  f'a larger --node-timeout){tail}')
        time.sleep(0.05)
    time.sleep(DISCOVERY_SETTLE_S)


def _play(session, source: EvalInput, settings: LiveSettings, node: DepthNodeProcess | None
          ) -> tuple[list[PublishedFrame], list[FailedFrame]]:
    published, corrupt = [], []
    start_wall = first_stamp = None
    for frame in iter_frames(source.bag, source.topics, source.index, source.selected):
        try:
            decode_rgb(frame)
        except FrameDecodeError as err:
            log.warning('frame %d not published: %s', frame.index, err)
            corrupt.append(FailedFrame(frame.index, frame.stamp_ns, str(err)))
            continue
        if start_wall is None:
            start_wall, first_stamp = time.monotonic(), frame.stamp_ns
        offset = (len(published) / settings.rate_hz if settings.rate_hz > 0
                  else (frame.stamp_ns - first_stamp) * 1e-9)
        time.sleep(max(0.0, start_wall + offset - time.monotonic()))
        stamp = frame.stamp_ns if settings.sim_time else time.time_ns()
        info, reference = frame.camera_info, frame.reference_msg
        sent = session.publish(_serialized(frame.image_msg, stamp),
                               _serialized(info.msg, stamp) if info is not None else None,
                               stamp if settings.sim_time else None,
                               _serialized(reference, stamp) if reference is not None else None)
        published.append(PublishedFrame(frame.index, frame.stamp_ns, stamp, sent))
        if node is not None and not node.alive():
            raise NodeFailedError(f'depth_node exited during the run: {_node_problem(node)}')
    return published, corrupt


def _wait_for_outputs(session, expected: int, settle_s: float,
                      node: DepthNodeProcess | None) -> None:
    last_publish = time.time_ns()
    while session.depth_count() < expected:
        quiet_since = max(last_publish, session.last_receive_ns())
        if time.time_ns() - quiet_since > settle_s * 1e9:
            return
        if node is not None and not node.alive():
            return
        time.sleep(0.05)


def _write_bag(path: Path, storage: str, topics: OutputTopics, published: list[PublishedFrame],
               outputs: dict[int, NodeOutput]) -> dict[str, int]:
    """The received outputs, restamped with the frames' bag stamps, at those bag times."""
    with BagWriter(path, storage, overwrite=True) as bag:
        bag.set_custom_data('ppd_ros.eval.live', 'outputs of depth_node, restamped with the '
                            'input frames\' bag stamps')
        for frame in published:
            output = outputs.get(frame.index)
            if output is None:
                continue
            for topic, msg in ((topics.depth, output.depth),
                               (topics.camera_info, output.camera_info),
                               (topics.points, output.points)):
                if msg is not None:
                    restamped = dataclasses.replace(
                        msg, header=header_msg(frame.bag_stamp_ns, msg.header.frame_id))
                    bag.write(topic, restamped, frame.bag_stamp_ns)
        counts = dict(bag.counts)
    return counts


def _rows(published, outputs, scores, sim_time, score_keys) -> list[dict]:
    rows = []
    for frame in published:
        output = outputs.get(frame.index)
        rows.append({'index': frame.index, 'stamp_ns': frame.bag_stamp_ns,
                     'sent_stamp_ns': frame.sent_stamp_ns, 'sent_wall_ns': frame.sent_wall_ns,
                     'received': output is not None,
                     'latency_s': latency_s(frame, output, sim_time) if output else math.nan,
                     **dict.fromkeys(score_keys, math.nan), **scores.get(frame.index, {})})
    return rows


def _csv_text(key: str, value, counts: tuple[str, ...]) -> str:
    if key in ('sent_stamp_ns', 'sent_wall_ns'):
        return str(value)
    if key in counts and not (isinstance(value, float) and math.isnan(value)):
        return str(int(value))
    return format_value(key, value)


def _write_csv(path: Path, rows: list[dict], columns: tuple[str, ...],
               counts: tuple[str, ...]) -> None:
    with open(path, 'w', newline='') as handle:
        writer = csv.writer(handle, lineterminator='\n')
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_csv_text(k, row[k], counts) for k in columns])


def run_live(settings: LiveSettings) -> dict:
    """Run, write every output, return the summary (also written to live_summary.json)."""
    source = open_input(settings.input)
    out = settings.output.out_dir
    out.mkdir(parents=True, exist_ok=True)
    topics = OutputTopics.under(settings.node_namespace, settings.node_is_metric)
    command = _node_command(settings, source) if settings.launch_node else None
    # the reference is played only to a node that takes one (still scored otherwise)
    played = (source.topics if settings.node_depth_mode in REFERENCE_MODES
              else dataclasses.replace(source.topics, reference=None, reference_type=None))
    node = None
    with large_message_profile():
        from ppd_ros.evaluation.live_session import LiveSession
        try:
            if command is not None:
                node = DepthNodeProcess(command, out / NODE_LOG)
            with LiveSession(played, topics, settings.sim_time) as session:
                _wait_connected(session, node, settings.startup_timeout_s, topics.depth,
                                played.reference)
                published, corrupt = _play(session, source, settings, node)
                _wait_for_outputs(session, len(published), settings.settle_s, node)
                received = {t: list(m) for t, m in session.received.messages.items()}
        finally:
            if node is not None:
                node.stop()

    outputs, unmatched = match_outputs(published, received, topics)
    scores = score_outputs(source, settings, outputs)
    score_keys, counts = score_columns(settings), count_columns(settings)
    rows = _rows(published, outputs, scores, settings.sim_time, score_keys)
    _write_csv(out / CSV_FILE, rows, FRAME_COLUMNS + score_keys, counts)
    storage = resolve_storage(settings.output.storage, source.storage)
    bag_counts = _write_bag(out / BAG_DIR, storage, topics, published, outputs)
    received_rows = [r for r in rows if r['received']]
    if rows:
        start = rows[0]['stamp_ns']
        panels = [Panel('latency [ms]', {'latency': [r['latency_s'] * 1e3 for r in rows]})]
        if source.topics.gt is not None and settings.node_is_metric:
            sources = {NODE_PREFIX: 'ppd_ros (node)'}
            if source.topics.reference:
                sources[REFERENCE_PREFIX] = 'reference depth'
            panels += metric_depth_panels(rows, sources)
        elif source.topics.gt is not None:
            panels += metric_panels(rows)
        model = Path(settings.model.weight_files().get('checkpoint', settings.model.variant))
        plot_over_time(out / PLOT_FILE, [(r['stamp_ns'] - start) / 1e9 for r in rows], panels,
                       plot_title(f'ppd-eval live: depth_node (depth.mode '
                                  f'{settings.node_depth_mode})', model.stem,
                                  settings.model.steps, source.topics.image, settings.input.bag))
    dropped = [r['index'] for r in rows if not r['received']]
    summary = {
        'tool': 'ppd-eval', 'mode': 'live',
        **source.describe(settings.input),
        'node': {'launched': command is not None, 'namespace': settings.node_namespace,
                 'depth_mode': settings.node_depth_mode,
                 'command': command, 'log': NODE_LOG if command else None,
                 'topics': dataclasses.asdict(topics)},
        'playback': {'rate_hz': settings.rate_hz or None,
                     'timing': 'fixed rate' if settings.rate_hz > 0 else 'bag stamps',
                     'sim_time': settings.sim_time,
                     'stamps': 'bag stamps + /clock' if settings.sim_time else 'wall time'},
        'frames': {'published': len(published), 'received': len(received_rows),
                   'dropped': len(dropped), 'dropped_indices': dropped,
                   'corrupt': len(corrupt),
                   'corrupt_frames': [dataclasses.asdict(f) for f in corrupt],
                   'unmatched_outputs': unmatched},
        'latency': {**latency_stats(r['latency_s'] for r in received_rows),
                    'definition': ('wall receive time - wall publish time of the frame with '
                                   'that stamp' if settings.sim_time else
                                   'wall receive time - header stamp (wall time at publish)')},
        'rates': {'input_hz': rate_hz(f.sent_wall_ns for f in published),
                  'output_hz': rate_hz(o.received_ns for o in outputs.values())},
        'received_messages': {t: len(m) for t, m in received.items()},
        'accuracy': (METRIC_ACCURACY if settings.node_is_metric else RELATIVE_ACCURACY)
                    if source.topics.gt is not None else None,
        'metrics': metric_means([r for r in received_rows if r['index'] in scores],
                                [k for k in score_keys if k not in counts]),
        'outputs': {'csv': CSV_FILE, 'bag': BAG_DIR, 'bag_storage': storage,
                    'bag_topics': bag_counts, 'plot': PLOT_FILE if rows else None},
    }
    write_json(out / SUMMARY_FILE, summary)
    return summary
