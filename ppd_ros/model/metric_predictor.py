"""PPD's relative depth and MoGe-2's metric geometry of the same frame (no rclpy).

As the authors' run_point_cloud.py: MoGe-2 sees the PPD-resized image (h x w, the network
resolution), so its depth, mask and intrinsics come at PPD's resolution.

    grid='shared'  PPD's semantics encoder is MoGe-2's (large_moge): the encoder runs once, on
                   the DiT's g16 grid (h/16 x w/16 tokens); the DiT gets the summed projections
                   as semantics and MoGe-2's neck and heads decode the same features. For
                   768 x 1024 that is 3072 tokens instead of infer's 3519 (51 x 69 of its
                   3600-token budget). A g16 grid with fewer tokens than MoGe-2's range starts
                   (1200: network sizes below about 480 x 640) falls back to 'exact'.
    grid='exact'   MoGe-2's own infer (its token grid) on the PPD-resized image: a second encoder
                   pass, the reference's numbers exactly; the only choice when PPD's semantics
                   encoder is not MoGe-2's (e.g. the tiny models, or large with DA2).

A known camera (CameraInfo's K for the input image) is rescaled to h x w, and MoGe-2 then
solves only the depth shift.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ppd_ros.geometry.camera_model import scale_k

from .engine import DEFAULT_CACHE_SIZE, TorchEngine
from .moge2_geometry import KnownIntrinsics
from .moge2_predictor import MoGe2Geometry, MoGe2Predictor
from .pixel_perfect_depth import PixelPerfectDepth
from .predictor import DepthPredictor, Prediction
from .preprocess import NETWORK_MULTIPLE, resize_keep_aspect

GRIDS = ('shared', 'exact')


class SharedEncoderEngine(TorchEngine):
    """A TorchEngine for a PPD whose semantics encoder is MoGe-2's: each semantics pass keeps
    the encoder features (F0, cls) so that MoGe-2's heads can decode them."""

    def __init__(self, model: PixelPerfectDepth, device: str | torch.device = 'auto',
                 precision: str = 'fp32', *, cache_size: int = DEFAULT_CACHE_SIZE):
        if model.config.encoder.type != 'moge2':
            raise ValueError('a shared encoder pass needs a PPD with a moge2 semantics encoder')
        super().__init__(model, device, precision, cache_size=cache_size)
        self.features: tuple[torch.Tensor, torch.Tensor] | None = None
        self.encoder_passes = 0

    @torch.inference_mode()
    def semantics(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        constants = self.resolution(height, width)
        with self._autocast():
            f0, cls = self.model.encoder.features(image, height // NETWORK_MULTIPLE,
                                                  width // NETWORK_MULTIPLE, constants.encoder)
        self.features = (f0, cls)
        self.encoder_passes += 1
        return f0.flatten(2).transpose(1, 2)


@dataclass
class GeometryPrediction(Prediction):
    """A Prediction plus MoGe-2's geometry of the PPD-resized image (h x w)."""

    geometry: MoGe2Geometry | None = None
    geometry_grid: tuple[int, int] = (0, 0)   # MoGe-2's ViT grid; the g16 grid when shared


def scaled_camera(camera: KnownIntrinsics, width: int, height: int, to_width: int,
                  to_height: int) -> KnownIntrinsics:
    """A camera's intrinsics for its image resized from width x height to to_width x to_height."""
    K = scale_k(np.array([[camera.fx, 0, camera.cx], [0, camera.fy, camera.cy], [0, 0, 1]]),
                to_width / width, to_height / height)
    return KnownIntrinsics(K[0, 0], K[1, 1], K[0, 2], K[1, 2])


class MetricDepthPredictor:
    """``predict(rgb)``: PPD's Prediction with MoGe-2's geometry (module docstring)."""

    takes_camera = True   # predict() uses the camera's intrinsics when given

    def __init__(self, depth: DepthPredictor, moge: MoGe2Predictor, grid: str = 'shared'):
        if grid not in GRIDS:
            raise ValueError(f'grid must be one of {GRIDS}, got {grid!r}')
        if grid == 'shared':
            engine = depth.engine
            if not isinstance(engine, SharedEncoderEngine):
                raise ValueError("grid 'shared' needs a DepthPredictor on a SharedEncoderEngine")
            if engine.model.encoder is not moge.model.encoder:
                raise ValueError("grid 'shared' needs PPD and MoGe-2 to share one encoder module")
        self.depth, self.moge, self.grid = depth, moge, grid
        self.geometry_enabled = True   # False: predict() skips MoGe-2 (geometry None)

    @property
    def device(self):
        return self.depth.device

    @property
    def config(self):
        return self.depth.config

    def network_size(self, height: int, width: int) -> tuple[int, int]:
        return self.depth.network_size(height, width)

    def predict(self, rgb: np.ndarray, steps: int = 4, seed: int | None = None,
                noise: torch.Tensor | np.ndarray | None = None,
                camera: KnownIntrinsics | None = None, samples: int = 1) -> GeometryPrediction:
        """Relative depth at the input size, geometry at the network size h x w. ``camera``:
        the intrinsics of ``rgb`` (H x W), if known; ``samples`` as DepthPredictor.predict
        (the geometry is computed once)."""
        prediction = self.depth.predict(rgb, steps=steps, seed=seed, noise=noise,
                                        samples=samples)
        if not self.geometry_enabled:
            return GeometryPrediction(prediction.depth, prediction.network_depth,
                                      prediction.timings, prediction.timesteps,
                                      prediction.network_samples, prediction.spread)
        height, width = np.asarray(rgb).shape[:2]
        h, w = prediction.network_depth.shape
        if camera is not None:
            camera = scaled_camera(camera, width, height, w, h)
        start = time.perf_counter()
        if self.shares_encoder_pass(h, w):
            f0, cls = self.depth.engine.features
            grid = tuple(f0.shape[-2:])
            geometry = self.moge.geometry_from_features(f0[:1], cls[:1], h, w, camera)
        else:
            resized = resize_keep_aspect(rgb, self.depth.network_area)
            grid = self.moge.grid(h, w)
            geometry = self.moge.infer(resized, camera, grid=grid)
        timings = dict(prediction.timings)
        timings['geometry'] = time.perf_counter() - start
        timings['total'] = timings.get('total', 0.0) + timings['geometry']
        return GeometryPrediction(prediction.depth, prediction.network_depth, timings,
                                  prediction.timesteps, prediction.network_samples,
                                  prediction.spread, geometry=geometry, geometry_grid=grid)

    def shares_encoder_pass(self, height: int, width: int) -> bool:
        """Whether the geometry of an h x w network input decodes the semantics pass."""
        tokens = (height // NETWORK_MULTIPLE) * (width // NETWORK_MULTIPLE)
        return self.grid == 'shared' and tokens >= self.moge.config.num_tokens_range[0]


def metric_predictor(ppd: PixelPerfectDepth, moge, device: str | torch.device = 'auto',
                     precision: str = 'fp32', grid: str | None = None,
                     network_area: int | None = None, resolution_level: int = 9,
                     upsampling: str = 'edge_aware') -> MetricDepthPredictor:
    """A MetricDepthPredictor for a PPD model and a MoGe2Model; ``grid`` None: 'shared' when
    they share an encoder module (load_official_ppd_moge), otherwise 'exact'.
    ``resolution_level`` sets MoGe-2's token budget for its own grid (0..9, as infer);
    ``upsampling`` is the DepthPredictor's (PPD's output to the input size)."""
    if grid is None:
        grid = 'shared' if ppd.encoder is not None and ppd.encoder is moge.encoder else 'exact'
    engine = (SharedEncoderEngine(ppd, device, precision) if grid == 'shared'
              else TorchEngine(ppd, device, precision))
    depth = DepthPredictor(engine, network_area=network_area, upsampling=upsampling)
    moge_predictor = MoGe2Predictor(moge, depth.device, engine.precision, resolution_level)
    return MetricDepthPredictor(depth, moge_predictor, grid)
