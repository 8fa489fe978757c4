"""Depth-sensor fusion: keep the sensor where it is right, PPD everywhere else.

Inputs: PPD's depth as log(1 + metres), globally aligned to the sensor (e.g. a * pred + b
from ReferenceScaler's fit), the sensor's registered depth in metres (NaN / <= 0 invalid;
dense RGB-D or a few hundred LiDAR points) and optionally the colour image, all H x W.
Arithmetic is on L = log(1 + metres), float32.

1. Kept sensor: valid pixels inside [min_m, max_m] that are not flying pixels, i.e. not
   between a neighbour more than flying_step (relative) nearer and one more than
   flying_step farther (the sensor's mixed returns at its own depth edges).
2. PPD locally corrected to the kept sensor (local_correction): a masked guided filter
   L_sensor ~ A L_ppd + B at several radii, each used where it has sensor support, so that
   large holes fall back to the global alignment.
3. Pixels without kept sensor that have two sensor surfaces (at least `step` apart) within
   snap_radius go to the foreground or the background surface, chosen by colour where
   colour tells and by the corrected PPD otherwise (surface_snap), never between them.
4. Flying pixels not placed by 3 take the nearest or the farthest depth of their 3 x 3
   neighbourhood, whichever is nearer to the corrected PPD (which they keep when it lies
   within ON_SURFACE_LOG of one of the two).
5. Other pixels more than `step` above the smallest and below the largest depth within
   EDGE_SHARPEN_RADIUS (a step that PPD blurred, e.g. inside a sensor hole) take the nearer
   of the two.
6. Everything else: corrected PPD. Depth outside [min_m, max_m] is invalid (NaN).

Radii are pixels of an image RADII_WIDTH = 320 px wide (3, 8, 20, 6 and 2 px), scaled to the
width of the working grid (the surface search to at least MIN_SNAP_RADIUS).

Speed: up to 1.5 x work_width pixels wide all runs at the image's size. A larger image is
fused on a working grid about work_width wide (nearest-sampled depth, bilinear-sampled
colour); then at full resolution (A, B) are resized bilinearly and applied to the
full-resolution PPD, the surfaces near sensor steps are brought up with the colour-guided
edge-aware upsampler, and steps 1 and 4 are done on the full-resolution sensor, so that
kept sensor pixels, PPD detail and edges stay at the camera's resolution. The sensor test
and the conversion to metres run in strips of STRIP_ROWS rows, small enough to stay in cache.

The per-pixel origin is available as a source map (SOURCE_* values) for `depth/source`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from ppd_ros.alignment import resample_reference_to
from ppd_ros.fusion.local_correction import DEFAULT_RADII, correction_fields
from ppd_ros.fusion.surface_snap import DEFAULT_COLOUR_MARGIN, snap_to_surfaces
from ppd_ros.geometry.depth_upsampling import upsample_at_steps

#: Source map values (mono8).
SOURCE_NONE, SOURCE_SENSOR, SOURCE_PPD, SOURCE_EDGE = 0, 1, 2, 3
SOURCE_NAMES = {SOURCE_NONE: 'no depth', SOURCE_SENSOR: 'sensor', SOURCE_PPD: 'PPD-filled',
                SOURCE_EDGE: 'edge-repaired'}


@dataclass(frozen=True)
class FusionSettings:
    radii: tuple[int, ...] = DEFAULT_RADII  #: guided-filter radii, px at RADII_WIDTH
    flying_step: float = 0.04        #: flying-pixel test: relative depth step to both sides
    step: float = 0.05               #: smallest step between two surfaces to snap between
    snap_radius: int = 6             #: reach of the surfaces, px at RADII_WIDTH
    colour_margin: float = DEFAULT_COLOUR_MARGIN  #: 8-bit RGB distance that makes colour tell
    work_width: int = 256            #: about the width of the working grid
    min_m: float = 0.1               #: depth outside [min_m, max_m] is invalid
    max_m: float = 20.0

    def __post_init__(self):
        if not self.radii or min(self.radii) < 1:
            raise ValueError(f'radii must be >= 1 px, got {self.radii}')
        if self.flying_step <= 0 or self.step <= 0:
            raise ValueError('flying_step and step must be > 0')
        if self.snap_radius < 1 or self.work_width < 16:
            raise ValueError('need snap_radius >= 1 and work_width >= 16')
        if not 0.0 <= self.min_m < self.max_m:
            raise ValueError(f'need 0 <= min_m < max_m, got {self.min_m}, {self.max_m}')


@dataclass(frozen=True, eq=False)
class FusedDepth:
    depth_m: np.ndarray               #: float32 (H, W) metres, NaN invalid
    source: np.ndarray | None = None  #: uint8 (H, W) SOURCE_* per pixel
    timings: dict[str, float] = field(default_factory=dict)  #: seconds per stage


_SQUARE_3 = np.ones((3, 3), np.uint8)
_FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Radii are pixels of an image this wide (scaled to the working grid's width).
RADII_WIDTH = 320
#: The surface search reaches at least this far (working-grid px), past a sensor's flying
#: pixels to the surfaces on both sides, however small the image.
MIN_SNAP_RADIUS = 3
#: Reach of the step sharpening of PPD-filled pixels (px at RADII_WIDTH).
EDGE_SHARPEN_RADIUS = 2
#: A depth within this log distance (about 2 %) of a surface lies on it.
ON_SURFACE_LOG = 0.02


def sensor_in_range(sensor_m: np.ndarray, min_m: float, max_m: float) -> np.ndarray:
    """uint8 mask, 255 where min_m <= sensor <= max_m (0 for NaN)."""
    return cv2.inRange(sensor_m, min_m, max_m)


@dataclass(frozen=True, eq=False)
class SensorPixels:
    """Which sensor pixels fusion keeps, and the surfaces around its flying pixels."""
    kept: np.ndarray      #: uint8, 255: in range and not a flying pixel
    flying: np.ndarray    #: uint8, 255: a flying pixel (module doc, point 1)
    flying_index: np.ndarray  #: flat indices of the flying pixels
    nearest: np.ndarray   #: float32 per flying pixel: smallest valid depth of its 3 x 3
    farthest: np.ndarray  #: float32 per flying pixel: largest valid depth of its 3 x 3


#: Rows per strip of the full-resolution passes: a strip's temporaries stay in the CPU's
#: cache, which makes the sensor test about a third faster on a camera-sized image than
#: whole-image passes.
STRIP_ROWS = 48


def sensor_pixels(sensor_m: np.ndarray, min_m: float, max_m: float,
                  step: float) -> SensorPixels:
    """Kept and flying sensor pixels: a flying pixel is in range, with a valid 8-neighbour
    more than ``step`` (relative) nearer and one more than ``step`` farther, i.e. a mixed
    foreground / background return."""
    height, width = sensor_m.shape
    kept = np.empty((height, width), np.uint8)
    flying = np.empty((height, width), np.uint8)
    index, nearest, farthest = [], [], []
    for top in range(0, height, STRIP_ROWS):
        bottom = min(top + STRIP_ROWS, height)
        first, last = max(top - 1, 0), min(bottom + 1, height)   # with the neighbour rows
        valid, near, far = _valid_extremes(sensor_m[first:last], min_m, max_m)
        rows = slice(top - first, bottom - first)
        strip_flying = _flying_test(sensor_m[top:bottom], near[rows], far[rows], step,
                                    flying[top:bottom])
        cv2.subtract(valid[rows], strip_flying, dst=kept[top:bottom])
        at = np.flatnonzero(strip_flying > 0)
        if len(at):
            index.append(at + top * width)
            nearest.append(near[rows].reshape(-1)[at])
            farthest.append(far[rows].reshape(-1)[at])
    if not index:
        none = np.zeros(0, np.float32)
        return SensorPixels(kept, flying, np.zeros(0, np.intp), none, none)
    return SensorPixels(kept, flying, np.concatenate(index), np.concatenate(nearest),
                        np.concatenate(farthest))


def _valid_extremes(sensor_m: np.ndarray, min_m: float,
                    max_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The in-range mask (uint8) and the smallest and largest in-range depth of each
    pixel's 3 x 3 neighbourhood (inf and 0 where there is none)."""
    valid = sensor_in_range(sensor_m, min_m, max_m)
    nearest = np.full_like(sensor_m, np.inf)
    cv2.copyTo(sensor_m, valid, nearest)
    farthest = cv2.threshold(nearest, _FLOAT32_MAX, 0, cv2.THRESH_TOZERO_INV)[1]  # inf -> 0
    cv2.erode(nearest, _SQUARE_3, dst=nearest)
    cv2.dilate(farthest, _SQUARE_3, dst=farthest)
    return valid, nearest, farthest


