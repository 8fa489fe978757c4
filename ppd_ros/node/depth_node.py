"""depth_node: RGB images in; relative or metric depth, point clouds, visualisation out.

A thin rclpy adapter over ppd_ros.pipeline.DepthPipeline. Subscription callbacks only hand the
newest frame to an inference worker thread (LatestFrameSlot), so they never block on the
model and a slow model drops frames instead of building a backlog. In depth.mode
'reference' and 'fusion', depth_reference images go to a stamp-ordered ring buffer
(ReferencePairing); the worker pairs each frame with the nearest one and feeds it to the
ReferenceScaler (FusionScaler: with the colour image too).

    ros2 run ppd_ros depth_node --ros-args --params-file config/depth.yaml \
        -r image:=/camera/image_raw -r camera_info:=/camera/camera_info \
        -r depth_reference:=/camera/aligned_depth_to_color/image_raw
"""
from __future__ import annotations

import argparse
import os
import sys
import textwrap
import threading
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from ppd_ros.geometry.camera_model import CameraModelError, camera_from_info_fields
from ppd_ros.messages.compressed_image import compressed_to_rgb
from ppd_ros.messages.image_encoding import (COLOR_ENCODINGS, ImageEncodingError,
                                             image_to_depth_m, image_to_rgb)
from ppd_ros.messages.image_limits import ImageLimitError, ImageLimits
from ppd_ros.model.predictor import PredictionInterrupted
from ppd_ros.node import message_builders as build
from ppd_ros.node.diagnostics import depth_node_status
from ppd_ros.node.frame_statistics import FrameStatistics
from ppd_ros.node.heap_retention import retain_freed_memory
from ppd_ros.node.input_gaps import InputGapEstimator
from ppd_ros.node.latest_frame_slot import LatestFrameSlot
from ppd_ros.node.matched_subscription import MatchedSubscription
from ppd_ros.node.node_parameters import PARAMETERS, DepthNodeSettings, validate_parameters
from ppd_ros.node.output_publishers import OutputPublishers
from ppd_ros.node.outputs import (CAMERA_INFO, DEPTH_COLORED, DEPTH_SOURCE, DIAGNOSTICS,
                                  OUTPUTS, POINTS, FrameProducts)
from ppd_ros.node.throttled_log import ThrottledLog
from ppd_ros.pipeline.depth_pipeline import DepthPipeline, PipelineOptions
from ppd_ros.pipeline.fusion_scaler import FusionScaler
from ppd_ros.pipeline.geometry_loading import load_metric_predictor_from_paths
from ppd_ros.pipeline.metric_scaler import (REFERENCE_MODES, ReferenceScaler,
                                            metric_scaler_for_mode)
from ppd_ros.pipeline.package_paths import resolve_package_path
from ppd_ros.pipeline.predictor_loading import (ModelUnavailableError, load_predictor_from_paths,
                                                model_notice, parse_image_size)
from ppd_ros.pipeline.reference_pairing import ReferencePairing
from ppd_ros.ros_conventions.camera_info import distortion_warning
from ppd_ros.ros_conventions.fastdds_profile import (PROFILE, fastdds_major_version,
                                                     loaded_libraries, profile_problem)
from ppd_ros.untrusted_text import one_line

NODE_NAME = 'depth_node'
ERROR_PERIOD_S = 5.0
#: depth_reference images kept by the middleware until the callback takes them.
REFERENCE_QOS_DEPTH = 5
#: At shutdown, how long to wait for the frame in progress (the predictor stops at its next
#: diffusion step); after that the frame is abandoned and the process exits without waiting.
SHUTDOWN_WAIT_S = 5.0


class StartupError(RuntimeError):
    """The node cannot start (bad parameters, no model); the message says why."""


def _image_problem(msg, error: ImageEncodingError) -> str:
    """Throttling key of an undecodable image: each kind of problem is reported on its own."""
    if isinstance(error, ImageLimitError):
        return error.setting
    if isinstance(msg, CompressedImage):
        return 'bad_compressed'
    if msg.width == 0 or msg.height == 0:
        return 'zero_size'
    if msg.encoding not in COLOR_ENCODINGS:
        return 'bad_encoding'
    return 'bad_payload'


def _stamp_ns(header) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def _describe(predictor) -> str:
    config = getattr(predictor, 'config', None)
    return (f"{getattr(config, 'name', type(predictor).__name__)} on "
            f"{getattr(predictor, 'device', 'an unknown device')}")


