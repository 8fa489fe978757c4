"""ppd-train end to end at toy size: stage 1 -> SP-DiT (+ float16 export) / vanilla -> evaluate."""
import json

import numpy as np
import pytest
import torch

from ppd_ros.model import load_predictor
from ppd_ros.model.checkpoint import CheckpointError, CheckpointNotFoundError, read_checkpoint_metadata
from ppd_ros.training.cli import main
from ppd_ros.training.stage1_regressor import load_stage1
from ppd_ros.training.trainer import read_loss_log

def assert_one_line_error(capsys, text: str) -> None:
    err = capsys.readouterr().err
    assert text in err and err.startswith('ppd-train: error:') and err.count('\n') == 1, err


COMMON = ['--steps', '2', '--batch-size', '2', '--train-frames', '4', '--log-every', '1',
          '--no-progress', '--threads', '1']


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp('train')
    threads = torch.get_num_threads()  # main(--threads) sets it process-wide
    assert main(['stage1', '--out', str(root / 's1'), *COMMON]) == 0
    assert main(['stage2', '--stage1', str(root / 's1' / 'final.safetensors'), '--out', str(root / 'sp'),
                 '--export', str(root / 'tiny_ppd.safetensors'), *COMMON]) == 0
    assert main(['stage2', '--no-semantics', '--out', str(root / 'van'), *COMMON]) == 0
    torch.set_num_threads(threads)
    return root


def test_stage2_uses_the_stage1_encoder_and_exports_float16(runs):
    stage1 = load_stage1(runs / 's1' / 'final.safetensors')
    fp32 = load_predictor(checkpoint=runs / 'sp' / 'final.safetensors', device='cpu', precision='fp32').model
    for key, value in stage1.encoder.state_dict().items():
        assert torch.equal(fp32.encoder.state_dict()[key], value)
    exported = runs / 'tiny_ppd.safetensors'
    assert exported.stat().st_size < 0.6 * (runs / 'sp' / 'final.safetensors').stat().st_size
    half = load_predictor(checkpoint=exported, device='cpu', precision='fp32')
    metadata = read_checkpoint_metadata(exported)
    assert json.loads(metadata['steps']) == 2 and metadata['storage_dtype'] == 'float16'
    assert metadata['command'].startswith('ppd-train stage2')
    rgb = (np.random.default_rng(0).random((96, 128, 3)) * 255).astype(np.uint8)
    assert half.predict(rgb, steps=4, seed=1).depth.shape == (96, 128)
    assert len(read_loss_log(runs / 'sp' / 'loss_log.jsonl')) == 2


def test_vanilla_has_no_encoder(runs):
    model = load_predictor(checkpoint=runs / 'van' / 'final.safetensors', device='cpu', precision='fp32').model
    assert model.encoder is None and model.config.name == 'tiny_vanilla'


def test_evaluate_prints_table_and_writes_json(runs, capsys):
    out = runs / 'eval.json'
    assert main(['evaluate', str(runs / 's1' / 'final.safetensors'), str(runs / 'tiny_ppd.safetensors'),
                 '--names', 'stage1', 'sp', '--frames', '2', '--json', str(out)]) == 0
    table = capsys.readouterr().out
    assert '| stage1 |' in table and '| sp |' in table and 'AbsRel' in table
    report = json.loads(out.read_text())
    assert report['seeds'][0] >= 1_000_000
    for name in ('stage1', 'sp'):
        summary = report['models'][name]['summary']
        assert summary['n_frames'] == 2
        assert 0 <= summary['d1'] <= 1 and summary['abs_rel'] >= 0


def test_fine_tuning_starts_from_the_given_checkpoint(runs, capsys):
    threads = torch.get_num_threads()
    start = runs / 'tiny_ppd.safetensors'  # float16 export: fine-tuned in float32
    assert main(['stage2', '--init', str(start), '--out', str(runs / 'ft'), '--lr', '0',
                 *COMMON]) == 0
    torch.set_num_threads(threads)
    before = load_predictor(checkpoint=start, device='cpu', precision='fp32').model.state_dict()
    after = load_predictor(checkpoint=runs / 'ft' / 'final.safetensors', device='cpu', precision='fp32').model
    for key, value in after.state_dict().items():  # lr 0: nothing moved, and nothing is random
        assert value.dtype == torch.float32 and torch.equal(value, before[key]), key
    metadata = read_checkpoint_metadata(runs / 'ft' / 'final.safetensors')
    assert metadata['init'] == str(start)
    assert metadata['init_command'] == read_checkpoint_metadata(start)['command']
    assert main(['stage2', '--init', str(start), '--no-semantics', '--out', str(runs / 'x'), *COMMON]) == 2
    assert_one_line_error(capsys, '--init')