def _flying_test(sensor_m: np.ndarray, nearest: np.ndarray, farthest: np.ndarray,
                 step: float, out: np.ndarray) -> np.ndarray:
    """uint8 mask (in ``out``), 255 where the sensor is more than ``step`` (relative)
    farther than ``nearest`` and nearer than ``farthest``."""
    with np.errstate(over='ignore'):
        bound = nearest * np.float32(1 + step)
    cv2.compare(sensor_m, bound, cv2.CMP_GT, dst=out)
    np.multiply(farthest, np.float32(1 / (1 + step)), out=bound)
    return cv2.bitwise_and(out, cv2.compare(bound, sensor_m, cv2.CMP_GT), dst=out)


def kept_sensor(sensor_m: np.ndarray, min_m: float, max_m: float, step: float) -> np.ndarray:
    """uint8 mask, 255 where the sensor is in range and not a flying pixel."""
    return sensor_pixels(sensor_m, min_m, max_m, step).kept


def repair_flying(fused_log: np.ndarray, sensor: SensorPixels, done: np.ndarray | None = None,
                  tolerance: float = ON_SURFACE_LOG) -> np.ndarray:
    """Flying pixels (not already ``done``) keep ``fused_log`` where it lies within
    ``tolerance`` (log) of the nearest or the farthest depth of their neighbourhood, and take
    the nearer of those two otherwise (in place); returns their flat indices."""
    pixels, near, far = sensor.flying_index, sensor.nearest, sensor.farthest
    if done is not None:
        todo = done.reshape(-1)[pixels] == 0
        pixels, near, far = pixels[todo], near[todo], far[todo]
    if len(pixels):
        near, far = np.log1p(near), np.log1p(far)
        guess = fused_log.reshape(-1)[pixels]
        to_near, to_far = np.abs(guess - near), np.abs(guess - far)
        snapped = np.where(to_near <= to_far, near, far)
        fused_log.reshape(-1)[pixels] = np.where(np.minimum(to_near, to_far) <= tolerance,
                                                 guess, snapped)
    return pixels


