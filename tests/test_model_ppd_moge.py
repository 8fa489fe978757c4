"""PPD with MoGe-2 semantics: the large_moge layout, loading ppd_moge.pth + model.pt strictly,
one shared encoder, and one encoder pass per frame for the DiT and the geometry."""
import math

import numpy as np
import pytest
import torch

from ppd_ros.model import CheckpointError, build_model, get_config, load_predictor
from ppd_ros.model.checkpoint import official_key_shapes
from ppd_ros.model.metric_predictor import metric_predictor, scaled_camera
from ppd_ros.model.moge2 import build_moge2
from ppd_ros.model.moge2_config import get_moge2_config
from ppd_ros.model.moge2_geometry import KnownIntrinsics
from ppd_ros.model.ppd_moge import load_official_ppd_moge
from ppd_ros.model.preprocess import image_to_tensor, resize_keep_aspect

TINY_MOGE_PPD = get_config('tiny', name='tiny_moge', encoder={
    'type': 'moge2', 'intermediate_layers': [0, 1, 2, 3], 'dim_out': 128})


def tiny_moge_config():
    data = get_moge2_config('moge2_tiny').to_model_config()
    data['encoder']['backbone']['depth'] = 4
    data['encoder']['intermediate_layers'] = [0, 1, 2, 3]
    return data


def test_large_moge_has_ppd_dit_keys_and_the_moge_encoder():
    state = build_model('large_moge', device='meta').state_dict()
    dit = {k: tuple(v.shape) for k, v in state.items() if k.startswith('dit.')}
    assert dit == official_key_shapes('large')[0]                 # same 352 keys as ppd.pth
    encoder = {k: v for k, v in state.items() if k.startswith('encoder.')}
    moge = build_moge2('moge2_vitl_normal', device='meta').state_dict()
    assert {k: tuple(v.shape) for k, v in encoder.items()} == {
        k: tuple(v.shape) for k, v in moge.items() if k.startswith('encoder.')}
    assert len(encoder) == 353 and sum(v.numel() for v in encoder.values()) == 308_567_046
    config = get_config('large_moge')
    assert config.encoder.semantic_dim == 1024 and config.encoder.intermediate_layers == (5, 11, 17, 23)


