"""Several noise draws and several images in one DiT batch; the engine seam of the predictor."""
import numpy as np
import pytest
import torch

from ppd_ros.model import DepthPredictor, Engine, TorchEngine, build_model


def randomized_tiny(seed=0):
    torch.manual_seed(seed)
    model = build_model('tiny')
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return model


@pytest.fixture(scope='module')
def predictor():
    return DepthPredictor(randomized_tiny(), 'cpu', 'fp32', network_area=64 * 48)


@pytest.fixture(scope='module')
def rgb():
    return np.random.default_rng(0).integers(0, 256, (72, 100, 3), dtype=np.uint8)


class CountingEngine:
    """Wraps a TorchEngine and records the batch of every network call."""

    def __init__(self, inner):
        self.inner = inner
        self.config, self.device, self.precision = inner.config, inner.device, inner.precision
        self.semantics_batches, self.velocity_batches = [], []

    def semantics(self, image):
        self.semantics_batches.append(image.shape[0])
        return self.inner.semantics(image)

    def velocity(self, x_t, image, semantics, schedule, index):
        assert image.shape[0] == semantics.shape[0] == x_t.shape[0]
        self.velocity_batches.append(x_t.shape[0])
        return self.inner.velocity(x_t, image, semantics, schedule, index)

    def prepare(self, height, width, steps, batch=1):
        self.inner.prepare(height, width, steps, batch)

    def clear_cache(self):
        self.inner.clear_cache()

    def synchronize(self):
        pass


def test_k_samples_run_as_one_dit_batch_with_the_encoder_once(predictor, rgb):
    engine = CountingEngine(predictor.engine)
    assert isinstance(engine, Engine)
    counted = DepthPredictor(engine, network_area=predictor.network_area)
    pred = counted.predict(rgb, steps=3, seed=5, samples=4)
    assert engine.semantics_batches == [1] and engine.velocity_batches == [4, 4, 4]
    assert pred.network_samples.shape == (4, *pred.network_depth.shape)
    np.testing.assert_allclose(pred.network_depth, pred.network_samples.mean(0), atol=1e-6)
    # the draws differ, and draw 0 is the single-sample prediction of the same seed
    assert np.abs(pred.network_samples[0] - pred.network_samples[1]).max() > 1e-2
    single = predictor.predict(rgb, steps=3, seed=5)
    np.testing.assert_allclose(pred.network_samples[0], single.network_depth, atol=1e-5)
    np.testing.assert_array_equal(single.network_samples, single.network_depth[None])
    # a fixed seed gives the same K draws every frame
    again = counted.predict(rgb, steps=3, seed=5, samples=4)
    np.testing.assert_array_equal(again.network_samples, pred.network_samples)


def test_explicit_noise_for_k_samples(predictor, rgb):
    h, w = predictor.network_size(*rgb.shape[:2])
    noise = torch.randn(2, 1, h, w, generator=torch.Generator().manual_seed(1))
    pred = predictor.predict(rgb, noise=noise, samples=2)
    alone = predictor.predict(rgb, noise=noise[1:])
    np.testing.assert_allclose(pred.network_samples[1], alone.network_depth, atol=1e-5)
    with pytest.raises(ValueError, match='noise must have shape'):
        predictor.predict(rgb, noise=noise, samples=3)
    with pytest.raises(ValueError, match='samples'):
        predictor.predict(rgb, samples=0)


def test_cameras_in_one_batch_match_separate_predictions(predictor):
    rng = np.random.default_rng(3)
    same_a = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    same_b = rng.integers(0, 256, (192, 256, 3), dtype=np.uint8)   # same network size
    other = rng.integers(0, 256, (128, 96, 3), dtype=np.uint8)     # portrait: its own batch
    engine = CountingEngine(predictor.engine)
    preds = DepthPredictor(engine, network_area=predictor.network_area).predict_batch([same_a, other, same_b], steps=2, seed=9,
                                                 samples=2)
    assert engine.semantics_batches == [2, 1] and engine.velocity_batches == [4, 4, 2, 2]
    for image, pred in zip([same_a, other, same_b], preds):
        alone = predictor.predict(image, steps=2, seed=9, samples=2)
        assert pred.depth.shape == image.shape[:2]
        np.testing.assert_allclose(pred.network_samples, alone.network_samples, atol=1e-5)


def test_per_resolution_constants_are_a_small_lru(rgb):
    engine = TorchEngine(randomized_tiny(), 'cpu', 'fp32', cache_size=2)
    predictor = DepthPredictor(engine)
    sizes = [(96, 128), (128, 96), (64, 64), (96, 128)]
    for h, w in sizes:
        predictor.predict(np.zeros((h, w, 3), np.uint8), steps=1, seed=0, resize=False)
    assert engine.cached_resolutions() == [(64, 64), (96, 128)]
    first = predictor.predict(rgb, steps=1, seed=0)
    assert len(engine.cached_resolutions()) == 2
    predictor.clear_cache()
    assert engine.cached_resolutions() == []
    np.testing.assert_array_equal(predictor.predict(rgb, steps=1, seed=0).depth, first.depth)


def test_prepare_builds_the_constants_of_the_first_frame():
    engine = TorchEngine(randomized_tiny(), 'cpu', 'fp32')
    predictor = DepthPredictor(engine)
    assert predictor.prepare(480, 640, steps=4) == (96, 128)
    assert engine.cached_resolutions() == [(96, 128)]


def test_engine_or_model_but_nothing_else():
    with pytest.raises(TypeError, match='Engine'):
        DepthPredictor(object())