def sharpen_steps(log_depth: np.ndarray, where: np.ndarray, radius: int,
                  min_step: float) -> np.ndarray:
    """Pixels (among ``where``) more than min_step above the smallest and below the largest
    value within ``radius`` - a blurred step, e.g. in a model's prediction - take the nearer
    of the two (in place); returns the bool mask of those pixels."""
    square = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    low, high = cv2.erode(log_depth, square), cv2.dilate(log_depth, square)
    above, below = log_depth - low, high - log_depth
    step = np.float32(min_step)
    between = where & (above > step) & (below > step)
    np.copyto(log_depth, np.where(above < below, low, high), where=between)
    return between


def reference_at(shape: tuple[int, int], reference_m: np.ndarray,
                 settings: FusionSettings = FusionSettings()) -> np.ndarray:
    """A registered reference of any size as an image of ``shape`` for fuse_depth. A
    smaller one keeps its own pixels only, each at the image pixel under its centre (NaN
    elsewhere: the rest is PPD locally corrected to them, not blocks of copies), after its
    flying pixels are dropped at its own resolution; a larger one is sampled nearest."""
    reference_m = np.asarray(reference_m, dtype=np.float32)
    height, width = shape
    if reference_m.shape == (height, width):
        return reference_m
    if reference_m.shape[0] > height or reference_m.shape[1] > width:
        return resample_reference_to(shape, reference_m)
    kept = kept_sensor(reference_m, settings.min_m, settings.max_m, settings.flying_step) > 0
    rows = ((2 * np.arange(reference_m.shape[0]) + 1) * height) // (2 * reference_m.shape[0])
    cols = ((2 * np.arange(reference_m.shape[1]) + 1) * width) // (2 * reference_m.shape[1])
    out = np.full(shape, np.nan, np.float32)
    out[np.ix_(rows, cols)] = np.where(kept, reference_m, np.float32(np.nan))
    return out