class DepthNodeCore:
    """Parameters, topics and threading of depth_node; the work is in DepthPipeline.

    The one implementation of the node, mixed into a plain rclpy Node (DepthNode) and a
    managed one (ManagedDepthNode), in these steps:
      _declare     parameters (validated; they may change at run time from here on)
      _configure   load and check the model, advertise the outputs, start the worker
      _activate    subscribe to the inputs, publish, report /diagnostics
      _deactivate  unsubscribe and stop publishing (the model stays loaded)
      _cleanup     stop the worker, release the model and the outputs

    predictor: use this object instead of loading the model from the checkpoint parameters
    (an in-process test double, or a predictor shared with other code). It needs
    predict(rgb, steps=, seed=) returning an object with `depth` (H x W float32 relative
    depth) and `timings` (dict of seconds), like ppd_ros.model.DepthPredictor.
    """

    _outputs: OutputPublishers | None = None
    _pipeline: DepthPipeline | None = None
    _worker: threading.Thread | None = None
    _abandoned: threading.Thread | None = None  # a worker left inside the model at shutdown
    _image_sub = _info_sub = _reference_sub = _diag_pub = _diag_timer = None
    _profile_checked = False
    _last_temporal = None   # TemporalStatus of the last processed frame

    def _declare(self) -> None:
        try:
            for spec in PARAMETERS:
                self.declare_parameter(spec.name, spec.default, spec.descriptor())
        except Exception as err:  # wrong type or out-of-range override from YAML / CLI
            raise StartupError(f'invalid parameter: {err}') from err
        values = {spec.name: self.get_parameter(spec.name).value for spec in PARAMETERS}
        problem = validate_parameters(values)
        if problem:
            raise StartupError(problem)
        self._values = values
        s = DepthNodeSettings.from_values(values)
        # settings and the scaler they imply are replaced together, so a frame never mixes them
        self._config = (s, metric_scaler_for_mode(s.depth_mode, s.scale))
        self._log = ThrottledLog(ERROR_PERIOD_S)
        self._image_topic = self.resolve_topic_name(
            'image/compressed' if s.image_transport == 'compressed' else 'image')
        self._info_topic = self.resolve_topic_name('camera_info')
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def _configure(self, predictor=None) -> None:
        s = self._config[0]
        if s.retain_heap and not retain_freed_memory():
            self.get_logger().info('retain_heap: no glibc mallopt here; malloc left as it is')
        if predictor is None:
            try:
                if s.depth_mode == 'moge':  # PPD plus MoGe-2 (only loaded in this mode)
                    if s.backend != 'torch':
                        raise StartupError("depth.mode 'moge' runs on backend torch (MoGe-2 is "
                                           f"not exported), got backend '{s.backend}'")
                    predictor = load_metric_predictor_from_paths(
                        s.checkpoint, s.dit_checkpoint, s.encoder_checkpoint, s.moge_checkpoint,
                        s.variant, s.device, s.precision, s.num_threads, s.network_area,
                        s.moge_grid, s.moge_resolution_level, s.upsampling)
                else:
                    predictor = load_predictor_from_paths(
                        s.checkpoint, s.dit_checkpoint, s.encoder_checkpoint, s.variant,
                        s.device, s.precision, s.num_threads, s.network_area, s.upsampling,
                        s.backend, s.export_dir, s.compile)
            except ModelUnavailableError as err:
                raise StartupError(str(err)) from err
            notice = model_notice(s.checkpoint, s.dit_checkpoint, s.encoder_checkpoint, s.variant)
            if notice:
                self.get_logger().info(notice)
        self._warm_up(predictor, s)
        self._pipeline = DepthPipeline(predictor)
        self._set_geometry(s)
        self._intrinsics_source = ''
        self._estimated_camera_logged = False
        self._stats = FrameStatistics()
        self._gaps = InputGapEstimator()
        self._slot = LatestFrameSlot()
        self._camera_info: CameraInfo | None = None
        self._distortion_checked = False
        self._references = ReferencePairing(s.reference_queue_size)
        self._outputs = OutputPublishers(self)
        self._outputs.sync(s)
        self._worker = threading.Thread(target=self._run_worker, name='ppd_inference',
                                        daemon=True)
        self._worker.start()
        # after the model loaded, so a node that cannot start prints only its fatal line
        self._warn_without_large_message_profile()

    def _warm_up(self, predictor, s: DepthNodeSettings) -> None:
        size = parse_image_size(s.warmup_size)
        if size is None or not hasattr(predictor, 'prepare'):
            return
        start = time.monotonic()
        try:
            predictor.prepare(size[1], size[0], steps=s.steps)
        except ValueError as err:
            raise StartupError(f"parameter 'warmup_size': {err}") from err
        self.get_logger().info(f'prepared the model for {s.warmup_size} images in '
                               f'{time.monotonic() - start:.1f} s')

    def _activate(self) -> None:
        s = self._config[0]
        image_type = CompressedImage if s.image_transport == 'compressed' else Image
        self._image_sub = MatchedSubscription(self, image_type, self._image_topic,
                                              self._on_image, s.qos_depth, s.qos_reliability)
        self._info_sub = MatchedSubscription(self, CameraInfo, self._info_topic,
                                             self._on_camera_info, 1, s.qos_reliability)
        self._subscribe_reference_if_needed(s)
        self._diag_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS, 10)
        self._diag_timer = self.create_timer(s.diagnostics_period, self._publish_diagnostics)
        self._outputs.set_active(True)

    def _deactivate(self) -> None:
        if self._outputs is not None:
            self._outputs.set_active(False)
        for subscription in (self._image_sub, self._info_sub, self._reference_sub):
            if subscription is not None:
                subscription.destroy()
        self._image_sub = self._info_sub = self._reference_sub = None
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
            self.destroy_publisher(self._diag_pub)
        self._diag_timer = self._diag_pub = None
        if self._worker is not None:
            self._slot.take(timeout=0.0)  # a frame still waiting for the model is dropped

    def _cleanup(self) -> None:
        if self._worker is not None:
            self._stop_worker()
        if self._pipeline is not None and self._abandoned is None:
            self._pipeline.close()
        if self._outputs is not None:
            self._outputs.close()
        self._worker = self._pipeline = self._outputs = None

    def _stop_worker(self) -> None:
        """No new frame; the running prediction stops before its next diffusion step. A
        worker still inside the model after SHUTDOWN_WAIT_S is abandoned (inference_running)."""
        self._slot.close()
        interrupt = getattr(self._pipeline.predictor, 'interrupt', None)
        deadline = time.monotonic() + SHUTDOWN_WAIT_S
        while self._worker.is_alive() and time.monotonic() < deadline:
            if interrupt is not None:
                interrupt()  # again each time: a prediction may have started meanwhile
            self._worker.join(timeout=0.1)
        if self._worker.is_alive():
            self.get_logger().warning(
                f'shutdown: the frame in progress is still inside the model after '
                f'{SHUTDOWN_WAIT_S:g} s; abandoning it')
            self._abandoned = self._worker

    def inference_running(self) -> bool:
        """True while an abandoned worker is still inside a frame (see _stop_worker)."""
        return self._abandoned is not None and self._abandoned.is_alive()

    def _describe_running(self) -> str:
        s = self._config[0]
        return (f"model {_describe(self._pipeline.predictor)} (backend {s.backend}), "
                f"depth.mode '{s.depth_mode}', "
                f"listening on {self._image_topic}; outputs: "
                f"{', '.join(self._outputs.topics())}")

    def _warn_without_large_message_profile(self) -> None:
        """One warning, once the model is loaded, when Fast DDS runs without a large-message
        profile (a node that cannot start says only why)."""
        if self._profile_checked:
            return
        self._profile_checked = True
        profile = resolve_package_path(PROFILE)
        problem = profile_problem(rclpy.get_rmw_implementation_identifier(), os.environ,
                                  fastdds_major_version(loaded_libraries()),
                                  str(profile) if profile else None)
        if problem:
            self.get_logger().warning(problem)

    # --- callbacks (executor thread): cheap, never wait for the model ---

    def _on_image(self, msg) -> None:
        self._stats.frame_received()
        self._gaps.add(_stamp_ns(msg.header))
        if self._idle(self._config[0]):
            self._stats.frame_skipped_idle()
            return
        if self._slot.put(msg):
            self._stats.frame_dropped()

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg
        if not self._distortion_checked:  # one warning for the whole run
            self._distortion_checked = True
            warning = distortion_warning(self._image_topic, self._info_topic,
                                         msg.distortion_model, msg.d)
            if warning:
                self.get_logger().warning(warning)

    def _on_reference(self, msg: Image) -> None:
        if self._config[0].depth_mode in REFERENCE_MODES:
            self._references.add(_stamp_ns(msg.header), msg)

    def _subscribe_reference_if_needed(self, s: DepthNodeSettings) -> None:
        if self._image_sub is None:
            return  # inputs exist only while active (_activate subscribes to the image first)
        if s.depth_mode in REFERENCE_MODES and self._reference_sub is None:
            self._reference_sub = MatchedSubscription(
                self, Image, 'depth_reference', self._on_reference, REFERENCE_QOS_DEPTH,
                s.qos_reliability)
            self._references.name = self._reference_sub.topic_name
        elif s.depth_mode not in REFERENCE_MODES and self._reference_sub is not None:
            self._reference_sub.destroy()
            self._reference_sub = None

    def _has_geometry(self) -> bool:
        """Whether the predictor also gives MoGe-2's geometry (depth.mode 'moge')."""
        return self._pipeline is not None and hasattr(self._pipeline.predictor,
                                                      'geometry_enabled')

    def _set_geometry(self, s: DepthNodeSettings) -> None:
        """MoGe-2 runs only while depth.mode is 'moge'."""
        if self._has_geometry():
            self._pipeline.predictor.geometry_enabled = s.depth_mode == 'moge'

    def _on_set_parameters(self, params) -> SetParametersResult:
        values = dict(self._values)
        values.update({p.name: p.value for p in params})
        problem = validate_parameters(values)
        if (not problem and values['depth.mode'] == 'moge' and self._pipeline is not None
                and not self._has_geometry()):
            problem = ("depth.mode 'moge' needs MoGe-2, which is loaded at start only in that "
                       "mode: restart the node with depth.mode:=moge")
        if problem:
            return SetParametersResult(successful=False, reason=problem)
        self._values = values
        settings = DepthNodeSettings.from_values(values)
        current, scaler = self._config
        if (settings.depth_mode, settings.scale) != (current.depth_mode, current.scale):
            scaler = metric_scaler_for_mode(settings.depth_mode, settings.scale)
        self._config = (settings, scaler)
        self._set_geometry(settings)
        self._subscribe_reference_if_needed(settings)
        if self._outputs is not None:
            before = self._outputs.topics()
            self._outputs.sync(settings)
            if self._outputs.topics() != before:
                self.get_logger().info(f"depth.mode '{settings.depth_mode}': outputs now "
                                       f"{', '.join(self._outputs.topics())}")
        return SetParametersResult(successful=True)

    def _publish_diagnostics(self) -> None:
        s, scaler = self._config
        outputs = self._outputs
        status = depth_node_status(
            f'ppd_ros: {self.get_name()}', self.get_fully_qualified_name(),
            self._stats.snapshot(), self._idle(s), s.depth_mode,
            None if scaler is None else scaler.status,
            self._references.status() if s.depth_mode in REFERENCE_MODES else None,
            self._gaps.status(),
            self._intrinsics_source if s.depth_mode == 'moge' else '',
            self._last_temporal, None if outputs is None else outputs.published())
        header = Header(stamp=self.get_clock().now().to_msg())
        self._diag_pub.publish(DiagnosticArray(header=header, status=[status]))

    # --- inference worker thread ---

    def _run_worker(self) -> None:
        while True:
            msg = self._slot.take()
            if msg is None:
                return
            try:
                self._process(msg)
            except PredictionInterrupted:
                return  # shutting down in the middle of a frame: nothing to publish
            except Exception as err:  # keep the node alive whatever one frame does
                if not self.context.ok() or self._outputs is None:
                    return  # shutting down: publishers are going away
                try:
                    self._fail('processing', f'depth processing failed: '
                                             f'{type(err).__name__}: {one_line(err)}')
                except Exception:  # logging itself failed: still keep the worker
                    pass

    def _fail(self, key: str, message: str) -> None:
        """Count a frame that could not be processed, and log why."""
        self._stats.frame_failed(message)
        self._error(key, message)

    def _error(self, key: str, message: str) -> None:
        """Log an error, once per ERROR_PERIOD_S for each key."""
        suffix = self._log.due(key)
        if suffix is not None:
            self.get_logger().error(message + suffix)

    def _warn(self, key: str, message: str) -> None:
        suffix = self._log.due(key)
        if suffix is not None:
            self.get_logger().warning(message + suffix)

    def _idle(self, s: DepthNodeSettings) -> bool:
        """Lazy mode with nobody subscribed to any output: skip inference."""
        outputs = self._outputs
        return s.lazy and (outputs is None or not outputs.any_subscribed())

    def _wanted(self, topic: str, s: DepthNodeSettings) -> bool:
        outputs = self._outputs
        return outputs is not None and outputs.wanted(topic, s.lazy)

    def _decode(self, msg, s: DepthNodeSettings) -> np.ndarray:
        limits = ImageLimits(s.input_max_pixels, s.input_max_aspect_ratio)
        if isinstance(msg, CompressedImage):
            return compressed_to_rgb(msg.format, msg.data, limits,
                                     warn=lambda text: self._warn('decoder_output', text))
        limits.check(msg.width, msg.height)
        return image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.data,
                            bool(msg.is_bigendian))

    def _camera_for(self, width: int, height: int, s: DepthNodeSettings):
        """(camera, CameraInfo, problem) for an image of this size; camera None if unusable."""
        info = self._camera_info
        if info is None and s.depth_mode == 'moge' and not s.moge_require_camera_info:
            if not self._estimated_camera_logged:  # once: every frame until CameraInfo comes
                self._estimated_camera_logged = True
                self.get_logger().warning(
                    f"no CameraInfo on '{self._info_topic}': depth.mode 'moge' uses MoGe-2's "
                    "estimated intrinsics and publishes them on depth/camera_info (set "
                    "moge.require_camera_info to publish metric depth only with CameraInfo)")
            return None, None, None
        if info is None:
            problem = (f"no CameraInfo received on '{self._info_topic}': publishing "
                       'depth without depth/camera_info and points')
            self._warn('no_camera_info', problem)
            return None, None, problem
        try:
            camera = camera_from_info_fields(info.k, info.p, info.width, info.height)
        except CameraModelError as err:
            problem = f'unusable CameraInfo: {err}; skipping depth/camera_info and points'
            self._error('camera_info', problem)
            return None, info, problem
        if (camera.width, camera.height) != (width, height):
            problem = (f'image is {width}x{height} but CameraInfo is {camera.width}x'
                       f'{camera.height}; skipping depth/camera_info and points')
            self._error('size_mismatch', problem)
            return None, info, problem
        return camera, info, None

    def _paired_reference(self, stamp_ns: int, s: DepthNodeSettings):
        """(reference in metres or None, why there is none) for a frame stamped stamp_ns."""
        match = self._references.match(stamp_ns, s.reference_max_dt, s.reference_max_wait_s)
        if match.reference is None:
            return None, match.problem
        ref = match.reference
        try:
            ImageLimits(s.input_max_pixels, s.input_max_aspect_ratio).check(ref.width, ref.height)
            return image_to_depth_m(ref.encoding, ref.height, ref.width, ref.step, ref.data,
                                    bool(ref.is_bigendian)), ''
        except ImageEncodingError as err:
            problem = f"bad image on '{self._references.name}': {err}"
            self._error('bad_reference', problem)
            return None, problem

    def _begin_scaled_frame(self, scaler, stamp_ns: int, s: DepthNodeSettings,
                            rgb: np.ndarray) -> None:
        if isinstance(scaler, FusionScaler):
            reference, problem = self._paired_reference(stamp_ns, s)
            scaler.begin_frame(stamp_ns * 1e-9, reference, problem, rgb=rgb,
                               want_source=self._wanted(DEPTH_SOURCE, s))
        elif isinstance(scaler, ReferenceScaler):
            reference, problem = self._paired_reference(stamp_ns, s)
            scaler.begin_frame(stamp_ns * 1e-9, reference, problem)
        elif scaler is not None:
            scaler.begin_frame(stamp_ns * 1e-9)

    def _process(self, msg: Image | CompressedImage) -> None:
        s, scaler = self._config
        start = time.perf_counter()
        if msg.header.stamp.sec < 0:
            self._fail('negative_stamp', f"image on '{self._image_topic}' is stamped "
                       f'{msg.header.stamp.sec} s: ROS time cannot be negative; frame skipped '
                       '(fix the camera driver clock)')
            return
        try:
            rgb = self._decode(msg, s)
        except ImageEncodingError as err:
            hint = ''
            if isinstance(err, ImageLimitError):
                hint = f"; parameter 'input.{err.setting}' sets the limit"
            self._fail(_image_problem(msg, err),
                       f"bad image on '{self._image_topic}': {err}{hint}")
            return
        camera, info, problem = self._camera_for(rgb.shape[1], rgb.shape[0], s)
        if s.depth_mode == 'moge' and camera is None and s.moge_require_camera_info:
            self._fail('moge_camera_info', f"depth.mode 'moge' with moge.require_camera_info: "
                       f'no usable CameraInfo ({problem}); no metric depth and no points')
            return
        options = PipelineOptions(
            steps=s.steps, seed=None if s.seed < 0 else s.seed, output_scale=s.output_scale,
            cloud=self._wanted(POINTS, s), cloud_stride=s.cloud_stride,
            cloud_rgb=s.cloud_rgb, colorize=self._wanted(DEPTH_COLORED, s),
            temporal=s.temporal, samples=s.samples)
        decode_s = time.perf_counter() - start
        clock = time.perf_counter()
        self._begin_scaled_frame(scaler, _stamp_ns(msg.header), s, rgb)
        pairing_s = time.perf_counter() - clock
        result = self._pipeline.process(rgb, camera, options, scaler)
        if s.depth_mode == 'moge':
            self._intrinsics_source = ('MoGe-2 estimate (no CameraInfo)' if result.camera_estimated
                                       else 'CameraInfo' if camera is not None else '')

        clock = time.perf_counter()
        if scaler is not None and result.metres is None:
            self._warn('no_scale', f"depth.mode '{s.depth_mode}': {scaler.status.reason}; "
                       'publishing no metric depth and no points')
        elif scaler is not None and scaler.status.held_for > 0:
            self._warn('scale_held', f"depth.mode '{s.depth_mode}': {scaler.status.reason}")
        self._publish(Header(stamp=msg.header.stamp, frame_id=msg.header.frame_id),
                      FrameProducts(result, s, scaler), info)
        publish_s = time.perf_counter() - clock

        latency = (self.get_clock().now() - Time.from_msg(msg.header.stamp)).nanoseconds * 1e-9
        stages = {'decode': decode_s, **result.timings, 'publish': publish_s,
                  'node total': time.perf_counter() - start}
        if isinstance(scaler, ReferenceScaler):
            stages['reference pairing'] = pairing_s
        self._last_temporal = result.temporal
        self._stats.frame_processed(stages, latency, problem)

    def _publish(self, header: Header, products: FrameProducts,
                 info: CameraInfo | None) -> None:
        """Every image output the frame has (see ppd_ros.node.outputs), with the CameraInfo
        beside them; the cloud; colourised depth last."""
        s, frame = products.settings, products.frame
        images = []
        for output in OUTPUTS:
            if output.image is not None and self._wanted(output.topic, s):
                data = output.image(products)
                if data is not None:
                    images.append((output.topic, build.image_data_message(header, data)))
        outputs = self._outputs
        if outputs is None:
            return
        if images and frame.camera is not None and self._wanted(CAMERA_INFO, s):
            outputs.publish(CAMERA_INFO, build.camera_info_message(header, frame.camera, info))
        if frame.cloud is not None:
            outputs.publish(POINTS, build.pointcloud_message(header, frame.cloud))
        for topic, image in images:
            outputs.publish(topic, image)


