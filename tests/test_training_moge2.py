"""Training the small MoGe-2: per-seed cameras, losses, ppd-train moge2 / export / evaluate-moge2."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ppd_ros.model.checkpoint import (CheckpointError, load_checkpoint, read_safetensors,
                                      save_checkpoint)
from ppd_ros.model.moge2_checkpoint import load_moge2
from ppd_ros.model.pixel_perfect_depth import build_model
from ppd_ros.synthetic import generate_frame, optical_rays
from ppd_ros.training.cli import main
from ppd_ros.training.moge2_training import (FOV_RANGE_DEG, SyntheticGeometryDataset,
                                             camera_points, focal_px, fov_for_seed,
                                             geometry_losses)


def test_each_seed_has_its_own_fixed_field_of_view():
    fovs = [fov_for_seed(s) for s in range(200)]
    assert fovs == [fov_for_seed(s) for s in range(200)]
    assert FOV_RANGE_DEG[0] <= min(fovs) and max(fovs) <= FOV_RANGE_DEG[1]
    assert np.std(fovs) > 10


def test_batches_carry_the_focal_lengths_of_their_frames():
    dataset = SyntheticGeometryDataset([3, 4], 64, 48)
    batch = dataset.make_batch([0, 1, 0], flips=[False, False, True])
    frame = generate_frame(4, 64, 48, hfov_deg=fov_for_seed(4))
    assert batch.fx[1].item() == pytest.approx(frame.intrinsics.fx, rel=1e-6)
    assert batch.fx[0] == batch.fx[2]            # flipping keeps a centred camera's K
    assert torch.equal(batch.rgb[2], batch.rgb[0].flip(-1))
    assert 'fov45-95' in dataset._cache_path('cache').name


def test_camera_points_match_the_renderer():
    frame = generate_frame(5, 64, 48, hfov_deg=60.0)
    depth = torch.from_numpy(np.nan_to_num(frame.depth))[None, None]
    points = camera_points(depth, torch.tensor([focal_px(60.0, 64)]))[0].numpy()
    expected = (optical_rays(frame.intrinsics) * np.nan_to_num(frame.depth)).transpose(1, 2, 0)
    assert np.allclose(points, expected, atol=1e-5)


def test_losses_are_scale_invariant_for_points_and_learn_the_scale():
    dataset = SyntheticGeometryDataset([1, 2], 64, 48)
    batch = dataset.make_batch([0, 1])
    truth = camera_points(batch.depth, batch.fx)
    outputs = {'points': truth / 3.0 + (~batch.valid[:, 0, ..., None]),   # junk where invalid
               'metric_scale': torch.tensor([3.0, 3.0]),
               'mask': batch.valid[:, 0].float() * 0.98 + 0.01}
    terms = geometry_losses(outputs, batch)
    assert terms['points'] < 1e-5 and terms['gradient'] < 1e-4 and terms['scale'] < 1e-5
    assert terms['mask'] < 0.03
    outputs['metric_scale'] = torch.tensor([6.0, 6.0])
    assert geometry_losses(outputs, batch)['scale'] == pytest.approx(np.log(2), rel=1e-4)


@pytest.fixture(scope='module')
def ppd_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    return save_checkpoint(build_model('tiny'), tmp_path_factory.mktemp('ppd') / 'tiny_ppd.safetensors')


def test_train_export_with_shared_backbone_and_evaluate(tmp_path, ppd_checkpoint, capsys):
    out = tmp_path / 'run'
    assert main(['moge2', '--backbone', str(ppd_checkpoint), '--out', str(out), '--steps', '2',
                 '--batch-size', '2', '--train-frames', '6', '--threads', '1',
                 '--no-progress', '--log-every', '1']) == 0
    trained = load_moge2(out / 'final.safetensors')
    ppd = load_checkpoint(ppd_checkpoint)
    assert torch.equal(trained.encoder.backbone.blocks[3].mlp.fc1.weight,
                       ppd.encoder.blocks[3].mlp.fc1.weight)     # frozen
    assert trained.config.encoder.intermediate_layers == (0, 1, 2, 3)
    log = [json.loads(line) for line in (out / 'loss_log.jsonl').read_text().splitlines()]
    assert {'points', 'gradient', 'scale', 'mask'} <= set(log[-1])

    shipped = ppd_checkpoint.parent / 'tiny_moge2.safetensors'
    assert main(['export', str(out / 'final.safetensors'), str(shipped),
                 '--share-backbone-with', str(ppd_checkpoint)]) == 0
    assert shipped.stat().st_size < 0.6 * (out / 'final.safetensors').stat().st_size
    again = load_moge2(shipped)
    rgb = np.random.default_rng(0).random((1, 3, 96, 128), dtype=np.float32)
    with torch.no_grad():
        a = again(torch.from_numpy(rgb), grid=(6, 8))['points']
        b = trained(torch.from_numpy(rgb), grid=(6, 8))['points']
    assert (a - b).abs().max() < 1e-2 * b.abs().max()         # float16 storage

    assert main(['evaluate-moge2', str(shipped), '--frames', '2']) == 0
    assert 'metric AbsRel' in capsys.readouterr().out

    torch.manual_seed(123)   # training reseeded the global RNG with 0, the fixture's seed
    changed = build_model('tiny')
    save_checkpoint(changed, ppd_checkpoint.parent / 'tiny_ppd.safetensors')
    with pytest.raises(CheckpointError, match='no longer holds the backbone'):
        load_moge2(shipped)


MODELS = Path(__file__).resolve().parents[1] / 'models'


def test_shipped_tiny_moge2_matches_manifest_loads_and_fits_the_budget():
    import yaml

    from ppd_ros.training.model_manifest import sha256_of
    manifest = {e['file']: e for e in yaml.safe_load((MODELS / 'manifest.yaml').read_text())['files']}
    entry = manifest['tiny_moge2.safetensors']
    path = MODELS / entry['file']
    assert entry['size_bytes'] == path.stat().st_size and entry['sha256'] == sha256_of(path)
    assert sum(e['size_bytes'] for e in manifest.values()) <= 20 * 10 ** 6
    assert sum(p.stat().st_size for p in MODELS.glob('tiny_*.safetensors')) <= 20 * 10 ** 6
    model = load_moge2(path)                       # backbone from tiny_ppd.safetensors
    ppd = load_checkpoint(MODELS / 'tiny_ppd.safetensors')
    stored = {k.split('.')[3] for k in read_safetensors(path)
              if k.startswith('encoder.backbone.blocks.')}
    assert stored == {'7', '8', '9', '10', '11'}    # the blocks training changed
    assert torch.equal(model.encoder.backbone.blocks[6].attn.qkv.weight,
                       ppd.encoder.blocks[6].attn.qkv.weight)          # borrowed
    assert not torch.equal(model.encoder.backbone.blocks[11].attn.qkv.weight,
                           ppd.encoder.blocks[11].attn.qkv.weight)     # stored, overrides


def test_trained_backbone_blocks_are_stored_and_override_the_borrowed_ones(tmp_path,
                                                                          ppd_checkpoint):
    from ppd_ros.training.moge2_training import MoGe2Task, moge2_with_ppd_backbone
    from ppd_ros.training.moge2_training import export_moge2
    from ppd_ros.model.moge2_checkpoint import save_moge2
    model = moge2_with_ppd_backbone(ppd_checkpoint)
    task = MoGe2Task(model, backbone_blocks=1)
    trained = {id(p) for p in task.trainable_parameters()}
    backbone = model.encoder.backbone
    assert id(backbone.blocks[3].attn.qkv.weight) in trained and id(backbone.norm.weight) in trained
    assert id(backbone.blocks[2].attn.qkv.weight) not in trained
    with torch.no_grad():
        backbone.blocks[3].attn.qkv.weight.add_(0.5)      # as if trained
    source = save_moge2(model, tmp_path / 'trained.safetensors')
    target = export_moge2(source, ppd_checkpoint.parent / 'tiny_moge2_b.safetensors',
                          backbone_from=ppd_checkpoint)
    from safetensors import safe_open
    with safe_open(str(target), 'pt') as handle:
        stored = set(handle.keys())
    assert 'encoder.backbone.blocks.3.attn.qkv.weight' in stored
    assert 'encoder.backbone.blocks.2.attn.qkv.weight' not in stored
    loaded = load_moge2(target)
    assert torch.allclose(loaded.encoder.backbone.blocks[3].attn.qkv.weight,
                          backbone.blocks[3].attn.qkv.weight, atol=1e-2)
    assert torch.equal(loaded.encoder.backbone.blocks[2].attn.qkv.weight,
                       backbone.blocks[2].attn.qkv.weight)
