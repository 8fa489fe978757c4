"""depth_node in depth.mode 'reference', in this process, on a synthetic RGB-D stream.

Scene (ppd_ros.synthetic, exact analytic depth): a floor, a back wall 4.5 m ahead and a box,
seen by a 160 x 120 camera 1.2 m up, tilted down; the depth reference is rendered at
80 x 60 (registered, same field of view), with blob holes over 30 % of it, 1 % depth noise
and millimetre quantisation, sent as 16UC1.

THE MODEL IS A TEST DOUBLE. The real PPD weights come from a model hub that cannot be
reached here, and a random tiny model predicts noise. TrueSceneDepth stands in for the
model at the predictor boundary: it returns what a good PPD predicts, the training
normalisation of log(1 + d_true) (spec sec. 6.3: (log(1 + d) - q2) / (q98 - q2), clipped to
[-0.5, 1]) under an affine the node does not know, plus noise. Everything after it is real:
subscriptions, stamp pairing, alignment, filtering, clipping, cloud building and publishing.

Accuracy criterion: a cloud point p at pixel (u, v) is within 2 % when
|p - p_true| <= 0.02 |p_true|, p_true being the true surface point seen by that pixel. Its
distance to the true surface (the floor, wall or box plane there) is at most |p - p_true|,
so such points lie on the known planes within 2 % of their range.
"""
from __future__ import annotations

import hashlib
import time
from types import SimpleNamespace

import numpy as np
import pytest
from rclpy.parameter import Parameter

from in_process_harness import NS, Harness
from ppd_ros.synthetic import Box, CameraIntrinsics, CameraPose, Material, Plane, Scene, render

W, H = 160, 120
REF_W, REF_H = 80, 60
HFOV_DEG = 70.0
T0 = 1_700_000_000 * NS
PERIOD_NS = NS // 10            # 10 Hz camera
HOLD = 3                        # scale.hold_frames in the silent-reference test


def room_scene() -> Scene:
    floor = Plane((0, 0, 0), (1, 0, 0), (0, 1, 0), Material((0.6, 0.5, 0.4), 'checker',
                                                            (0.3, 0.25, 0.2), 0.5))
    wall = Plane((4.5, 0, 0), (0, 1, 0), (0, 0, 1), Material((0.7, 0.7, 0.75), 'noise',
                                                             (0.4, 0.4, 0.5), 0.3))
    box = Box((2.6, 0.5, 0.35), (0.35, 0.35, 0.35), Material((0.8, 0.2, 0.1), 'stripes',
                                                             (0.5, 0.1, 0.05), 0.1))
    return Scene(planes=[floor, wall], boxes=[box])


@pytest.fixture(scope='module')
def views():
    """(colour frame, reference-resolution frame) of the same pose."""
    scene = room_scene()
    pose = CameraPose.from_yaw_pitch_roll((0.0, 0.0, 1.2), pitch=0.3)
    colour = render(scene, CameraIntrinsics.from_hfov(W, H, HFOV_DEG), pose)
    reference = render(scene, CameraIntrinsics.from_hfov(REF_W, REF_H, HFOV_DEG), pose)
    assert colour.valid.all() and reference.valid.all()  # closed scene: every pixel has depth
    return colour, reference


class TrueSceneDepth:
    """Predictor double: PPD-like relative depth of the true scene (module doc)."""

    config = SimpleNamespace(name='true-scene predictor double')
    device = 'cpu'

    def __init__(self, frames, scale=0.8, shift=0.1, noise=0.003, seed=0):
        self._depth = {hashlib.sha1(f.rgb.tobytes()).digest(): f.depth for f in frames}
        self.scale, self.shift, self.noise = scale, shift, noise
        self._rng = np.random.default_rng(seed)
        self.calls = 0

    def predict(self, rgb, steps=4, seed=None):
        self.calls += 1
        depth = self._depth[hashlib.sha1(np.ascontiguousarray(rgb).tobytes()).digest()]
        log_depth = np.log1p(depth)
        q2, q98 = np.quantile(log_depth, [0.02, 0.98])
        normalised = np.clip((log_depth - q2) / (q98 - q2), -0.5, 1.0)
        noisy = normalised + self._rng.normal(0.0, self.noise, depth.shape)
        return SimpleNamespace(depth=(self.scale * noisy + self.shift).astype(np.float32),
                               timings={'model double': 0.0})


