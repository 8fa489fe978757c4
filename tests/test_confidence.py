"""Confidence from K noise draws: spread vs error on held-out frames, and the ranking metrics."""
import numpy as np
import pytest

from ppd_ros.evaluation.alignment_eval import align_ransac_log
from ppd_ros.evaluation.metrics import depth_metrics
from ppd_ros.evaluation.uncertainty import average_ranks, sparsification, spearman

W, H = 128, 96
K = 8


def test_spearman_and_ties():
    x = np.array([1.0, 2.0, 2.0, 5.0, np.nan])
    np.testing.assert_array_equal(average_ranks(x[:4]), [0.0, 1.5, 1.5, 3.0])
    assert spearman(x, x ** 3) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)
    rng = np.random.default_rng(0)
    assert abs(spearman(rng.random(10_000), rng.random(10_000))) < 0.03
    with pytest.raises(ValueError):
        spearman(np.ones(3), np.ones(4))


def test_sparsification_of_perfect_random_and_reversed_rankings():
    rng = np.random.default_rng(1)
    error = rng.exponential(0.1, 20_000)
    perfect = sparsification(error, error)
    assert perfect.ause == pytest.approx(0.0, abs=1e-12)
    assert perfect.by_uncertainty[0] == pytest.approx(error.mean())
    assert np.all(np.diff(perfect.oracle) <= 1e-12)          # removing the worst first
    random = sparsification(rng.random(error.size), error)
    assert random.ause == pytest.approx(random.ause_random, rel=0.1)
    worst = sparsification(-error, error)
    assert worst.ause > 1.5 * worst.ause_random
    assert np.isnan(sparsification([np.nan], [1.0]).ause)


@pytest.fixture(scope='module')
def ensemble():
    """Four held-out frames (seeds >= 1e6, never trained on), K = 8 draws of the tiny model."""
    from ppd_ros.model import load_predictor
    from ppd_ros.pipeline.package_paths import resolve_package_path
    from ppd_ros.synthetic import generate_frame
    from ppd_ros.training.seed_splits import eval_seeds
    predictor = load_predictor(str(resolve_package_path('models/tiny_ppd.safetensors')),
                               device='cpu')
    frames = [generate_frame(seed, W, H) for seed in eval_seeds(4)]
    return predictor, frames, [predictor.predict(f.rgb, steps=4, seed=0, samples=K)
                               for f in frames]


def test_mean_of_k_draws_beats_one_draw_and_the_spread_ranks_the_error(ensemble):
    _, frames, predictions = ensemble
    single, mean, rho, ause, ause_random = [], [], [], [], []
    for frame, prediction in zip(frames, predictions):
        assert prediction.spread.shape == (H, W) and prediction.network_samples.shape[0] == K
        np.testing.assert_allclose(prediction.network_depth,
                                   prediction.network_samples.mean(axis=0), atol=1e-6)
        np.testing.assert_allclose(prediction.spread, prediction.network_samples.std(axis=0),
                                   atol=1e-5)   # network size = input size here
        one = align_ransac_log(prediction.network_samples[0], frame.depth).depth
        aligned = align_ransac_log(prediction.depth, frame.depth).depth
        single.append(depth_metrics(one, frame.depth)['abs_rel'])
        mean.append(depth_metrics(aligned, frame.depth)['abs_rel'])
        error = np.abs(aligned - frame.depth) / frame.depth
        rho.append(spearman(prediction.spread, error))
        curve = sparsification(prediction.spread, error)
        ause.append(curve.ause)
        ause_random.append(curve.ause_random)
    assert np.mean(mean) < np.mean(single)
    assert np.mean(rho) >= 0.4
    assert np.mean(ause) <= 0.5 * np.mean(ause_random)


def test_fixed_seed_gives_the_same_spread_every_frame(ensemble):
    predictor, frames, _ = ensemble
    first, again = (predictor.predict(frames[0].rgb, steps=1, seed=0, samples=2)
                    for _ in range(2))
    np.testing.assert_array_equal(again.spread, first.spread)
    assert predictor.predict(frames[0].rgb, steps=1, seed=0).spread is None
