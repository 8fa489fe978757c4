"""Procedural surface materials: base colour blended with checker, stripes or value noise.

Texture coordinates are in metres on the surface, so pattern size shrinks with distance
and foreshortens on slanted surfaces: perspective cues a depth network can learn from.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PATTERNS = ('solid', 'checker', 'stripes', 'noise')


@dataclass(frozen=True)
class Material:
    """Albedo = lerp(color, color2, pattern(u / scale, v / scale)), colours in [0, 1]."""
    color: tuple[float, float, float]
    pattern: str = 'solid'
    color2: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: float = 0.25

    def __post_init__(self):
        if self.pattern not in PATTERNS:
            raise ValueError(f"unknown pattern '{self.pattern}'; expected one of {PATTERNS}")
        if not self.scale > 0:
            raise ValueError(f'scale must be positive, got {self.scale}')

    def albedo(self, uv: np.ndarray) -> np.ndarray:
        """(3, m) albedo at texture coordinates ``uv`` (2, m) in metres."""
        c1 = np.asarray(self.color, dtype=np.float64)[:, None]
        if self.pattern == 'solid':
            return np.repeat(c1, uv.shape[1], axis=1)
        weight = _PATTERN_FUNCS[self.pattern](uv * (1.0 / self.scale))
        return c1 + (np.asarray(self.color2, dtype=np.float64)[:, None] - c1) * weight


def checker(uv: np.ndarray) -> np.ndarray:
    """1 on odd unit squares, 0 on even ones."""
    return (np.floor(uv[0]) + np.floor(uv[1])) % 2.0


def stripes(uv: np.ndarray) -> np.ndarray:
    """Soft stripes across u (a smooth profile keeps aliasing low at small sizes)."""
    return 0.5 + 0.5 * np.sin((2.0 * np.pi) * uv[0])


#: Random lattice values for value noise (fixed, so textures never depend on a seed),
#: padded by one row and column so that the +1 neighbours wrap without extra masking.
_LATTICE_SIZE = 256
_LATTICE = np.pad(np.random.default_rng(20240531).random((_LATTICE_SIZE, _LATTICE_SIZE)),
                  ((0, 1), (0, 1)), mode='wrap').ravel()
_ROW = _LATTICE_SIZE + 1


def value_noise(uv: np.ndarray) -> np.ndarray:
    """Smoothly interpolated lattice noise in [0, 1) at points ``uv`` (2, m), cell size 1.

    The pattern repeats every 256 units.
    """
    cell = np.floor(uv)
    f = uv - cell
    f = f * f * (3.0 - 2.0 * f)  # smoothstep
    ij = cell.astype(np.int64) & (_LATTICE_SIZE - 1)
    idx = ij[0] * _ROW + ij[1]
    v00, v01 = _LATTICE[idx], _LATTICE[idx + 1]
    v10, v11 = _LATTICE[idx + _ROW], _LATTICE[idx + _ROW + 1]
    fu, fv = f
    top = v00 + (v10 - v00) * fu
    bottom = v01 + (v11 - v01) * fu
    return top + (bottom - top) * fv


def fractal_noise(uv: np.ndarray) -> np.ndarray:
    """Two octaves of value noise, in [0, 1)."""
    return (2.0 * value_noise(uv) + value_noise(uv * 2.7 + 17.0)) / 3.0


_PATTERN_FUNCS = {'checker': checker, 'stripes': stripes, 'noise': fractal_noise}
