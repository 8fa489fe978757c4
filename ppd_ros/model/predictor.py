"""Image in, relative depth out: the inference pipeline of PPD (spec section 1).

    rgb (H, W, 3) uint8 --resize_keep_aspect--> (h, w) --/255--> I
    sem = encoder(I)                                    once per image
    x   = noise (1, 1, h, w);  for t in timesteps: x = euler(x, DiT([x, I - 0.5], sem, t))
    depth = bilinear_upsample(x + 0.5) to (H, W)

Constant work is cached: RoPE tables and the encoder position embedding per resolution,
the timestep list and every block's adaLN vectors per step count. The caches assume the
weights no longer change (call ``clear_cache`` after editing them).
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import torch

from .checkpoint import load_checkpoint, load_official
from .configs import ModelConfig
from .dit import CascadeRope, Conditioning
from .flow_matching import sample, timesteps
from .pixel_perfect_depth import PixelPerfectDepth
from .preprocess import image_to_tensor, network_size, resize_keep_aspect, upsample_depth

PRECISIONS = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}


@dataclass
class Prediction:
    """Result of one ``DepthPredictor.predict`` call.

    ``depth`` is relative, affine-invariant depth with larger = farther. It approximates the
    training normalisation of log(1 + d): (log(1 + d) - q2) / (q98 - q2), nominally in
    [-0.5, 1.0], with q2 / q98 the 2nd / 98th percentiles of log(1 + d) over the image. It is
    neither metric depth nor disparity; recover metres with a fit log(1 + d) = a * depth + b.
    """

    depth: np.ndarray            # float32 (H, W): network output, bilinear to the input size
    network_depth: np.ndarray    # float32 (h, w): raw network output x_0 + 0.5
    timings: dict[str, float]    # seconds: preprocess, semantics, dit, postprocess, total
    timesteps: tuple[int, ...] = field(default=())  # the integer timesteps that were run


@dataclass
class _ResolutionCache:
    rope: CascadeRope
    pos_embed: torch.Tensor | None


def resolve_device(device: str | torch.device = 'auto') -> torch.device:
    """'auto' -> cuda when available, else cpu; an unavailable cuda is a clear error."""
    if str(device) == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    device = torch.device(device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError('device cuda requested but torch sees no CUDA device')
    return device


class DepthPredictor:
    """Runs a PixelPerfectDepth model on RGB images; weights stay float32.

    precision 'fp16' / 'bf16' runs the networks under torch.autocast (as the reference does on
    GPU); 'fp32' runs without autocast.
    """

    def __init__(self, model: PixelPerfectDepth, device: str | torch.device = 'auto',
                 precision: str = 'fp32'):
        if precision not in PRECISIONS:
            raise ValueError(f'precision must be one of {sorted(PRECISIONS)}, got {precision!r}')
        self.device = resolve_device(device)
        self.precision = precision
        self.model = model.to(self.device).eval().requires_grad_(False)
        self._resolutions: dict[tuple[int, int], _ResolutionCache] = {}
        self._conditions: dict[int, tuple[torch.Tensor, Conditioning]] = {}

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    def network_size(self, height: int, width: int) -> tuple[int, int]:
        """Network resolution (h, w) used for an H x W input when resize=True."""
        return network_size(height, width, self.config.train_area)

    def clear_cache(self) -> None:
        self._resolutions.clear()
        self._conditions.clear()

    def _autocast(self):
        if self.precision == 'fp32':
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=PRECISIONS[self.precision])

    def _sync(self) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)

    def _resolution(self, height: int, width: int) -> _ResolutionCache:
        key = (height, width)
        if key not in self._resolutions:
            rope = self.model.dit.rope_tables(height, width, self.device)
            pos = None
            if self.model.encoder is not None:
                stem = self.config.stem_patch_size
                pos = self.model.encoder.position_embedding(height // stem, width // stem)
            self._resolutions[key] = _ResolutionCache(rope, pos)
        return self._resolutions[key]

    def _conditioning(self, steps: int) -> tuple[torch.Tensor, Conditioning]:
        if steps not in self._conditions:
            schedule = timesteps(steps, self.config.num_train_timesteps)
            with self._autocast():
                cond = self.model.dit.condition(schedule.to(self.device))
            self._conditions[steps] = (schedule, cond)
        return self._conditions[steps]

    def _noise(self, height: int, width: int, seed: int | None,
               noise: torch.Tensor | np.ndarray | None) -> torch.Tensor:
        shape = (1, 1, height, width)
        if noise is not None:
            noise = torch.as_tensor(noise, dtype=torch.float32)
            if tuple(noise.shape) != shape:
                raise ValueError(f'noise must have shape {shape} (network resolution), '
                                 f'got {tuple(noise.shape)}')
            return noise.to(self.device)
        generator = torch.Generator(device='cpu')
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(int(seed))
        return torch.randn(shape, generator=generator, dtype=torch.float32).to(self.device)

    @torch.inference_mode()
    def predict(self, rgb: np.ndarray, steps: int = 4, seed: int | None = None,
                noise: torch.Tensor | np.ndarray | None = None, resize: bool = True) -> Prediction:
        """Relative depth for an H x W x 3 RGB uint8 image.

        resize=True runs at ``network_size(H, W)`` (about the training area); resize=False runs
        at the input size, which must then be a multiple of 16. ``noise`` (1, 1, h, w) replaces
        the initial Gaussian draw; otherwise ``seed`` makes the draw reproducible.
        """
        start = time.perf_counter()
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f'expected an H x W x 3 uint8 RGB image, got {rgb.dtype} {rgb.shape}')
        height, width = rgb.shape[:2]
        if resize:
            resized = resize_keep_aspect(rgb, self.config.train_area)
        else:
            if height % 16 or width % 16:
                raise ValueError('resize=False needs a size that is a multiple of 16, '
                                 f'got {height}x{width}')
            resized = rgb
        h, w = resized.shape[:2]
        image = image_to_tensor(resized).to(self.device)
        x_T = self._noise(h, w, seed, noise)
        cache = self._resolution(h, w)
        schedule, cond = self._conditioning(steps)
        self._sync()
        t_pre = time.perf_counter()

        with self._autocast():
            semantics = self.model.semantics(image, cache.pos_embed)
        self._sync()
        t_sem = time.perf_counter()

        def velocity(x_t: torch.Tensor, t: torch.Tensor, i: int) -> torch.Tensor:
            with self._autocast():
                return self.model.velocity(x_t, image, t, semantics, cond=cond.select(i),
                                           rope=cache.rope)

        x0 = sample(velocity, x_T, schedule, self.config.num_train_timesteps)
        network_depth = (x0 + 0.5).float()
        self._sync()
        t_dit = time.perf_counter()

        depth = upsample_depth(network_depth, height, width)[0, 0]
        depth_np = depth.cpu().numpy().astype(np.float32, copy=False)
        network_np = network_depth[0, 0].cpu().numpy().astype(np.float32, copy=False)
        end = time.perf_counter()
        timings = {'preprocess': t_pre - start, 'semantics': t_sem - t_pre, 'dit': t_dit - t_sem,
                   'postprocess': end - t_dit, 'total': end - start}
        return Prediction(depth_np, network_np, timings, tuple(int(t) for t in schedule))


def load_predictor(checkpoint: str | os.PathLike | None = None, *,
                   dit_checkpoint: str | os.PathLike | None = None,
                   encoder_checkpoint: str | os.PathLike | None = None,
                   variant: str | Mapping[str, Any] | ModelConfig = 'large',
                   device: str | torch.device = 'auto', precision: str = 'fp32') -> DepthPredictor:
    """Predictor from a ppd_ros checkpoint (its config wins; ``variant`` is ignored) or from the
    official release files (``dit_checkpoint`` / ``encoder_checkpoint``, defaulting to
    models/ppd.pth and models/depth_anything_v2_vitl.pth) built as ``variant``.
    """
    if checkpoint is not None:
        if dit_checkpoint is not None or encoder_checkpoint is not None:
            raise ValueError('give either checkpoint (ppd_ros format) or dit/encoder '
                             'checkpoints, not both')
        model = load_checkpoint(checkpoint)
    else:
        model = load_official(dit_checkpoint, encoder_checkpoint, variant)
    return DepthPredictor(model, device=device, precision=precision)
