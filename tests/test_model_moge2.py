"""MoGe-2 network: config as data, the official key table, token grid, view-plane UV, blocks."""
import math

import pytest
import torch

from ppd_ros.model.moge2 import (ConvStack, ResidualConvBlock, build_moge2, token_grid,
                                 view_plane_uv)
from ppd_ros.model.moge2_config import (MOGE2_VARIANTS, ConvStackConfig, MoGe2Config,
                                        get_moge2_config)

# spec section 7: (tensors, values) per group of moge-2-vitl-normal's model.pt
SPEC_GROUPS = {
    'encoder.image_mean': (1, 3), 'encoder.image_std': (1, 3),
    'encoder.backbone': (343, 304_368_640), 'encoder.output_projections': (8, 4_198_400),
    'neck': (48, 6_157_376), 'points_head': (38, 4_692_323), 'mask_head': (38, 4_692_257),
    'normal_head': (38, 4_692_323), 'scale_head': (6, 2_100_225),
}


def group_of(key):
    parts = key.split('.')
    return '.'.join(parts[:2]) if parts[0] == 'encoder' else parts[0]


def test_official_network_has_the_spec_key_table():
    state = build_moge2('moge2_vitl_normal', device='meta').state_dict()
    assert len(state) == 521
    assert sum(v.numel() for v in state.values()) == 330_901_550
    groups = {}
    for key, value in state.items():
        count, values = groups.get(group_of(key), (0, 0))
        groups[group_of(key)] = (count + 1, values + value.numel())
    assert groups == SPEC_GROUPS
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    assert shapes['neck.input_blocks.0.weight'] == (1024, 1026, 1, 1)
    assert shapes['neck.input_blocks.4.weight'] == (32, 2, 1, 1)
    assert shapes['neck.resamplers.0.0.weight'] == (1024, 256, 2, 2)   # ConvTranspose (in, out)
    assert shapes['neck.resamplers.3.1.weight'] == (32, 64, 3, 3)      # after bilinear x2
    assert shapes['neck.res_blocks.2.1.layers.5.weight'] == (128, 128, 3, 3)
    assert shapes['points_head.output_blocks.4.weight'] == (3, 32, 1, 1)
    assert shapes['mask_head.output_blocks.4.weight'] == (1, 32, 1, 1)
    assert shapes['scale_head.4.weight'] == (1, 1024)
    assert shapes['encoder.backbone.mask_token'] == (1, 1024)
    for absent in ('neck.res_blocks.0.0.layers.2.weight', 'neck.output_blocks.0.weight',
                   'neck.resamplers.3.0.weight', 'points_head.output_blocks.3.weight'):
        assert absent not in shapes


def test_without_normal_head_there_are_no_normal_keys():
    state = build_moge2('moge2_vitl', device='meta').state_dict()
    assert len(state) == 521 - 38 and not any(k.startswith('normal_head.') for k in state)


@pytest.mark.parametrize('name', sorted(MOGE2_VARIANTS))
def test_model_config_round_trips_in_moge_layout(name):
    config = get_moge2_config(name)
    assert MoGe2Config.from_model_config(config.to_model_config(), name) == config
    assert MoGe2Config.from_json(config.to_json()) == config
    assert config.to_model_config() == MOGE2_VARIANTS[name]


def test_official_layout_values():
    c = get_moge2_config('moge2_vitl_normal')
    assert c.encoder.backbone_name == 'dinov2_vitl14'
    assert c.encoder.intermediate_layers == (5, 11, 17, 23) and c.encoder.dim_out == 1024
    assert (c.encoder.backbone.embed_dim, c.encoder.backbone.depth) == (1024, 24)
    assert c.neck.dim_in == (1026, 2, 2, 2, 2) and c.neck.num_res_blocks == (0, 2, 2, 2, 0)
    assert c.points_head.resamplers == ('conv_transpose',) * 3 + ('bilinear',)
    assert c.remap_output == 'exp' and c.num_tokens_range == (1200, 3600)
    # infer's token budget per resolution level (spec section 4, step 2)
    assert [c.num_tokens(level) for level in range(10)] == [
        1200, 1466, 1733, 2000, 2266, 2533, 2800, 3066, 3333, 3600]


def test_moge_scalar_shorthands_are_accepted():
    stack = ConvStackConfig.from_dict({'dim_in': [4, None], 'dim_res_blocks': [8, 4],
                                       'dim_out': None, 'num_res_blocks': 1,
                                       'resamplers': 'bilinear', 'res_block_in_norm': 'none',
                                       'res_block_hidden_norm': 'none'}, 'neck')
    assert stack.num_res_blocks == (1, 1) and stack.dim_out == (None, None)
    assert stack.resamplers == ('bilinear',)


