"""Image in, metric geometry out: MoGe-2's ``infer`` for RGB uint8 frames (no rclpy).

    geometry = MoGe2Predictor(load_any_moge2('models/moge-2-vitl-normal.pt')).infer(rgb)
    geometry.depth        float32 H x W metres, +inf outside the mask
    geometry.mask         bool H x W
    geometry.intrinsics   normalised K (row 0 / W, row 1 / H); camera_matrix() in pixels

With the camera's intrinsics (``camera=KnownIntrinsics(...)``, e.g. from CameraInfo) only
the depth shift is solved and the camera's K is kept. ``geometry_from_features`` decodes
encoder features computed elsewhere (PPD-MoGe's semantics pass) instead of running the
encoder again.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .moge2 import MoGe2Model
from .moge2_geometry import (PRECISIONS, KnownIntrinsics, MoGe2Output, autocast_context,
                             geometry_from_outputs)
from .predictor import resolve_device
from .preprocess import image_to_tensor


@dataclass
class MoGe2Geometry:
    """One image's MoGe-2 result as numpy arrays."""

    depth: np.ndarray            # (H, W) float32 metres; +inf outside the mask (apply_mask)
    mask: np.ndarray             # (H, W) bool
    intrinsics: np.ndarray       # (3, 3) float32 normalised K
    points: np.ndarray           # (H, W, 3) float32, camera optical frame, metres
    focal: float                 # x focal in units of half the image diagonal
    shift: float
    metric_scale: float | None
    intrinsics_estimated: bool   # False when the camera's intrinsics were given
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.depth.shape

    def camera_matrix(self, width: int | None = None, height: int | None = None) -> np.ndarray:
        """3 x 3 K in pixels for a width x height image (default: this one), with integer pixel
        centres as CameraInfo and OpenCV (cx = cx_n W - 0.5)."""
        h, w = self.depth.shape
        width, height = width or w, height or h
        K = self.intrinsics.astype(np.float64)
        return np.array([[K[0, 0] * width, 0, K[0, 2] * width - 0.5],
                         [0, K[1, 1] * height, K[1, 2] * height - 0.5],
                         [0, 0, 1]])

    @classmethod
    def from_output(cls, out: MoGe2Output, index: int = 0,
                    timings: dict[str, float] | None = None) -> 'MoGe2Geometry':
        scale = out.metric_scale
        return cls(out.depth[index].cpu().numpy(), out.mask[index].cpu().numpy(),
                   out.intrinsics[index].cpu().numpy(), out.points[index].cpu().numpy(),
                   float(out.focal[index]), float(out.shift[index]),
                   None if scale is None else float(scale[index]), out.intrinsics_estimated,
                   dict(timings or {}))


class MoGe2Predictor:
    """Runs a MoGe2Model on RGB images; weights stay float32.

    ``grid`` None uses MoGe's own ViT grid for the token budget of ``resolution_level`` (or
    ``num_tokens``), as ``infer`` does. ``precision`` 'fp16' / 'bf16' autocasts the network
    (MoGe's own default is fp16); the focal / shift recovery is always float32 / float64.
    """

    def __init__(self, model: MoGe2Model, device: str | torch.device = 'cpu',
                 precision: str = 'fp32', resolution_level: int = 9,
                 num_tokens: int | None = None):
        if precision not in PRECISIONS:
            raise ValueError(f'precision must be one of {sorted(PRECISIONS)}, got {precision!r}')
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval().requires_grad_(False)
        self.precision = precision
        self.num_tokens = num_tokens or model.config.num_tokens(resolution_level)

    @property
    def config(self):
        return self.model.config

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """MoGe's ViT grid for an H x W image at this predictor's token budget."""
        return self.model.token_grid(height, width, self.num_tokens)

    @torch.inference_mode()
    def infer(self, rgb: np.ndarray, camera: KnownIntrinsics | None = None,
              apply_mask: bool = True, grid: tuple[int, int] | None = None) -> MoGe2Geometry:
        """Geometry of an H x W x 3 RGB uint8 image, at its own size."""
        start = time.perf_counter()
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f'expected an H x W x 3 uint8 RGB image, got {rgb.dtype} {rgb.shape}')
        height, width = rgb.shape[:2]
        image = image_to_tensor(rgb).to(self.device)
        grid = grid or self.grid(height, width)
        with autocast_context(self.device, self.precision):
            features, cls = self.model.encoder.features(image, *grid)
        self._sync()
        encoder_s = time.perf_counter() - start
        return self.geometry_from_features(features, cls, height, width, camera, apply_mask,
                                           {'moge_encoder': encoder_s}, start)

    @torch.inference_mode()
    def geometry_from_features(self, features: torch.Tensor, cls: torch.Tensor, height: int,
                               width: int, camera: KnownIntrinsics | None = None,
                               apply_mask: bool = True, timings: dict[str, float] | None = None,
                               start: float | None = None) -> MoGe2Geometry:
        """Neck, heads and MoGe's post-processing on encoder features (1, C, gh, gw)."""
        clock = time.perf_counter()
        with autocast_context(self.device, self.precision):
            outputs = self.model.decode(features, cls, height, width)
        self._sync()
        decoded = time.perf_counter()
        out = geometry_from_outputs(outputs, camera=camera, apply_mask=apply_mask)
        end = time.perf_counter()
        timings = dict(timings or {})
        timings.update(moge_heads=decoded - clock, moge_geometry=end - decoded)
        timings['moge_total'] = end - (clock if start is None else start)
        return MoGe2Geometry.from_output(out, 0, timings)

    def _sync(self) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
