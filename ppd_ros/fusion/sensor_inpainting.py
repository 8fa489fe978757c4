"""Plain inpainting of a depth sensor's holes: the baseline that shows what PPD adds.

The sensor's kept pixels (in range, not flying pixels; depth_fusion.kept_sensor) are
extended over everything else by OpenCV's Navier-Stokes inpainting (Bertalmio et al.) of
log(1 + metres). Fusing this map instead of PPD's gives the same fusion with the model's
contribution removed.
"""
from __future__ import annotations

import cv2
import numpy as np

from ppd_ros.fusion.depth_fusion import kept_sensor

#: Neighbourhood radius of the inpainting, pixels.
INPAINT_RADIUS_PX = 3


def inpaint_sensor_log(sensor_m: np.ndarray, flying_step: float = 0.04, min_m: float = 0.1,
                       max_m: float = 20.0) -> np.ndarray:
    """float32 log(1 + metres) everywhere: the kept sensor, inpainted across the rest.
    A sensor without any kept pixel gives all zeros (0 m)."""
    sensor_m = np.asarray(sensor_m, dtype=np.float32)
    kept = kept_sensor(sensor_m, min_m, max_m, flying_step) > 0
    known = np.log1p(np.where(kept, sensor_m, np.float32(0)))
    if not kept.any() or kept.all():
        return known
    return cv2.inpaint(known, (~kept).view(np.uint8), INPAINT_RADIUS_PX, cv2.INPAINT_NS)
