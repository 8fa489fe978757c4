"""Int8 weight storage: per-row quantisation error, key handling, and strict failures."""
import json

import pytest
import torch

from ppd_ros.model.checkpoint import CheckpointError, load_checkpoint, read_safetensors, save_checkpoint
from ppd_ros.model.configs import get_config
from ppd_ros.model.int8_storage import (SCALE_SUFFIX, dequantize_row_int8, dequantize_state,
                                        quantize_row_int8, quantize_state)
from ppd_ros.model.pixel_perfect_depth import build_model
from ppd_ros.training.checkpoint_export import export_weights, stored_tensors


def test_row_error_is_at_most_half_a_step_of_that_rows_scale():
    generator = torch.Generator().manual_seed(0)
    # rows of very different magnitude: one scale per row keeps small rows accurate
    weight = torch.randn(64, 3, 5, 5, generator=generator) * torch.logspace(-4, 1, 64)[:, None, None, None]
    weight[7] = 0  # an all-zero row must not divide by zero
    q, scale = quantize_row_int8(weight)
    assert q.dtype == torch.int8 and q.shape == weight.shape and scale.shape == (64,)
    assert int(q.abs().max()) == 127 and scale[7] == 0
    restored = dequantize_row_int8(q, scale)
    error = (restored - weight).abs().reshape(64, -1).amax(dim=1)
    assert torch.all(error <= 0.5 * scale * (1 + 1e-5))
    row_max = weight.abs().reshape(64, -1).amax(dim=1)
    assert torch.all(error[row_max > 0] / row_max[row_max > 0] <= 0.5 / 127 + 1e-6)
    assert torch.equal(restored[7], torch.zeros_like(restored[7]))


def test_only_large_matrices_are_quantised_and_reading_restores_every_key():
    tensors = {'a.weight': torch.randn(128, 64), 'a.bias': torch.randn(128),
               'small.weight': torch.randn(8, 8), 'count': torch.tensor([3])}
    stored = quantize_state(tensors)
    assert set(stored) == {'a.weight', 'a.weight' + SCALE_SUFFIX, 'a.bias', 'small.weight', 'count'}
    assert stored['a.weight'].dtype == torch.int8
    assert stored['a.bias'] is tensors['a.bias'] and stored['small.weight'] is tensors['small.weight']
    restored = dequantize_state(stored)
    assert set(restored) == set(tensors) and restored['a.weight'].dtype == torch.float32
    assert torch.allclose(restored['a.weight'], tensors['a.weight'], atol=tensors['a.weight'].abs().max() / 254 + 1e-6)
    with pytest.raises(ValueError, match='already an int8 scale'):
        quantize_state(stored)


@pytest.mark.parametrize('damage, message', [
    (lambda s: s.pop('a.weight' + SCALE_SUFFIX), 'without its scale'),
    (lambda s: s.pop('a.weight'), 'has no int8 tensor'),
    (lambda s: s.__setitem__('a.weight' + SCALE_SUFFIX, torch.ones(3)), 'does not match'),
    (lambda s: s.__setitem__('a.weight', torch.zeros(128, 64)), 'stored as torch.float32'),
])
def test_inconsistent_int8_entries_are_refused(damage, message):
    stored = quantize_state({'a.weight': torch.randn(128, 64)})
    damage(stored)
    with pytest.raises(ValueError, match=message):
        dequantize_state(stored)


def test_export_quantises_only_the_given_prefixes_and_loads_strictly(tmp_path):
    torch.manual_seed(0)
    model = build_model(get_config('tiny'))
    source = save_checkpoint(model, tmp_path / 'fp32.safetensors')
    half = export_weights(source, tmp_path / 'half.safetensors')
    mixed = export_weights(source, tmp_path / 'mixed.safetensors', int8_prefixes=['encoder.'])
    assert mixed.stat().st_size < half.stat().st_size
    stored = stored_tensors(read_safetensors(source), int8_prefixes=['encoder.'])
    int8_keys = [k for k, v in stored.items() if v.dtype == torch.int8]
    assert int8_keys and all(k.startswith('encoder.') for k in int8_keys)
    assert all(v.dtype == torch.float16 for k, v in stored.items()
               if k.startswith('dit.') and v.is_floating_point())
    loaded = load_checkpoint(mixed)
    for key, value in model.state_dict().items():
        got = loaded.state_dict()[key]
        assert got.dtype == torch.float32
        if key.startswith('dit.'):
            assert torch.equal(got, value.half().float()), key
        else:
            assert torch.allclose(got, value, atol=float(value.abs().max()) / 254 + 1e-3), key
    # exporting an exported file again gives the same tensors (the int8 rounding is kept)
    again = export_weights(mixed, tmp_path / 'again.safetensors', int8_prefixes=['encoder.'])
    for key, value in load_checkpoint(again).state_dict().items():
        assert torch.allclose(value, loaded.state_dict()[key], rtol=1e-6, atol=0), key
    from ppd_ros.model.checkpoint import safetensors_metadata
    assert json.loads(safetensors_metadata(mixed)['int8_prefixes']) == ['encoder.']
    plain = export_weights(mixed, tmp_path / 'plain.safetensors')  # back to float16 only
    assert 'int8_prefixes' not in safetensors_metadata(plain)
    assert safetensors_metadata(plain)['storage_dtype'] == 'float16'


def test_a_truncated_int8_checkpoint_is_a_checkpoint_error(tmp_path):
    from safetensors.torch import load_file, save_file

    from ppd_ros.model.checkpoint import safetensors_metadata
    source = save_checkpoint(build_model(get_config('tiny')), tmp_path / 'fp32.safetensors')
    mixed = export_weights(source, tmp_path / 'mixed.safetensors', int8_prefixes=['encoder.'])
    tensors = load_file(str(mixed))
    scale_key = next(k for k in tensors if k.endswith(SCALE_SUFFIX))
    del tensors[scale_key]
    broken = tmp_path / 'broken.safetensors'
    save_file(tensors, str(broken), metadata=safetensors_metadata(mixed))
    with pytest.raises(CheckpointError, match='without its scale'):
        load_checkpoint(broken)
