"""Image in, relative depth out: the inference pipeline of PPD (spec section 1).

    rgb (H, W, 3) uint8 --resize_keep_aspect--> (h, w) --/255--> I
    sem = encoder(I)                                    once per image
    x   = noise (K, 1, h, w);  for t in timesteps: x = euler(x, DiT([x, I - 0.5], sem, t))
    depth = upsample(mean_k(x + 0.5)) to (H, W)      edge-aware by default, see upsampling

The networks run in an engine (engine.py); this module owns resizing, noise, the Euler loop
and the upsampling. K noise draws of one image (``samples``), and images of several cameras
that share a network resolution (``predict_batch``), run as one DiT batch.

Noise: with a seed, draw k of an image is the k-th (1, 1, h, w) ``torch.randn`` of a CPU
generator seeded with that seed, so draw 0 is the single-sample noise, a fixed seed gives the
same K draws every frame, and every image of a batch gets the draws it would get alone.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ppd_ros.geometry.depth_upsampling import UPSAMPLING_METHODS, upsample_depth

from .checkpoint import load_checkpoint, load_official
from .configs import ModelConfig
from .engine import DEFAULT_CACHE_SIZE, Engine, TorchEngine, resolve_device
from .flow_matching import sample, timesteps
from .network_resolution import bounded_network_size, check_network_area, check_network_input
from .pixel_perfect_depth import PixelPerfectDepth
from .precision import PRECISIONS
from .preprocess import image_to_tensor, resize_keep_aspect

__all__ = ['DepthPredictor', 'PRECISIONS', 'Prediction', 'PredictionInterrupted', 'load_predictor',
           'resolve_device']


@dataclass
class Prediction:
    """Result of one ``DepthPredictor.predict`` call.

    ``depth`` is relative, affine-invariant depth with larger = farther. It approximates the
    training normalisation of log(1 + d): (log(1 + d) - q2) / (q98 - q2), nominally in
    [-0.5, 1.0], with q2 / q98 the 2nd / 98th percentiles of log(1 + d) over the image. It is
    neither metric depth nor disparity; recover metres with a fit log(1 + d) = a * depth + b.
    """

    depth: np.ndarray            # float32 (H, W): network_depth upsampled to the input size
    network_depth: np.ndarray    # float32 (h, w): x_0 + 0.5 (the mean over the K samples)
    timings: dict[str, float]    # seconds: preprocess, semantics, dit, postprocess, total
    timesteps: tuple[int, ...] = field(default=())  # the integer timesteps that were run
    network_samples: np.ndarray | None = None  # float32 (K, h, w): x_0 + 0.5 of each draw
    spread: np.ndarray | None = None  # float32 (H, W): std. deviation of the K draws, K > 1


class PredictionInterrupted(RuntimeError):
    """predict() stopped at a diffusion step boundary because interrupt() was called."""


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f'expected an H x W x 3 uint8 RGB image, got {rgb.dtype} {rgb.shape}')
    return rgb


def _seeded_draws(shape: tuple[int, int], samples: int, seed: int | None) -> torch.Tensor:
    """(samples, 1, h, w): successive draws of one CPU generator (seeded, or fresh)."""
    generator = torch.Generator(device='cpu')
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(int(seed))
    return torch.cat([torch.randn((1, 1, *shape), generator=generator, dtype=torch.float32)
                      for _ in range(samples)])


class DepthPredictor:
    """Runs PPD on RGB images.

    ``model`` is a PixelPerfectDepth, run by a TorchEngine on ``device`` in ``precision``
    ('fp32' by default; 'auto': bf16 where the device runs it fast; see precision.py), or any
    ``Engine`` (then ``device``, ``precision`` and ``compile`` are the engine's). The
    TorchEngine casts the model's weights to the precision in place; ``compile`` runs the
    networks through torch.compile (see engine.py; ``prepare`` compiles before the first
    frame). ``network_area`` (pixels; None: the variant's training area) sets the network
    resolution, see network_resolution.py.
    ``upsampling`` brings the network output to the input size (``depth``): 'edge_aware'
    (default, colour-guided, no value between two surfaces), 'nearest' or 'bilinear' (the
    reference's run.py); see ppd_ros.geometry.depth_upsampling.
    """

    def __init__(self, model: PixelPerfectDepth | Engine, device: str | torch.device = 'auto',
                 precision: str = 'fp32', *, network_area: int | None = None,
                 compile: bool = False, cache_size: int = DEFAULT_CACHE_SIZE,
                 upsampling: str = 'edge_aware'):
        if isinstance(model, PixelPerfectDepth):
            self.engine: Engine = TorchEngine(model, device, precision, compile=compile,
                                              cache_size=cache_size)
        elif isinstance(model, Engine):
            self.engine = model
        else:
            raise TypeError(f'expected a PixelPerfectDepth or an Engine, got {type(model)}')
        area = self.config.train_area if network_area is None else network_area
        self.network_area = check_network_area(area)
        self.upsampling = upsampling
        self._interrupts = 0  # interrupt() calls so far
        self._interrupt_lock = threading.Lock()

    def interrupt(self) -> None:
        """Make the predict() calls running now raise PredictionInterrupted before their next
        diffusion step (for shutting down in the middle of a long inference); later calls
        run normally."""
        with self._interrupt_lock:
            self._interrupts += 1

    @property
    def upsampling(self) -> str:
        return self._upsampling

    @upsampling.setter
    def upsampling(self, method: str) -> None:
        if method not in UPSAMPLING_METHODS:
            raise ValueError(f"upsampling must be one of {', '.join(UPSAMPLING_METHODS)}, "
                             f'got {method!r}')
        self._upsampling = method

    @property
    def config(self) -> ModelConfig:
        return self.engine.config

    @property
    def device(self) -> torch.device:
        return self.engine.device

    @property
    def precision(self) -> str:
        return self.engine.precision

    @property
    def model(self) -> PixelPerfectDepth | None:
        """The torch model when the engine runs one."""
        return getattr(self.engine, 'model', None)

    def network_size(self, height: int, width: int) -> tuple[int, int]:
        """Network resolution (h, w) used for an H x W input when resize=True.

        ValueError for an image the network cannot run sensibly (see network_resolution.py).
        """
        return bounded_network_size(height, width, self.network_area)

    def clear_cache(self) -> None:
        self.engine.clear_cache()

    def prepare(self, height: int, width: int, steps: int = 4, resize: bool = True,
                batch: int = 1) -> tuple[int, int]:
        """Build everything the first H x W frame would (caches, compiled code); returns (h, w)."""
        h, w = self.network_size(height, width) if resize else (height, width)
        if not resize:
            check_network_input(h, w)
        self.engine.prepare(h, w, steps, batch)
        return h, w

    def predict(self, rgb: np.ndarray, steps: int = 4, seed: int | None = None,
                noise: torch.Tensor | np.ndarray | None = None, resize: bool = True,
                samples: int = 1) -> Prediction:
        """Relative depth for an H x W x 3 RGB uint8 image.

        resize=True runs at ``network_size(H, W)``; resize=False runs at the input size, which
        must then be a multiple of 16. ``samples`` K > 1 draws K noises, runs them as one DiT
        batch (the encoder once) and averages them (``network_samples`` keeps each; ``spread``
        is their per-pixel standard deviation at the input size, larger = less sure).
        ``noise`` (K, 1, h, w) replaces the Gaussian draws; otherwise ``seed`` makes them
        reproducible (see the module docstring).
        """
        return self._predict([_check_rgb(rgb)], steps, seed, noise, resize, samples)[0]

    def predict_batch(self, images: Sequence[np.ndarray], steps: int = 4,
                      seed: int | None = None, resize: bool = True,
                      samples: int = 1) -> list[Prediction]:
        """``predict`` for several images (e.g. cameras), one DiT batch per network resolution.

        Each image gets the noise ``predict(image, seed=seed, samples=samples)`` would draw;
        the timings of a prediction are those of its whole batch.
        """
        images = [_check_rgb(rgb) for rgb in images]
        sizes = [self._network_input_size(rgb, resize) for rgb in images]
        results: list[Prediction | None] = [None] * len(images)
        for size in dict.fromkeys(sizes):
            members = [i for i, s in enumerate(sizes) if s == size]
            batch = self._predict([images[i] for i in members], steps, seed, None, resize,
                                  samples)
            for i, prediction in zip(members, batch):
                results[i] = prediction
        return results

    def _network_input_size(self, rgb: np.ndarray, resize: bool) -> tuple[int, int]:
        height, width = rgb.shape[:2]
        if resize:
            return self.network_size(height, width)
        check_network_input(height, width)
        return height, width

    @torch.inference_mode()
    def _predict(self, images: list[np.ndarray], steps: int, seed: int | None,
                 noise: torch.Tensor | np.ndarray | None, resize: bool,
                 samples: int) -> list[Prediction]:
        """One DiT batch of len(images) x samples rows; all images share one network size."""
        start = time.perf_counter()
        interrupts_before = self._interrupts
        if samples < 1:
            raise ValueError(f'samples must be >= 1, got {samples}')
        h, w = self._network_input_size(images[0], resize)
        resized = [resize_keep_aspect(rgb, self.network_area) if resize else rgb
                   for rgb in images]
        engine, device = self.engine, self.device
        image = torch.cat([image_to_tensor(r) for r in resized]).to(device)
        x_T = self._noise(len(images), samples, (h, w), seed, noise)
        schedule = timesteps(steps, self.config.num_train_timesteps)
        engine.synchronize()
        t_pre = time.perf_counter()

        semantics = engine.semantics(image)
        engine.synchronize()
        t_sem = time.perf_counter()

        if samples > 1:
            image = image.repeat_interleave(samples, dim=0)
            if semantics is not None:
                semantics = semantics.repeat_interleave(samples, dim=0)

        def velocity(x_t: torch.Tensor, t: torch.Tensor, i: int) -> torch.Tensor:
            if self._interrupts != interrupts_before:
                raise PredictionInterrupted(f'prediction interrupted before step {i + 1}')
            return engine.velocity(x_t, image, semantics, schedule, i)

        x0 = sample(velocity, x_T, schedule, self.config.num_train_timesteps)
        network = (x0 + 0.5).float().reshape(len(images), samples, h, w)
        engine.synchronize()
        t_dit = time.perf_counter()

        outputs = []
        for b, rgb in enumerate(images):
            mean = network[b, :1] if samples == 1 else network[b].mean(dim=0, keepdim=True)
            network_depth = mean[0].cpu().numpy().astype(np.float32, copy=False)
            depth = upsample_depth(network_depth, *rgb.shape[:2], self.upsampling, rgb,
                                   resized[b])
            samples_np = network[b].cpu().numpy().astype(np.float32, copy=False)
            spread = None
            if samples > 1:   # a spread, not a depth: plain bilinear is right here
                std = network[b].std(dim=0, correction=0).cpu().numpy().astype(np.float32)
                spread = upsample_depth(std, *rgb.shape[:2], 'bilinear')
            outputs.append((depth, network_depth, samples_np, spread))
        end = time.perf_counter()
        timings = {'preprocess': t_pre - start, 'semantics': t_sem - t_pre, 'dit': t_dit - t_sem,
                   'postprocess': end - t_dit, 'total': end - start}
        run = tuple(int(t) for t in schedule)
        return [Prediction(depth, network_depth, dict(timings), run, network_samples, spread)
                for depth, network_depth, network_samples, spread in outputs]

    def _noise(self, images: int, samples: int, shape: tuple[int, int], seed: int | None,
               noise: torch.Tensor | np.ndarray | None) -> torch.Tensor:
        if noise is not None:
            expected = (samples, 1, *shape)
            noise = torch.as_tensor(noise, dtype=torch.float32)
            if images != 1 or tuple(noise.shape) != expected:
                raise ValueError(f'noise must have shape {expected} (samples, 1, network '
                                 f'resolution), got {tuple(noise.shape)}')
            return noise.to(self.device)
        return torch.cat([_seeded_draws(shape, samples, seed) for _ in range(images)]
                         ).to(self.device)


def load_predictor(checkpoint: str | os.PathLike | None = None, *,
                   dit_checkpoint: str | os.PathLike | None = None,
                   encoder_checkpoint: str | os.PathLike | None = None,
                   variant: str | Mapping[str, Any] | ModelConfig = 'large',
                   device: str | torch.device = 'auto', precision: str = 'fp32',
                   network_area: int | None = None, compile: bool = False,
                   upsampling: str = 'edge_aware', backend: str = 'torch',
                   export_dir: str | os.PathLike | None = None) -> DepthPredictor:
    """Predictor from a ppd_ros checkpoint (its config wins; ``variant`` is ignored) or from the
    official release files (``dit_checkpoint`` / ``encoder_checkpoint``, defaulting to
    models/ppd.pth and models/depth_anything_v2_vitl.pth) built as ``variant``.

    ``backend`` 'onnxruntime' or 'tensorrt' runs the export in ``export_dir`` (``ppd-export``;
    see exported_engines.py) instead of PyTorch; the weight files named must be those it was
    made from, and ``network_area`` defaults to the export's.
    """
    if checkpoint is not None:
        if dit_checkpoint is not None or encoder_checkpoint is not None:
            raise ValueError('give either checkpoint (ppd_ros format) or dit/encoder '
                             'checkpoints, not both')
    if backend != 'torch':
        from .exported_engines import make_engine
        sources = [p for p in (checkpoint, dit_checkpoint, encoder_checkpoint) if p is not None]
        engine = make_engine(backend, export_dir, precision=precision, device=str(device),
                             sources=sources)
        return DepthPredictor(engine, network_area=network_area or engine.network_area,
                              upsampling=upsampling)
    if checkpoint is not None:
        model = load_checkpoint(checkpoint)
    else:
        model = load_official(dit_checkpoint, encoder_checkpoint, variant)
    return DepthPredictor(model, device=device, precision=precision, network_area=network_area,
                          compile=compile, upsampling=upsampling)
