"""Low-resolution depth -> image resolution without mixing surfaces at depth steps.

Methods (``UPSAMPLING_METHODS``):

  bilinear    half-pixel centres, clamped at the borders: torch's bilinear with
              align_corners=False as in the reference's run.py (kept for parity checks).
              It blends foreground and background at every depth step: flying pixels.
  nearest     each output pixel takes the source pixel whose area holds its centre.
  edge_aware  (default) bilinear inside surfaces; at depth steps each pixel takes the
              foreground or the background surface, never a value between them.

Edge-aware upsampling, with s = (u + 0.5) * w / W - 0.5 the source coordinate of output
column u (likewise rows), and the 2 x 2 source pixels (taps) around it:

1. Step gaps of the source map: the gap between two neighbouring source pixels is a step
   when its jump exceeds the smaller of the two neighbouring jumps along the same line by
   more than ``step``: |D(u)| > step + min(|D(u-1)|, |D(u+1)|), D(u) = d(u+1) - d(u).
   Planes, however slanted, and creases give no steps; a step blurred over two gaps still
   gives two.
2. An output pixel whose taps are joined by a step gap is an edge pixel; all others get the
   bilinear value.
3. At an edge pixel the taps split into a near and a far group at the largest gap between
   their sorted values. Each group's value is the bilinear blend of its own taps only (so a
   slanted surface stays slanted); its colour is the mean colour of its taps in the guide
   image at the source size (``source_guide``, INTER_AREA by default: what the network saw).
4. Colour tells when the two group colours are more than ``colour_margin`` (8-bit RGB,
   Euclidean) apart and the pixel's own colour, projected on the line between them, lies
   more than half that margin from their midpoint: the pixel takes the group on its side.
   Otherwise (or without a guide) it takes the group with the larger bilinear weight, i.e.
   the surface of the nearer taps.

A map where more than MAX_STEPPED_SHARE of the gaps are steps (noise, e.g. an untrained
network) is upsampled nearest instead. The bilinear base of edge_aware is cv2's INTER_LINEAR (fast; within about 1e-5 of the
reference); a map one pixel high or wide is interpolated bilinearly. Only the output pixels
of stepped cells are visited, so the cost beyond bilinear grows with the length of the depth
edges, not with the image size. Values are taken as they come (any unit) and ``step`` is in
the same unit: for PPD's relative depth (normalised log(1 + d), larger = farther) the
default 0.02 is a depth step of about 3 % in a typical room.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

UPSAMPLING_METHODS = ('edge_aware', 'nearest', 'bilinear')
#: Default step threshold for PPD's relative depth (module doc).
DEFAULT_STEP = 0.02
#: Default colour-distance margin, 8-bit levels (Euclidean over RGB).
DEFAULT_COLOUR_MARGIN = 12.0
#: A map with a larger share of step gaps is not made of smooth surfaces (e.g. an untrained
#: network's noise): it is upsampled nearest, which never blends either and costs the same
#: whatever the map.
MAX_STEPPED_SHARE = 0.35


def upsample_depth(depth: np.ndarray, height: int, width: int, method: str = 'edge_aware',
                   guide: np.ndarray | None = None, source_guide: np.ndarray | None = None,
                   step: float = DEFAULT_STEP, colour_margin: float = DEFAULT_COLOUR_MARGIN,
                   near: np.ndarray | None = None) -> np.ndarray:
    """float32 (height, width) depth from a (h, w) map (module doc).

    ``guide``: the (height, width, 3) uint8 colour image of the output (edge_aware only;
    optional); ``source_guide``: the same image at the depth's size, e.g. the network input
    (computed from ``guide`` with INTER_AREA when not given). The input must be finite for
    ``bilinear`` and ``edge_aware``. ``near``: optional (h, w) bool; edge_aware then treats
    only the steps between source pixels of which one is True (bilinear elsewhere), a
    speed-up when only some regions matter.
    """
    if method not in UPSAMPLING_METHODS:
        raise ValueError(f"upsampling method must be one of {', '.join(UPSAMPLING_METHODS)}, "
                         f'got {method!r}')
    if method == 'edge_aware':
        return upsample_at_steps(depth, height, width, guide, source_guide, step,
                                 colour_margin, near)[0]
    depth = _checked(depth, height, width, guide, source_guide, near)
    if depth.shape == (height, width):
        return depth.copy()
    if method == 'nearest':
        return cv2.resize(depth, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)
    return _bilinear(depth, height, width)


def upsample_at_steps(depth: np.ndarray, height: int, width: int,
                      guide: np.ndarray | None = None, source_guide: np.ndarray | None = None,
                      step: float = DEFAULT_STEP, colour_margin: float = DEFAULT_COLOUR_MARGIN,
                      near: np.ndarray | None = None,
                      out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Edge-aware upsampling (upsample_depth's arguments) and the flat indices of the output
    pixels whose source pixels straddle a step, i.e. that were put on one of two surfaces.
    ``out``: optional float32 (height, width) scratch array that the result may be written
    to (saves an image-sized allocation)."""
    depth = _checked(depth, height, width, guide, source_guide, near)
    none = np.zeros(0, np.intp)
    if depth.shape == (height, width):
        return depth.copy(), none
    if min(depth.shape) < 2:
        return _bilinear(depth, height, width), none
    if _mostly_steps(depth, step):
        return cv2.resize(depth, (width, height), interpolation=cv2.INTER_NEAREST_EXACT), none
    if guide is not None and source_guide is None:
        source_guide = cv2.resize(guide, depth.shape[::-1], interpolation=cv2.INTER_AREA)
    cells = None
    if near is not None:
        cells = cv2.dilate(near.view(np.uint8), np.ones((2, 2), np.uint8))[1:, 1:] > 0
    out = cv2.resize(depth, (width, height), dst=_checked_out(out, height, width),
                     interpolation=cv2.INTER_LINEAR)
    return out, _snap_edge_pixels(out, depth, guide, source_guide, step, colour_margin, cells)