class DepthNode(DepthNodeCore, Node):
    """depth_node as a plain node: running from construction to destroy_node()."""

    def __init__(self, predictor=None, **kwargs):
        Node.__init__(self, NODE_NAME, **kwargs)
        self._declare()
        self._configure(predictor)
        self._activate()
        self.get_logger().info(f'ready: {self._describe_running()}')

    def destroy_node(self) -> None:
        self._deactivate()
        self._cleanup()
        super().destroy_node()


class ManagedDepthNode(DepthNodeCore, LifecycleNode):
    """depth_node as a managed (lifecycle) node: configure loads and checks the model and
    advertises the outputs, activate subscribes and publishes, deactivate stops both (the
    model stays loaded), cleanup and shutdown release everything. A failed configure (e.g.
    missing weights) logs why and leaves the node unconfigured."""

    def __init__(self, predictor=None, **kwargs):
        LifecycleNode.__init__(self, NODE_NAME, **kwargs)
        self._declare()
        self._given_predictor = predictor
        self.get_logger().info('unconfigured: waiting for the configure transition')

    def on_configure(self, state) -> TransitionCallbackReturn:
        try:
            self._configure(self._given_predictor)
        except StartupError as err:
            self.get_logger().error(f'configure failed: {err}')
            self._cleanup()
            return TransitionCallbackReturn.FAILURE
        except Exception as err:  # rclpy would turn it into ERROR without a word
            self.get_logger().error(f'configure failed: {type(err).__name__}: {err}')
            self._cleanup()
            return TransitionCallbackReturn.ERROR
        self.get_logger().info(f'configured: model {_describe(self._pipeline.predictor)}; '
                               f"outputs: {', '.join(self._outputs.topics())}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        self._activate()
        self.get_logger().info(f'active: {self._describe_running()}')
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self._deactivate()
        self.get_logger().info('inactive: not subscribed, not publishing; model kept')
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self._cleanup()
        self.get_logger().info('unconfigured: model and outputs released')
        return super().on_cleanup(state)

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self._deactivate()
        self._cleanup()
        return super().on_shutdown(state)

    def on_error(self, state) -> TransitionCallbackReturn:
        self._deactivate()
        self._cleanup()
        return super().on_error(state)

    def destroy_node(self) -> None:
        self._deactivate()
        self._cleanup()
        super().destroy_node()


USAGE = f"""usage: {NODE_NAME} [-h] [--lifecycle] [--ros-args ...]

Pixel-Perfect Depth for ROS 2: RGB images in; depth, point clouds and diagnostics out.

options:
  -h, --help     show this help and exit
  --lifecycle    run as a managed (lifecycle) node: it starts unconfigured; configure loads
                 the model, activate subscribes and publishes (ros2 lifecycle set ...)

inputs (relative, remappable): image (or image/compressed with image_transport:=compressed),
  camera_info, depth_reference (depth.mode reference / fusion)
outputs, advertised when the depth.mode can publish them:
{{outputs}}
  /diagnostics

parameters: {{parameters}}
  (each is described by `ros2 param describe`, and in config/depth.yaml)

examples:
  {NODE_NAME} --ros-args --params-file config/depth.yaml -r image:=/camera/color/image_raw \\
      -r camera_info:=/camera/color/camera_info
  {NODE_NAME} --ros-args -p depth.mode:=range -p range.near_m:=0.5 -p range.far_m:=4.0
"""


def usage() -> str:
    outputs = '\n'.join(f'  {o.topic:<18} {o.description}' for o in OUTPUTS)
    parameters = textwrap.fill(', '.join(spec.name for spec in PARAMETERS), width=92,
                               subsequent_indent='  ')
    return USAGE.format(outputs=outputs, parameters=parameters)


def _non_ros_args(args: list[str]) -> list[str]:
    """The arguments outside `--ros-args ... [--]` sections (as rcl splits them)."""
    kept, in_ros_args = [], False
    for arg in args:
        if arg == '--ros-args':
            in_ros_args = True
        elif in_ros_args and arg == '--':
            in_ros_args = False
        elif not in_ros_args:
            kept.append(arg)
    return kept


def _options(argv: list[str]) -> argparse.Namespace | int:
    """The node's own options, or the exit status when there is nothing to run."""
    parser = argparse.ArgumentParser(prog=NODE_NAME, add_help=False)
    parser.add_argument('-h', '--help', action='store_true')
    parser.add_argument('--lifecycle', action='store_true')
    options, unknown = parser.parse_known_args(_non_ros_args(argv[1:]))
    if options.help:
        print(usage(), end='')
        return 0
    if unknown:
        print(f"{NODE_NAME}: error: unknown option {' '.join(unknown)}; see {NODE_NAME} --help "
              '(ROS arguments go after --ros-args)', file=sys.stderr)
        return 2
    return options


def main(args=None) -> int:
    """Entry point; ``args`` is a full argv (program name first), as rclpy.init takes it."""
    argv = list(sys.argv if args is None else args)
    options = _options(argv)
    if isinstance(options, int):
        return options
    try:
        rclpy.init(args=argv)
    except RuntimeError as err:  # rclpy's RCLError, e.g. malformed --ros-args
        print(f'{NODE_NAME}: cannot initialise ROS: {err}', file=sys.stderr)
        return 2
    node = None
    try:
        node = ManagedDepthNode() if options.lifecycle else DepthNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except StartupError as err:
        rclpy.logging.get_logger(NODE_NAME).fatal(str(err))
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    if node is not None and node.inference_running():
        # A thread is still inside torch: normal interpreter exit would tear its C++ state
        # down under it and abort. Nothing is left to save: leave at once, successfully.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


if __name__ == '__main__':
    sys.exit(main())
