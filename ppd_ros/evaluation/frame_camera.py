"""Camera intrinsics of a frame at the size its depth is evaluated / written at."""
from __future__ import annotations

from dataclasses import dataclass

from ppd_ros.geometry.camera_model import PinholeCamera, camera_from_info_fields
from ppd_ros.synthetic.camera import CameraInfoFields


@dataclass(frozen=True, eq=False)
class FrameCamera:
    model: PinholeCamera          #: for unprojection / edge metrics
    info: CameraInfoFields        #: CameraInfo fields of the same size (D, R kept)


def camera_at_size(info: CameraInfoFields | None, width: int, height: int) -> FrameCamera | None:
    """The camera of ``info`` rescaled to width x height (as the depth node rescales for its
    output_scale); None without info. CameraModelError when the info is unusable."""
    if info is None:
        return None
    camera = camera_from_info_fields(info.k, info.p, info.width, info.height)
    camera = camera.scaled_to(width, height)
    return FrameCamera(camera, CameraInfoFields(
        width=width, height=height, k=camera.k.ravel().copy(), p=camera.p.ravel().copy(),
        d=info.d, r=info.r, distortion_model=info.distortion_model))
