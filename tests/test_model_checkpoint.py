"""Official checkpoint layout, key mapping, strict loading and the ppd_ros format."""
import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import spec_reference_impl as ref
from ppd_ros.model import (CheckpointError, DepthPredictor, build_model, get_config,
                           load_checkpoint, load_official, load_predictor, save_checkpoint)
from ppd_ros.model.checkpoint import (CheckpointNotFoundError, dit_file_key_to_model,
                                      encoder_file_key_to_model, is_ignored_official_key,
                                      model_key_to_official, official_key_shapes)

TINY_DIT = dict(D=256, depth=2, mlp=1024, fusion=512, sem=128)
TINY_ENC = dict(E=128, depth=4, mlp=512, grid=8)


def n_params(table):
    return sum(math.prod(shape) for shape in table.values())


def test_full_size_official_key_table_matches_spec():
    dit, encoder = official_key_shapes('large')
    assert len(dit) == 352 and n_params(dit) == 499_842_112
    assert len(encoder) == 343 and n_params(encoder) == 304_368_640
    assert n_params(encoder) - math.prod(encoder['pretrained.mask_token']) == 304_367_616
    # the spec's tables, written out independently in spec_reference_impl
    assert dit == ref.official_dit_shapes()
    assert encoder == ref.official_encoder_shapes()
    assert dit['dit.blocks.23.adaLN_modulation.1.weight'] == (6144, 1024)
    assert dit['dit.proj_fusion.0.weight'] == (4096, 2048)
    assert encoder['pretrained.pos_embed'] == (1, 1370, 1024)


def test_key_maps():
    assert dit_file_key_to_model('dit.blocks.0.attn.qkv.weight') == 'dit.blocks.0.attn.qkv.weight'
    assert dit_file_key_to_model('sem_encoder.pretrained.norm.bias') == 'encoder.norm.bias'
    assert dit_file_key_to_model('pretrained.norm.bias') is None
    assert (encoder_file_key_to_model('pretrained.blocks.3.ls1.gamma')
            == 'encoder.blocks.3.ls1.gamma')
    assert encoder_file_key_to_model('dit.x_embedder.proj.bias') is None
    assert model_key_to_official('encoder.pos_embed') == 'pretrained.pos_embed'
    assert model_key_to_official('dit.final_layer.linear.bias') == 'dit.final_layer.linear.bias'
    for key in ('depth_head.scratch.output_conv2.0.weight', 'pretrained.mask_token',
                'sem_encoder.pretrained.mask_token'):
        assert is_ignored_official_key(key)
    assert not is_ignored_official_key('pretrained.norm.weight')


def write_state(state, path):
    state = {k: v.clone() for k, v in state.items()}   # random_state gives views of one pool
    if path.suffix == '.safetensors':
        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


@pytest.fixture(scope='module')
def official_states():
    """Random tiny-sized states with the official key names, plus release-file extras."""
    dit = ref.random_state(ref.official_dit_shapes(**TINY_DIT), seed=1)
    encoder = ref.random_state(ref.official_encoder_shapes(**TINY_ENC), seed=2)
    encoder['depth_head.scratch.output_conv1.weight'] = torch.randn(64, 128, 3, 3)
    encoder['depth_head.projects.0.bias'] = torch.randn(256)
    return dit, encoder


@pytest.mark.parametrize('suffix', ['.pth', '.safetensors'])
def test_official_files_load_strictly(tmp_path, official_states, suffix):
    dit_state, encoder_state = official_states
    dit_path = write_state(dit_state, tmp_path / f'ppd{suffix}')
    enc_path = write_state(encoder_state, tmp_path / f'depth_anything_v2_vitl{suffix}')
    model = load_official(dit_path, enc_path, 'tiny')
    state = model.state_dict()
    # mask_token and the 2 depth_head tensors are ignored
    assert len(state) == len(dit_state) + len(encoder_state) - 3
    for key, value in state.items():
        source = dit_state if key.startswith('dit.') else encoder_state
        assert torch.equal(value, source[model_key_to_official(key)]), key
    pred = DepthPredictor(model, 'cpu').predict(np.zeros((32, 48, 3), np.uint8), seed=0)
    assert np.isfinite(pred.depth).all()