def _checked(depth, height, width, guide, source_guide, near) -> np.ndarray:
    """depth as float32, after checking the shapes of the arguments."""
    depth = np.asarray(depth, dtype=np.float32)
    if depth.ndim != 2:
        raise ValueError(f'depth must be h x w, got shape {depth.shape}')
    if guide is not None and guide.shape[:2] != (height, width):
        raise ValueError(f'guide is {guide.shape[1]}x{guide.shape[0]} but the output is '
                         f'{width}x{height}')
    for name, image in (('source_guide', source_guide), ('near', near)):
        if image is not None and image.shape[:2] != depth.shape:
            raise ValueError(f'{name} is {image.shape[1]}x{image.shape[0]} but the depth is '
                             f'{depth.shape[1]}x{depth.shape[0]}')
    return depth


def _checked_out(out: np.ndarray | None, height: int, width: int) -> np.ndarray | None:
    if out is not None and (out.shape != (height, width) or out.dtype != np.float32
                            or not out.flags.c_contiguous):
        raise ValueError(f'out must be a contiguous float32 {height} x {width} array, got '
                         f'{out.dtype} {out.shape}')
    return out


@dataclass(frozen=True, eq=False)
class _Axis:
    """Half-pixel-centre sampling of one axis, clamped at the borders: output index -> the
    first tap of its 2-tap cell (0 .. n_in - 2) and the second tap's weight; and per cell
    the contiguous output range it covers."""
    cell: np.ndarray      # (n_out,) intp
    weight: np.ndarray    # (n_out,) float32
    start: np.ndarray     # (n_in - 1,) first output index of each cell
    count: np.ndarray     # (n_in - 1,) output indices in each cell


