"""Accuracy of the depth a live node published, against the bag's GT (no rclpy).

relative node (depth.mode relative): scored exactly like offline mode, RANSAC-log / LSQ
    alignment to GT first (frame_metrics.METRIC_COLUMNS).
metric node (depth.mode reference or range): the published metres are scored as they are,
    no alignment (metric_depth_metrics), in 'node_*' columns; when a reference depth is
    played, that reference (the depth sensor) is scored the same way on the same frames in
    'reference_*' columns: what the node adds to the sensor.
"""
from __future__ import annotations

import logging

from ppd_ros.bag.message_decoders import decode_image
from ppd_ros.evaluation.bag_frames import (FrameDecodeError, decode_gt, decode_reference,
                                           iter_frames)
from ppd_ros.evaluation.eval_input import EvalInput
from ppd_ros.evaluation.eval_settings import LiveSettings
from ppd_ros.evaluation.frame_camera import camera_at_size
from ppd_ros.evaluation.frame_metrics import COUNT_COLUMNS, METRIC_COLUMNS, evaluate_frame
from ppd_ros.evaluation.live_outputs import NodeOutput, float_image
from ppd_ros.evaluation.metric_depth_metrics import (METRIC_DEPTH_COUNT_KEYS, METRIC_DEPTH_KEYS,
                                                     score_metric_depth)
from ppd_ros.geometry.camera_model import CameraModelError
from ppd_ros.messages.image_encoding import ImageEncodingError

log = logging.getLogger('ppd_ros.evaluation')

NODE_PREFIX, REFERENCE_PREFIX = 'node', 'reference'
_FRAME_ERRORS = (FrameDecodeError, ImageEncodingError, CameraModelError, ValueError)


def _prefixed(prefix: str, keys) -> tuple[str, ...]:
    return tuple(f'{prefix}_{key}' for key in keys)


def score_columns(settings: LiveSettings) -> tuple[str, ...]:
    """Per-frame accuracy columns of this run, in CSV order."""
    if not settings.node_is_metric:
        return METRIC_COLUMNS
    columns = _prefixed(NODE_PREFIX, METRIC_DEPTH_KEYS)
    if settings.input.reference_topic:
        columns += _prefixed(REFERENCE_PREFIX, METRIC_DEPTH_KEYS)
    return columns


def count_columns(settings: LiveSettings) -> tuple[str, ...]:
    """The columns of score_columns that count pixels (written as integers, not averaged)."""
    if not settings.node_is_metric:
        return COUNT_COLUMNS
    return (_prefixed(NODE_PREFIX, METRIC_DEPTH_COUNT_KEYS)
            + _prefixed(REFERENCE_PREFIX, METRIC_DEPTH_COUNT_KEYS))


def score_outputs(source: EvalInput, settings: LiveSettings, outputs: dict[int, NodeOutput]
                  ) -> dict[int, dict]:
    """{frame index: scores} of every received depth with GT (second pass over the bag)."""
    scores = {}
    if source.topics.gt is None:
        return scores
    for frame in iter_frames(source.bag, source.topics, source.index, outputs):
        try:
            gt = decode_gt(frame)
            camera = None
            if gt is not None and frame.camera_info is not None:
                camera = camera_at_size(frame.camera_info.fields, gt.shape[1], gt.shape[0])
            model = camera.model if camera else None
            depth_msg = outputs[frame.index].depth
            if not settings.node_is_metric:
                scores[frame.index] = evaluate_frame(float_image(depth_msg), gt, model,
                                                     settings.edge).metrics
            elif gt is not None:
                scores[frame.index] = _metric_scores(decode_image(depth_msg), frame, gt, model,
                                                     settings)
        except _FRAME_ERRORS as err:
            log.warning('frame %d not scored: %s', frame.index, err)
    return scores


def _metric_scores(depth_m, frame, gt, camera, settings: LiveSettings) -> dict:
    row = _with_prefix(NODE_PREFIX, score_metric_depth(depth_m, gt, camera, settings.edge))
    reference = decode_reference(frame) if settings.input.reference_topic else None
    if reference is not None:
        row.update(_with_prefix(REFERENCE_PREFIX,
                                score_metric_depth(reference, gt, camera, settings.edge)))
    return row


def _with_prefix(prefix: str, values: dict) -> dict:
    return {f'{prefix}_{key}': value for key, value in values.items()}
