"""Model variants are plain data that round-trip through JSON and build working networks."""
import json

import pytest
import torch

from ppd_ros.model import VARIANTS, ModelConfig, build_model, get_config


@pytest.mark.parametrize('name', sorted(VARIANTS))
def test_variant_round_trips_through_json(name):
    config = get_config(name)
    assert ModelConfig.from_json(config.to_json()) == config
    assert json.loads(config.to_json())["encoder"]["type"] == config.encoder.type
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert config.to_dict() == VARIANTS[name]


def test_large_is_the_official_network():
    c = get_config('large')
    assert (c.hidden_size, c.depth, c.num_heads, c.head_dim, c.mlp_ratio) == (1024, 24, 16, 64, 4)
    assert (c.stem_patch_size, c.patch_size, c.rope_base) == (16, 8, 100.0)
    assert c.fusion_hidden_size == 4096
    assert (c.in_channels, c.out_channels, c.frequency_embedding_size) == (4, 1, 256)
    assert (c.train_width, c.train_height) == (1024, 768)
    e = c.encoder
    assert (e.type, e.embed_dim, e.depth, e.num_heads) == ('dinov2', 1024, 24, 16)
    assert (e.patch_size, e.pos_grid, e.mlp_ratio) == (14, 37, 4.0)
    assert (e.interpolate_offset, e.norm_eps) == (0.1, 1e-6)


def test_tiny_and_small_sizes():
    tiny, small = get_config('tiny'), get_config('small')
    assert (tiny.hidden_size, tiny.depth, tiny.num_heads, tiny.head_dim) == (256, 2, 4, 64)
    assert tiny.fusion_hidden_size == 512
    assert (tiny.encoder.embed_dim, tiny.encoder.depth, tiny.encoder.pos_grid) == (128, 4, 8)
    assert (tiny.train_width, tiny.train_height) == (128, 96)
    assert (small.hidden_size, small.depth, small.num_heads) == (384, 12, 6)
    assert small.encoder == get_config('large').encoder


def test_encoder_none_gives_a_vanilla_dit_whose_fusion_takes_only_x():
    config = get_config('tiny', name='tiny_vanilla', encoder={'type': 'none'})
    assert ModelConfig.from_json(config.to_json()) == config
    model = build_model(config, device='meta')
    assert model.encoder is None
    assert model.dit.proj_fusion[0].in_features == config.hidden_size
    assert model.dit.proj_fusion[4].out_features == 4 * config.hidden_size


@pytest.mark.parametrize('change', [
    {'num_heads': 3},            # 256 not divisible by 3
    {'depth': 5},                # odd depth: no middle fusion point
    {'patch_size': 4},           # stem must be 2 x patch
    {'encoder': {'type': 'clip'}},
])
def test_invalid_configs_are_rejected(change):
    with pytest.raises(ValueError):
        get_config('tiny', **change)


def test_unknown_keys_and_variants_are_rejected():
    with pytest.raises(ValueError, match='unknown model config keys'):
        ModelConfig.from_dict({**VARIANTS['tiny'], 'hiden_size': 3})
    with pytest.raises(ValueError, match='unknown model variant'):
        get_config('huge')


def test_build_model_is_deterministic_under_manual_seed():
    torch.manual_seed(42)
    a = build_model('tiny').state_dict()
    torch.manual_seed(42)
    b = build_model('tiny').state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    torch.manual_seed(43)
    c = build_model('tiny').state_dict()
    assert not torch.equal(a['dit.blocks.0.attn.qkv.weight'], c['dit.blocks.0.attn.qkv.weight'])


@pytest.mark.parametrize('change, match', [
    ({'num_heads': 0}, 'num_heads must be in'),
    ({'hidden_size': '256'}, 'hidden_size must be an integer'),
    ({'depth': True}, 'depth must be an integer'),
    ({'mlp_ratio': float('inf')}, 'mlp_ratio must be a number'),
    ({'train_width': 4096, 'train_height': 4096}, 'train_width x train_height'),
    ({'name': 'x\n' * 3}, 'name must be a printable string'),
    ({'encoder': {'num_heads': 0}}, 'encoder.num_heads must be in'),
    ({'encoder': {'norm_eps': 'small'}}, 'encoder.norm_eps must be a number'),
])
def test_field_types_and_documented_bounds_are_checked_first(change, match):
    with pytest.raises(ValueError, match=match):
        get_config('tiny', **change)


def test_non_object_configs_are_value_errors():
    for text in ('[1, 2]', '{"encoder": 3}', 'not json'):
        with pytest.raises(ValueError):
            ModelConfig.from_json(text)
    with pytest.raises(ValueError, match='lacks'):
        ModelConfig.from_dict({'name': 'x'})
