"""The tiny recipe's configs and the weight files shipped in models/."""
from pathlib import Path

import numpy as np
import pytest
import yaml

from ppd_ros.training.model_manifest import sha256_of
from ppd_ros.training.recipe_configs import recipe_config
from ppd_ros.training.stage1_regressor import Stage1Regressor

MODELS = Path(__file__).resolve().parents[1] / 'models'
SHIPPED = ('tiny_stage1_regressor.safetensors', 'tiny_ppd.safetensors', 'tiny_vanilla.safetensors')


def test_recipe_dit_is_wide_enough_to_carry_the_noise_of_a_stem_patch():
    # v = eps - x0 must be predictable per pixel: the stem's D channels must hold the
    # stem_patch^2 noise values of its patch (Large: 1024 = 4 * 16 * 16).
    for variant in ('tiny_ppd', 'tiny_vanilla'):
        config = recipe_config(variant)
        assert config.hidden_size >= config.stem_patch_size ** 2
        assert config.fusion_hidden_size >= config.stem_patch_size ** 2


def test_sp_dit_and_vanilla_differ_only_in_the_encoder():
    sp, vanilla = recipe_config('tiny_ppd').to_dict(), recipe_config('tiny_vanilla').to_dict()
    for key in sp:
        if key not in ('name', 'encoder'):
            assert sp[key] == vanilla[key], key
    assert vanilla['encoder']['type'] == 'none' and sp['encoder']['type'] == 'dinov2'
    assert Stage1Regressor('tiny').config.encoder == recipe_config('tiny_ppd').encoder


@pytest.mark.skipif(not all((MODELS / f).is_file() for f in SHIPPED), reason='tiny weights not built')
def test_shipped_weights_match_manifest_and_load():
    from ppd_ros.training.evaluate_models import load_any_predictor
    manifest = {e['file']: e for e in yaml.safe_load((MODELS / 'manifest.yaml').read_text())['files']}
    assert sum((MODELS / f).stat().st_size for f in SHIPPED) <= 20 * 10 ** 6
    rgb = (np.random.default_rng(0).random((96, 128, 3)) * 255).astype(np.uint8)
    for name in SHIPPED:
        entry = manifest[name]
        assert entry['size_bytes'] == (MODELS / name).stat().st_size
        assert entry['sha256'] == sha256_of(MODELS / name)
        depth = load_any_predictor(MODELS / name).predict(rgb, steps=4, seed=0).depth
        assert depth.shape == (96, 128) and np.isfinite(depth).all()


@pytest.mark.skipif(not all((MODELS / f).is_file() for f in SHIPPED), reason='tiny weights not built')
def test_shipped_sp_dit_is_prompted_by_the_shipped_stage1_encoder():
    import torch
    from ppd_ros.model.predictor import load_predictor
    from ppd_ros.training.stage1_regressor import load_stage1
    stage1 = load_stage1(MODELS / 'tiny_stage1_regressor.safetensors').encoder.state_dict()
    encoder = load_predictor(checkpoint=MODELS / 'tiny_ppd.safetensors', device='cpu', precision='fp32').model.encoder
    assert encoder.state_dict().keys() == stage1.keys()
    for key, value in encoder.state_dict().items():
        assert torch.equal(value, stage1[key]), key
