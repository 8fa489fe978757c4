"""depth_node's parameters: declarations (with descriptors) and validation.

Read-only parameters are fixed at start-up (model, device, transport, QoS); the others may
change at run time and are validated together by validate_parameters().
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from ppd_ros.messages.image_encoding import DEPTH_ENCODINGS
from ppd_ros.messages.image_limits import DEFAULT_MAX_ASPECT_RATIO, DEFAULT_MAX_PIXELS
from ppd_ros.model.network_resolution import MAX_ASPECT_RATIO
from ppd_ros.pipeline.geometry_loading import DEFAULT_MOGE_CHECKPOINT, GRID_CHOICES
from ppd_ros.pipeline.metric_scaler import (DEPTH_MODES, DepthModeError, ScaleSettings,
                                            metric_scaler_for_mode)
from ppd_ros.pipeline.predictor_loading import (BACKEND_CHOICES, DEVICE_PATTERN, MODEL_DEFAULTS,
                                                PRECISION_CHOICES, UPSAMPLING_CHOICES,
                                                VARIANT_CHOICES, check_network_area_setting,
                                                parse_image_size)
from ppd_ros.pipeline.temporal_smoothing import RECOMMENDED as TEMPORAL, TemporalSettings
from ppd_ros.ros_conventions.qos_matching import RELIABILITY_CHOICES


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    default: Any
    description: str
    read_only: bool = False
    int_range: tuple[int, int] | None = None
    float_range: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None

    def descriptor(self) -> ParameterDescriptor:
        d = ParameterDescriptor(name=self.name, description=self.description,
                                read_only=self.read_only)
        if self.int_range is not None:
            d.integer_range = [IntegerRange(from_value=self.int_range[0],
                                            to_value=self.int_range[1], step=1)]
        if self.float_range is not None:
            d.floating_point_range = [FloatingPointRange(from_value=self.float_range[0],
                                                         to_value=self.float_range[1], step=0.0)]
        if self.choices is not None:
            d.additional_constraints = 'one of: ' + ', '.join(self.choices)
        return d


PARAMETERS: tuple[ParameterSpec, ...] = (
    # --- model (read-only) ---
    ParameterSpec('checkpoint', MODEL_DEFAULTS['checkpoint'],
                  'ppd_ros .safetensors checkpoint (it carries its model config and wins over '
                  '`variant`). Empty: `variant` picks the weights. Relative paths resolve '
                  'against the package share directory, the source checkout, then the working '
                  'directory.', read_only=True),
    ParameterSpec('dit_checkpoint', MODEL_DEFAULTS['dit_checkpoint'],
                  'Official PPD DiT weights, used by variants large and large_moge (get them '
                  'with ppd-fetch); left at this default, large_moge loads models/ppd_moge.pth.',
                  read_only=True),
    ParameterSpec('encoder_checkpoint', MODEL_DEFAULTS['encoder_checkpoint'],
                  'Official Depth Anything v2 ViT-L weights, used by variant large; left at '
                  "this default, large_moge loads MoGe-2's models/moge-2-vitl-normal.pt.",
                  read_only=True),
    ParameterSpec('variant', MODEL_DEFAULTS['variant'],
                  'Without checkpoint: tiny loads the shipped models/tiny_ppd.safetensors '
                  '(trained on synthetic rooms, for demos and tests); large the official '
                  'files dit_checkpoint + encoder_checkpoint.',
                  read_only=True, choices=VARIANT_CHOICES),
    ParameterSpec('device', MODEL_DEFAULTS['device'], "Torch device: auto (cuda if available), cpu, cuda or "
                  "cuda:N.", read_only=True),
    ParameterSpec('precision', MODEL_DEFAULTS['precision'], 'Inference precision: fp32, bf16, fp16 (GPUs without '
                  'bf16) or auto: bf16 on a GPU that supports it or a CPU with AMX / '
                  'AVX512-BF16, else fp32. bf16 on CPU keeps memory per image size.',
                  read_only=True, choices=PRECISION_CHOICES),
    ParameterSpec('num_threads', MODEL_DEFAULTS['num_threads'], 'CPU threads for torch; 0 keeps the torch default.',
                  read_only=True, int_range=(0, 256)),
    ParameterSpec('network_area', MODEL_DEFAULTS['network_area'],
                  'Network resolution in pixels: each image is resized to about this area, '
                  'aspect ratio kept, sides multiples of 16 (fewer pixels: faster, coarser). '
                  "0: the model's training area (1024x768 = 786432 for large). E.g. "
                  '442368 = 768x576, 196608 = 512x384; at most 2048x2048.', read_only=True),
    ParameterSpec('upsampling', MODEL_DEFAULTS['upsampling'],
                  'Network output to image size: edge_aware (colour-guided; each pixel at a '
                  'depth step takes the foreground or the background, never a value between: '
                  'no flying pixels), nearest, or bilinear (as the reference run.py).',
                  read_only=True, choices=UPSAMPLING_CHOICES),
    ParameterSpec('backend', MODEL_DEFAULTS['backend'],
                  'What runs the networks: torch (PyTorch), onnxruntime (the export in '
                  'export_dir; CPU, or its CUDA / TensorRT providers when installed) or '
                  'tensorrt (a TensorRT engine built from that export; needs the tensorrt '
                  'package and CUDA). An export serves one network size and its exported '
                  'step counts.', read_only=True, choices=BACKEND_CHOICES),
    ParameterSpec('export_dir', MODEL_DEFAULTS['export_dir'],
                  'Folder made by ppd-export from the same weights, for backend onnxruntime '
                  'or tensorrt (unused with torch).', read_only=True),
    ParameterSpec('moge_checkpoint', DEFAULT_MOGE_CHECKPOINT,
                  "MoGe-2 weights for depth.mode 'moge' (loaded at start only in that mode): an "
                  'official model.pt (Ruicheng/moge-2-vitl-normal) or a ppd_ros MoGe-2 file. '
                  'Unused with variant large_moge from the official files, whose '
                  'encoder_checkpoint is MoGe-2 itself.', read_only=True),
    ParameterSpec('moge.grid', 'auto',
                  "depth.mode 'moge': auto runs MoGe-2's heads on the encoder features of PPD's "
                  'own semantics pass when PPD-MoGe shares the encoder (one encoder pass per '
                  "frame); exact always runs MoGe-2's infer at its own token grid (the "
                  "reference's numbers, a second encoder pass).", read_only=True,
                  choices=GRID_CHOICES),
    ParameterSpec('moge.resolution_level', 9,
                  "depth.mode 'moge': MoGe-2's token budget for its own grid, 0..9 as its "
                  'infer (9: the most tokens, e.g. 3600 for the Large model).', read_only=True,
                  int_range=(0, 9)),
    ParameterSpec('compile', MODEL_DEFAULTS['compile'],
                  'Backend torch: run the networks through torch.compile (needs a C++ compiler '
                  'on CPU). Each new image size compiles once, for tens of seconds to minutes: '
                  "give the camera's size in warmup_size to do it at start-up.", read_only=True),
    ParameterSpec('warmup_size', '', "Image size 'WIDTHxHEIGHT' (e.g. 640x480) to prepare the "
                  'model for at start-up (with compile: compile it), so that the first frame '
                  "is not slow; '' skips it.", read_only=True),
    # --- input (read-only) ---
    ParameterSpec('image_transport', 'raw',
                  "raw: subscribe to sensor_msgs/Image on 'image'; compressed: to "
                  "sensor_msgs/CompressedImage (jpeg/png) on 'image/compressed'.",
                  read_only=True, choices=('raw', 'compressed')),
    ParameterSpec('qos.reliability', 'auto',
                  'Reliability of the image, camera_info and depth_reference subscriptions. '
                  'auto: reliable, or best_effort while a publisher of the topic offers only '
                  'best effort (re-checked as publishers come and go); a reliable reader '
                  'gets every frame of a reliable camera even without a Fast DDS profile.',
                  read_only=True, choices=RELIABILITY_CHOICES),
    ParameterSpec('qos.depth', 1, 'History depth of the image subscription; 1 keeps only the '
                  'newest frame.', read_only=True, int_range=(1, 100)),
    ParameterSpec('diagnostics_period', 1.0, 'Seconds between /diagnostics messages.',
                  read_only=True, float_range=(0.1, 60.0)),
    ParameterSpec('retain_heap', True, 'Keep freed memory in the process (glibc: one arena, no '
                  "mmap'd blocks, no trimming) so the per-frame message copies stop "
                  'page-faulting (measured per 1280x720 cloud frame on 2 cores: 2-4 ms saved '
                  'when idle, ~16 ms when busy). The process then stays at its peak size.',
                  read_only=True),
    # --- run time ---
    ParameterSpec('lazy', True, 'Run no inference while nothing subscribes to any output.'),
    ParameterSpec('input.max_pixels', DEFAULT_MAX_PIXELS, 'Pixel budget per image: larger '
                  'images (by their declared size, for JPEG / PNG read from the header before '
                  'decoding) are refused with one error.', int_range=(1, 2**31 - 1)),
    ParameterSpec('input.max_aspect_ratio', DEFAULT_MAX_ASPECT_RATIO, 'Images whose long '
                  'side exceeds this many times the short side are refused with one error (at '
                  'most the network\'s own limit).',
                  float_range=(1.0, float(MAX_ASPECT_RATIO))),
    ParameterSpec('steps', MODEL_DEFAULTS['steps'], 'Euler sampling steps per frame; more is slower (the paper '
                  'evaluates with 4).',
                  int_range=(1, 64)),
    ParameterSpec('seed', MODEL_DEFAULTS['seed'], 'Seed of the initial noise, the same every frame (steadier '
                  'output); -1 draws fresh noise per frame.', int_range=(-1, 2**31 - 1)),
    ParameterSpec('samples', MODEL_DEFAULTS['samples'], 'Noise draws per frame, run as one '
                  'batch (the encoder once): the depth is their mean, and depth/confidence '
                  'carries their per-pixel standard deviation (in the units of the depth, '
                  'larger = less sure). 1: one draw, no confidence.', int_range=(1, 32)),
    ParameterSpec('temporal.smoothing', TEMPORAL.smoothing, 'Weight of the previous frame in '
                  'the relative depth (an average over about 1 / (1 - w) frames where the depth '
                  'agrees, carried along by optical flow); 0: no smoothing.',
                  float_range=(0.0, 0.95)),
    ParameterSpec('temporal.max_difference', TEMPORAL.max_difference, 'Pixels whose relative '
                  'depth changed by this much or more since the previous frame (an object '
                  'moved, an edge shifted) are not smoothed, so real changes show at once.',
                  float_range=(0.01, 10.0)),
    ParameterSpec('temporal.motion_compensation', TEMPORAL.motion_compensation, 'Warp the '
                  'previous frame by dense optical flow before blending (false: blend in '
                  'place, only for a camera that does not move).'),
    ParameterSpec('temporal.keep_edges', TEMPORAL.keep_edges, 'Keep the depth edges of each new '
                  'frame: where the smoothed depth would fall between the two sides of an '
                  'edge, take the nearer side. false: more flicker reduction, softer edges.'),
    ParameterSpec('temporal.scene_change_threshold', TEMPORAL.scene_change_threshold,
                  'Image-change score (mean difference of normalised 40x30 thumbnails) above '
                  'which a frame starts a new scene: smoothing restarts and the metric scale '
                  "takes that frame's fit at once. Camera motion scores about 0.05, another "
                  'room above 0.5.', float_range=(0.01, 100.0)),
    ParameterSpec('output_scale', 1.0, 'Size of depth, cloud and colored outputs relative to '
                  'the input image (depth/camera_info is scaled to match).',
                  float_range=(0.05, 1.0)),
    ParameterSpec('depth.mode', 'relative',
                  "relative: PPD's relative depth (normalised log(1 + d), larger = farther, "
                  "NOT metres) on 'depth/relative'; no 'depth/image', no cloud. range: metres "
                  "on 'depth/image' from the assumed scene range range.near_m .. range.far_m, "
                  "with clouds. reference: metres on 'depth/image' from a robust per-frame fit "
                  "to the metric depth image on 'depth_reference' (paired by stamp), with "
                  "clouds. fusion: as reference, but the reference's own depth is kept where "
                  "it is valid and not a flying pixel, and aligned PPD, locally corrected to "
                  "it, fills the rest (holes, depth edges). moge: metres on 'depth/image' from "
                  "a per-frame fit to MoGe-2's metric "
                  "depth of the same image (needs MoGe-2 loaded at start: start in this mode), "
                  "with clouds; intrinsics from CameraInfo, or MoGe-2's estimate. Outputs a "
                  "mode cannot fill are not advertised.", choices=DEPTH_MODES),
    ParameterSpec('depth.encoding', '32FC1', "Encoding of the metric 'depth/image': 32FC1 "
                  "metres (NaN invalid) or 16UC1 millimetres (0 invalid). 'depth/relative' is "
                  "always 32FC1.", choices=tuple(DEPTH_ENCODINGS)),
    ParameterSpec('depth.min_m', 0.1, 'Metric modes: metric depth below this is published as '
                  'invalid (and gives no point); reference pixels below it are not fitted.',
                  float_range=(0.0, 1000.0)),
    ParameterSpec('depth.max_m', 20.0, 'Metric modes: metric depth above this is published as '
                  'invalid (and gives no point); reference pixels above it are not fitted. '
                  'Must exceed depth.min_m.', float_range=(0.01, 10000.0)),
    ParameterSpec('range.near_m', 0.5, "depth.mode 'range': metres at the prediction's 2nd "
                  'percentile (the near end of the scene).', float_range=(0.0, 1000.0)),
    ParameterSpec('range.far_m', 10.0, "depth.mode 'range': metres at the prediction's 98th "
                  'percentile (the far end of the scene); must exceed range.near_m.',
                  float_range=(0.01, 10000.0)),
    ParameterSpec('scale.smoothing', 0.3, 'Metric modes: EMA weight of each new frame fit in '
                  'the applied scale (1: no smoothing, smaller: steadier but slower).',
                  float_range=(0.01, 1.0)),
    ParameterSpec('scale.max_jump', 0.25, 'Metric modes: a fit changing the median metric '
                  'depth by more than this fraction is rejected as an outlier (held).',
                  float_range=(0.01, 10.0)),
    ParameterSpec('scale.reset_after', 5, 'Metric modes: this many consecutive, mutually '
                  'consistent outlier fits are a real change: the scale restarts from them.',
                  int_range=(1, 100)),
    ParameterSpec('scale.hold_frames', 5, 'Metric modes: after a failed or rejected fit (or no '
                  'reference) keep the last scale this many frames, then publish no metric '
                  'depth and no points until a fit succeeds.', int_range=(0, 1000)),
    ParameterSpec('moge.require_camera_info', False,
                  "depth.mode 'moge': true publishes metric depth only with CameraInfo (MoGe-2 "
                  "then solves only the depth shift); false uses MoGe-2's estimated intrinsics "
                  "without it and publishes them on 'depth/camera_info'."),
    ParameterSpec('reference.max_dt', 0.02, "depth.mode 'reference': largest |stamp "
                  "difference| (s) between an image and its depth_reference.",
                  float_range=(0.0, 1.0)),
    ParameterSpec('reference.max_wait_s', 0.05, "depth.mode 'reference': how long a frame may "
                  'wait for a depth_reference that has not arrived yet (only while the '
                  'reference stream is live).', float_range=(0.0, 1.0)),
    ParameterSpec('reference.queue_size', 30, "depth.mode 'reference': recent depth_reference "
                  'images kept for pairing; cover the reference rate x the time a frame waits '
                  'for the model.', read_only=True, int_range=(1, 300)),
    ParameterSpec('reference.inlier_threshold', 0.05, "depth.mode 'reference' and 'moge': fit inlier "
                  'band in log(1 + metres) (0.05 ~ 5 % of depth).', float_range=(0.001, 1.0)),
    ParameterSpec('reference.min_inlier_ratio', 0.3, "depth.mode 'reference' and 'moge': a fit "
                  'with a smaller share of inlier reference pixels fails.',
                  float_range=(0.0, 1.0)),
    ParameterSpec('reference.publish_inliers', False, "depth.mode 'reference': publish "
                  "'depth/inliers' (mono8, 255 where the reference agrees with the metric "
                  'depth within reference.inlier_threshold).'),
    ParameterSpec('fusion.flying_step', 0.04, "depth.mode 'fusion': a reference pixel more "
                  'than this (relative) beyond a nearer and a farther 8-neighbour is a flying '
                  'pixel (replaced); raise it for noisier depth sensors.',
                  float_range=(0.005, 1.0)),
    ParameterSpec('fusion.publish_source', False, "depth.mode 'fusion': publish "
                  "'depth/source' (mono8 per depth pixel: 0 no depth, 1 the reference, 2 PPD, "
                  '3 edge-repaired).'),
    ParameterSpec('cloud.stride', 1, 'Keep every n-th row and column in the organized cloud.',
                  int_range=(1, 32)),
    ParameterSpec('cloud.rgb', True, "Add the packed 'rgb' field to the cloud."),
    ParameterSpec('colorize', True, "Publish the colourised depth on 'depth/colored'."),
)

PARAMETER_NAMES = tuple(p.name for p in PARAMETERS)


@dataclass(frozen=True)
class DepthNodeSettings:
    """The parameter values of one moment, attribute = parameter name with '.' -> '_'."""
    checkpoint: str
    dit_checkpoint: str
    encoder_checkpoint: str
    variant: str
    device: str
    precision: str
    num_threads: int
    network_area: int
    upsampling: str
    backend: str
    export_dir: str
    moge_checkpoint: str
    moge_grid: str
    moge_resolution_level: int
    compile: bool
    warmup_size: str
    image_transport: str
    qos_reliability: str
    qos_depth: int
    diagnostics_period: float
    retain_heap: bool
    lazy: bool
    input_max_pixels: int
    input_max_aspect_ratio: float
    steps: int
    seed: int
    samples: int
    temporal_smoothing: float
    temporal_max_difference: float
    temporal_motion_compensation: bool
    temporal_keep_edges: bool
    temporal_scene_change_threshold: float
    output_scale: float
    depth_mode: str
    depth_encoding: str
    depth_min_m: float
    depth_max_m: float
    range_near_m: float
    range_far_m: float
    moge_require_camera_info: bool
    scale_smoothing: float
    scale_max_jump: float
    scale_reset_after: int
    scale_hold_frames: int
    reference_max_dt: float
    reference_max_wait_s: float
    reference_queue_size: int
    reference_inlier_threshold: float
    reference_min_inlier_ratio: float
    reference_publish_inliers: bool
    fusion_flying_step: float
    fusion_publish_source: bool
    cloud_stride: int
    cloud_rgb: bool
    colorize: bool

    scale: ScaleSettings  # the metric-mode settings among the above, grouped
    temporal: TemporalSettings  # and the temporal.* ones

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> DepthNodeSettings:
        temporal = TemporalSettings(values['temporal.smoothing'],
                                    values['temporal.max_difference'],
                                    values['temporal.motion_compensation'],
                                    values['temporal.scene_change_threshold'],
                                    values['temporal.keep_edges'])
        return cls(**{f.name: values[_param_name(f.name)] for f in fields(cls)
                      if f.name not in ('scale', 'temporal')},
                   scale=ScaleSettings.from_parameters(values), temporal=temporal)


def _param_name(attribute: str) -> str:
    for name in PARAMETER_NAMES:
        if name.replace('.', '_') == attribute:
            return name
    raise KeyError(attribute)




def validate_parameters(values: Mapping[str, Any]) -> str | None:
    """Why this combination of parameter values is invalid, or None if it is fine."""
    for spec in PARAMETERS:
        if spec.choices is not None and values[spec.name] not in spec.choices:
            return (f"parameter '{spec.name}' is '{values[spec.name]}'; expected one of "
                    f"{', '.join(spec.choices)}")
    if not DEVICE_PATTERN.match(values['device']):
        return f"parameter 'device' is '{values['device']}'; expected auto, cpu, cuda or cuda:N"
    if values['backend'] != 'torch' and not values['export_dir']:
        return (f"parameter 'backend' is '{values['backend']}', which runs an export: set "
                f"'export_dir' to a folder made by ppd-export")
    problem = check_network_area_setting(values['network_area'])
    if problem:
        return f"parameter 'network_area': {problem}"
    try:
        parse_image_size(values['warmup_size'])
    except ValueError as err:
        return f"parameter 'warmup_size': {err}"
    if not values['depth.min_m'] < values['depth.max_m']:
        return (f"depth.min_m ({values['depth.min_m']}) must be below depth.max_m "
                f"({values['depth.max_m']})")
    try:
        metric_scaler_for_mode(values['depth.mode'], ScaleSettings.from_parameters(values))
    except DepthModeError as err:
        return str(err)
    return None
