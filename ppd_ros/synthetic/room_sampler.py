"""Random procedural rooms: floor, walls, optional ceiling and window, and cluttered objects.

Everything is drawn from one numpy Generator, so a seed fixes the scene and camera. The
camera stands near the world origin facing +x; objects keep >= 1 m from it (so a camera
wobbling up to 0.5 m along a trajectory never enters one) and some are placed on the line
of sight to earlier ones to create occlusions and sharp depth discontinuities.

Every object touches the floor: raised boxes and spheres sit on a thin stand. An object
hanging in the air with a random size has no depth cue in a single image (a big far box and
a small near one look the same), so such frames would teach and test guessing.
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from .camera import CameraPose, body_rotation
from .primitives import Box, Cylinder, Plane, Sphere
from .scene import Scene, Sky
from .shading import DirectionalLight
from .textures import Material

#: Object kinds and how often each is drawn.
OBJECT_KINDS = {'box': 0.35, 'sphere': 0.2, 'cylinder': 0.2, 'pole': 0.25}
#: Nearest an object surface may come to the base camera position (metres, horizontal).
CLEARANCE_M = 1.0
#: Radius of the stand under a raised box or sphere (metres).
STAND_RADIUS_M = 0.04
#: Changes whenever a seed's scene changes (caches of rendered frames are keyed by it).
SCENE_VERSION = 2

_X, _Y, _Z = np.eye(3)


@dataclass(frozen=True, eq=False)
class RoomScene:
    """A sampled scene with the camera's base position and orientation (radians)."""
    scene: Scene
    camera_position: np.ndarray
    yaw: float
    pitch: float
    roll: float

    def base_pose(self) -> CameraPose:
        return CameraPose.from_yaw_pitch_roll(self.camera_position, self.yaw, self.pitch,
                                              self.roll)


def random_color(rng: np.random.Generator, sat=(0.1, 0.8), val=(0.3, 0.95)) -> tuple:
    return colorsys.hsv_to_rgb(rng.random(), rng.uniform(*sat), rng.uniform(*val))


def random_material(rng: np.random.Generator, patterns=('solid', 'checker', 'stripes', 'noise'),
                    scale=(0.05, 0.5)) -> Material:
    color = random_color(rng)
    if rng.random() < 0.3:
        color2 = random_color(rng)
    else:  # a darker or lighter shade of the same hue
        color2 = tuple(min(c * f, 1.0) for c, f in zip(color, rng.uniform(0.35, 1.6, 3)))
    pattern = str(patterns[rng.integers(len(patterns))])
    return Material(color, pattern, color2, float(rng.uniform(*scale)))


def random_light(rng: np.random.Generator) -> DirectionalLight:
    az, el = rng.uniform(0.0, 2 * math.pi), math.radians(rng.uniform(25.0, 70.0))
    towards_light = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az),
                              math.sin(el)])
    tint = tuple(float(x) for x in 1.0 - rng.uniform(0.0, 0.12, 3))
    return DirectionalLight(-towards_light, tint, float(rng.uniform(0.15, 0.35)))


def room_planes(rng: np.random.Generator, depth: float, width: float, wall_height: float,
                ceiling: bool, window: bool) -> list[Plane]:
    """Floor, back wall (x = depth, optionally with a window), side walls, ceiling."""
    floor_mat = random_material(rng, ('checker', 'stripes', 'noise'), (0.15, 0.8))
    wall_mat = random_material(rng, ('solid', 'noise', 'stripes'), (0.2, 1.0))
    side_mat = random_material(rng, ('solid', 'noise', 'stripes'), (0.2, 1.0))
    x_mid, x_half = (depth - 1.5) / 2.0, (depth + 1.5) / 2.0  # rooms reach 1.5 m behind
    z_mid = wall_height / 2.0
    hole = None
    if window:
        w = rng.uniform(0.8, 2.0)
        y = rng.uniform(-1.0, 1.0) * max(width / 2 - w / 2 - 0.2, 0.0)
        z0, z1 = 0.8, min(2.2, wall_height - 0.2)
        hole = (y - w / 2, y + w / 2, z0 - z_mid, z1 - z_mid)
    planes = [
        Plane((x_mid, 0.0, 0.0), _X, _Y, floor_mat, (x_half, width / 2)),
        Plane((depth, 0.0, z_mid), _Y, _Z, wall_mat, (width / 2, z_mid), hole),
        Plane((x_mid, width / 2, z_mid), _X, _Z, side_mat, (x_half, z_mid)),
        Plane((x_mid, -width / 2, z_mid), _X, _Z, side_mat, (x_half, z_mid)),
    ]
    if ceiling:
        ceiling_mat = random_material(rng, ('solid', 'noise'), (0.5, 1.5))
        planes.append(Plane((x_mid, 0.0, wall_height), _X, _Y, ceiling_mat,
                            (x_half, width / 2)))
    return planes


