"""Scene primitives with analytic ray intersection, vectorised over rays.

Rays start at the camera centre ``origin`` (3,) and come as unnormalised directions
``dirs`` (3, n) whose optical-axis component is 1, so a hit's ray parameter t is its depth.
Each primitive offers:

* ``intersect(origin, dirs)`` -> (n,) nearest t > T_MIN, inf on a miss;
* ``surface(points, origin)`` -> world normals (3, m) and texture coordinates (2, m) in
  metres at hit points (3, m); normals may face away from the camera (the renderer flips);
* ``corners`` -> (k, 3) points whose convex hull holds the primitive, or None when it is
  unbounded; the renderer projects them to cast only the rays that can hit it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .small_products import dot, transform
from .textures import Material

#: Hits nearer than this (metres) are ignored (self-intersection guard).
T_MIN = 1e-6


def _vec(v) -> np.ndarray:
    return np.asarray(v, dtype=np.float64).reshape(3)


def _box_corners(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    sel = np.array([[i & 1, (i >> 1) & 1, (i >> 2) & 1] for i in range(8)], dtype=bool)
    return np.where(sel, hi, lo)


@dataclass(frozen=True, eq=False)
class Plane:
    """Rectangle (or unbounded plane) spanned by orthonormal u/v axes through ``point``.

    ``half_extent`` bounds |u|, |v| (inf = unbounded); ``hole`` = (u0, u1, v0, v1) cuts
    an opening in local coordinates through which rays pass.
    """
    point: np.ndarray
    u_axis: np.ndarray
    v_axis: np.ndarray
    material: Material
    half_extent: tuple[float, float] = (math.inf, math.inf)
    hole: tuple[float, float, float, float] | None = None

    def __post_init__(self):
        for name in ('point', 'u_axis', 'v_axis'):
            object.__setattr__(self, name, _vec(getattr(self, name)))
        (ux, uy, uz), (vx, vy, vz) = self.u_axis, self.v_axis
        normal = np.array([uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx])
        object.__setattr__(self, 'normal', normal)

    @cached_property
    def corners(self) -> np.ndarray | None:
        hu, hv = self.half_extent
        if math.isinf(hu) or math.isinf(hv):
            return None
        return np.array([self.point + su * hu * self.u_axis + sv * hv * self.v_axis
                         for su in (-1, 1) for sv in (-1, 1)])

    def intersect(self, origin: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        rel = origin - self.point
        with np.errstate(divide='ignore', invalid='ignore'):
            t = -(rel @ self.normal) / dot(self.normal, dirs)
        ok = t > T_MIN
        hu, hv = self.half_extent
        a = rel @ self.u_axis + t * dot(self.u_axis, dirs) if self.hole or hu < math.inf else None
        b = rel @ self.v_axis + t * dot(self.v_axis, dirs) if self.hole or hv < math.inf else None
        if hu < math.inf:
            ok &= np.abs(a) <= hu
        if hv < math.inf:
            ok &= np.abs(b) <= hv
        if self.hole:
            u0, u1, v0, v1 = self.hole
            ok &= ~((a >= u0) & (a <= u1) & (b >= v0) & (b <= v1))
        return np.where(ok, t, np.inf)

    def surface(self, points: np.ndarray, origin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rel = points - self.point[:, None]
        uv = np.stack([dot(self.u_axis, rel), dot(self.v_axis, rel)])
        return np.broadcast_to(self.normal[:, None], points.shape), uv


@dataclass(frozen=True, eq=False)
class Box:
    """Oriented box: ``rotation`` maps box-frame vectors to world."""
    center: np.ndarray
    half_size: np.ndarray
    material: Material
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))

    def __post_init__(self):
        object.__setattr__(self, 'center', _vec(self.center))
        object.__setattr__(self, 'half_size', _vec(self.half_size))
        object.__setattr__(self, 'rotation', np.asarray(self.rotation, dtype=np.float64))

    @cached_property
    def corners(self) -> np.ndarray:
        local = _box_corners(-self.half_size, self.half_size)
        return self.center + local @ self.rotation.T

    def intersect(self, origin: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        rot_t = self.rotation.T
        local_origin = rot_t @ (origin - self.center)
        with np.errstate(divide='ignore', invalid='ignore'):
            inv = 1.0 / transform(rot_t, dirs)
            t1 = (-self.half_size - local_origin)[:, None] * inv
            t2 = (self.half_size - local_origin)[:, None] * inv
        # fmin / fmax skip the NaN of 0 * inf (a ray inside a face plane).
        t_near = np.fmin(t1, t2).max(0)
        t_far = np.fmax(t1, t2).min(0)
        t = np.where(t_near > T_MIN, t_near, t_far)  # from inside a box: its far side
        return np.where((t_near <= t_far) & (t > T_MIN), t, np.inf)

    def surface(self, points: np.ndarray, origin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        local = transform(self.rotation.T, points - self.center[:, None])
        scaled = np.abs(local / self.half_size[:, None])
        axis = scaled.argmax(0)  # the face hit is where |local| / half reaches 1
        cols = np.arange(points.shape[1])
        normal_local = np.zeros_like(local)
        normal_local[axis, cols] = np.sign(local[axis, cols])
        first = np.where(axis == 0, local[1], local[0])
        second = np.where(axis == 2, local[1], local[2])
        return transform(self.rotation, normal_local), np.stack([first, second])


@dataclass(frozen=True, eq=False)
class Sphere:
    center: np.ndarray
    radius: float
    material: Material

    def __post_init__(self):
        object.__setattr__(self, 'center', _vec(self.center))

    @cached_property
    def corners(self) -> np.ndarray:
        return _box_corners(self.center - self.radius, self.center + self.radius)

    def intersect(self, origin: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        oc = origin - self.center
        a = np.einsum('kn,kn->n', dirs, dirs)
        b = dot(oc, dirs)
        c = oc @ oc - self.radius ** 2
        disc = b * b - a * c
        root = np.sqrt(np.maximum(disc, 0.0))
        t = (root - b) / a if c < 0 else (-b - root) / a  # inside: the far side
        return np.where((disc >= 0) & (t > T_MIN), t, np.inf)

    def surface(self, points: np.ndarray, origin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        normal = (points - self.center[:, None]) / self.radius
        lon = np.arctan2(normal[1], normal[0]) * self.radius
        lat = np.arcsin(np.clip(normal[2], -1.0, 1.0)) * self.radius
        return normal, np.stack([lon, lat])


@dataclass(frozen=True, eq=False)
class Cylinder:
    """Vertical (z-axis) capped cylinder standing on ``base`` = (x, y, z0); thin ones are poles."""
    base: np.ndarray
    radius: float
    height: float
    material: Material

    def __post_init__(self):
        object.__setattr__(self, 'base', _vec(self.base))

    @property
    def top(self) -> float:
        return float(self.base[2] + self.height)

    @cached_property
    def corners(self) -> np.ndarray:
        r = np.array([self.radius, self.radius, 0.0])
        return _box_corners(self.base - r, self.base + r + [0.0, 0.0, self.height])

    def _visible_cap(self, origin: np.ndarray) -> float | None:
        if origin[2] > self.top:
            return self.top
        if origin[2] < self.base[2]:
            return float(self.base[2])
        return None

    def intersect(self, origin: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        ox, oy = origin[:2] - self.base[:2]
        dx, dy, dz = dirs
        a = dx * dx + dy * dy
        b = dx * ox + dy * oy
        c = ox * ox + oy * oy - self.radius ** 2
        disc = b * b - a * c
        with np.errstate(divide='ignore', invalid='ignore'):
            root = np.sqrt(np.maximum(disc, 0.0))
            t = (root - b) / a if c < 0 else (-b - root) / a
            z = origin[2] + t * dz
            t = np.where((disc >= 0) & (t > T_MIN) & (z >= self.base[2]) & (z <= self.top),
                         t, np.inf)
            cap = self._visible_cap(origin)
            if cap is not None:
                t_cap = (cap - origin[2]) / dz
                px, py = ox + t_cap * dx, oy + t_cap * dy
                on_cap = (t_cap > T_MIN) & (px * px + py * py <= self.radius ** 2)
                t = np.minimum(t, np.where(on_cap, t_cap, np.inf))
        return t

    def surface(self, points: np.ndarray, origin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rel = points[:2] - self.base[:2, None]
        side_normal = np.concatenate([rel / self.radius, np.zeros((1, rel.shape[1]))])
        around = np.arctan2(rel[1], rel[0]) * self.radius
        side_uv = np.stack([around, points[2]])
        cap = self._visible_cap(origin)
        if cap is None:
            return side_normal, side_uv
        on_cap = np.abs(points[2] - cap) <= 1e-9 * (1.0 + abs(cap))
        cap_normal = np.array([[0.0], [0.0], [1.0]])
        return (np.where(on_cap, cap_normal, side_normal), np.where(on_cap, rel, side_uv))