def test_missing_dit_key_is_named(tmp_path, official_states):
    dit_state, encoder_state = official_states
    broken = {k: v for k, v in dit_state.items() if k != 'dit.blocks.1.attn.q_norm.weight'}
    dit_path = write_state(broken, tmp_path / 'ppd.pth')
    enc_path = write_state(encoder_state, tmp_path / 'da2.pth')
    with pytest.raises(CheckpointError) as info:
        load_official(dit_path, enc_path, 'tiny')
    assert info.value.missing == ['dit.blocks.1.attn.q_norm.weight']
    assert 'missing keys (1): dit.blocks.1.attn.q_norm.weight' in str(info.value)


def test_unexpected_keys_and_wrong_shapes_are_named(tmp_path, official_states):
    dit_state, encoder_state = official_states
    changed = dict(dit_state)
    changed['dit.pos_embed'] = torch.zeros(3)
    changed['dit.final_layer.linear.bias'] = torch.zeros(65)
    changed['ema.something'] = torch.zeros(1)
    with pytest.raises(CheckpointError) as info:
        load_official(write_state(changed, tmp_path / 'ppd.pth'),
                      write_state(encoder_state, tmp_path / 'da2.pth'), 'tiny')
    err = info.value
    assert err.unexpected == ['dit.pos_embed', 'ema.something'] and not err.missing
    assert err.mismatched == [('dit.final_layer.linear.bias', (64,), (65,))]
    assert 'dit.final_layer.linear.bias expected (64,) got (65,)' in str(err)


def test_encoder_weights_inside_the_dit_file_override_the_encoder_file(tmp_path, official_states):
    dit_state, encoder_state = official_states
    with_sem = dict(dit_state)
    with_sem['sem_encoder.pretrained.norm.bias'] = torch.full((128,), 7.0)
    model = load_official(write_state(with_sem, tmp_path / 'ppd.pth'),
                          write_state(encoder_state, tmp_path / 'da2.pth'), 'tiny')
    assert torch.equal(model.encoder.norm.bias, torch.full((128,), 7.0))


def test_missing_file_names_path_and_fetch_helper(tmp_path):
    missing = tmp_path / 'nowhere' / 'ppd.pth'
    with pytest.raises(CheckpointNotFoundError) as info:
        load_predictor(dit_checkpoint=missing, encoder_checkpoint=missing, variant='tiny',
                       device='cpu')
    message = str(info.value)
    assert str(missing) in message and 'ppd-fetch' in message and 'models/' in message
    assert isinstance(info.value, FileNotFoundError)


def test_ppd_ros_checkpoint_round_trip_with_config(tmp_path):
    torch.manual_seed(3)
    config = get_config('tiny', name='tiny_custom', rope_base=50.0)
    model = build_model(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = save_checkpoint(model, tmp_path / 'ckpt.safetensors', {'epoch': 3, 'note': 'unit test'})
    loaded = load_checkpoint(path)
    assert loaded.config == config
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    predictor = load_predictor(path, variant='large', device='cpu')   # variant ignored
    assert predictor.config == config
    rgb = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    expected = DepthPredictor(model, 'cpu').predict(rgb, seed=5).depth
    np.testing.assert_array_equal(predictor.predict(rgb, seed=5).depth, expected)


def test_vanilla_config_round_trips(tmp_path):
    model = build_model(get_config('tiny', encoder={'type': 'none'}))
    loaded = load_checkpoint(save_checkpoint(model, tmp_path / 'v.safetensors'))
    assert loaded.encoder is None and loaded.config == model.config


def test_official_file_is_not_a_ppd_ros_checkpoint(tmp_path, official_states):
    path = write_state(official_states[0], tmp_path / 'ppd.safetensors')
    with pytest.raises(CheckpointError, match='no ppd_ros config'):
        load_checkpoint(path)
    with pytest.raises(ValueError, match='reserved'):
        save_checkpoint(build_model('tiny', device='meta'), tmp_path / 'x.safetensors',
                        {'config': '{}'})