@pytest.mark.parametrize('change, message', [
    (lambda d: d['encoder'].update(backbone='dinov2_vitg14'), 'unsupported backbone'),
    (lambda d: d['encoder'].update(intermediate_layers=[5, 30]), 'intermediate_layers'),
    (lambda d: d['neck'].update(dim_in=[1024, 2, 2, 2, 2]), 'neck.dim_in'),
    (lambda d: d['neck'].update(res_block_in_norm='layer_norm'), "'none' are supported"),
    (lambda d: d['points_head'].update(dim_in=[1024, 256, 128, 64, 16]), 'do not match'),
    (lambda d: d['neck'].update(dim_res_blocks=[1024, 256, 128, 64, 10 ** 9]), 'dim_res_blocks'),
    (lambda d: d.update(remap_output='cubic'), 'remap_output'),
    (lambda d: d.update(scale_head={'dims': [512, 1]}), 'scale_head'),
])
def test_invalid_model_configs_are_rejected(change, message):
    data = get_moge2_config('moge2_vitl_normal').to_model_config()
    change(data)
    with pytest.raises(ValueError, match=message):
        MoGe2Config.from_model_config(data)


@pytest.mark.parametrize('size, grid', [
    ((768, 1024), (51, 69)), ((672, 1184), (45, 79)), ((720, 1088), (48, 73)),
    ((880, 880), (60, 60)), ((48, 80), (46, 77)), ((64, 64), (60, 60)),
])
def test_token_grid_truncates_as_the_reference(size, grid):
    assert token_grid(*size, 3600) == grid


def test_view_plane_uv_spans_pixel_centres_in_half_diagonal_units():
    aspect = 80 / 48
    uv = view_plane_uv(6, 10, aspect)
    assert uv.shape == (2, 6, 10) and uv.dtype == torch.float32
    span_x, span_y = aspect / math.sqrt(1 + aspect ** 2), 1 / math.sqrt(1 + aspect ** 2)
    assert torch.allclose(uv[0, 3], torch.linspace(-span_x * 0.9, span_x * 0.9, 10))
    assert torch.equal(uv[0, 0], uv[0, 5])            # u varies along columns only
    assert torch.allclose(uv[1, :, 0], torch.linspace(-span_y * 5 / 6, span_y * 5 / 6, 6))
    # the image's half diagonal is 1: the corner pixel centres lie just inside it
    corner = math.hypot(uv[0, 0, 0], uv[1, 0, 0])
    assert 0.85 < corner < 1.0


def test_residual_block_and_conv_stack():
    torch.manual_seed(0)
    block = ResidualConvBlock(4, 4)
    x = torch.randn(1, 4, 5, 6)
    with torch.no_grad():
        for layer in (block.layers[2], block.layers[5]):
            layer.weight.zero_()
            layer.bias.zero_()
        assert torch.equal(block(x), x)  # zero branch: identity
    config = ConvStackConfig((6, 2, 2), (8, 4, 2), (None, None, 3), (0, 1, 0),
                             ('conv_transpose', 'bilinear'))
    stack = ConvStack(config)
    outs = stack([torch.randn(2, 6, 3, 4), torch.randn(2, 2, 6, 8), torch.randn(2, 2, 12, 16)])
    assert [tuple(o.shape) for o in outs] == [(2, 8, 3, 4), (2, 4, 6, 8), (2, 3, 12, 16)]


@pytest.fixture(scope='module')
def tiny():
    torch.manual_seed(0)
    return build_moge2('moge2_tiny').eval()


def test_forward_outputs(tiny):
    image = torch.rand(2, 3, 50, 70)
    with torch.no_grad():
        out = tiny(image, grid=(3, 4))
    assert out['points'].shape == (2, 50, 70, 3) and out['mask'].shape == (2, 50, 70)
    assert out['metric_scale'].shape == (2,) and (out['metric_scale'] > 0).all()
    assert (out['points'][..., 2] > 0).all()             # exp remap: z = exp(c) > 0
    assert ((out['mask'] >= 0) & (out['mask'] <= 1)).all()
    assert 'normal' not in out


def test_semantics_are_the_encoder_features_on_the_g16_grid(tiny):
    image = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        tokens = tiny.encoder.semantics(image)
        features, cls = tiny.encoder.features(image, 4, 6)
    assert tokens.shape == (1, 24, 128) and cls.shape == (1, 128)
    assert torch.equal(tokens, features.flatten(2).transpose(1, 2))


def test_encoder_resizes_with_antialias_and_normalises_after(tiny):
    image = torch.rand(1, 3, 64, 96)
    pixels = tiny.encoder.pixels(image, 4, 6)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    resized = torch.nn.functional.interpolate(image, (56, 84), mode='bilinear',
                                              align_corners=False, antialias=True)
    assert torch.allclose(pixels, (resized - mean) / std, atol=1e-6)
    plain = torch.nn.functional.interpolate(image, (56, 84), mode='bilinear', align_corners=False)
    assert not torch.allclose(pixels, (plain - mean) / std, atol=1e-3)