def test_schedule_timesteps_option_is_recorded_and_validated(runs, capsys):
    threads = torch.get_num_threads()
    assert main(['stage2', '--init', str(runs / 'tiny_ppd.safetensors'), '--schedule-steps', '4',
                 '--out', str(runs / 'sched'), *COMMON]) == 0
    torch.set_num_threads(threads)
    metadata = read_checkpoint_metadata(runs / 'sched' / 'final.safetensors')
    assert metadata['timesteps'] == 'schedule of 4 steps'
    assert read_checkpoint_metadata(runs / 'sp' / 'final.safetensors')['timesteps'] == 'logit-normal'
    assert main(['stage2', '--schedule-steps', '0', '--out', str(runs / 'y'), *COMMON]) == 2
    assert_one_line_error(capsys, 'schedule-steps')


def test_schedule_fraction_is_recorded_and_validated(runs, capsys):
    threads = torch.get_num_threads()
    assert main(['stage2', '--init', str(runs / 'tiny_ppd.safetensors'), '--schedule-steps', '4',
                 '--schedule-fraction', '0.5', '--out', str(runs / 'mixed'), *COMMON]) == 0
    torch.set_num_threads(threads)
    metadata = read_checkpoint_metadata(runs / 'mixed' / 'final.safetensors')
    assert metadata['timesteps'] == '0.5 schedule of 4 steps, rest logit-normal'
    assert main(['stage2', '--schedule-fraction', '0.5', '--out', str(runs / 'y'), *COMMON]) == 2
    assert_one_line_error(capsys, 'needs --schedule-steps')
    assert main(['stage2', '--schedule-steps', '4', '--schedule-fraction', '2', '--out',
                 str(runs / 'y'), *COMMON]) == 2
    assert_one_line_error(capsys, 'schedule-fraction')


def test_stage1_fine_tuning_starts_from_the_given_stage1_checkpoint(runs):
    threads = torch.get_num_threads()
    start = runs / 's1' / 'final.safetensors'
    assert main(['stage1', '--init', str(start), '--out', str(runs / 's1_ft'), '--lr', '0', *COMMON]) == 0
    torch.set_num_threads(threads)
    before = load_stage1(start).state_dict()
    after = load_stage1(runs / 's1_ft' / 'final.safetensors').state_dict()
    assert after.keys() == before.keys()
    for key, value in after.items():  # lr 0: the regressor, head included, is the checkpoint's
        assert torch.equal(value, before[key]), key


def test_fine_tuning_with_stage1_swaps_in_that_encoder(runs):
    threads = torch.get_num_threads()
    new_stage1 = runs / 's1_other'
    assert main(['stage1', '--out', str(new_stage1), '--seed', '7', *COMMON]) == 0
    start = runs / 'sp' / 'final.safetensors'
    assert main(['stage2', '--init', str(start), '--stage1', str(new_stage1 / 'final.safetensors'),
                 '--out', str(runs / 'reprompt'), '--lr', '0', *COMMON]) == 0
    torch.set_num_threads(threads)
    encoder = load_stage1(new_stage1 / 'final.safetensors').encoder.state_dict()
    dit_before = load_predictor(checkpoint=start, device='cpu', precision='fp32').model.state_dict()
    after = load_predictor(checkpoint=runs / 'reprompt' / 'final.safetensors', device='cpu', precision='fp32').model
    old_encoder = {k[len('encoder.'):]: v for k, v in dit_before.items() if k.startswith('encoder.')}
    assert any(not torch.equal(encoder[k], old_encoder[k]) for k in encoder)  # a different encoder
    for key, value in after.state_dict().items():
        expected = encoder[key[len('encoder.'):]] if key.startswith('encoder.') else dit_before[key]
        assert torch.equal(value, expected), key
    assert read_checkpoint_metadata(runs / 'reprompt' / 'final.safetensors')['init_encoder'] == \
        str(new_stage1 / 'final.safetensors')


def test_stage1_encoder_grows_by_identity_blocks_and_reprompts_the_dit(runs, capsys):
    threads = torch.get_num_threads()
    start = runs / 's1' / 'final.safetensors'
    grown_path = runs / 's1_grown' / 'final.safetensors'
    assert main(['stage1', '--init', str(start), '--encoder-depth', '6', '--out', str(runs / 's1_grown'),
                 '--lr', '0', *COMMON]) == 0
    assert main(['stage2', '--init', str(runs / 'sp' / 'final.safetensors'), '--stage1', str(grown_path),
                 '--out', str(runs / 'sp_grown'), '--lr', '0', *COMMON]) == 0
    assert main(['stage2', '--stage1', str(grown_path), '--out', str(runs / 'sp_new'), *COMMON]) == 0
    torch.set_num_threads(threads)
    from_scratch = load_predictor(checkpoint=runs / 'sp_new' / 'final.safetensors', device='cpu', precision='fp32').model
    assert from_scratch.config.encoder.depth == 6
    before, grown = load_stage1(start).eval(), load_stage1(grown_path).eval()
    assert before.config.encoder.depth == 4 and grown.config.encoder.depth == 6
    image = torch.rand(2, 3, 96, 128)
    assert torch.equal(before(image), grown(image))  # the new blocks start as identities
    sp = load_predictor(checkpoint=runs / 'sp' / 'final.safetensors', device='cpu', precision='fp32').model
    reprompted = load_predictor(checkpoint=runs / 'sp_grown' / 'final.safetensors', device='cpu', precision='fp32').model
    assert reprompted.config.encoder == grown.config.encoder
    for key, value in reprompted.dit.state_dict().items():  # the DiT is kept as it was
        assert torch.equal(value, sp.dit.state_dict()[key]), key
    for key, value in reprompted.encoder.state_dict().items():
        assert torch.equal(value, grown.encoder.state_dict()[key]), key
    assert main(['stage1', '--init', str(grown_path), '--encoder-depth', '4', '--out', str(runs / 'z'), *COMMON]) == 2
    assert_one_line_error(capsys, 'shrink')
    assert main(['stage1', '--encoder-depth', '0', '--out', str(runs / 'z'), *COMMON]) == 2
    assert_one_line_error(capsys, 'encoder-depth')


