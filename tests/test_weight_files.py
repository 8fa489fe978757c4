"""Damaged and hostile weight files: one CheckpointError line, from the reader, ppd-predict and
depth_node alike (non-zero exit, no traceback)."""
import subprocess
import sys

import pytest
import torch

from hostile_weights import hostile_checkpoints, hostile_torch_files
from ppd_ros.model import CheckpointError, build_model, load_predictor, save_checkpoint
from ppd_ros.model.checkpoint import (load_state_dict_strict, read_state_and_config,
                                      read_state_dict)
from ros_helpers import REPO_ROOT, make_tiny_checkpoint, ros_env

TORCH_FILES = ['code_running_pickle', 'plain_pickle', 'not_plain_tensors', 'sparse_tensor',
               'truncated', 'empty', 'png_named_pth']
CHECKPOINTS = ['empty', 'truncated', 'huge_header', 'malformed_json', 'non_object_json',
               'offsets_out_of_range', 'zip_container', 'num_heads_zero', 'string_size',
               'train_area_1e12', 'nan_rope_base', 'config_not_json', 'int8_without_scale']


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp('hostile_weights')
    good = make_tiny_checkpoint(root / 'good.safetensors')
    return {'good': good, 'checkpoint': hostile_checkpoints(good, root / 'ckpt'),
            'torch': hostile_torch_files(root / 'pth')}


def _one_line_naming(error: BaseException, path, text: str) -> str:
    message = str(error)
    assert '\n' not in message and str(path) in message and text in message, message
    return message


@pytest.mark.parametrize('name', CHECKPOINTS)
def test_hostile_checkpoint_is_one_checkpoint_error(files, name):
    path, text = files['checkpoint'][name]
    with pytest.raises(CheckpointError) as info:
        load_predictor(path, device='cpu')
    _one_line_naming(info.value, path, text)


@pytest.mark.parametrize('name', TORCH_FILES)
def test_hostile_torch_file_is_one_checkpoint_error(files, name, capfd):
    path, text = files['torch'][name]
    with pytest.raises(CheckpointError) as info:
        read_state_dict(path)
    _one_line_naming(info.value, path, text)
    assert 'must never run' not in capfd.readouterr().out


def test_config_and_state_file_reads_plain_config_only(tmp_path):
    path = tmp_path / 'model.pt'
    torch.save({'model_config': {'dim': 8, 'heads': [1, 2], 'name': 'x'},
                'model': {'w': torch.ones(2)}}, path)
    state, config = read_state_and_config(path)
    assert config == {'dim': 8, 'heads': [1, 2], 'name': 'x'} and torch.equal(state['w'],
                                                                              torch.ones(2))
    torch.save({'model_config': {'dim': torch.zeros(1)}, 'model': {}}, path)
    with pytest.raises(CheckpointError, match="'model_config' holds a Tensor"):
        read_state_and_config(path)
    torch.save({'model': {}}, path)
    with pytest.raises(CheckpointError, match="'model' and 'model_config'"):
        read_state_and_config(path)


def test_tensor_of_the_wrong_kind_is_refused():
    model = build_model('tiny', device='meta')
    state = {k: torch.zeros(v.shape, dtype=v.dtype) for k, v in model.state_dict().items()}
    key = 'dit.final_layer.linear.weight'
    state[key] = torch.zeros(state[key].shape, dtype=torch.int64)
    with pytest.raises(CheckpointError, match=f'{key} is torch.int64'):
        load_state_dict_strict(model, state, assign=True)


def test_long_key_lists_stay_on_one_short_line(tmp_path):
    state = {f'junk.{i}': torch.zeros(1) for i in range(500)}
    path = tmp_path / 'junk.safetensors'
    save_checkpoint(build_model('tiny'), path)
    with pytest.raises(CheckpointError) as info:
        load_state_dict_strict(build_model('tiny', device='meta'), state, source=str(path))
    assert len(info.value.missing) > 12 and len(info.value.unexpected) == 500
    assert '\n' not in str(info.value) and len(str(info.value)) < 1500


def _predict_argv(kind, path, image):
    if kind == 'checkpoint':
        return [str(image), '--checkpoint', str(path), '--device', 'cpu']
    return [str(image), '--dit-checkpoint', str(path), '--encoder-checkpoint', str(path),
            '--variant', 'large', '--device', 'cpu']


