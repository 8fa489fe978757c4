"""depth_node's outputs: topic names, what each carries, and when it is advertised (no rclpy).

Image outputs follow image_transport's sibling rule: they all live under `depth/`, so a
consumer subscribed to any of them finds `depth/camera_info` beside it
(ppd_ros.ros_conventions.image_transport.camera_info_topic). `depth/image` carries metres
only (REP 118); PPD's unitless relative depth has its own topic, `depth/relative`.

An output is advertised only while the node's settings let it publish there (`advertised`),
so nothing sits on the graph that the current depth.mode can never fill; the node re-checks
this whenever parameters change. To add an image output, add one Output entry with an
`image` function that takes the frame's FrameProducts and returns ImageData (or None when
the frame has nothing for it); the node publishes it with the frame's header, beside
depth/camera_info.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ppd_ros.pipeline.depth_pipeline import resize_nearest
from ppd_ros.pipeline.metric_scaler import REFERENCE_MODES

DEPTH_IMAGE = 'depth/image'
DEPTH_RELATIVE = 'depth/relative'
DEPTH_COLORED = 'depth/colored'
DEPTH_INLIERS = 'depth/inliers'
DEPTH_SOURCE = 'depth/source'
DEPTH_CONFIDENCE = 'depth/confidence'
CAMERA_INFO = 'depth/camera_info'
POINTS = 'points'
DIAGNOSTICS = '/diagnostics'

IMAGE, CAMERA_INFO_MSG, POINT_CLOUD2 = 'Image', 'CameraInfo', 'PointCloud2'


def is_metric(depth_mode: str) -> bool:
    """Whether a depth.mode yields metres (every mode but 'relative')."""
    return depth_mode != 'relative'


@dataclass(frozen=True)
class ImageData:
    """One image output of a frame: 32FC1 / 16UC1 are made from float32 metres (or any float
    values for 32FC1), bgr8 from H x W x 3 RGB, mono8 from H x W uint8."""
    array: np.ndarray
    encoding: str


@dataclass(frozen=True)
class FrameProducts:
    """What one processed frame offers to the image outputs."""
    frame: Any          #: ppd_ros.pipeline.depth_pipeline.DepthFrame
    settings: Any       #: the node settings the frame was processed with
    scaler: Any         #: the metric scaler of the frame (None in 'relative' mode)


@dataclass(frozen=True)
class Output:
    topic: str                                  #: relative, remappable name
    message: str                                #: sensor_msgs type name
    description: str
    advertised: Callable[[Any], bool]           #: settings -> can the node publish here
    image: Callable[[FrameProducts], ImageData | None] | None = None  #: image outputs only


def _metric_depth(p: FrameProducts) -> ImageData | None:
    metres = p.frame.metres
    return None if metres is None else ImageData(metres, p.settings.depth_encoding)


def _relative_depth(p: FrameProducts) -> ImageData | None:
    return ImageData(p.frame.relative, '32FC1')


def _inliers(p: FrameProducts) -> ImageData | None:
    inlier_mask = getattr(p.scaler, 'inlier_mask', None)
    mask = inlier_mask(p.frame.relative) if inlier_mask is not None else None
    return None if mask is None else ImageData(mask, 'mono8')


def _source(p: FrameProducts) -> ImageData | None:
    source = getattr(p.scaler, 'source', None)
    if source is None or p.frame.metres is None:
        return None
    height, width = p.frame.metres.shape
    return ImageData(resize_nearest(source, width, height), 'mono8')


def _confidence(p: FrameProducts) -> ImageData | None:
    confidence = p.frame.confidence
    return None if confidence is None else ImageData(confidence, '32FC1')


def _colored(p: FrameProducts) -> ImageData | None:
    colored = p.frame.colored
    return None if colored is None else ImageData(colored, 'bgr8')


OUTPUTS: tuple[Output, ...] = (
    Output(CAMERA_INFO, CAMERA_INFO_MSG, 'CameraInfo of every image output (same header)',
           lambda s: True),
    Output(POINTS, POINT_CLOUD2, 'PointCloud2 in metres, depth_image_proc layout; metric modes',
           lambda s: is_metric(s.depth_mode)),
    Output(DEPTH_IMAGE, IMAGE, 'metric depth (REP 118): 32FC1 m or 16UC1 mm; metric modes',
           lambda s: is_metric(s.depth_mode), _metric_depth),
    Output(DEPTH_RELATIVE, IMAGE, "32FC1 relative depth, NOT metres; depth.mode 'relative'",
           lambda s: not is_metric(s.depth_mode), _relative_depth),
    Output(DEPTH_INLIERS, IMAGE, "mono8 reference-fit inliers; reference.publish_inliers",
           lambda s: s.depth_mode in REFERENCE_MODES and s.reference_publish_inliers, _inliers),
    Output(DEPTH_SOURCE, IMAGE, 'mono8 origin of each depth pixel: 0 none, 1 sensor, '
           '2 PPD-filled, 3 edge-repaired; depth.mode fusion, fusion.publish_source',
           lambda s: s.depth_mode == 'fusion' and s.fusion_publish_source, _source),
    Output(DEPTH_CONFIDENCE, IMAGE, '32FC1 spread (standard deviation) of the samples noise '
           'draws, in the units of the depth (m, or relative); larger = less sure; samples > 1',
           lambda s: s.samples > 1, _confidence),
    Output(DEPTH_COLORED, IMAGE, 'bgr8 colourised depth (near = red); colorize',
           lambda s: s.colorize, _colored),
)

OUTPUT_BY_TOPIC = {o.topic: o for o in OUTPUTS}


def advertised_outputs(settings) -> tuple[Output, ...]:
    """The outputs the node advertises with these settings, in publishing order."""
    return tuple(o for o in OUTPUTS if o.advertised(settings))


def depth_topic(depth_mode: str) -> str:
    """The topic carrying the depth itself in a depth.mode: depth/image (metres) or
    depth/relative."""
    return DEPTH_IMAGE if is_metric(depth_mode) else DEPTH_RELATIVE
