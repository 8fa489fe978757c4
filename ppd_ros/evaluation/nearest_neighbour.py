"""Exact nearest-neighbour distances between 3-D point sets, in numpy (no KD-tree).

Search on a uniform voxel grid: a query whose nearest candidate in its 3x3x3 block of cells
is at most one cell size away has found its true nearest neighbour (any point within one
cell size lies in that block). A query whose nearest candidate is farther, at u, is solved
by one more search on a grid of cell size >= u (queries with no candidate at all take u from
a subsample of the points). Grid distances come from float64 coordinate differences (exact);
queries with too many grid candidates (far from every point) go to a BLAS brute force on
centred float64 coordinates, accurate to ~1e-7 m for scene-sized clouds.
"""
from __future__ import annotations

import numpy as np

#: Query-point pairs evaluated at once (bounds the temporary memory to ~100 MB).
_PAIRS_PER_CHUNK = 2_000_000
#: Below this many query x point pairs, brute force is cheaper than building a grid.
_BRUTE_FORCE_PAIRS = 4_000_000
#: A grid candidate costs about this many brute-force (BLAS) pairs; queries with more than
#: len(points) / _GRID_PAIR_COST candidates are solved by brute force instead.
_GRID_PAIR_COST = 25
#: Cells per axis are capped at 2**20 so that linearised cell keys fit in int64.
_MAX_CELLS_PER_AXIS = 2 ** 20
#: (dx, dy, -1) offsets of the 3x3 columns of neighbour cells; cells (dx, dy, -1..1) have
#: consecutive keys, so each column is one contiguous range of the sorted points.
_COLUMN_OFFSETS = np.stack(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1], indexing='ij'),
                           axis=-1).reshape(9, 3)


def _as_points(array, name: str) -> np.ndarray:
    points = np.asarray(array, dtype=np.float64).reshape(-1, 3)
    if not np.all(np.isfinite(points)):
        raise ValueError(f'{name} contains non-finite coordinates')
    return points