@lru_cache(maxsize=32)
def _axis(size_out: int, size_in: int) -> _Axis:
    # float32 as torch computes it, so that 'bilinear' matches the reference closely
    scale = np.float32(size_in / size_out)
    source = (np.arange(size_out, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    source = np.clip(source, np.float32(0), np.float32(size_in - 1))
    cell = np.minimum(np.floor(source).astype(np.intp), size_in - 2)
    count = np.bincount(cell, minlength=size_in - 1)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    return _Axis(cell, source - cell.astype(np.float32), start, count)


def _bilinear(depth: np.ndarray, height: int, width: int) -> np.ndarray:
    """The reference's interpolation, separably (rows, then columns) in float32: within
    1e-6 of torch (cv2's INTER_LINEAR is about 1e-5 off)."""
    result = depth
    for axis, size in ((1, width), (0, height)):   # rows last: whole-row copies
        n_in = depth.shape[axis]
        if n_in == 1:
            result = np.repeat(result, size, axis=axis)
            continue
        cells = _axis(size, n_in)
        weight = cells.weight if axis == 1 else cells.weight[:, None]
        first = np.take(result, cells.cell, axis=axis)
        second = np.take(result, cells.cell + 1, axis=axis)
        second -= first
        second *= weight
        first += second
        result = first
    return np.ascontiguousarray(result, dtype=np.float32)


def _mostly_steps(depth: np.ndarray, step: float) -> bool:
    """More than MAX_STEPPED_SHARE of the gaps along every eighth row are steps (point 1 of
    the module doc; a sample is enough for a share and keeps the check cheap)."""
    if depth.shape[1] < 4:
        return False
    jump = np.abs(np.diff(depth[::8], axis=1))
    steps = jump[:, 1:-1] > np.minimum(jump[:, :-2], jump[:, 2:]) + np.float32(step)
    return float(steps.mean()) > MAX_STEPPED_SHARE


def _gap_is_step(at: np.ndarray, n_gaps: int, step: float, jump_of) -> np.ndarray:
    """Step test (module doc, point 1) of gaps ``at`` along one axis; ``jump_of(g)`` gives
    |D(g)|; neighbours beyond the ends are mirrored, a lone gap has none."""
    jump = jump_of(at)
    if n_gaps == 1:
        return jump > step
    before = jump_of(np.where(at > 0, at - 1, 1))
    after = jump_of(np.where(at < n_gaps - 1, at + 1, n_gaps - 2))
    return jump > np.minimum(before, after) + step


#: Cell rows per strip of the candidate search (its temporaries then stay in cache).
_STRIP_ROWS = 48
_SQUARE_2 = np.ones((2, 2), np.uint8)


def _spread_cells(depth: np.ndarray, step: float, cells: np.ndarray | None) -> np.ndarray:
    """Flat indices (in the (h - 1) x (w - 1) cell grid) of the cells whose 4 taps span
    more than ``step``, among ``cells`` when given; strip by strip."""
    found = []
    for top in range(0, depth.shape[0] - 1, _STRIP_ROWS):
        bottom = min(top + _STRIP_ROWS, depth.shape[0] - 1)
        taps = depth[top:bottom + 1]
        spread = cv2.dilate(taps, _SQUARE_2)                  # cell (i, j) at (i+1, j+1)
        cv2.subtract(spread, cv2.erode(taps, _SQUARE_2), dst=spread)
        candidates = spread[1:, 1:] > step
        if cells is not None:
            candidates &= cells[top:bottom]
        found.append(np.flatnonzero(candidates) + top * (depth.shape[1] - 1))
    return np.concatenate(found) if found else np.zeros(0, np.intp)


def stepped_cells(depth: np.ndarray, step: float,
                  cells: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the 2 x 2 cells (top-left tap) that a step gap crosses, among
    ``cells`` ((h - 1, w - 1) bool) when given."""
    h, w = depth.shape
    i, j = np.divmod(_spread_cells(depth, step, cells), w - 1)
    if len(i) == 0:
        return i, j

    def across_cols(row):
        return lambda g: np.abs(depth[row, g + 1] - depth[row, g])

    def across_rows(col):
        return lambda g: np.abs(depth[g + 1, col] - depth[g, col])

    stepped = (_gap_is_step(j, w - 1, step, across_cols(i))
               | _gap_is_step(j, w - 1, step, across_cols(i + 1))
               | _gap_is_step(i, h - 1, step, across_rows(j))
               | _gap_is_step(i, h - 1, step, across_rows(j + 1)))
    return i[stepped], j[stepped]


def _cell_pixels(i: np.ndarray, j: np.ndarray, rows: _Axis, cols: _Axis):
    """Output pixels of the cells (i, j), cell after cell: (pixels per cell, row, column)."""
    n_rows, n_cols = rows.count[i], cols.count[j]
    local_r = np.arange(int(n_rows.max()))[None, :, None]
    local_c = np.arange(int(n_cols.max()))[None, None, :]
    inside = (local_r < n_rows[:, None, None]) & (local_c < n_cols[:, None, None])
    r = np.broadcast_to(rows.start[i][:, None, None] + local_r, inside.shape)[inside]
    c = np.broadcast_to(cols.start[j][:, None, None] + local_c, inside.shape)[inside]
    return n_rows * n_cols, r, c


def _bilinear_coefficients(taps: np.ndarray) -> list[np.ndarray]:
    """[A, B, C, D] with A + B wy + C wx + D wy wx the bilinear blend of taps
    (t00, t01, t10, t11) stacked along the last axis."""
    t00, t01, t10, t11 = np.moveaxis(taps, -1, 0)
    return [t00, t10 - t00, t01 - t00, t00 - t01 - t10 + t11]


def _sorted_rows_of_4(values: np.ndarray) -> np.ndarray:
    """np.sort(values, axis=1) of an (n, 4) array by a sorting network (much faster for
    many short rows)."""
    a, b, c, d = values.T
    a, b = np.minimum(a, b), np.maximum(a, b)
    c, d = np.minimum(c, d), np.maximum(c, d)
    a, c = np.minimum(a, c), np.maximum(a, c)
    b, d = np.minimum(b, d), np.maximum(b, d)
    b, c = np.minimum(b, c), np.maximum(b, c)
    return np.stack([a, b, c, d], axis=1)


def _colour_axis(tap_colours: np.ndarray, near: np.ndarray, colour_margin: float):
    """Per cell: the unit vector from the near group's mean colour to the far group's, and
    the projection of their midpoint on it; zero where the two differ by < colour_margin.
    tap_colours (cells, 4, 3), near (cells, 4) of 0 / 1."""
    n_near = near.sum(1)[:, None]
    all_sum = tap_colours[:, 0] + tap_colours[:, 1] + tap_colours[:, 2] + tap_colours[:, 3]
    near_sum = np.einsum('nk,nkc->nc', near, tap_colours)
    near_colour = near_sum / n_near
    far_colour = (all_sum - near_sum) / (4 - n_near)
    axis = far_colour - near_colour
    length = np.sqrt(np.einsum('nc,nc->n', axis, axis))[:, None]
    axis *= np.where(length > colour_margin, 1 / np.maximum(length, 1e-6), 0.0)
    middle = np.einsum('nc,nc->n', axis, near_colour + far_colour)[:, None] * 0.5
    return np.concatenate([axis, middle], axis=1).astype(np.float32)


def _snap_edge_pixels(out: np.ndarray, depth: np.ndarray, guide: np.ndarray | None,
                      source_guide: np.ndarray | None, step: float, colour_margin: float,
                      cells: np.ndarray | None) -> np.ndarray:
    """Points 2-4 of the module doc, on the output pixels of the stepped cells only (in
    place); returns their flat indices."""
    h, w = depth.shape
    height, width = out.shape
    i, j = stepped_cells(depth, step, cells)
    if len(i) == 0:
        return np.zeros(0, np.intp)
    taps = np.stack([depth[i, j], depth[i, j + 1], depth[i + 1, j], depth[i + 1, j + 1]],
                    axis=1)                                          # (cells, 4)
    ordered = _sorted_rows_of_4(taps)
    largest = np.argmax(np.diff(ordered, axis=1), axis=1)[:, None]
    split = 0.5 * (np.take_along_axis(ordered, largest, 1)
                   + np.take_along_axis(ordered, largest + 1, 1))
    near = (taps <= split).astype(np.float32)
    # per cell, one row: bilinear coefficients of (near weight, near weighted sum, weighted
    # sum), then the colour axis; repeated for the cell's pixels (they come cell by cell)
    table = _bilinear_coefficients(np.stack([near, near * taps, taps], axis=1))
    if guide is not None:
        tap_colours = np.stack([source_guide[i, j], source_guide[i, j + 1],
                                source_guide[i + 1, j], source_guide[i + 1, j + 1]],
                               axis=1).astype(np.float32)            # (cells, 4, 3)
        table.append(_colour_axis(tap_colours, near, colour_margin))
    sizes, r, c = _cell_pixels(i, j, _axis(height, h), _axis(width, w))
    # one row per feature (contiguous per pixel): columns k, 3 + k, 6 + k, 9 + k are the
    # coefficients of quantity k, columns 12.. the colour axis
    per_pixel = np.repeat(np.ascontiguousarray(np.concatenate(table, axis=1).T), sizes, axis=1)
    # group blends: weights kept off 0 and 1 so that every tap of a group counts a little
    wy = np.clip(_axis(height, h).weight[r], 0.01, 0.99)
    wx = np.clip(_axis(width, w).weight[c], 0.01, 0.99)
    wyx = wy * wx

    def blend(k: int) -> np.ndarray:
        value = per_pixel[k] + wy * per_pixel[3 + k]
        value += wx * per_pixel[6 + k]
        value += wyx * per_pixel[9 + k]
        return value

    near_weight, near_sum = blend(0), blend(1)
    near_value = near_sum / near_weight
    far_value = (blend(2) - near_sum) / (1 - near_weight)
    take_near = near_weight >= 0.5
    flat = r * width + c
    if guide is not None:
        pixels = guide.reshape(-1)
        along = -per_pixel[15]
        for channel in range(3):
            along += pixels[3 * flat + channel] * per_pixel[12 + channel]
        decisive = np.abs(along) > 0.5 * colour_margin
        take_near = np.where(decisive, along < 0, take_near)
    out.reshape(-1)[flat] = np.where(take_near, near_value, far_value)
    return flat