def _place(rng, depth, width, extent, hfov, camera_xy, anchors):
    """Horizontal centre for an object of bounding radius ``extent``."""
    x_lo, x_hi = CLEARANCE_M + extent, depth - 0.3 - extent
    x_hi = max(x_hi, x_lo)
    if anchors and rng.random() < 0.45:  # in front of an earlier object: an occluder
        ax, ay = anchors[rng.integers(len(anchors))]
        f = rng.uniform(0.45, 0.75)
        x = max(camera_xy[0] + f * (ax - camera_xy[0]), x_lo)
        y = camera_xy[1] + f * (ay - camera_xy[1]) + rng.uniform(-0.15, 0.15)
    else:
        x = rng.uniform(x_lo, x_hi)
        y = camera_xy[1] + rng.uniform(-1.0, 1.0) * x * math.tan(hfov / 2 + math.radians(8))
    y_lim = max(width / 2 - extent - 0.05, 0.0)
    return float(min(x, x_hi)), float(np.clip(y, -y_lim, y_lim))


def sample_room(rng: np.random.Generator, hfov_deg: float = 70.0,
                n_objects: int | None = None) -> RoomScene:
    """Draw a room, its objects, light and camera base pose from ``rng``."""
    depth, width = rng.uniform(4.5, 9.0), rng.uniform(4.0, 8.0)
    wall_height = rng.uniform(2.4, 3.5)
    ceiling, window = bool(rng.random() < 0.5), bool(rng.random() < 0.35)
    cam = np.array([0.0, rng.uniform(-0.12, 0.12) * width, rng.uniform(0.8, 1.7)])
    yaw, pitch, roll = np.radians([rng.uniform(-10, 10), rng.uniform(2, 20), rng.uniform(-2, 2)])
    planes = room_planes(rng, depth, width, wall_height, ceiling, window)

    boxes, spheres, cylinders, anchors = [], [], [], []
    kinds = list(OBJECT_KINDS)
    cumulative = np.cumsum(list(OBJECT_KINDS.values()))
    hfov = math.radians(hfov_deg)
    count = int(rng.integers(5, 11)) if n_objects is None else n_objects
    for _ in range(count):
        kind = kinds[int(np.searchsorted(cumulative, rng.random() * cumulative[-1]))]
        mat = random_material(rng)
        floating = rng.random() < 0.2  # raised, on a stand
        if kind == 'box':
            half = rng.uniform(0.1, 0.6, 3)
            if floating:
                extent = float(np.linalg.norm(half))
                z = rng.uniform(extent + 0.1, max(extent + 0.1, min(2.0, wall_height - extent)))
                rot = body_rotation(*rng.uniform(-math.pi, math.pi, 3))
            else:
                extent, z = float(np.hypot(half[0], half[1])), half[2]
                rot = body_rotation(rng.uniform(0, math.pi), 0.0, 0.0)
            x, y = _place(rng, depth, width, extent, hfov, cam, anchors)
            boxes.append(Box((x, y, z), half, mat, rot))
            if floating:  # up to the centre, hidden inside the box
                cylinders.append(Cylinder((x, y, 0.0), STAND_RADIUS_M, z, mat))
        elif kind == 'sphere':
            r = rng.uniform(0.1, 0.5)
            z = rng.uniform(r + 0.2, 1.8) if floating else r
            x, y = _place(rng, depth, width, r, hfov, cam, anchors)
            spheres.append(Sphere((x, y, z), r, mat))
            if floating:
                cylinders.append(Cylinder((x, y, 0.0), STAND_RADIUS_M, z, mat))
        else:
            if kind == 'pole':
                r = rng.uniform(0.01, 0.03)
                height = wall_height if ceiling else rng.uniform(1.2, wall_height)
            else:
                r, height = rng.uniform(0.08, 0.35), rng.uniform(0.3, 1.6)
            x, y = _place(rng, depth, width, r, hfov, cam, anchors)
            cylinders.append(Cylinder((x, y, 0.0), r, height, mat))
        anchors.append((x, y))

    sky = Sky(tuple(np.clip(np.array(Sky.horizon) + rng.uniform(-0.08, 0.08, 3), 0, 1)),
              tuple(np.clip(np.array(Sky.zenith) + rng.uniform(-0.08, 0.08, 3), 0, 1)))
    scene = Scene(planes, boxes, spheres, cylinders, random_light(rng), sky)
    return RoomScene(scene, cam, float(yaw), float(pitch), float(roll))