def live(model, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return model


@pytest.fixture(scope='module')
def release_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('release')
    moge = live(build_moge2(tiny_moge_config()), 1)
    torch.save({'model_config': tiny_moge_config(), 'model': moge.state_dict()},
               folder / 'model.pt')
    ppd = live(build_model(TINY_MOGE_PPD), 2)
    dit = {k: v for k, v in ppd.state_dict().items() if k.startswith('dit.')}
    torch.save(dit, folder / 'ppd_moge.pth')
    return folder, dit


def test_release_files_load_strictly_with_one_shared_encoder(release_files):
    folder, dit = release_files
    ppd, moge = load_official_ppd_moge(folder / 'ppd_moge.pth', folder / 'model.pt',
                                       TINY_MOGE_PPD)
    assert ppd.encoder is moge.encoder
    assert all(torch.equal(ppd.state_dict()[k], v) for k, v in dit.items())
    image = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        tokens = ppd.semantics(image)
        f0, _ = moge.encoder.features(image, 4, 6)
    assert torch.equal(tokens, f0.flatten(2).transpose(1, 2))
    predictor = load_predictor(dit_checkpoint=folder / 'ppd_moge.pth',
                               encoder_checkpoint=folder / 'model.pt', variant=TINY_MOGE_PPD,
                               device='cpu')
    assert predictor.model.config == TINY_MOGE_PPD


@pytest.mark.parametrize('change, attribute, key', [
    (lambda s: s.pop('dit.blocks.1.attn.k_norm.bias'), 'missing', 'dit.blocks.1.attn.k_norm.bias'),
    (lambda s: s.update({'ema.dit.x': torch.zeros(1)}), 'unexpected', 'ema.dit.x'),
    (lambda s: s.update({'sem_encoder.encoder.extra': torch.zeros(1)}), 'unexpected',
     'encoder.extra'),
])
def test_dit_file_problems_are_one_error_naming_the_key(tmp_path, release_files, change,
                                                        attribute, key):
    folder, dit = release_files
    state = dict(dit)
    change(state)
    torch.save(state, tmp_path / 'ppd_moge.pth')
    with pytest.raises(CheckpointError) as info:
        load_official_ppd_moge(tmp_path / 'ppd_moge.pth', folder / 'model.pt', TINY_MOGE_PPD)
    assert getattr(info.value, attribute) == [key]


def test_semantics_encoder_weights_in_the_dit_file_override_it_as_in_the_reference(
        tmp_path, release_files):
    folder, dit = release_files
    state = dict(dit)
    state['sem_encoder.encoder.backbone.norm.bias'] = torch.full((128,), 3.0)
    state['sem_encoder.neck.input_blocks.0.bias'] = torch.zeros(128)     # unused: ignored
    torch.save(state, tmp_path / 'ppd_moge.pth')
    ppd, moge = load_official_ppd_moge(tmp_path / 'ppd_moge.pth', folder / 'model.pt',
                                       TINY_MOGE_PPD)
    assert ppd.encoder is not moge.encoder
    assert torch.equal(ppd.encoder.backbone.norm.bias, torch.full((128,), 3.0))
    assert not torch.equal(moge.encoder.backbone.norm.bias, torch.full((128,), 3.0))


def count_encoder_passes(moge_model):
    passes = []
    moge_model.encoder.backbone.patch_embed.register_forward_hook(lambda *_: passes.append(1))
    return passes


def test_one_encoder_pass_serves_the_dit_and_the_geometry(release_files):
    folder, _ = release_files
    rgb = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    ppd, moge = load_official_ppd_moge(folder / 'ppd_moge.pth', folder / 'model.pt',
                                       TINY_MOGE_PPD)
    passes = count_encoder_passes(moge)
    shared = metric_predictor(ppd, moge, device='cpu')
    assert shared.grid == 'shared'
    result = shared.predict(rgb, steps=2, seed=0)
    assert len(passes) == 1
    h, w = result.network_depth.shape
    assert (h, w) == (96, 128) and result.geometry.depth.shape == (96, 128)
    # the same as decoding the encoder features of the DiT's image on its g16 grid
    image = image_to_tensor(resize_keep_aspect(rgb, 128 * 96))
    with torch.no_grad():
        f0, cls = moge.encoder.features(image, 6, 8)
    expected = shared.moge.geometry_from_features(f0, cls, h, w)
    assert np.array_equal(result.geometry.depth, expected.depth)
    # MoGe-2's own infer on the resized image: a second pass, here the same 6 x 8 grid
    exact = metric_predictor(ppd, moge, device='cpu', grid='exact')
    passes.clear()
    again = exact.predict(rgb, steps=2, seed=0)
    assert len(passes) == 2
    assert np.allclose(again.geometry.depth, result.geometry.depth, rtol=1e-5)
    assert np.allclose(again.depth, result.depth, atol=1e-6)
    assert result.geometry_grid == again.geometry_grid == (6, 8)


def test_a_g16_grid_below_moge_token_range_runs_moge_own_grid(release_files):
    folder, _ = release_files
    ppd, moge = load_official_ppd_moge(folder / 'ppd_moge.pth', folder / 'model.pt',
                                       TINY_MOGE_PPD)
    passes = count_encoder_passes(moge)
    small = metric_predictor(ppd, moge, device='cpu', network_area=64 * 48)  # g16: 3 x 4
    rgb = np.random.default_rng(2).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    result = small.predict(rgb, steps=1, seed=0)
    assert len(passes) == 2 and result.geometry_grid == (6, 8)     # MoGe-2's 48 tokens
    assert result.geometry.depth.shape == result.network_depth.shape == (48, 64)


def test_known_camera_is_rescaled_to_the_network_size(release_files):
    folder, _ = release_files
    ppd, moge = load_official_ppd_moge(folder / 'ppd_moge.pth', folder / 'model.pt',
                                       TINY_MOGE_PPD)
    camera = KnownIntrinsics(150.0, 150.0, 79.5, 59.5)
    rgb = np.random.default_rng(1).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    result = metric_predictor(ppd, moge, device='cpu').predict(rgb, steps=1, seed=0,
                                                               camera=camera)
    K = result.geometry.camera_matrix(160, 120)
    assert np.allclose(K, [[150, 0, 79.5], [0, 150, 59.5], [0, 0, 1]], atol=1e-4)
    assert not result.geometry.intrinsics_estimated
    small = scaled_camera(camera, 160, 120, 128, 96)
    assert math.isclose(small.fx, 120.0) and math.isclose(small.cx, 63.5)


def test_samples_give_a_spread_beside_the_geometry_of_one_encoder_pass(release_files):
    folder, _ = release_files
    ppd, moge = load_official_ppd_moge(folder / 'ppd_moge.pth', folder / 'model.pt',
                                       TINY_MOGE_PPD)
    passes = count_encoder_passes(moge)
    shared = metric_predictor(ppd, moge, device='cpu')
    rgb = np.random.default_rng(3).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    one = shared.predict(rgb, steps=1, seed=0)
    passes.clear()
    ensemble = shared.predict(rgb, steps=1, seed=0, samples=3)
    assert len(passes) == 1
    assert ensemble.network_samples.shape == (3, 96, 128)
    assert ensemble.spread.shape == (120, 160) and np.all(ensemble.spread >= 0)
    assert one.spread is None and ensemble.geometry_grid == one.geometry_grid == (6, 8)
    assert np.array_equal(ensemble.geometry.depth, one.geometry.depth)
