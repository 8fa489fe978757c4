"""Engines: what runs PPD's networks for the sampler.

The predictor (predictor.py) owns the image handling, the noise and the Euler loop; an
engine owns the networks and everything cached for them. Any object with the ``Engine``
interface can be plugged in (``DepthPredictor(engine)``); ``TorchEngine`` runs a
PixelPerfectDepth in PyTorch.

    semantics(image)                      once per image:  (B, 3, h, w) -> (B, N0, C) or None
    velocity(x_t, image, sem, schedule, i) once per step:   (N, 1, h, w) -> (N, 1, h, w) float32

A DiT batch row n belongs to image row n of ``image`` / ``sem`` (the predictor repeats an
image's rows for several noise draws). ``schedule`` is the int32 timestep list and ``i`` the
step within it, so an engine may precompute everything that depends on t per schedule.
"""
from __future__ import annotations

import contextlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Protocol, runtime_checkable

import torch

from .configs import ModelConfig
from .dit import CascadeRope, Conditioning
from .flow_matching import timesteps
from .pixel_perfect_depth import PixelPerfectDepth

PRECISIONS = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}
DEFAULT_CACHE_SIZE = 4  # network resolutions (and step schedules) kept; a camera needs one


def resolve_device(device: str | torch.device = 'auto') -> torch.device:
    """'auto' -> cuda when available, else cpu; an unavailable cuda is a clear error."""
    if str(device) == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    device = torch.device(device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError('device cuda requested but torch sees no CUDA device')
    return device


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision name to run with; ValueError for an unknown one."""
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {sorted(PRECISIONS)}, got {precision!r}')
    return precision


@runtime_checkable
class Engine(Protocol):
    """What the predictor needs from whatever runs the networks."""

    config: ModelConfig
    device: torch.device
    precision: str

    def semantics(self, image: torch.Tensor) -> torch.Tensor | None: ...

    def velocity(self, x_t: torch.Tensor, image: torch.Tensor, semantics: torch.Tensor | None,
                 schedule: torch.Tensor, index: int) -> torch.Tensor: ...

    def prepare(self, height: int, width: int, steps: int, batch: int = 1) -> None: ...

    def clear_cache(self) -> None: ...

    def synchronize(self) -> None: ...


class LruCache:
    """At most ``size`` values, the least recently used dropped first."""

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f'cache size must be >= 1, got {size}')
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable, create: Callable[[], Any]) -> Any:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = create()
        self._items[key] = value
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return value

    def keys(self) -> list[Hashable]:
        return list(self._items)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class ResolutionConstants:
    """What depends only on the network resolution: RoPE tables, encoder constants."""

    rope: CascadeRope
    encoder: Any


class TorchEngine:
    """Runs a PixelPerfectDepth in PyTorch on one device.

    Constant work is cached: RoPE tables and the encoder constants per network resolution,
    each schedule's conditioning (t embedding and every block's adaLN vectors); each cache
    keeps the ``cache_size`` most recently used entries. The caches assume the weights no
    longer change (call ``clear_cache`` after editing them).
    """

    def __init__(self, model: PixelPerfectDepth, device: str | torch.device = 'auto',
                 precision: str = 'fp32', *, cache_size: int = DEFAULT_CACHE_SIZE):
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.model = model.to(self.device).eval().requires_grad_(False)
        self._resolutions = LruCache(cache_size)
        self._conditions = LruCache(cache_size)

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    def clear_cache(self) -> None:
        self._resolutions.clear()
        self._conditions.clear()

    def cached_resolutions(self) -> list[tuple[int, int]]:
        """Network resolutions (h, w) whose constants are cached, oldest first."""
        return self._resolutions.keys()

    def synchronize(self) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)

    def _autocast(self):
        if self.precision == 'fp32':
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=PRECISIONS[self.precision])

    def resolution(self, height: int, width: int) -> ResolutionConstants:
        def create() -> ResolutionConstants:
            encoder = self.model.encoder
            stem = self.config.stem_patch_size
            return ResolutionConstants(
                self.model.dit.rope_tables(height, width, self.device),
                None if encoder is None else encoder.precompute(height // stem, width // stem))
        return self._resolutions.get((height, width), create)

    def conditioning(self, schedule: torch.Tensor) -> Conditioning:
        """The DiT conditioning of every timestep of ``schedule`` (row i: step i)."""
        def create() -> Conditioning:
            with self._autocast():
                return self.model.dit.condition(schedule.to(self.device))
        return self._conditions.get(tuple(schedule.tolist()), create)

    @torch.inference_mode()
    def prepare(self, height: int, width: int, steps: int, batch: int = 1) -> None:
        """Build the constants of one resolution and step count before the first frame."""
        self.resolution(height, width)
        self.conditioning(timesteps(steps, self.config.num_train_timesteps))

    @torch.inference_mode()
    def semantics(self, image: torch.Tensor) -> torch.Tensor | None:
        constants = self.resolution(*image.shape[-2:])
        with self._autocast():
            return self.model.semantics(image, constants.encoder)

    @torch.inference_mode()
    def velocity(self, x_t: torch.Tensor, image: torch.Tensor, semantics: torch.Tensor | None,
                 schedule: torch.Tensor, index: int) -> torch.Tensor:
        constants = self.resolution(*x_t.shape[-2:])
        cond = self.conditioning(schedule).select(index)
        with self._autocast():
            return self.model.velocity(x_t, image, None, semantics, cond=cond,
                                       rope=constants.rope)