def _node_args(kind, path):
    params = ([f'checkpoint:={path}'] if kind == 'checkpoint' else
              ['checkpoint:=""', f'dit_checkpoint:={path}', f'encoder_checkpoint:={path}',
               'variant:=large'])
    args = ['depth_node', '--ros-args', '-p', 'device:=cpu', '-p', 'retain_heap:=false']
    for param in params:
        args += ['-p', param]
    return args


@pytest.fixture(scope='module')
def image(tmp_path_factory):
    import cv2
    import numpy as np
    path = tmp_path_factory.mktemp('img') / 'frame.png'
    cv2.imwrite(str(path), np.zeros((8, 8, 3), np.uint8))
    return path


ALL = [('checkpoint', n) for n in CHECKPOINTS] + [('torch', n) for n in TORCH_FILES]


@pytest.mark.parametrize('kind, name', ALL)
def test_ppd_predict_reports_one_line_and_fails(files, image, tmp_path, capfd, kind, name):
    from ppd_ros.cli.predict import main
    path, text = files[kind][name]
    assert main(_predict_argv(kind, path, image) + ['--outdir', str(tmp_path)]) != 0
    out, err = capfd.readouterr()
    assert err.count('\n') == 1 and err.startswith('ppd-predict: error: ') and text in err, err
    assert 'must never run' not in out


@pytest.mark.parametrize('kind, name', ALL)
def test_node_reports_one_fatal_line_and_fails(files, capfd, kind, name):
    from ppd_ros.node.depth_node import main
    path, text = files[kind][name]
    assert main(_node_args(kind, path)) == 1
    out, err = capfd.readouterr()
    assert 'Traceback' not in out + err
    errors = [line for line in (out + err).splitlines() if '[ERROR]' in line or '[FATAL]' in line]
    assert len(errors) == 1 and '[FATAL]' in errors[0] and text in errors[0], out + err


def test_real_processes_exit_non_zero_without_traceback(files, image, tmp_path):
    path, text = files['torch']['code_running_pickle']
    runs = {
        'ppd-predict': [sys.executable, '-m', 'ppd_ros.cli.predict',
                        *_predict_argv('torch', path, image), '--outdir', str(tmp_path)],
        'depth_node': [sys.executable, '-m', 'ppd_ros.node.depth_node',
                       *_node_args('torch', path)[1:]],
    }
    for tool, argv in runs.items():
        proc = subprocess.run(argv, cwd=REPO_ROOT, env=ros_env(), capture_output=True,
                              text=True, timeout=120)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, tool
        assert 'Traceback' not in output and 'must never run' not in output, output
        lines = [line for line in output.splitlines() if line.strip()]
        assert len(lines) == 1 and text in lines[0], (tool, lines)


@pytest.mark.parametrize('name', ['huge_header', 'num_heads_zero'])
def test_other_tools_report_one_line_and_fail(files, tmp_path, capfd, name):
    from eval_helpers import eval_args, write_bag_with_corrupt_frames
    from ppd_ros.demo.cli import main as demo_main
    from ppd_ros.evaluation.cli import main as eval_main
    from ppd_ros.training.cli import main as train_main
    path, text = files['checkpoint'][name]
    write_bag_with_corrupt_frames(tmp_path / 'bag')
    assert eval_main(eval_args(tmp_path / 'bag', tmp_path / 'eval', path)) != 0
    assert demo_main(['--checkpoint', str(path), '--out', str(tmp_path / 'demo')]) != 0
    assert train_main(['evaluate', str(path), '--frames', '1']) != 0
    lines = capfd.readouterr().err.splitlines()
    assert len(lines) == 3, lines
    for line in lines:
        assert text in line and line.startswith("ppd-"), line


def test_live_start_up_failure_is_the_node_fatal_line():
    from ppd_ros.evaluation.live import startup_failure
    tail = ('[INFO] [1.0] [cam.depth_node]: starting\n'
            '[FATAL] [1.5] [cam.depth_node]: cannot load the depth model from x: y')
    assert startup_failure(tail) == 'cannot load the depth model from x: y'
    assert startup_failure('a\nb\nc\nd') == 'last output: b | c | d'