def test_stage1_export_can_share_the_encoder_stored_in_the_sp_dit(runs, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    from ppd_ros.model.checkpoint import safetensors_metadata
    from ppd_ros.training.checkpoint_export import export_weights
    stage1 = runs / 's1' / 'final.safetensors'
    full = export_weights(stage1, tmp_path / 'full_stage1.safetensors')
    sp_dit = tmp_path / 'tiny_ppd.safetensors'
    sp_dit.write_bytes((runs / 'tiny_ppd.safetensors').read_bytes())  # prompted by s1's encoder
    head = tmp_path / 'stage1_head.safetensors'
    assert main(['export', str(stage1), str(head), '--share-encoder-with', str(sp_dit)]) == 0
    assert head.stat().st_size < 0.5 * full.stat().st_size
    assert safetensors_metadata(head)['encoder_file'] == 'tiny_ppd.safetensors'
    expected = load_stage1(full).state_dict()
    loaded = load_stage1(head).state_dict()
    assert loaded.keys() == expected.keys()
    for key, value in loaded.items():
        assert torch.equal(value, expected[key]), key
    tensors = load_file(str(sp_dit))  # the same SP-DiT with one encoder weight changed
    tensors['encoder.norm.weight'] = tensors['encoder.norm.weight'] + 1
    other = tmp_path / 'other.safetensors'
    save_file(tensors, str(other), metadata=safetensors_metadata(sp_dit))
    assert main(['export', str(stage1), str(tmp_path / 'x.safetensors'), '--share-encoder-with', str(other)]) == 2
    assert_one_line_error(capsys, 'does not hold the encoder')
    sp_dit.write_bytes(other.read_bytes())
    with pytest.raises(CheckpointError, match='no longer holds the encoder'):
        load_stage1(head)
    sp_dit.unlink()
    with pytest.raises(CheckpointNotFoundError, match='which is missing'):
        load_stage1(head)
    assert main(['evaluate', str(full), str(head), '--frames', '1']) == 2  # before any model is evaluated
    assert_one_line_error(capsys, 'which is missing')
    assert main(['evaluate', str(tmp_path / 'none.safetensors'), '--frames', '1']) == 2
    assert_one_line_error(capsys, 'checkpoint not found')


def test_int8_encoder_chain_stage1_to_sp_dit_to_shared_head(runs, tmp_path, capsys):
    """Stage 2 trained on the int8-stored encoder ships it unchanged and shares it with stage 1."""
    from ppd_ros.model.checkpoint import safetensors_metadata
    threads = torch.get_num_threads()
    stage1_int8 = tmp_path / 'stage1_int8.safetensors'
    assert main(['export', str(runs / 's1' / 'final.safetensors'), str(stage1_int8), '--int8', 'encoder.']) == 0
    assert main(['stage2', '--stage1', str(stage1_int8), '--out', str(tmp_path / 'sp'), *COMMON]) == 0
    torch.set_num_threads(threads)
    sp_dit = tmp_path / 'tiny_ppd.safetensors'
    assert main(['export', str(tmp_path / 'sp' / 'final.safetensors'), str(sp_dit), '--int8', 'encoder.']) == 0
    assert json.loads(safetensors_metadata(sp_dit)['int8_prefixes']) == ['encoder.']
    head = tmp_path / 'stage1_head.safetensors'
    assert main(['export', str(stage1_int8), str(head), '--share-encoder-with', str(sp_dit),
                 '--int8', 'encoder.']) == 0
    expected = load_stage1(stage1_int8)
    shipped = load_predictor(checkpoint=sp_dit, device='cpu', precision='fp32').model
    for key, value in load_stage1(head).state_dict().items():
        assert torch.equal(value, expected.state_dict()[key]), key
    for key, value in expected.encoder.state_dict().items():  # the encoder the DiT was trained with
        assert torch.allclose(shipped.encoder.state_dict()[key], value, rtol=1e-6, atol=0), key
    assert main(['export', str(stage1_int8), str(tmp_path / 'x.safetensors'), '--share-encoder-with', str(sp_dit)]) == 2  # float16 would differ
    assert_one_line_error(capsys, 'does not hold the encoder')
