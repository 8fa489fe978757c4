"""Lambertian shading under one directional light plus ambient light (no shadows)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .small_products import dot


@dataclass(frozen=True, eq=False)
class DirectionalLight:
    """``direction`` points from the light into the scene (world frame)."""
    direction: np.ndarray = field(default_factory=lambda: np.array([0.4, -0.3, -0.85]))
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    ambient: float = 0.25

    def towards_light(self) -> np.ndarray:
        d = np.asarray(self.direction, dtype=np.float64)
        return -d / np.linalg.norm(d)


def lambert(albedo: np.ndarray, normals: np.ndarray, light: DirectionalLight) -> np.ndarray:
    """Linear radiance (3, m) = albedo * (ambient + (1 - ambient) max(0, n . l)) * colour.

    ``albedo`` and unit ``normals`` are (3, m) arrays.
    """
    cos = np.maximum(dot(light.towards_light(), normals), 0.0)
    gain = light.ambient + (1.0 - light.ambient) * cos
    return albedo * gain * np.asarray(light.color, dtype=np.float64)[:, None]


def to_uint8(linear: np.ndarray) -> np.ndarray:
    """Linear [0, 1] radiance to display uint8 with a gamma of 2 (sqrt)."""
    out = np.sqrt(np.minimum(linear, 1.0))  # radiance is never negative
    out *= 255.0
    out += 0.5
    return out.astype(np.uint8)
