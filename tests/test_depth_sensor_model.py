"""DepthSensorModel: holes, noise and flying pixels as an RGB-D camera's depth has them."""
from __future__ import annotations

import numpy as np
import pytest

from ppd_ros.synthetic import DepthSensorModel

H, W = 120, 160
STEP_COLUMN = 80


def step_scene() -> np.ndarray:
    """A wall at 1 m (left half) in front of one at 3 m (right half)."""
    depth = np.full((H, W), 3.0, dtype=np.float32)
    depth[:, :STEP_COLUMN] = 1.0
    return depth


def test_holes_cover_the_asked_share_in_blobs():
    sensed = DepthSensorModel(hole_fraction=0.3, noise_rel=0.0, flying_fraction=0.0).corrupt(
        np.full((H, W), 2.0, np.float32))
    holes = np.isnan(sensed)
    assert holes.mean() == pytest.approx(0.3, abs=0.01)
    right_neighbour_also_hole = (holes[:, :-1] & holes[:, 1:]).sum() / holes[:, :-1].sum()
    assert right_neighbour_also_hole > 0.8          # blobs, not salt and pepper
    assert np.all(sensed[~holes] == 2.0)


def test_noise_is_relative_to_depth():
    exact = np.linspace(0.5, 8.0, H * W, dtype=np.float32).reshape(H, W)
    sensed = DepthSensorModel(hole_fraction=0.0, noise_rel=0.02, flying_fraction=0.0).corrupt(
        exact)
    relative_error = sensed / exact - 1.0
    assert relative_error.std() == pytest.approx(0.02, rel=0.1)
    assert abs(relative_error.mean()) < 0.002


def test_flying_pixels_lie_between_the_surfaces_at_depth_edges_only():
    model = DepthSensorModel(hole_fraction=0.0, noise_rel=0.0, flying_fraction=0.5)
    sensed = model.corrupt(step_scene())
    flying = (sensed > 1.0) & (sensed < 3.0)
    rows, cols = np.nonzero(flying)
    assert set(cols) <= {STEP_COLUMN - 1, STEP_COLUMN}   # the two columns at the step
    assert flying.sum() == pytest.approx(0.5 * 2 * H, rel=0.2)
    assert np.all((sensed[flying] >= 1.0 + 0.2 * 2.0 - 1e-5)
                  & (sensed[flying] <= 1.0 + 0.8 * 2.0 + 1e-5))


def test_invalid_stays_invalid_and_draws_are_reproducible_per_frame():
    exact = step_scene()
    exact[:10] = np.nan
    model = DepthSensorModel(seed=4)
    first = model.corrupt(exact, index=2)
    assert np.isnan(first[:10]).all()
    np.testing.assert_array_equal(first, model.corrupt(exact, index=2))
    assert not np.array_equal(np.isnan(first), np.isnan(model.corrupt(exact, index=3)))


def test_settings_are_checked():
    with pytest.raises(ValueError):
        DepthSensorModel(hole_fraction=1.0)
    with pytest.raises(ValueError):
        DepthSensorModel(noise_rel=-0.1)