def corrupted_reference(depth: np.ndarray, rng) -> np.ndarray:
    """30 % of the reference in 10 x 10 px blob holes (NaN), 1 % multiplicative noise."""
    cells = (REF_H // 10) * (REF_W // 10)
    holes = np.zeros(cells, bool)
    holes[rng.permutation(cells)[:round(0.3 * cells)]] = True
    holes = np.kron(holes.reshape(REF_H // 10, REF_W // 10), np.ones((10, 10), bool))
    noisy = depth * (1.0 + 0.01 * rng.normal(size=depth.shape))
    return np.where(holes, np.nan, noisy).astype(np.float32)


def node_factory(predictor, **params):
    def make(context):
        from ppd_ros.node.depth_node import DepthNode
        base = {'depth.mode': 'reference', 'lazy': False, 'colorize': True,
                'diagnostics_period': 0.1, 'reference.max_wait_s': 0.5}
        overrides = [Parameter(k, value=v) for k, v in {**base, **params}.items()]
        return DepthNode(predictor=predictor, context=context, namespace=NAMESPACE,
                         parameter_overrides=overrides)
    return make


NAMESPACE = '/reftest'


def send_frame(harness, colour, stamp, reference=None, reference_stamp=None):
    """Publish one frame (reference first, if any) and wait until the node has handled it
    (depth/colored is published for every processed frame)."""
    if reference is not None:
        harness.publish_reference_mm(reference_stamp if reference_stamp else stamp, reference)
    harness.publish_frame(stamp, colour.rgb, colour.K)
    harness.wait_until(lambda: stamp in harness.stamps('depth/colored'), 10.0,
                       f'the frame stamped {stamp}')


def true_points(frame) -> np.ndarray:
    intr = frame.intrinsics
    v, u = np.mgrid[0:intr.height, 0:intr.width].astype(np.float64)
    z = frame.depth.astype(np.float64)
    return np.stack([(u - intr.cx) / intr.fx * z, (v - intr.cy) / intr.fy * z, z], axis=-1)


N_FRAMES = 15


@pytest.fixture(scope='module')
def reference_run(views):
    colour, reference = views
    rng = np.random.default_rng(1)
    harness = Harness(node_factory(TrueSceneDepth([colour]), **{
        'reference.publish_inliers': True}), NAMESPACE)
    holes = []
    try:
        harness.wait_connected()
        for k in range(N_FRAMES):
            stamp = T0 + k * PERIOD_NS
            ref = corrupted_reference(reference.depth, rng)
            holes.append(np.isnan(ref))
            jitter = int(rng.integers(-8, 9)) * 1_000_000  # |dt| <= 8 ms < reference.max_dt
            send_frame(harness, colour, stamp, ref, stamp + jitter)
            # a decoy half-way to the next frame, 50 ms off (beyond reference.max_dt) and
            # 30 % too far: pairing it instead of the nearest reference would show in metres
            harness.publish_reference_mm(stamp + PERIOD_NS // 2, 1.3 * reference.depth)
        harness.wait_until(lambda: len(harness.messages('/diagnostics')) > 0, 5.0,
                           'diagnostics')
        time.sleep(0.3)  # a diagnostics message after the last frame
    finally:
        harness.close()
    return harness, holes


def test_reference_mode_clouds_lie_on_the_true_surfaces_within_2_percent(reference_run, views):
    harness, holes = reference_run
    colour, _ = views
    clouds = harness.messages('points')
    depths = {m.stamp: m.data for m in harness.messages('depth/image')}
    assert len(clouds) == N_FRAMES and len(depths) == N_FRAMES
    truth = true_points(colour)
    # the reference's holes at colour resolution (reference pixel r covers rows 2r, 2r + 1)
    fractions, worst = [], 0.0
    for index, cloud in enumerate(sorted(clouds, key=lambda m: m.stamp)):
        xyz = cloud.data
        assert xyz.shape == (H, W, 3)
        valid = np.isfinite(xyz[..., 2])
        assert valid.mean() > 0.99  # depth.min_m .. max_m keeps the whole 1.2 .. 4.7 m scene
        error = np.linalg.norm(xyz - truth, axis=-1) / np.linalg.norm(truth, axis=-1)
        within = error[valid] <= 0.02
        fractions.append(within.mean())
        worst = max(worst, float(error[valid].max()))
        in_holes = np.kron(holes[index], np.ones((2, 2), bool)) & valid
        assert (error[in_holes] <= 0.02).mean() >= 0.95  # PPD fills the reference's holes
        # the depth image carries the same metres as the cloud's z
        np.testing.assert_allclose(depths[cloud.stamp], xyz[..., 2], rtol=1e-6)
    print(f'\nreference mode: fraction of cloud points within 2 %: min {min(fractions):.4f}, '
          f'mean {np.mean(fractions):.4f}; max relative error {worst:.4f}')
    assert min(fractions) >= 0.95


def test_reference_mode_publishes_inliers_and_fit_diagnostics(reference_run, views):
    harness, holes = reference_run
    masks = sorted(harness.messages('depth/inliers'), key=lambda m: m.stamp)
    assert len(masks) == N_FRAMES
    for mask, hole in zip(masks, holes):
        assert mask.data.shape == (H, W) and set(np.unique(mask.data)) <= {0, 255}
        hole_px = np.kron(hole, np.ones((2, 2), bool))
        assert np.all(mask.data[hole_px] == 0)          # no reference: not an inlier
        assert (mask.data[~hole_px] == 255).mean() > 0.9  # 1 % noise sits well inside 5 %
    status = harness.messages('/diagnostics')[-1].data
    values = status['values']
    assert status['level'] == 0, status
    assert values['depth mode'] == 'reference' and values['metric scale'] == 'tracking'
    assert float(values['fit inlier ratio']) > 0.9 and int(values['fit points']) > 1000
    assert float(values['fit residual (log)']) < 0.02
    assert values['scale held for (frames)'] == '0'
    assert int(values['references received']) >= 2 * N_FRAMES - 1
    assert abs(float(values['reference stamp offset (s)'])) <= 0.008
    # log(1 + d) = a * pred + b undoes the normalisation and the double's affine
    q2, q98 = np.quantile(np.log1p(views[0].depth), [0.02, 0.98])
    a = (q98 - q2) / 0.8
    assert float(values['scale a']) == pytest.approx(a, rel=0.01)
    assert float(values['scale b']) == pytest.approx(q2 - 0.1 * a, abs=0.01)


def test_silent_reference_holds_then_stops_metric_output_and_recovers(views, capfd):
    colour, reference = views
    rng = np.random.default_rng(2)
    harness = Harness(node_factory(TrueSceneDepth([colour]), **{
        'scale.hold_frames': HOLD, 'reference.max_wait_s': 0.05}), NAMESPACE)
    phases = {'streaming': 6, 'silent': 8, 'recovered': 4}
    stamps, sent_at = {}, {}
    try:
        harness.wait_connected()
        k = 0
        for phase, count in phases.items():
            stamps[phase] = []
            for _ in range(count):
                stamp = T0 + k * PERIOD_NS
                ref = None if phase == 'silent' else corrupted_reference(reference.depth, rng)
                sent_at[stamp] = time.monotonic()
                send_frame(harness, colour, stamp, ref)
                stamps[phase].append(stamp)
                k += 1
                time.sleep(0.05)
            if phase == 'silent':
                harness.wait_until(lambda: _unavailable(harness), 5.0, 'an ERROR diagnostic')
                unavailable_diag = _unavailable(harness)
        harness.wait_until(lambda: _latest_scale_state(harness) == 'tracking', 5.0,
                           'diagnostics after the recovery')
        alive = harness.node._worker.is_alive()
    finally:
        harness.close()
    log = capfd.readouterr().err

    metric = harness.stamps('depth/image') & harness.stamps('points')
    silent = stamps['silent']
    assert set(stamps['streaming']) <= metric
    assert set(silent[:HOLD]) <= metric  # the last good scale is held ...
    assert not (set(silent[HOLD:]) & (harness.stamps('depth/image') | harness.stamps('points')))
    assert set(silent) <= harness.stamps('depth/colored')  # ... the node kept processing
    assert set(stamps['recovered']) <= metric and alive

    assert unavailable_diag['level'] == 2  # ERROR
    values = unavailable_diag['values']
    assert values['metric scale'] == 'unavailable'
    assert int(values['scale held for (frames)']) > HOLD
    assert 'no /reftest/depth_reference within 0.02 s' in unavailable_diag['message']
    assert 'no /reftest/depth_reference within 0.02 s' in values['scale reason']
    holding = [m.data for m in harness.messages('/diagnostics')
               if m.data['values'].get('metric scale') == 'holding']
    assert holding and all(d['level'] == 1 for d in holding)  # WARN while holding

    stopped = [line for line in log.splitlines() if 'publishing no metric depth' in line]
    assert len(stopped) == 1, log  # throttled: one warning for the whole silent phase
    assert 'no /reftest/depth_reference within 0.02 s' in stopped[0]

    first_stop = silent[HOLD]
    first_error = next(m for m in harness.messages('/diagnostics')
                       if m.data['values'].get('metric scale') == 'unavailable')
    print(f'\nsilent reference: metric output held for {HOLD} frames '
          f'({(first_stop - silent[0]) / NS:.2f} s of stamps); the frame sent '
          f'{sent_at[first_stop] - sent_at[silent[0]]:.2f} s after the reference stopped was '
          f'the first without metres; ERROR diagnostic '
          f'{first_error.time - sent_at[first_stop]:.2f} s after that frame was sent')


def _unavailable(harness):
    for m in reversed(harness.messages('/diagnostics')):
        if m.data['values'].get('metric scale') == 'unavailable':
            return m.data
    return None


def _latest_scale_state(harness):
    messages = harness.messages('/diagnostics')
    return messages[-1].data['values'].get('metric scale') if messages else None
