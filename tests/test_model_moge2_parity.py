"""Parity with an independent functional implementation of moge2-reference.md
(tests/moge2_spec_oracle.py), on full-size random weights in the official layouts, fp32, CPU.

ppd_ros loads the oracle's model.pt and ppd_moge.pth through its strict loaders (521 and 352
tensors) and both sides run the same image and noise. Tolerances (spec section 9):
  PPD-MoGe output after 4 steps        max |diff| <= 1e-4
  MoGe-2 metric depth                  <= 1e-4 relative, same +inf pattern
  normalised intrinsics                <= 1e-6 relative
  mask                                 identical except pixels within 1e-6 of 0.5
MoGe-2 runs at reduced token budgets here (its decoder works at 16x the token grid, so 3600
tokens cost minutes on two cores): 48x80 at 120 tokens (an 8x14 grid, the encoder resize
upsamples) and 64x64 at 16 tokens (4x4, the antialiased downsampling path) with a known field
of view (only the shift solved). PPD_MOGE_PARITY_TOKENS=3600 runs both at the released budget.
"""
import os

import numpy as np
import pytest
import torch

import moge2_spec_oracle as oracle
from ppd_ros.model.moge2_checkpoint import OFFICIAL_MOGE2_TENSORS, OFFICIAL_MOGE2_VALUES
from ppd_ros.model.moge2_geometry import infer
from ppd_ros.model.ppd_moge import load_official_ppd_moge
from ppd_ros.model.predictor import DepthPredictor

TOKENS = os.environ.get('PPD_MOGE_PARITY_TOKENS')


@pytest.fixture(scope='module')
def release(tmp_path_factory):
    """The oracle's full-size files, loaded by ppd_ros (PPD-MoGe sharing MoGe-2's encoder)."""
    moge_path, dit_path = oracle.write_official_files(tmp_path_factory.mktemp('release'), seed=0)
    ppd, moge = load_official_ppd_moge(dit_path, moge_path)
    return torch.load(moge_path, weights_only=True), torch.load(dit_path, weights_only=True), \
        ppd, moge


def test_the_full_size_files_load_strictly(release):
    moge_file, dit_file, ppd, moge = release
    assert len(moge_file['model']) == OFFICIAL_MOGE2_TENSORS == 521
    assert sum(v.numel() for v in moge_file['model'].values()) == OFFICIAL_MOGE2_VALUES
    assert moge.config.name == 'moge2_vitl_normal' and ppd.config.name == 'large_moge'
    state = moge.state_dict()
    assert state.keys() == moge_file['model'].keys()
    assert all(torch.equal(state[k], v) for k, v in moge_file['model'].items())
    assert len(dit_file) == 352 and all(torch.equal(ppd.state_dict()[k], v)
                                        for k, v in dit_file.items())
    assert ppd.encoder is moge.encoder


@pytest.mark.parametrize('size', [(48, 80), (64, 64)])
def test_ppd_moge_after_four_steps(release, size):
    moge_file, dit_file, ppd, _ = release
    h, w = size
    rgb = np.random.default_rng(h + w).integers(0, 256, (h, w, 3), dtype=np.uint8)
    noise = torch.randn(1, 1, h, w, generator=torch.Generator().manual_seed(h * w))
    ours = DepthPredictor(ppd, device='cpu', precision='fp32').predict(
        rgb, steps=4, noise=noise, resize=False).network_depth
    theirs = oracle.ppd_moge_predict(dit_file, moge_file, rgb, noise, steps=4).numpy()
    moved = np.abs(theirs - (noise[0, 0].numpy() + 0.5)).max()
    diff = np.abs(ours - theirs)
    print(f'PPD-MoGe {h}x{w}: max |diff| {diff.max():.3g}, mean {diff.mean():.3g} '
          f'(output moved {moved:.3g})')
    assert moved > 0.1 and diff.max() <= 1e-4


def compare_geometry(ours, theirs, what):
    mask_ref, depth_ref = theirs['mask'], theirs['depth']
    borderline = (theirs['mask_prob'] - 0.5).abs() <= 1e-6
    mask_ours = ours.mask[0]
    assert torch.equal(mask_ours[~borderline], mask_ref[~borderline]), what
    both = mask_ours & mask_ref
    depth = ours.depth[0]
    assert torch.equal(torch.isinf(depth) & ~borderline, torch.isinf(depth_ref) & ~borderline)
    rel_depth = ((depth[both] - depth_ref[both]).abs() / depth_ref[both]).max()
    K, K_ref = ours.intrinsics[0], theirs['intrinsics']
    nonzero = K_ref != 0
    rel_K = ((K[nonzero] - K_ref[nonzero]).abs() / K_ref[nonzero].abs()).max()
    print(f'MoGe-2 {what}: metric depth rel {rel_depth:.3g}, intrinsics rel {rel_K:.3g}, '
          f'mask {int((mask_ours != mask_ref).sum())} of {mask_ref.numel()} px differ '
          f'({int(borderline.sum())} borderline), {int(both.sum())} px compared')
    assert both.sum() > 0.2 * both.numel()        # the comparison covers a real mask
    assert rel_depth <= 1e-4 and rel_K <= 1e-6
    assert torch.equal(K[~nonzero], K_ref[~nonzero])


@pytest.mark.parametrize('size, tokens, fov_x', [((48, 80), 120, None), ((64, 64), 16, 60.0)])
def test_moge2_metric_depth_intrinsics_and_mask(release, size, tokens, fov_x):
    moge_file, _, _, moge = release
    h, w = size
    tokens = int(TOKENS or tokens)
    image = torch.rand(3, h, w, generator=torch.Generator().manual_seed(h * w + 1))
    ours = infer(moge, image, num_tokens=tokens, fov_x=fov_x)
    theirs = oracle.moge_infer(moge_file, image, fov_x=fov_x, num_tokens=tokens)
    compare_geometry(ours, theirs, f'{h}x{w}, {tokens} tokens, fov_x {fov_x}')
    assert abs(float(ours.shift[0]) - float(theirs['shift'])) <= 1e-6
