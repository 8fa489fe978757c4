"""A static scene: primitives with materials, one directional light and a sky.

Object ids number the primitives in order: planes, boxes, spheres, then cylinders.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .primitives import Box, Cylinder, Plane, Sphere
from .shading import DirectionalLight


@dataclass(frozen=True)
class Sky:
    """Colour seen where rays hit nothing, graded from horizon to zenith (linear RGB)."""
    horizon: tuple[float, float, float] = (0.80, 0.85, 0.90)
    zenith: tuple[float, float, float] = (0.35, 0.55, 0.85)

    def radiance(self, dirs: np.ndarray) -> np.ndarray:
        """(3, n) radiance for world ray directions (3, n)."""
        up = np.clip(dirs[2] / np.sqrt(np.einsum('kn,kn->n', dirs, dirs)), 0.0, 1.0)
        horizon = np.asarray(self.horizon, dtype=np.float64)[:, None]
        return horizon + (np.asarray(self.zenith, dtype=np.float64)[:, None] - horizon) * up


class Scene:
    """Primitives, light and sky; build once, render from many poses."""

    def __init__(self, planes: list[Plane] = (), boxes: list[Box] = (),
                 spheres: list[Sphere] = (), cylinders: list[Cylinder] = (),
                 light: DirectionalLight | None = None, sky: Sky | None = None):
        self.planes, self.boxes = list(planes), list(boxes)
        self.spheres, self.cylinders = list(spheres), list(cylinders)
        self.light = light or DirectionalLight()
        self.sky = sky or Sky()

    @property
    def objects(self) -> list:
        """All primitives; an object's id is its index here."""
        return self.planes + self.boxes + self.spheres + self.cylinders
