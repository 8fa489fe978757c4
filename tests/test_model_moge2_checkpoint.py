"""MoGe-2 weight files: the official {model_config, model} layout and ppd_ros's own, strictly."""
import pytest
import torch
from safetensors.torch import save_file

from ppd_ros.model.checkpoint import CheckpointError, CheckpointNotFoundError
from ppd_ros.model.moge2 import build_moge2
from ppd_ros.model.moge2_checkpoint import (OFFICIAL_MOGE2_TENSORS, OFFICIAL_MOGE2_VALUES,
                                            load_any_moge2, load_moge2, load_official_moge2,
                                            save_moge2)
from ppd_ros.model.moge2_config import get_moge2_config


@pytest.fixture(scope='module')
def tiny_state():
    torch.manual_seed(1)
    model = build_moge2('moge2_tiny')
    return {k: v.clone() for k, v in model.state_dict().items()}


def write_official(path, state, config='moge2_tiny'):
    model_config = get_moge2_config(config).to_model_config() if isinstance(config, str) else config
    torch.save({'model_config': model_config, 'model': state}, path)
    return path


def test_official_file_loads_every_key(tmp_path, tiny_state):
    model = load_official_moge2(write_official(tmp_path / 'model.pt', tiny_state))
    assert model.config.name == 'moge2_tiny'
    loaded = model.state_dict()
    assert loaded.keys() == tiny_state.keys()
    assert all(torch.equal(loaded[k], v) for k, v in tiny_state.items())
    assert load_any_moge2(tmp_path / 'model.pt').config == model.config


def test_official_counts_are_the_released_network():
    state = build_moge2('moge2_vitl_normal', device='meta').state_dict()
    assert (len(state), sum(v.numel() for v in state.values())) == (
        OFFICIAL_MOGE2_TENSORS, OFFICIAL_MOGE2_VALUES) == (521, 330_901_550)


@pytest.mark.parametrize('change, attribute, key', [
    (lambda s: s.pop('mask_head.res_blocks.2.0.layers.5.bias'), 'missing',
     'mask_head.res_blocks.2.0.layers.5.bias'),
    (lambda s: s.update({'normal_head.output_blocks.4.bias': torch.zeros(3)}), 'unexpected',
     'normal_head.output_blocks.4.bias'),
    (lambda s: s.pop('encoder.backbone.mask_token'), 'missing', 'encoder.backbone.mask_token'),
    (lambda s: s.pop('encoder.image_std'), 'missing', 'encoder.image_std'),
])
def test_a_missing_or_extra_key_is_one_error_naming_it(tmp_path, tiny_state, change, attribute,
                                                       key):
    state = dict(tiny_state)
    change(state)
    with pytest.raises(CheckpointError) as info:
        load_official_moge2(write_official(tmp_path / 'model.pt', state))
    assert getattr(info.value, attribute) == [key]
    assert key in str(info.value) and '\n' not in str(info.value)


def test_wrong_shape_is_named(tmp_path, tiny_state):
    state = dict(tiny_state)
    state['scale_head.4.weight'] = torch.zeros(2, 128)
    with pytest.raises(CheckpointError) as info:
        load_official_moge2(write_official(tmp_path / 'model.pt', state))
    assert info.value.mismatched == [('scale_head.4.weight', (1, 128), (2, 128))]


def test_unsupported_or_hostile_config_is_refused_before_sizing(tmp_path, tiny_state):
    config = get_moge2_config('moge2_tiny').to_model_config()
    config['neck']['dim_res_blocks'][1] = 10 ** 9
    with pytest.raises(CheckpointError, match='unsupported MoGe-2 model_config'):
        load_official_moge2(write_official(tmp_path / 'model.pt', tiny_state, config))
    torch.save({'model': tiny_state}, tmp_path / 'bare.pt')
    with pytest.raises(CheckpointError, match='model_config'):
        load_official_moge2(tmp_path / 'bare.pt')


def test_missing_file_is_a_not_found_error(tmp_path):
    with pytest.raises(CheckpointNotFoundError):
        load_official_moge2(tmp_path / 'nowhere.pt')


def test_ppd_ros_format_round_trip(tmp_path, tiny_state):
    model = build_moge2('moge2_tiny')
    model.load_state_dict(tiny_state)
    path = save_moge2(model, tmp_path / 'm.safetensors', {'steps': 3})
    loaded = load_moge2(path)
    assert loaded.config == model.config
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in tiny_state.items())
    assert load_any_moge2(path).config == model.config
    save_file({k: v for k, v in tiny_state.items()}, str(tmp_path / 'plain.safetensors'))
    with pytest.raises(CheckpointError, match='not a ppd_ros MoGe-2 checkpoint'):
        load_moge2(tmp_path / 'plain.safetensors')
