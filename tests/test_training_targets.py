"""Training targets: spec 6.3 depth normalisation and logit-normal timesteps."""
import numpy as np
import pytest
import torch

from ppd_ros.training.depth_normalisation import INVALID_FILL, log_depth_quantiles, normalise_depth
from ppd_ros.training.timestep_sampling import (sample_logit_normal_timesteps,
                                                sample_mixed_timesteps,
                                                sample_schedule_timesteps)


def _spec_x0(depth, valid):
    """Direct numpy transcription of get_gt for one map (numpy 'linear' quantiles = torch's)."""
    use = valid & (depth < 80)
    log_depth = np.log(depth + 1)
    q2, q98 = np.quantile(log_depth[use], [0.02, 0.98])
    if q98 - q2 < 1e-6:
        q98 = q2 + 1e-6
    return np.clip((log_depth - q2) / (q98 - q2), -0.5, 1.0) - 0.5


def test_normalisation_matches_spec_formula_on_hand_built_map():
    depth = np.array([[0.5, 1.0, 2.0, 3.0],
                      [4.0, 5.0, 6.0, 7.0],
                      [90.0, 8.0, 100.0, 0.2]], dtype=np.float32)
    valid = np.ones_like(depth, dtype=bool)
    valid[2, 3] = False                       # masked: excluded from quantiles and set to the fill
    depth_t, valid_t = torch.from_numpy(depth)[None, None], torch.from_numpy(valid)[None, None]
    x0 = normalise_depth(depth_t, valid_t)[0, 0].numpy()
    expected = _spec_x0(depth, valid)
    np.testing.assert_allclose(x0[valid], expected[valid], atol=1e-6)
    assert x0[2, 3] == INVALID_FILL
    # quantiles ignore d >= 80 (they are computed over 9 pixels 0.5 .. 8), yet those pixels stay
    # in the map and clamp to the top of the range
    q2, q98 = log_depth_quantiles(torch.from_numpy(depth), torch.from_numpy(valid))
    inside = np.log(np.array([0.5, 1, 2, 3, 4, 5, 6, 7, 8]) + 1)
    assert q2 == pytest.approx(np.quantile(inside, 0.02), abs=1e-6)
    assert q98 == pytest.approx(np.quantile(inside, 0.98), abs=1e-6)
    assert x0[2, 0] == pytest.approx(0.5) and x0[2, 2] == pytest.approx(0.5)
    assert x0.min() >= -1.0 and x0.max() <= 0.5
    # below q2 by more than half the range -> clamped at -0.5 - 0.5 = -1
    assert x0[0, 0] > -1.0  # 0.5 m is inside the range here


def test_normalisation_clamps_low_values_to_minus_one():
    # one near pixel among 99 far ones: it sits far below q2 and clamps
    depth = torch.cat([torch.tensor([0.0001]), torch.linspace(10, 14, 99)]).reshape(1, 1, 10, 10)
    x0 = normalise_depth(depth, torch.ones_like(depth, dtype=torch.bool))
    expected = _spec_x0(depth[0, 0].numpy(), np.ones(depth.shape[-2:], bool))
    np.testing.assert_allclose(x0[0, 0].numpy(), expected, atol=1e-5)  # float32
    assert x0[0, 0, 0, 0] == pytest.approx(-1.0)


def test_constant_depth_uses_spread_guard():
    depth = torch.full((1, 1, 4, 4), 3.0)
    x0 = normalise_depth(depth, torch.ones_like(depth, dtype=torch.bool))
    q2, q98 = log_depth_quantiles(depth[0], torch.ones_like(depth[0], dtype=torch.bool))
    assert q98 - q2 == pytest.approx(1e-6)
    # (l - q2) / 1e-6 = 0 exactly -> x0 = -0.5 everywhere, finite
    assert torch.isfinite(x0).all()
    torch.testing.assert_close(x0, torch.full_like(x0, -0.5))


def test_normalisation_is_per_sample():
    a = torch.linspace(1, 5, 48).reshape(1, 1, 6, 8)
    batch = torch.cat([a, a * 3])
    valid = torch.ones_like(batch, dtype=torch.bool)
    x0 = normalise_depth(batch, valid)
    torch.testing.assert_close(x0[0], normalise_depth(a, valid[:1])[0])
    torch.testing.assert_close(x0[1], normalise_depth(a * 3, valid[:1])[0])


def test_logit_normal_timesteps_distribution():
    t = sample_logit_normal_timesteps(200_000, torch.Generator().manual_seed(0))
    assert t.dtype == torch.int64
    assert int(t.min()) >= 0 and int(t.max()) <= 1000
    u = t.double() / 1000
    assert float(u.mean()) == pytest.approx(0.5, abs=0.005)
    # logit of the rounded values is ~N(0, 1): check its spread and the median
    inner = u[(u > 0) & (u < 1)]
    z = torch.log(inner / (1 - inner))
    assert float(z.std()) == pytest.approx(1.0, abs=0.02)
    assert float(u.median()) == pytest.approx(0.5, abs=0.005)
    # mass concentrates around the middle: P(|z| < 1) ~ 0.683
    assert float(((t >= 269) & (t <= 731)).double().mean()) == pytest.approx(0.683, abs=0.01)


def test_timesteps_are_reproducible_from_a_generator():
    a = sample_logit_normal_timesteps(16, torch.Generator().manual_seed(3))
    b = sample_logit_normal_timesteps(16, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize('steps, expected', [(4, [1000, 750, 500, 249]), (1, [1000]),
                                             (29, None)])
def test_schedule_timesteps_are_the_samplers_own_drawn_evenly(steps, expected):
    from ppd_ros.model.flow_matching import timesteps
    t = sample_schedule_timesteps(40_000, torch.Generator().manual_seed(0), steps)
    values, counts = torch.unique(t, return_counts=True)
    schedule = sorted(v for v in timesteps(steps).tolist() if v >= 0)  # 29 steps ends in -1
    assert values.tolist() == schedule
    if expected is not None:
        assert schedule == sorted(expected)
    share = counts.double() / len(t)
    assert float((share - 1 / len(schedule)).abs().max()) < 0.02


def test_mixed_timesteps_draw_the_given_share_from_the_schedule():
    n = 40_000
    t = sample_mixed_timesteps(n, torch.Generator().manual_seed(0), 4, 0.5)
    on_schedule = torch.isin(t, torch.tensor([1000, 750, 500, 249]))
    # The logit-normal half lands on those four values with probability ~0.2 %.
    assert abs(float(on_schedule.double().mean()) - 0.5) < 0.02
    rest = t[~on_schedule].double()
    assert t.min() >= 0 and t.max() <= 1000
    assert abs(float(rest.mean()) - 500) < 10 and 150 < float(rest.std()) < 250  # logit-normal spread
    only_schedule = sample_mixed_timesteps(1000, torch.Generator().manual_seed(1), 4, 1.0)
    assert torch.equal(only_schedule, sample_schedule_timesteps(1000, torch.Generator().manual_seed(1), 4))
    none_from_schedule = sample_mixed_timesteps(n, torch.Generator().manual_seed(2), 4, 0.0)
    assert float(torch.isin(none_from_schedule, torch.tensor([1000, 750, 500, 249])).double().mean()) < 0.01
    with pytest.raises(ValueError, match='schedule_fraction'):
        sample_mixed_timesteps(4, None, 4, 1.5)
