"""Trainer: overfitting a fixed batch, exact resume, seed splits and datasets."""
import json

import numpy as np
import pytest
import torch

from ppd_ros.model import build_model, get_config
from ppd_ros.training.datasets import BagDepthDataset, SyntheticDepthDataset
from ppd_ros.training.rng_state import step_generator
from ppd_ros.training.seed_splits import EVAL_SEED_START, eval_seeds, train_seeds
from ppd_ros.training.sp_dit_training import FlowMatchingTask
from ppd_ros.training.stage1_regressor import Stage1Regressor, Stage1Task
from ppd_ros.training.trainer import Trainer, TrainerConfig, read_loss_log

# A micro PPD (same architecture as tiny, smaller everywhere) on 32 x 32 scenes.
MICRO = get_config('tiny', name='micro', hidden_size=32, num_heads=2, depth=2, fusion_hidden_size=64,
                   train_width=32, train_height=32,
                   encoder={'embed_dim': 32, 'depth': 1, 'num_heads': 2, 'img_size': 28})


@pytest.fixture(scope='module', autouse=True)
def single_thread():
    """Micro models run fastest (and most steadily on a shared machine) on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def micro_data():
    data = SyntheticDepthDataset(train_seeds(6), width=32, height=32)
    data.preload()
    return data


def _overfit(task, batch, steps=30, lr=2e-3):
    optimizer = torch.optim.AdamW(task.trainable_parameters(), lr=lr, weight_decay=0.0)
    losses = []
    for _ in range(steps):
        task.set_train_mode()
        loss, _ = task.loss(batch, torch.Generator().manual_seed(0))  # same noise and t each step
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def test_flow_matching_overfits_a_fixed_batch(micro_data):
    torch.manual_seed(0)
    task = FlowMatchingTask(build_model(MICRO))
    encoder_before = {k: v.clone() for k, v in task.model.encoder.state_dict().items()}
    losses = _overfit(task, micro_data.make_batch([0, 1, 2, 3]), steps=40)
    assert losses[-1] < 0.3 * losses[0]
    for key, value in task.model.encoder.state_dict().items():  # the semantics encoder is frozen
        assert torch.equal(value, encoder_before[key])


def test_stage1_regressor_overfits_a_fixed_batch(micro_data):
    torch.manual_seed(0)
    task = Stage1Task(Stage1Regressor(MICRO, head={'channels': 16}))
    losses = _overfit(task, micro_data.make_batch([0, 1, 2, 3]))
    assert losses[-1] < 0.5 * losses[0]


def _run(out_dir, data, steps, resume=False, stop_at=None):
    torch.manual_seed(123 if resume else 0)  # a resumed run must not depend on its fresh init
    task = FlowMatchingTask(build_model(MICRO))
    config = TrainerConfig(out_dir=out_dir, steps=steps, batch_size=2, lr=1e-3, seed=7,
                           log_every=1, ckpt_every=4, progress=False, lr_schedule='cosine',
                           warmup_steps=2)
    return Trainer(task, data, config).run(resume=resume, stop_at=stop_at)


def test_resume_continues_the_same_loss_curve(tmp_path, micro_data):
    k = 6
    straight = _run(tmp_path / 'straight', micro_data, 2 * k)
    first = _run(tmp_path / 'split', micro_data, 2 * k, stop_at=k)
    assert first.final_path is None and first.steps == k
    resumed = _run(tmp_path / 'split', micro_data, 2 * k, resume=True)
    assert resumed.final_path is not None and resumed.steps == 2 * k
    a = [e['loss'] for e in read_loss_log(tmp_path / 'straight' / 'loss_log.jsonl')]
    b = [e['loss'] for e in read_loss_log(tmp_path / 'split' / 'loss_log.jsonl')]
    assert len(a) == len(b) == 2 * k
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)
    assert len(set(a)) > 1
    # the final weights agree as well
    from safetensors.torch import load_file
    wa, wb = load_file(straight.final_path), load_file(resumed.final_path)
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=1e-5, atol=1e-6)


def test_final_checkpoint_is_loadable_with_metadata(tmp_path, micro_data):
    from ppd_ros.model import load_predictor
    from ppd_ros.model.checkpoint import read_checkpoint_metadata
    result = _run(tmp_path / 'run', micro_data, 2)
    metadata = read_checkpoint_metadata(result.final_path)
    assert json.loads(metadata['seed']) == 7 and json.loads(metadata['steps']) == 2
    assert 'wall_time_s' in metadata and 'command' in metadata
    rgb, _, _ = micro_data.raw(0)
    depth = load_predictor(checkpoint=result.final_path, device='cpu').predict(rgb, steps=2, seed=0).depth
    assert depth.shape == (32, 32) and np.isfinite(depth).all()


def test_train_and_eval_seeds_are_disjoint():
    train, held_out = set(train_seeds(EVAL_SEED_START)), set(eval_seeds(200))
    assert not train & held_out
    assert min(held_out) == EVAL_SEED_START
    with pytest.raises(ValueError):
        train_seeds(10, start=EVAL_SEED_START - 5)
    with pytest.raises(ValueError):
        eval_seeds(10, start=0)
    with pytest.raises(ValueError):
        SyntheticDepthDataset([0, 1, EVAL_SEED_START])


def test_batches_depend_only_on_seed_and_step(micro_data):
    a = micro_data.sample_batch(4, step_generator(1, 5))
    b = micro_data.sample_batch(4, step_generator(1, 5))
    c = micro_data.sample_batch(4, step_generator(1, 6))
    assert torch.equal(a.rgb, b.rgb) and torch.equal(a.depth, b.depth)
    assert not torch.equal(a.rgb, c.rgb)


def test_flip_augmentation_mirrors_all_channels(micro_data):
    plain = micro_data.make_batch([2], [False])
    flipped = micro_data.make_batch([2], [True])
    assert torch.equal(flipped.rgb, plain.rgb.flip(-1))
    assert torch.equal(flipped.depth, plain.depth.flip(-1))
    assert torch.equal(flipped.valid, plain.valid.flip(-1))
    assert plain.rgb.shape == (1, 3, 32, 32) and 0 <= float(plain.rgb.min()) <= float(plain.rgb.max()) <= 1
    assert (plain.depth[plain.valid] > 0).all() and (plain.depth[~plain.valid] == 0).all()


def test_bag_dataset_reads_rgbd_frames_at_training_area(tmp_path):
    from ppd_ros.bag import write_synthetic_bag
    bag = write_synthetic_bag(tmp_path / 'bag', n_frames=3, width=64, height=48, seed=1)
    data = BagDepthDataset(bag.path)        # default: the tiny training area 128 x 96
    assert len(data) == 3
    batch = data.make_batch([0, 2])
    assert batch.rgb.shape == (2, 3, 96, 128) and batch.depth.shape == (2, 1, 96, 128)
    assert batch.valid.any() and (batch.depth[batch.valid] > 0).all()


def test_bf16_autocast_training_gives_finite_losses(tmp_path, micro_data):
    torch.manual_seed(0)
    config = TrainerConfig(out_dir=tmp_path, steps=2, batch_size=2, lr=1e-3, log_every=1,
                           progress=False, precision='bf16')
    result = Trainer(FlowMatchingTask(build_model(MICRO)), micro_data, config).run()
    assert len(result.log) == 2 and all(np.isfinite(e['loss']) for e in result.log)
    from safetensors.torch import load_file
    assert all(v.dtype == torch.float32 for v in load_file(result.final_path).values())


def test_frame_cache_is_reused_only_for_the_same_scene_version(tmp_path, monkeypatch):
    import ppd_ros.synthetic.room_sampler as room_sampler
    first = SyntheticDepthDataset(train_seeds(3), 32, 24)
    first.preload(cache_dir=tmp_path)
    written = sorted(p.name for p in tmp_path.iterdir())
    assert len(written) == 2 and all(f'v{room_sampler.SCENE_VERSION}_' in n for n in written)
    again = SyntheticDepthDataset(train_seeds(3), 32, 24)
    again.preload(cache_dir=tmp_path)  # same version: loaded, nothing new written
    assert sorted(p.name for p in tmp_path.iterdir()) == written
    np.testing.assert_array_equal(again.raw(2)[0], first.raw(2)[0])
    monkeypatch.setattr(room_sampler, 'SCENE_VERSION', room_sampler.SCENE_VERSION + 1)
    SyntheticDepthDataset(train_seeds(3), 32, 24).preload(cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 4  # another version: rendered and cached anew
