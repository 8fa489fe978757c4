"""DepthPredictor API: shapes, timing, seeding, explicit noise, resize rules, precision."""
import time

import numpy as np
import pytest
import torch

from ppd_ros.model import DepthPredictor, Prediction, build_model


def randomized_tiny(seed=0):
    torch.manual_seed(seed)
    model = build_model('tiny')
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))  # wake up the zero-initialised adaLN / final layer
    return model


@pytest.fixture(scope='module')
def predictor():
    return DepthPredictor(randomized_tiny(), device='cpu')


@pytest.fixture(scope='module')
def rgb():
    return np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)


def test_tiny_end_to_end_is_fast():
    start = time.perf_counter()
    predictor = DepthPredictor(randomized_tiny(), device='auto')
    image = np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    pred = predictor.predict(image, steps=4, seed=0)
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0, f'tiny build + predict took {elapsed:.2f} s'
    assert pred.depth.shape == (480, 640) and pred.network_depth.shape == (96, 128)
    assert predictor.device.type == ('cuda' if torch.cuda.is_available() else 'cpu')


def test_prediction_fields(predictor, rgb):
    pred = predictor.predict(rgb, steps=2, seed=0)
    assert isinstance(pred, Prediction)
    assert pred.depth.dtype == np.float32 and pred.network_depth.dtype == np.float32
    assert pred.depth.shape == (120, 160)
    assert pred.network_depth.shape == predictor.network_size(120, 160) == (96, 128)
    assert set(pred.timings) == {'preprocess', 'semantics', 'dit', 'postprocess', 'total'}
    assert all(v >= 0 for v in pred.timings.values())
    assert pred.timings['total'] >= pred.timings['dit']
    assert pred.timesteps == (1000, 500)


def test_seeded_runs_are_reproducible_and_leave_the_global_rng_alone(predictor, rgb):
    state = torch.random.get_rng_state()
    a = predictor.predict(rgb, seed=7)
    b = predictor.predict(rgb, seed=7)
    c = predictor.predict(rgb, seed=8)
    assert torch.equal(torch.random.get_rng_state(), state)
    np.testing.assert_array_equal(a.depth, b.depth)
    assert np.abs(a.depth - c.depth).max() > 1e-3
    d, e = predictor.predict(rgb), predictor.predict(rgb)   # unseeded: fresh noise each call
    assert np.abs(d.depth - e.depth).max() > 1e-3


def test_explicit_noise_is_used_as_given(predictor, rgb):
    noise = torch.randn(1, 1, 96, 128, generator=torch.Generator().manual_seed(3))
    a = predictor.predict(rgb, noise=noise)
    b = predictor.predict(rgb, noise=noise.numpy(), seed=123)   # noise wins over seed
    np.testing.assert_array_equal(a.depth, b.depth)
    with pytest.raises(ValueError, match='noise must have shape'):
        predictor.predict(rgb, noise=torch.zeros(1, 1, 120, 160))


def test_resize_false_runs_at_input_size_and_needs_multiples_of_16(predictor):
    image = np.zeros((48, 80, 3), dtype=np.uint8)
    pred = predictor.predict(image, seed=0, resize=False)
    assert pred.network_depth.shape == (48, 80)
    np.testing.assert_array_equal(pred.depth, pred.network_depth)
    with pytest.raises(ValueError, match='multiple of 16'):
        predictor.predict(np.zeros((50, 80, 3), dtype=np.uint8), resize=False)


@pytest.mark.parametrize('bad', [np.zeros((32, 32, 3), np.float32), np.zeros((32, 32), np.uint8),
                                 np.zeros((32, 32, 4), np.uint8)])
def test_rejects_non_rgb_uint8(predictor, bad):
    with pytest.raises(ValueError, match='uint8 RGB'):
        predictor.predict(bad)


@pytest.mark.parametrize('precision', ['bf16', 'fp16'])
def test_reduced_precision_stays_close_to_fp32(rgb, precision):
    ref = DepthPredictor(randomized_tiny(), 'cpu', 'fp32').predict(rgb, seed=0).network_depth
    low = DepthPredictor(randomized_tiny(), 'cpu', precision=precision)
    got = low.predict(rgb, seed=0).network_depth
    assert np.abs(got - ref).max() < 0.02
    dtype = {'bf16': torch.bfloat16, 'fp16': torch.float16}[precision]
    dit = low.model.dit    # weights cast once: heavy matrices low, stem and adaLN float32
    assert dit.blocks[0].attn.qkv.weight.dtype == dtype
    assert dit.blocks[0].adaLN_modulation[1].weight.dtype == torch.float32
    assert dit.x_embedder.proj.weight.dtype == torch.float32
    assert low.model.encoder.blocks[0].norm1.weight.dtype == torch.float32


def test_bad_device_or_precision():
    model = build_model('tiny', device='meta')
    with pytest.raises(ValueError, match='precision'):
        DepthPredictor(model, 'cpu', precision='int8')
    assert DepthPredictor(model, 'meta', precision='auto').precision == 'fp32'
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='cuda'):
            DepthPredictor(model, 'cuda')
