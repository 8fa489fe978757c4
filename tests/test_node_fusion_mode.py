"""depth_node in depth.mode 'fusion', in this process, on the synthetic RGB-D stream of
test_node_reference_mode (same scene, reference corruption and predictor double: THE MODEL
IS A TEST DOUBLE there, see that module).

The reference here has flying pixels along the box's silhouette, as real sensors do, and
0.5 % depth noise instead of 1 %: fusion keeps the sensor's depth, noise included, so the 2 %
accuracy criterion would otherwise measure the sensor rather than the node.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from in_process_harness import Harness
from test_node_reference_mode import (H, HOLD, PERIOD_NS, REF_H, REF_W, T0, W, TrueSceneDepth,
                                      _unavailable, corrupted_reference, node_factory,
                                      send_frame, true_points, views)  # noqa: F401 (fixture)

N_FRAMES = 8
NAMESPACE = '/reftest'


def sensor_depth(exact: np.ndarray, rng) -> np.ndarray:
    """The reference corruption of test_node_reference_mode with 0.5 % noise, and a mixed
    foreground / background depth on the background side of every depth step."""
    holes = np.isnan(corrupted_reference(exact, rng))
    reference = exact * (1.0 + 0.005 * rng.normal(size=exact.shape))
    reference[holes] = np.nan
    padded = np.pad(exact, 1, mode='edge')
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3))
    near = windows.min(axis=(2, 3))
    flying = (exact > 1.1 * near) & ~holes
    reference[flying] = 0.5 * (near + exact)[flying]
    return reference.astype(np.float32)


@pytest.fixture(scope='module')
def fusion_run(views):
    colour, reference = views
    rng = np.random.default_rng(3)
    harness = Harness(node_factory(TrueSceneDepth([colour]), **{
        'depth.mode': 'fusion', 'fusion.publish_source': True}), NAMESPACE)
    sent = []
    try:
        harness.wait_connected()
        for k in range(N_FRAMES):
            stamp = T0 + k * PERIOD_NS
            ref = sensor_depth(reference.depth, rng)
            sent.append(ref)
            send_frame(harness, colour, stamp, ref)
        harness.wait_until(lambda: len(harness.messages('/diagnostics')) > 0, 5.0,
                           'diagnostics')
        time.sleep(0.3)
    finally:
        harness.close()
    return harness, sent


def test_fusion_outputs_share_their_stamps_and_lie_on_the_true_surfaces(fusion_run, views):
    harness, sent = fusion_run
    colour, _ = views
    stamps = [T0 + k * PERIOD_NS for k in range(N_FRAMES)]
    for topic in ('depth/image', 'depth/camera_info', 'points', 'depth/source'):
        assert harness.stamps(topic) == set(stamps), topic
    truth = true_points(colour)
    depths = {m.stamp: m.data for m in harness.messages('depth/image')}
    sources = {m.stamp: m.data for m in harness.messages('depth/source')}
    for cloud in harness.messages('points'):
        xyz = cloud.data
        assert xyz.shape == (H, W, 3) and np.isfinite(xyz[..., 2]).all()
        error = np.linalg.norm(xyz - truth, axis=-1) / np.linalg.norm(truth, axis=-1)
        assert (error <= 0.02).mean() >= 0.95
        np.testing.assert_allclose(depths[cloud.stamp], xyz[..., 2], rtol=1e-6)
        source = sources[cloud.stamp]
        assert source.shape == (H, W) and set(np.unique(source)) <= {1, 2, 3}
        # the half-resolution reference is kept where it was sent (reference pixel (r, c)
        # at image pixel (2r + 1, 2c + 1), under its centre), in millimetres as published;
        # PPD corrected to it fills everything else
        reference = sent[stamps.index(cloud.stamp)]
        kept = source == 1
        assert not kept[0::2].any() and not kept[:, 0::2].any()
        np.testing.assert_allclose(depths[cloud.stamp][1::2, 1::2][kept[1::2, 1::2]],
                                   reference[kept[1::2, 1::2]], atol=1e-3)
        assert kept.mean() > 0.12 and (source == 2).mean() > 0.7


def test_fusion_mode_reports_the_reference_fit(fusion_run):
    harness, _ = fusion_run
    status = harness.messages('/diagnostics')[-1].data
    values = status['values']
    assert status['level'] == 0, status
    assert values['depth mode'] == 'fusion' and values['metric scale'] == 'tracking'
    assert int(values['references received']) >= N_FRAMES


def test_silent_reference_in_fusion_mode_holds_then_stops_and_says_why(views):
    colour, reference = views
    rng = np.random.default_rng(4)
    harness = Harness(node_factory(TrueSceneDepth([colour]), **{
        'depth.mode': 'fusion', 'scale.hold_frames': HOLD, 'reference.max_wait_s': 0.05}),
        NAMESPACE)
    streaming, silent = [], []
    try:
        harness.wait_connected()
        for k in range(3 + HOLD + 2):
            stamp = T0 + k * PERIOD_NS
            ref = corrupted_reference(reference.depth, rng) if k < 3 else None
            send_frame(harness, colour, stamp, ref)
            (streaming if k < 3 else silent).append(stamp)
        harness.wait_until(lambda: _unavailable(harness), 5.0, 'an ERROR diagnostic')
        unavailable = _unavailable(harness)
    finally:
        harness.close()
    metric = harness.stamps('depth/image') & harness.stamps('points')
    assert set(streaming) <= metric
    assert set(silent[:HOLD]) <= metric                 # the last scale is held, PPD alone
    assert not (set(silent[HOLD:]) & (harness.stamps('depth/image') | harness.stamps('points')))
    assert set(silent) <= harness.stamps('depth/colored')
    assert unavailable['level'] == 2 and unavailable['values']['metric scale'] == 'unavailable'
    assert 'no /reftest/depth_reference within 0.02 s' in unavailable['message']
