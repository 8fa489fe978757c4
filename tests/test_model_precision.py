"""Reduced precision against float32, stage by stage, on Large-width weights.

The tolerances are a few times the bf16 rounding error measured here; a wrong low-precision
kernel on the machine running the tests (as torch 2.13's oneDNN bf16 convolution is for the
DiT's 4 -> 1024 16 x 16 stem on AMX CPUs: errors of O(1)) fails them.
"""
import numpy as np
import pytest
import torch

import spec_reference_impl as ref
from ppd_ros.model import DepthPredictor, build_model, get_config
from ppd_ros.model.checkpoint import convert_official_state_dicts, load_state_dict_strict
from ppd_ros.model.precision import has_fast_bf16, resolve_precision

# Large's widths (DiT 1024 x 16 heads, ViT-L encoder), two blocks each.
WIDE = get_config('large', name='wide_two_blocks', depth=2, encoder={'depth': 2})
SIZE = (64, 96)
SCHEDULE = torch.tensor([1000, 750, 500, 249], dtype=torch.int32)
# max |low - fp32| per stage: semantics relative to each token's norm, velocity and depth
# absolute (|v| here reaches 2.5, the depth 5). Measured on an AMX CPU: bf16 0.0057 / 0.015 /
# 0.011, fp16 0.0007 / 0.002 / 0.0012; the bf16 convolution stem gave a velocity error of 2.1.
TOLERANCE = {'bf16': {'semantics': 0.03, 'velocity': 0.06, 'depth': 0.05},
             'fp16': {'semantics': 0.005, 'velocity': 0.01, 'depth': 0.006}}


@pytest.fixture(scope='module')
def wide_model():
    """A function building the model anew (each predictor casts its own in place)."""
    dit = ref.random_state(ref.official_dit_shapes(depth=2), seed=1)
    encoder = ref.random_state(ref.official_encoder_shapes(depth=2), seed=2)
    state, unexpected = convert_official_state_dicts(dit, encoder)

    def build():
        model = build_model(WIDE, device='meta')
        load_state_dict_strict(model, state, extra_unexpected=unexpected, assign=True)
        return model
    return build


@pytest.fixture(scope='module')
def inputs():
    g = torch.Generator().manual_seed(0)
    rgb = torch.randint(0, 256, (*SIZE, 3), generator=g, dtype=torch.uint8).numpy()
    noise = torch.randn(1, 1, *SIZE, generator=g)
    image = torch.from_numpy((rgb / 255.0).astype(np.float32)).permute(2, 0, 1)[None]
    return rgb, noise, image


def stages(predictor, rgb, noise, image, semantics=None):
    """Semantic tokens, one velocity (t = 750, on the given semantics) and the 4-step depth."""
    engine = predictor.engine
    tokens = engine.semantics(image)
    given = tokens if semantics is None else semantics.to(tokens.dtype)
    velocity = engine.velocity(noise, image, given, SCHEDULE, 1)
    depth = predictor.predict(rgb, steps=4, noise=noise, resize=False).network_depth
    return tokens.float(), velocity, depth


@pytest.mark.parametrize('precision', ['bf16', 'fp16'])
def test_low_precision_matches_fp32_stage_by_stage(wide_model, inputs, precision):
    fp32 = DepthPredictor(wide_model(), 'cpu', 'fp32')
    low = DepthPredictor(wide_model(), 'cpu', precision)
    tokens, velocity, depth = stages(fp32, *inputs)
    low_tokens, low_velocity, low_depth = stages(low, *inputs, semantics=tokens)
    tol = TOLERANCE[precision]
    relative = ((low_tokens - tokens).norm(dim=-1) / tokens.norm(dim=-1)).max().item()
    assert relative < tol['semantics']
    assert velocity.abs().max() > 1.0   # the DiT is live
    assert (low_velocity - velocity).abs().max().item() < tol['velocity']
    assert np.abs(depth - noise_plus_half(inputs[1])).max() > 0.1
    assert np.abs(low_depth - depth).max() < tol['depth']


def noise_plus_half(noise):
    return (noise + 0.5)[0, 0].numpy()


def test_auto_precision_follows_the_device():
    cpu = torch.device('cpu')
    assert resolve_precision('auto', cpu) == ('bf16' if has_fast_bf16(cpu) else 'fp32')
    assert resolve_precision('auto', torch.device('meta')) == 'fp32'
    assert resolve_precision('fp16', cpu) == 'fp16'
    with pytest.raises(ValueError, match='precision'):
        resolve_precision('int8', cpu)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU (none here)')
def test_cuda_bf16_matches_fp32(wide_model, inputs):
    fp32 = DepthPredictor(wide_model(), 'cuda', 'fp32')
    low = DepthPredictor(wide_model(), 'cuda', 'auto')
    rgb, noise, _ = inputs
    a = fp32.predict(rgb, steps=4, noise=noise, resize=False).network_depth
    b = low.predict(rgb, steps=4, noise=noise, resize=False).network_depth
    assert np.abs(a - b).max() < TOLERANCE[low.precision if low.precision != 'fp32'
                                           else 'fp16']['depth']
