"""Ray-cast a Scene from a camera pose into an RGB-D frame with exact metric depth.

Works like a z-buffer: each primitive is intersected only with the rays inside the
projection of its bounding corners, and keeps the pixels where it is the nearest so far.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .camera import CameraInfoFields, CameraIntrinsics, CameraPose, world_rays
from .primitives import T_MIN
from .scene import Scene
from .small_products import transform
from .shading import lambert, to_uint8

#: Hits farther than this are rendered but marked invalid (NaN depth), like a sensor's range.
DEFAULT_MAX_RANGE_M = 20.0


@dataclass(eq=False)
class SyntheticFrame:
    """One rendered view.

    rgb: H x W x 3 uint8. depth: H x W float32 metres along the optical axis (Z), NaN where
    invalid. valid: H x W bool (a surface hit within max range). object_id: H x W int16
    index into ``scene.objects`` (-1 for sky). normals: H x W x 3 float32 unit normals in
    the optical frame, facing the camera (zero on sky), or None when not requested.
    """
    rgb: np.ndarray
    depth: np.ndarray
    valid: np.ndarray
    intrinsics: CameraIntrinsics
    pose: CameraPose
    object_id: np.ndarray
    normals: np.ndarray | None = None

    @property
    def K(self) -> np.ndarray:  # noqa: N802
        return self.intrinsics.K

    @property
    def camera_info(self) -> CameraInfoFields:
        return self.intrinsics.camera_info()


def pixel_window(corners: np.ndarray | None, intr: CameraIntrinsics, pose: CameraPose
                 ) -> tuple[slice, slice] | None:
    """Rows and columns whose rays can hit the convex hull of ``corners`` (None: none)."""
    full = (slice(0, intr.height), slice(0, intr.width))
    if corners is None:
        return full
    cam = (corners - pose.position) @ pose.world_from_optical  # optical-frame coordinates
    z = cam[:, 2]
    behind = z <= T_MIN  # hits need depth > T_MIN
    if behind.any():
        return None if behind.all() else full
    u = intr.fx * cam[:, 0] / z + intr.cx
    v = intr.fy * cam[:, 1] / z + intr.cy
    u0, u1 = max(math.floor(u.min()), 0), min(math.ceil(u.max()) + 1, intr.width)
    v0, v1 = max(math.floor(v.min()), 0), min(math.ceil(v.max()) + 1, intr.height)
    if u0 >= u1 or v0 >= v1:
        return None
    return slice(v0, v1), slice(u0, u1)


def render(scene: Scene, intrinsics: CameraIntrinsics, pose: CameraPose, *,
           max_range: float = DEFAULT_MAX_RANGE_M, with_normals: bool = False
           ) -> SyntheticFrame:
    """Render ``scene`` seen by a camera with ``intrinsics`` at ``pose``."""
    h, w = intrinsics.height, intrinsics.width
    origin = np.asarray(pose.position, dtype=np.float64)
    dirs = world_rays(intrinsics, pose)  # (3, H, W)
    objects = scene.objects

    depth = np.full((h, w), np.inf)
    obj_id = np.full((h, w), -1, dtype=np.int16)
    for i, prim in enumerate(objects):
        window = pixel_window(prim.corners, intrinsics, pose)
        if window is None:
            continue
        sub_dirs = dirs[:, window[0], window[1]]
        shape = sub_dirs.shape[1:]
        t = prim.intersect(origin, sub_dirs.reshape(3, -1)).reshape(shape)
        sub_depth = depth[window]  # a view: writes go to the z-buffer
        closer = t < sub_depth
        np.copyto(sub_depth, t, where=closer)
        np.copyto(obj_id[window], i, where=closer)

    flat_dirs = dirs.reshape(3, -1)
    flat_id = obj_id.ravel()
    flat_depth = depth.ravel()
    radiance = np.empty((3, h * w))
    normals = np.zeros((3, h * w)) if with_normals else None
    order = np.argsort(flat_id, kind='stable')
    starts = np.searchsorted(flat_id[order], np.arange(-1, len(objects) + 1))
    sky = order[starts[0]:starts[1]]
    radiance[:, sky] = scene.sky.radiance(flat_dirs[:, sky])
    for i, prim in enumerate(objects):
        pix = order[starts[i + 1]:starts[i + 2]]
        if pix.size == 0:
            continue
        ray = flat_dirs[:, pix]
        n, uv = prim.surface(origin[:, None] + flat_depth[pix] * ray, origin)
        n = np.where(np.einsum('kn,kn->n', n, ray) > 0, -n, n)  # face the camera
        radiance[:, pix] = lambert(prim.material.albedo(uv), n, scene.light)
        if normals is not None:
            normals[:, pix] = n

    valid = depth <= max_range
    frame_normals = None
    if normals is not None:  # world -> optical is R^T
        frame_normals = transform(pose.world_from_optical.T, normals).T.reshape(h, w, 3)
        frame_normals = frame_normals.astype(np.float32)
    return SyntheticFrame(
        rgb=np.ascontiguousarray(to_uint8(radiance).T.reshape(h, w, 3)),
        depth=np.where(valid, depth, np.nan).astype(np.float32), valid=valid,
        intrinsics=intrinsics, pose=pose, object_id=obj_id, normals=frame_normals)