@dataclass(eq=False)
class _WorkingGrid:
    """Steps 1-3 of the module doc on the working grid."""
    surface_log: np.ndarray   #: fused log depth (kept sensor, snapped, corrected PPD)
    slope: np.ndarray         #: correction fields A, B
    shift: np.ndarray
    kept: np.ndarray          #: bool
    snapped: np.ndarray       #: bool
    near_steps: np.ndarray    #: bool, a sensor step within the surface search's reach


def _fuse_working_grid(ppd_log: np.ndarray, sensor_m: np.ndarray, rgb: np.ndarray | None,
                       s: FusionSettings) -> _WorkingGrid:
    pixels = sensor_pixels(sensor_m, s.min_m, s.max_m, s.flying_step)
    kept = pixels.kept > 0
    sensor_log = np.log1p(np.where(kept, sensor_m, np.float32(np.nan)))
    # radii are set for a grid RADII_WIDTH wide: scaled to this one
    scale = ppd_log.shape[1] / RADII_WIDTH
    radii = tuple(max(1, round(r * scale)) for r in s.radii)
    slope, shift = correction_fields(ppd_log, sensor_log, kept, radii)
    surface = slope * ppd_log
    surface += shift
    snap = snap_to_surfaces(sensor_log, surface, float(np.log1p(s.step)),
                            max(MIN_SNAP_RADIUS, round(s.snap_radius * scale)), rgb,
                            s.colour_margin, wanted=~kept)
    surface.reshape(-1)[snap.pixels] = snap.value
    np.copyto(surface, sensor_log, where=kept)
    snapped = np.zeros(kept.shape, dtype=bool)
    snapped.reshape(-1)[snap.pixels] = True
    snapped.reshape(-1)[repair_flying(surface, pixels, snapped.view(np.uint8))] = True
    sharpened = sharpen_steps(surface, ~kept & ~snapped,
                              max(1, round(EDGE_SHARPEN_RADIUS * scale)), float(np.log1p(s.step)))
    return _WorkingGrid(surface, slope, shift, kept, snapped | sharpened,
                        snap.stepped | snapped | sharpened)