def _brute_force(queries: np.ndarray, points: np.ndarray) -> np.ndarray:
    """All pairs through BLAS: |q - p|^2 = |q|^2 + |p|^2 - 2 q.p on centred float64."""
    centre = points.mean(axis=0)
    points = points - centre
    queries = queries - centre
    minus_two_points_t = -2.0 * points.T
    point_norms = np.einsum('ij,ij->i', points, points)
    out = np.empty(len(queries))
    rows = max(1, _PAIRS_PER_CHUNK // len(points))
    for start in range(0, len(queries), rows):
        block = queries[start:start + rows]
        dist2 = block @ minus_two_points_t
        dist2 += point_norms
        out[start:start + rows] = dist2.min(axis=1) + np.einsum('ij,ij->i', block, block)
    return np.sqrt(np.maximum(out, 0.0))


def _initial_cell_size(queries: np.ndarray, points: np.ndarray) -> float:
    """1.5 x the median nearest distance of a few evenly spread queries (speed only)."""
    sample = queries[np.linspace(0, len(queries) - 1, min(len(queries), 128)).astype(int)]
    return 1.5 * float(np.median(_brute_force(sample, points)))


def _grid_search(queries: np.ndarray, points: np.ndarray, cell: float):
    """Distance to the nearest point in the 27 cells around each query (inf if none).

    Exact wherever the result is <= cell."""
    origin = np.minimum(queries.min(axis=0), points.min(axis=0)) - cell
    point_cells = np.floor((points - origin) / cell).astype(np.int64)
    query_cells = np.floor((queries - origin) / cell).astype(np.int64)
    dims = np.maximum(point_cells.max(axis=0), query_cells.max(axis=0)) + 2

    def key(cells):
        return (cells[..., 0] * dims[1] + cells[..., 1]) * dims[2] + cells[..., 2]

    point_keys = key(point_cells)
    order = np.argsort(point_keys, kind='stable')
    sorted_keys = point_keys[order]
    sorted_coords = [np.ascontiguousarray(points[order, axis]) for axis in range(3)]

    best = np.full(len(queries), np.inf)
    column_keys = key(query_cells[:, None, :] + _COLUMN_OFFSETS[None, :, :])   # (M, 9)
    starts = np.searchsorted(sorted_keys, column_keys, side='left')
    counts = np.searchsorted(sorted_keys, column_keys + 2, side='right') - starts
    per_query = counts.sum(axis=1)
    crowded = per_query * _GRID_PAIR_COST > len(points)
    if np.any(crowded):
        best[crowded] = _brute_force(queries[crowded], points) ** 2
        per_query[crowded] = 0
        counts[crowded] = 0
    if per_query.sum() == 0:
        return np.sqrt(best)
    # Chunk the queries so that each chunk expands to about _PAIRS_PER_CHUNK pairs.
    cumulative = np.cumsum(per_query)
    cuts = np.searchsorted(cumulative, np.arange(1, cumulative[-1] // _PAIRS_PER_CHUNK + 1)
                           * _PAIRS_PER_CHUNK, side='left')
    edges = np.unique(np.concatenate([[0], cuts, [len(queries)]]))
    for lo, hi in zip(edges[:-1], edges[1:]):
        seg_counts = counts[lo:hi].ravel()
        total = int(seg_counts.sum())
        if total == 0:
            continue
        seg_first = np.cumsum(seg_counts) - seg_counts
        candidate = np.arange(total) - np.repeat(seg_first - starts[lo:hi].ravel(), seg_counts)
        query_total = per_query[lo:hi]
        dist2 = np.zeros(total)
        for axis in range(3):
            diff = sorted_coords[axis][candidate]
            diff -= np.repeat(queries[lo:hi, axis], query_total)
            diff *= diff
            dist2 += diff
        has = query_total > 0
        first = (np.cumsum(query_total) - query_total)[has]
        best[lo:hi][has] = np.minimum.reduceat(dist2, first)
    return np.sqrt(best)


def nearest_neighbour_distances(queries, points) -> np.ndarray:
    """Euclidean distance from each query point to its nearest point in `points`.

    queries: (M, 3), points: (N, 3), finite. Returns (M,) float64. Exact; ~50k x 50k
    surface-like clouds take a few hundred milliseconds on one core.
    """
    queries = _as_points(queries, 'queries')
    points = _as_points(points, 'points')
    if len(points) == 0:
        raise ValueError('points is empty')
    if len(queries) == 0:
        return np.empty(0)
    if len(queries) * len(points) <= _BRUTE_FORCE_PAIRS:
        return _brute_force(queries, points)

    extent = float(np.ptp(np.concatenate([queries, points]), axis=0).max())
    cell = max(_initial_cell_size(queries, points), extent / (_MAX_CELLS_PER_AXIS - 4),
               np.finfo(float).tiny)
    distances = _grid_search(queries, points, cell)
    upper = distances.copy()
    unsolved = upper > cell
    # A query whose nearest candidate is farther, at u, is solved exactly by one search on a
    # grid of cell size >= u. Queries with no candidate get u from a subsample of points.
    no_candidate = np.flatnonzero(np.isinf(upper))
    if len(no_candidate):
        sample = points[np.linspace(0, len(points) - 1,
                                    min(len(points), max(64, _PAIRS_PER_CHUNK
                                                         // len(no_candidate)))).astype(int)]
        upper[no_candidate] = _brute_force(queries[no_candidate], sample)
    level = np.ceil(2.0 * np.log2(np.maximum(upper[unsolved], cell) / cell))
    unsolved = np.flatnonzero(unsolved)
    for step in np.unique(level):
        group = unsolved[level == step]
        distances[group] = _grid_search(queries[group], points,
                                        cell * 2.0 ** (step / 2.0))
    return distances
