"""DINOv2 encoder: position-embedding interpolation by scale_factor (offset 0.1), token output."""
import pytest
import torch
import torch.nn.functional as F

import spec_reference_impl as ref
from ppd_ros.model import build_model
from ppd_ros.model.preprocess import encoder_input
from ppd_ros.model.vit_encoder import interpolate_pos_embed

G = 37


@pytest.fixture(scope='module')
def pos_embed():
    g = torch.Generator().manual_seed(0)
    return torch.randn(1, 1 + G * G, 8, generator=g)


def test_stored_square_grid_is_returned_unchanged(pos_embed):
    assert interpolate_pos_embed(pos_embed, G, G) is pos_embed


@pytest.mark.parametrize('grid', [(48, 64), (3, 5), (37, 40), (20, 20)])
def test_interpolation_uses_scale_factor_with_offset(pos_embed, grid):
    gh, gw = grid
    got = interpolate_pos_embed(pos_embed, gh, gw)
    assert got.shape == (1, 1 + gh * gw, 8)
    assert torch.equal(got[:, 0], pos_embed[:, 0])  # cls entry untouched
    # Expected: bicubic (a = -0.75) whose coordinates use 1 / scale_factor, written out by hand.
    expected = ref.pos_embed_for_grid(pos_embed, gh, gw)
    torch.testing.assert_close(got[0], expected, atol=3e-5, rtol=0)  # fp32 kernel rounding
    # The trap: resizing with size=(gh, gw) maps coordinates by G/gh and gives other values.
    square = pos_embed[:, 1:].reshape(1, G, G, 8).permute(0, 3, 1, 2)
    by_size = F.interpolate(square, size=(gh, gw), mode='bicubic', align_corners=False)
    by_size = by_size.permute(0, 2, 3, 1).reshape(gh * gw, 8)
    assert (got[0, 1:] - by_size).abs().max() > 0.05


def test_encoder_input_is_normalised_then_resized_to_14_per_16():
    image = torch.rand(1, 3, 48, 80)
    pixels = encoder_input(image, 14)
    assert pixels.shape == (1, 3, 42, 70)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    normalised = (image - mean) / std
    expected = ref.bicubic(normalised[0], 42, 70, 48 / 42, 80 / 70)
    torch.testing.assert_close(pixels[0], expected, atol=1e-5, rtol=1e-5)


def test_encoder_returns_final_norm_patch_tokens_on_the_g16_grid():
    torch.manual_seed(0)
    model = build_model('tiny').eval()
    with torch.no_grad():
        tokens = model.semantics(torch.rand(1, 3, 64, 96))
    assert tokens.shape == (1, 4 * 6, 128)
    # final LayerNorm with default affine (1, 0): zero mean, unit variance per token
    torch.testing.assert_close(tokens.mean(-1), torch.zeros(1, 24), atol=1e-5, rtol=0)