def fuse_depth(ppd_log: np.ndarray, sensor_m: np.ndarray, rgb: np.ndarray | None = None,
               settings: FusionSettings = FusionSettings(),
               with_source: bool = False) -> FusedDepth:
    """Fused metric depth (module doc). ppd_log: finite log(1 + metres); sensor_m: metres,
    NaN or <= 0 invalid; rgb: uint8 colour image (optional); all of one size H x W."""
    start = time.perf_counter()
    ppd_log = np.asarray(ppd_log, dtype=np.float32)
    sensor_m = np.asarray(sensor_m, dtype=np.float32)
    if ppd_log.ndim != 2 or sensor_m.shape != ppd_log.shape:
        raise ValueError(f'ppd {ppd_log.shape} and sensor {sensor_m.shape} must be the same '
                         'H x W')
    if rgb is not None and rgb.shape[:2] != ppd_log.shape:
        raise ValueError(f'rgb {rgb.shape[:2]} must have the depth size {ppd_log.shape}')
    s = settings
    height, width = ppd_log.shape
    factor = max(1, round(width / s.work_width))
    timings = {}
    if factor == 1:
        grid = _fuse_working_grid(ppd_log, sensor_m, rgb, s)
        timings['working_grid'] = time.perf_counter() - start
        fused_log = grid.surface_log
        kept = grid.kept.astype(np.uint8) * np.uint8(255)
        snapped = grid.snapped.reshape(-1)
    else:
        size = (max(2, round(width / factor)), max(2, round(height / factor)))
        small_rgb = (None if rgb is None
                     else cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR))
        grid = _fuse_working_grid(
            cv2.resize(ppd_log, size, interpolation=cv2.INTER_NEAREST_EXACT),
            cv2.resize(sensor_m, size, interpolation=cv2.INTER_NEAREST_EXACT), small_rgb, s)
        clock = time.perf_counter()
        timings['working_grid'] = clock - start
        fused_log, kept, snapped = _full_resolution(ppd_log, sensor_m, rgb, small_rgb, grid,
                                                    s)
        timings['full_resolution'] = time.perf_counter() - clock
    depth, usable = fused_log, _to_metres(fused_log, sensor_m, kept, s)
    source = None
    if with_source:
        source = np.full(depth.shape, SOURCE_PPD, np.uint8)
        source.reshape(-1)[snapped] = SOURCE_EDGE
        source[kept > 0] = SOURCE_SENSOR
        source[usable == 0] = SOURCE_NONE
    timings['total'] = time.perf_counter() - start
    return FusedDepth(depth, source, timings)


def _to_metres(fused_log: np.ndarray, sensor_m: np.ndarray, kept: np.ndarray,
               s: FusionSettings) -> np.ndarray:
    """Fused log depth -> metres in place, the kept sensor pixels copied exactly, NaN where
    unusable; returns the usable uint8 mask. PPD-filled depth outside [min_m, max_m] is
    unusable; kept sensor depth is inside."""
    low, high = float(np.log1p(s.min_m)), float(np.log1p(s.max_m))
    usable = np.empty(fused_log.shape, np.uint8)
    for top in range(0, fused_log.shape[0], STRIP_ROWS):
        rows = slice(top, top + STRIP_ROWS)
        depth, ok, keep = fused_log[rows], usable[rows], kept[rows]
        cv2.inRange(depth, low, high, dst=ok)
        np.expm1(depth, out=depth)
        cv2.copyTo(sensor_m[rows], keep, depth)
        cv2.bitwise_or(ok, keep, dst=ok)
        if cv2.countNonZero(ok) < ok.size:
            cv2.copyTo(_nan_image(depth.shape), cv2.bitwise_not(ok), depth)
    return usable


def _full_resolution(ppd_log, sensor_m, rgb, small_rgb, grid: _WorkingGrid,
                     s: FusionSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fused log depth, kept uint8 mask, flat indices of the repaired pixels) at the
    image's size from the working grid: corrected PPD everywhere, the working grid's
    surfaces near sensor steps (upsampled edge-aware with the colour image), the sensor's
    flying pixels (tested at full resolution) on the neighbouring surface nearer to that."""
    height, width = ppd_log.shape
    fused_log = cv2.resize(grid.slope, (width, height), interpolation=cv2.INTER_LINEAR)
    fused_log *= ppd_log
    scratch = cv2.resize(grid.shift, (width, height), interpolation=cv2.INTER_LINEAR)
    fused_log += scratch
    near_steps = cv2.resize(grid.near_steps.view(np.uint8), (width, height),
                            interpolation=cv2.INTER_NEAREST_EXACT)
    surface, at_steps = upsample_at_steps(grid.surface_log, height, width, rgb, small_rgb,
                                          float(np.log1p(s.step)), s.colour_margin,
                                          grid.near_steps, out=scratch)
    cv2.copyTo(surface, near_steps, fused_log)
    pixels = sensor_pixels(sensor_m, s.min_m, s.max_m, s.flying_step)
    repaired = repair_flying(fused_log, pixels)
    return fused_log, pixels.kept, np.concatenate([at_steps, repaired])


@lru_cache(maxsize=4)
def _nan_image(shape: tuple[int, int]) -> np.ndarray:
    image = np.full(shape, np.nan, np.float32)
    image.setflags(write=False)
    return image
