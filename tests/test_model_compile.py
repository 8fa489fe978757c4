"""compile=True: the networks run through torch.compile, prepared before the first frame.

Inductor builds C++ kernels for about a minute even for the tiny model on 2 cores, so these
tests run dynamo's graph capture with its 'eager' backend (same guards, same recompilation
rules, no C++ build); bench/bench_model.py measures inductor itself.
"""
import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from ppd_ros.model import DepthPredictor, TorchEngine, build_model


def randomized_tiny():
    torch.manual_seed(0)
    model = build_model('tiny')
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return model


@pytest.mark.parametrize('samples', [1, 2])
def test_prepare_compiles_what_the_first_frame_runs(samples):
    torch._dynamo.reset()
    engine = TorchEngine(randomized_tiny(), 'cpu', 'fp32', compile=True,
                         compile_backend='eager')
    compiled = DepthPredictor(engine, network_area=64 * 48)
    eager = DepthPredictor(randomized_tiny(), 'cpu', 'fp32', network_area=64 * 48)
    rgb = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    assert compiled.prepare(96, 128, steps=2, batch=samples) == (48, 64)
    graphs = counters['stats']['unique_graphs']
    assert graphs >= 2   # encoder and DiT
    got = compiled.predict(rgb, steps=2, seed=3, samples=samples)
    assert counters['stats']['unique_graphs'] == graphs   # nothing compiled at the first frame
    expected = eager.predict(rgb, steps=2, seed=3, samples=samples)
    np.testing.assert_allclose(got.network_samples, expected.network_samples, atol=1e-5)
    again = compiled.predict(rgb, steps=2, seed=3, samples=samples)   # outputs not reused
    np.testing.assert_array_equal(again.network_samples, got.network_samples)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU (none here)')
def test_cuda_graphs_compile_matches_eager():
    rgb = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    compiled = DepthPredictor(randomized_tiny(), 'cuda', 'fp32', compile=True)
    eager = DepthPredictor(randomized_tiny(), 'cuda', 'fp32')
    compiled.prepare(96, 128, steps=2)
    a, b = compiled.predict(rgb, steps=2, seed=0), compiled.predict(rgb, steps=2, seed=1)
    np.testing.assert_allclose(a.network_depth, eager.predict(rgb, steps=2, seed=0).network_depth,
                               atol=1e-4)
    assert np.abs(a.network_depth - b.network_depth).max() > 1e-3
