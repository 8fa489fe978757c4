"""Parity with an independent functional implementation of the spec (tests/spec_reference_impl.py).

Both sides read the very same tensors (official key names, random weights with live adaLN and
final layers), the same image and the same initial noise; fp32 on CPU, 4 steps. Spec section 7:
final depth max |diff| <= 1e-4, mean <= 1e-6.
"""
import numpy as np
import pytest
import torch

import spec_reference_impl as ref
from ppd_ros.model import DepthPredictor, build_model
from ppd_ros.model.checkpoint import convert_official_state_dicts, load_state_dict_strict


def predictor_sharing(dit_state, encoder_state, variant):
    state, unexpected = convert_official_state_dicts(dit_state, encoder_state)
    model = build_model(variant, device='meta')
    load_state_dict_strict(model, state, extra_unexpected=unexpected, assign=True)  # no copies
    return DepthPredictor(model, device='cpu', precision='fp32', upsampling='bilinear')


def compare(predictor, dit_state, encoder_state, size, resize, **ref_kwargs):
    H, W = size
    rgb = np.random.default_rng(H * W).integers(0, 256, (H, W, 3), dtype=np.uint8)
    h, w = predictor.network_size(H, W) if resize else (H, W)
    noise = torch.randn(1, 1, h, w, generator=torch.Generator().manual_seed(H + W))
    ours = predictor.predict(rgb, steps=4, noise=noise, resize=resize)
    theirs = ref.reference_predict(dit_state, encoder_state, rgb, noise, steps=4, resize=resize,
                                   **ref_kwargs)
    diff = np.abs(ours.depth - theirs.numpy())
    moved = np.abs(theirs.numpy() - ref_upsampled_noise(noise, H, W)).max()
    return diff.max(), diff.mean(), moved


def ref_upsampled_noise(noise, H, W):
    up = torch.nn.functional.interpolate(noise + 0.5, size=(H, W), mode='bilinear',
                                         align_corners=False)
    return up[0, 0].numpy()


@pytest.fixture(scope='module')
def tiny_states():
    dit_shapes = ref.official_dit_shapes(D=256, depth=2, mlp=1024, fusion=512, sem=128)
    encoder_shapes = ref.official_encoder_shapes(E=128, depth=4, mlp=512, grid=8)
    return ref.random_state(dit_shapes, seed=11), ref.random_state(encoder_shapes, seed=12)


@pytest.mark.parametrize('size, resize', [
    ((48, 80), False),
    ((128, 128), False),    # 8 x 8 grid == stored tiny grid: position embedding used unchanged
    ((100, 70), True),      # cv2 resize to the tiny training area, bilinear back to 100 x 70
    ((30, 200), True),      # extreme aspect ratio: minimum-16 rule and area resize
])
def test_tiny_matches_reference(tiny_states, size, resize):
    predictor = predictor_sharing(*tiny_states, 'tiny')
    max_diff, mean_diff, moved = compare(predictor, *tiny_states, size, resize, heads=4, depth=2,
                                         enc_heads=2, area=128 * 96)
    assert moved > 0.1            # the network really changed the noise
    assert max_diff <= 1e-4 and mean_diff <= 1e-6


def test_large_matches_reference_with_full_size_random_weights():
    dit = ref.random_state(ref.official_dit_shapes(), seed=1)
    encoder = ref.random_state(ref.official_encoder_shapes(), seed=2)
    predictor = predictor_sharing(dit, encoder, 'large')
    for size in [(48, 80), (64, 64)]:
        max_diff, mean_diff, moved = compare(predictor, dit, encoder, size, resize=False,
                                             heads=16, depth=24)
        print(f'large parity {size}: max {max_diff:.3g} mean {mean_diff:.3g} '
              f'(output moved {moved:.3g})')
        assert moved > 0.1
        assert max_diff <= 1e-4 and mean_diff <= 1e-6
