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
from .precision import PRECISIONS, cast_for_inference, resolve_precision
from .rope import RopeTables

DEFAULT_CACHE_SIZE = 2  # network resolutions (and step schedules) kept; a camera needs one


def resolve_device(device: str | torch.device = 'auto') -> torch.device:
    """'auto' -> cuda when available, else cpu; an unavailable cuda is a clear error."""
    if str(device) == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    device = torch.device(device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError('device cuda requested but torch sees no CUDA device')
    return device


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

    ``precision`` ('auto', 'fp32', 'bf16', 'fp16'; see precision.py) casts the model's heavy
    weights once, in place: the engine owns the model it is given.

    Constant work is cached: RoPE tables and the encoder constants per network resolution,
    each schedule's conditioning (t embedding and every block's adaLN vectors); each cache
    keeps the ``cache_size`` most recently used entries. The caches assume the weights no
    longer change (call ``clear_cache`` after editing them).

    ``compile=True`` runs the encoder and the DiT through torch.compile (``compile_backend``,
    inductor by default, with CUDA graphs on a GPU). Each new input shape (resolution, batch)
    compiles once, taking tens of seconds to minutes: call ``prepare`` for the expected shapes
    before the first frame.
    """

    def __init__(self, model: PixelPerfectDepth, device: str | torch.device = 'auto',
                 precision: str = 'fp32', *, compile: bool = False,
                 compile_backend: str = 'inductor', cache_size: int = DEFAULT_CACHE_SIZE):
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.dtype = PRECISIONS[self.precision]
        self.model = model.to(self.device).eval().requires_grad_(False)
        self._encoder_cast = cast_for_inference(self.model, self.dtype)
        self.compiled = compile
        self._semantics, self._velocity = self.model.semantics, self.model.velocity
        if compile:
            options = dict(dynamic=False, backend=compile_backend)
            if self.device.type == 'cuda' and compile_backend == 'inductor':
                options['mode'] = 'reduce-overhead'  # CUDA graphs: shapes are static
            self._semantics = torch.compile(self.model.semantics, **options)
            self._velocity = torch.compile(self.model.velocity, **options)
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

    def _autocast(self):
        """Autocast for an encoder left in float32 at reduced precision (one that does not
        opt in to weight casting); a no-op otherwise."""
        if self.precision == 'fp32' or self._encoder_cast:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def synchronize(self) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)

    def resolution(self, height: int, width: int) -> ResolutionConstants:
        def create() -> ResolutionConstants:
            encoder = self.model.encoder
            stem = self.config.stem_patch_size
            rope = self.model.dit.rope_tables(height, width, self.device)
            return ResolutionConstants(
                CascadeRope(*(RopeTables(*(table.to(self.dtype) for table in grid))
                              for grid in rope)),
                None if encoder is None else encoder.precompute(height // stem, width // stem))
        return self._resolutions.get((height, width), create)

    def conditioning(self, schedule: torch.Tensor) -> Conditioning:
        """The DiT conditioning of every timestep of ``schedule`` (row i: step i).

        Computed in float32; the blocks' modulations are then cast to the compute dtype, the
        final layer's stays float32.
        """
        def create() -> Conditioning:
            cond = self.model.dit.condition(schedule.to(self.device))
            return cond._replace(blocks=tuple(m.to(self.dtype) for m in cond.blocks))
        return self._conditions.get(tuple(schedule.tolist()), create)

    @torch.inference_mode()
    def prepare(self, height: int, width: int, steps: int, batch: int = 1) -> None:
        """Build the constants of one resolution and step count before the first frame, and
        with ``compile`` the compiled code for one image of that size with ``batch`` samples.
        """
        self.resolution(height, width)
        schedule = timesteps(steps, self.config.num_train_timesteps)
        self.conditioning(schedule)
        if self.compiled:
            image = torch.zeros(1, 3, height, width, device=self.device)
            semantics = self.semantics(image)
            if batch > 1:  # as the predictor lays out several samples of one image
                image = image.repeat_interleave(batch, dim=0)
                if semantics is not None:
                    semantics = semantics.repeat_interleave(batch, dim=0)
            self.velocity(torch.zeros(batch, 1, height, width, device=self.device), image,
                          semantics, schedule, 0)

    @torch.inference_mode()
    def semantics(self, image: torch.Tensor) -> torch.Tensor | None:
        constants = self.resolution(*image.shape[-2:])
        with self._autocast():
            tokens = self._semantics(image, constants.encoder)
        return tokens.clone() if self.compiled and tokens is not None else tokens

    @torch.inference_mode()
    def velocity(self, x_t: torch.Tensor, image: torch.Tensor, semantics: torch.Tensor | None,
                 schedule: torch.Tensor, index: int) -> torch.Tensor:
        constants = self.resolution(*x_t.shape[-2:])
        cond = self.conditioning(schedule).select(index)
        v = self._velocity(x_t, image, None, semantics, cond=cond, rope=constants.rope).float()
        return v.clone() if self.compiled else v  # compiled outputs may be reused buffers
