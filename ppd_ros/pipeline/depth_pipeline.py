"""One RGB frame -> depth image, optional metric point cloud and colourised depth.

    rgb --predictor--> relative depth (input size) --temporal--> steadier relative depth
        --scaler--> metres (metric modes only)
        --resize to output size--> depth --unproject--> organized cloud (metric + camera)
                                         --colorize--> RGB visualisation

A predictor that also estimates geometry (model.metric_predictor, depth mode 'moge') gets the
camera's intrinsics when known (``takes_camera``); its prediction goes to the scaler
(``use_prediction``), and without a camera its estimated intrinsics become the frame's camera.

The temporal stage (ppd_ros.pipeline.temporal_smoothing) keeps state across frames: one
DepthPipeline serves one camera stream, frames in order. Its scene-change test also tells
the metric scaler when to drop the old scale.

Used by depth_node and by the evaluation tools; no rclpy. When a frame needs both a cloud and
a colourised depth, a helper thread colourises while the calling thread builds the cloud:
both are numpy / OpenCV work that releases the GIL, so on two or more cores the frame takes
the longer of the two rather than their sum. Stage timings are each stage's own duration.
(Splitting the cloud rows over both threads as well was measured: no faster on a 2-core
machine.)
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from ppd_ros.geometry.camera_model import PinholeCamera
from ppd_ros.geometry.colorize import colorize_depth
from ppd_ros.geometry.pointcloud_layout import CloudBufferPool, PackedCloud
from ppd_ros.geometry.unproject import unproject_to_cloud
from ppd_ros.model.moge2_geometry import KnownIntrinsics
from ppd_ros.pipeline.metric_scaler import MetricScaler
from ppd_ros.pipeline.temporal_smoothing import TemporalDepth, TemporalSettings, TemporalStatus


@dataclass(frozen=True)
class PipelineOptions:
    steps: int = 4
    seed: int | None = 0          # None: fresh noise every frame
    output_scale: float = 1.0     # output size relative to the input image
    cloud: bool = True            # build a cloud when the depth is metric and a camera is known
    cloud_stride: int = 1
    cloud_rgb: bool = True
    colorize: bool = True
    temporal: TemporalSettings = TemporalSettings()
    samples: int = 1              # K noise draws per frame, one batch; K > 1 gives confidence


@dataclass
class DepthFrame:
    """Outputs of one frame, all at the output size (input size x output_scale)."""
    relative: np.ndarray               # float32 relative depth, larger = farther
    metres: np.ndarray | None          # float32 metres (NaN invalid) in a metric mode
    camera: PinholeCamera | None       # intrinsics of the output size
    cloud: PackedCloud | None          # depth_image_proc layout, from `metres` only
    colored: np.ndarray | None         # H x W x 3 uint8 RGB visualisation of the depth
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    camera_estimated: bool = False     # `camera` is MoGe-2's estimate, not the given one
    temporal: TemporalStatus | None = None  # scene-change score, share of pixels smoothed
    # samples > 1: per-pixel standard deviation of the K draws in the units of `depth`
    # (metres in a metric mode, else relative); larger = less sure; NaN where depth is NaN
    confidence: np.ndarray | None = None

    @property
    def depth(self) -> np.ndarray:
        """What the `depth` topic carries: metres when metric, otherwise relative depth."""
        return self.relative if self.metres is None else self.metres


def output_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """(width, height) of an output scaled by `scale`, at least 1 x 1."""
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_nearest(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-pixel resize with centred sampling (never blends depths across edges)."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)


def camera_from_geometry(geometry, width: int, height: int) -> PinholeCamera:
    """The camera MoGe-2 estimated (``MoGe2Geometry``) for a width x height image."""
    k = geometry.camera_matrix(width, height)
    return PinholeCamera(width, height, k, np.hstack((k, np.zeros((3, 1)))))


def _timed(fn, *args):
    """(fn(*args), seconds it took)."""
    clock = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - clock


class DepthPipeline:
    """Runs a predictor (see ppd_ros.model.load_predictor) plus the geometry on each frame."""

    def __init__(self, predictor, overlap: bool = True):
        """`overlap=False`: no helper thread; colourising follows the cloud."""
        self.predictor = predictor
        # cloud payloads are recycled once the previous frame's message is gone
        self._cloud_buffers = CloudBufferPool()
        self._helper = (ThreadPoolExecutor(1, thread_name_prefix='ppd_colorize')
                        if overlap else None)
        self._temporal = TemporalDepth()

    def close(self) -> None:
        """Stop the helper thread (after a running frame finishes); process() then runs
        everything in the calling thread."""
        helper, self._helper = self._helper, None
        if helper is not None:
            helper.shutdown(wait=True)

    def continue_stream(self, rgb: np.ndarray | None = None,
                        relative: np.ndarray | None = None,
                        options: PipelineOptions = PipelineOptions()) -> None:
        """Make the next frame follow an earlier one: its image and the relative depth this
        pipeline gave for it (e.g. read back when an evaluation resumes). Without them the
        next frame starts a new stream."""
        if rgb is None or relative is None:
            self._temporal.restart()
        else:
            self._temporal.continue_from(relative, rgb, options.temporal)

    def process(self, rgb: np.ndarray, camera: PinholeCamera | None = None,
                options: PipelineOptions = PipelineOptions(),
                scaler: MetricScaler | None = None) -> DepthFrame:
        """`camera` must describe the rgb image's size; clouds need it and a metric scaler."""
        height, width = rgb.shape[:2]
        if camera is not None and (camera.width, camera.height) != (width, height):
            raise ValueError(f'camera is {camera.width}x{camera.height} but the image is '
                             f'{width}x{height}')
        start = time.perf_counter()
        extra = {'samples': options.samples} if options.samples > 1 else {}
        if getattr(self.predictor, 'takes_camera', False) and camera is not None:
            extra['camera'] = KnownIntrinsics(camera.fx, camera.fy, camera.cx, camera.cy)
        pred = self.predictor.predict(rgb, steps=options.steps, seed=options.seed, **extra)
        timings = {k: v for k, v in pred.timings.items() if k != 'total'}
        geometry = getattr(pred, 'geometry', None)
        camera_estimated = camera is None and geometry is not None
        if camera_estimated:
            camera = camera_from_geometry(geometry, width, height)

        clock = time.perf_counter()
        relative, temporal = self._temporal.update(pred.depth, rgb, options.temporal)
        if temporal.scene_changed and scaler is not None:
            scaler.scene_changed()
        timings['temporal'] = time.perf_counter() - clock

        clock = time.perf_counter()
        use_prediction = getattr(scaler, 'use_prediction', None)  # optional (moge_scaler)
        if use_prediction is not None:
            use_prediction(pred)
        metres = scaler.to_metres(relative) if scaler is not None else None
        confidence = getattr(pred, 'spread', None) if options.samples > 1 else None
        if confidence is not None and scaler is not None:
            confidence = None if metres is None else scaler.metres_spread(confidence, metres)
        timings['metric'] = time.perf_counter() - clock

        clock = time.perf_counter()
        out_w, out_h = output_size(width, height, options.output_scale)
        relative = resize_nearest(relative, out_w, out_h)
        if metres is not None:
            metres = resize_nearest(metres, out_w, out_h)
        if confidence is not None:
            confidence = resize_nearest(confidence, out_w, out_h)
        out_camera = camera.scaled_to(out_w, out_h) if camera is not None else None
        timings['resize'] = time.perf_counter() - clock

        colorize_source = relative if metres is None else metres
        make_cloud = options.cloud and metres is not None and out_camera is not None
        colored_job = None
        if options.colorize and make_cloud and self._helper is not None:
            try:
                colored_job = self._helper.submit(_timed, colorize_depth, colorize_source)
            except RuntimeError:  # closed meanwhile: colourise here instead
                colored_job = None

        clock = time.perf_counter()
        cloud = None
        if make_cloud:
            cloud = self._cloud(metres, out_camera, rgb, options)
        timings['cloud'] = time.perf_counter() - clock

        colored, timings['colorize'] = None, 0.0
        if colored_job is not None:
            colored, timings['colorize'] = colored_job.result()
        elif options.colorize:
            colored, timings['colorize'] = _timed(colorize_depth, colorize_source)
        timings['total'] = time.perf_counter() - start
        return DepthFrame(relative, metres, out_camera, cloud, colored, timings, camera_estimated,
                          temporal, confidence)

    def _cloud(self, metres: np.ndarray, camera: PinholeCamera, rgb: np.ndarray,
               options: PipelineOptions) -> PackedCloud:
        colours = resize_nearest(rgb, camera.width, camera.height) if options.cloud_rgb else None
        return unproject_to_cloud(metres, camera, options.cloud_stride, colours,
                                  self._cloud_buffers)
