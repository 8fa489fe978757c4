"""Every command-line tool's expected errors: run as the user runs them (console scripts in
their own processes), each ends with exactly one line on stderr that says what is wrong and
what to do, a non-zero exit status, no traceback, and leaves its inputs untouched.

The cases run concurrently once per module (they are mostly process start-up)."""
from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ppd_ros.cli.tool_main import DEBUG_ENV, ToolError, run_tool

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]
TINY = REPO / 'models' / 'tiny_ppd.safetensors'


@dataclass
class Case:
    tool: str
    args: list[str]
    says: list[str]                   #: each must appear in the one error line
    status: int = 2
    env: dict[str, str] = field(default_factory=dict)
    result: subprocess.CompletedProcess | None = None
    seconds: float = 0.0


def closed_port() -> int:
    """A local TCP port nobody listens on (connection refused at once)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def digest(path: Path) -> str:
    if path.is_dir():
        return ''.join(digest(p) for p in sorted(path.rglob('*')) if p.is_file())
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """Inputs the cases point at: a small bag, an image, a folder that is not a bag."""
    from ppd_ros.bag import write_synthetic_bag
    root = tmp_path_factory.mktemp('tool_errors')
    write_synthetic_bag(root / 'bag', 2, 32, 24, storage='sqlite3')
    write_synthetic_bag(root / 'eval_out' / 'depth_bag', 2, 32, 24, storage='sqlite3')
    import cv2
    import numpy as np
    (root / 'photos').mkdir()
    cv2.imwrite(str(root / 'photos' / 'cat.png'), np.full((24, 32, 3), 80, np.uint8))
    cv2.imwrite(str(root / 'photos' / 'cat_depth.png'), np.full((24, 32, 3), 90, np.uint8))
    (root / 'notes').mkdir()
    (root / 'notes' / 'keep.txt').write_text('mine')
    (root / 'cwd').mkdir()
    return root


def cases(root: Path) -> dict[str, Case]:
    bag, photos = root / 'bag', root / 'photos'
    offline = {'HF_ENDPOINT': f'http://127.0.0.1:{closed_port()}'}
    return {
        # ppd-predict
        'predict_steps_0': Case('ppd-predict', [str(photos / 'cat.png'), '--steps', '0'],
                                ['--steps must be >= 1']),
        'predict_not_an_int': Case('ppd-predict', [str(photos / 'cat.png'), '--steps', 'x'],
                                   ["invalid int value: 'x'", '--help']),
        'predict_bad_device': Case('ppd-predict', [str(photos / 'cat.png'), '--device', 'gpu0'],
                                   ["--device 'gpu0' is not one of"]),
        'predict_bad_fov': Case('ppd-predict', [str(photos / 'cat.png'), '--ply', '--hfov', '0'],
                                ['horizontal FOV must be in (0, 180)']),
        'predict_no_image': Case('ppd-predict', [str(root / 'none.png')],
                                 ['no such image or folder']),
        'predict_over_input': Case('ppd-predict', [str(photos / 'cat.png'),
                                                   str(photos / 'cat_depth.png'),
                                                   '--outdir', str(photos)],
                                   ['would overwrite the input', 'cat_depth.png',
                                    'choose another --outdir']),
        'predict_large_missing': Case('ppd-predict', [str(photos / 'cat.png'), '--variant',
                                                      'large', '--dit-checkpoint',
                                                      str(root / 'none.pth')],
                                      ['none.pth', 'ppd-fetch', 'place the file there']),
        # ppd-eval
        'eval_no_bag': Case('ppd-eval', [str(root / 'none')], ['not a rosbag2 bag']),
        'eval_wrong_topic': Case('ppd-eval', [str(bag), '--image-topic', '/wrong',
                                              '--out', str(root / 'o1')],
                                 ['/wrong not found', 'available topics', '/camera/image_raw']),
        'eval_steps_0': Case('ppd-eval', [str(bag), '--steps', '0'], ['--steps must be >= 1']),
        'eval_stride_0': Case('ppd-eval', [str(bag), '--stride', '0'],
                              ['--stride must be >= 1']),
        'eval_bad_pictures': Case('ppd-eval', [str(bag), '--pictures', 'abc'],
                                  ["--pictures must be a count, 'none' or a list"]),
        'eval_reference_offline': Case('ppd-eval', [str(bag), '--reference-topic', '/x'],
                                       ['--reference-topic', 'give --depth-topic too']),
        'eval_over_input': Case('ppd-eval', [str(root / 'eval_out' / 'depth_bag'), '--out',
                                             str(root / 'eval_out')],
                                ['would overwrite the input', 'choose another --out']),
        'eval_missing_checkpoint': Case('ppd-eval', [str(bag), '--checkpoint',
                                                     str(root / 'none.safetensors')],
                                        ['none.safetensors', 'not found']),
        # ppd-synth
        'synth_nothing': Case('ppd-synth', [], ['--preview-dir']),
        'synth_existing': Case('ppd-synth', [str(bag), '--frames', '1'],
                               ['exists', 'pass --overwrite']),
        'synth_not_a_bag': Case('ppd-synth', [str(root / 'notes'), '--overwrite'],
                                ['not a rosbag2 bag']),
        'synth_frames_0': Case('ppd-synth', [str(root / 'new'), '--frames', '0'],
                               ['must be positive']),
        # ppd-train
        'train_evaluate_frames_0': Case('ppd-train', ['evaluate', str(TINY), '--frames', '0'],
                                        ['--frames and --steps must be >= 1']),
        'train_bad_device': Case('ppd-train', ['evaluate', str(TINY), '--device', 'gpu'],
                                 ["--device 'gpu' is not one of"]),
        'train_wrong_topic': Case('ppd-train', ['stage2', '--data', str(bag), '--image-topic',
                                                '/wrong', '--out', str(root / 't1')],
                                  ['/wrong not found', 'available topics']),
        'train_no_bag': Case('ppd-train', ['stage2', '--data', str(root / 'none'), '--out',
                                           str(root / 't2')], ['no bag at', "'synthetic'"]),
        'train_missing_init': Case('ppd-train', ['stage2', '--init', str(root / 'none.st'),
                                                 '--out', str(root / 't3')],
                                   ['no checkpoint at']),
        'train_export_over_input': Case('ppd-train', ['export', str(TINY), str(TINY)],
                                        ['would overwrite the input']),
        # the default backbone (the shipped tiny model) is found outside the checkout too
        'train_moge2_no_bag': Case('ppd-train', ['moge2', '--data', str(root / 'none'), '--out',
                                                 str(root / 'm2')], ['--data: no bag at']),
        'train_compare_no_report': Case('ppd-train', ['compare', str(root / 'r.json'), 'a', 'b'],
                                        ['no report', 'evaluate --json']),
        'train_no_command': Case('ppd-train', [], ['COMMAND', '--help']),
        # ppd-export
        'export_bad_size': Case('ppd-export', [str(root / 'exp'), '--network-size', '320'],
                                ['expected WIDTHxHEIGHT', '--help']),
        'export_no_size': Case('ppd-export', [str(root / 'exp'), '--checkpoint', str(TINY)],
                               ['give exactly one of --network-size and --image-size']),
        # ppd-fetch
        'fetch_offline': Case('ppd-fetch', ['ppd'], ['cannot reach 127.0.0.1',
                                                     'copy here', 'models/ppd.pth',
                                                     'dit_checkpoint'], 1, offline),
        # MoGe-2's file is model.pt on the hub; only the node takes its path
        'fetch_offline_moge2': Case('ppd-fetch', ['moge2'],
                                    ['resolve/main/model.pt', 'models/moge-2-vitl-normal.pt',
                                     'node parameters moge_checkpoint)'], 1, offline),
        'fetch_unknown': Case('ppd-fetch', ['weights'], ['unknown file', 'ppd, da2, moge2']),
        # ppd-demo
        'demo_missing_checkpoint': Case('ppd-demo', ['--checkpoint', str(root / 'none.st')],
                                        ['none.st', 'not found', '--checkpoint PATH']),
        'demo_frames_0': Case('ppd-demo', ['--frames', '0'], ['--frames >= 1']),
        'demo_steps_0': Case('ppd-demo', ['--steps', '0', '--out', str(root / 'd1')],
                             ['--steps must be >= 1']),
        'demo_bad_node_param': Case('ppd-demo', ['--node-param', 'steps=2', '--out',
                                                 str(root / 'd2')], ['NAME:=VALUE']),
        'demo_foreign_out': Case('ppd-demo', ['--out', str(root / 'notes')],
                                 ['not a ppd-demo output folder']),
    }


@pytest.fixture(scope='module')
def ran(workspace):
    """Run every case once (concurrently), in an empty working directory."""
    all_cases = cases(workspace)
    before = {p: digest(p) for p in (workspace / 'bag', workspace / 'photos', TINY,
                                     workspace / 'eval_out', workspace / 'notes')}

    def run(case: Case) -> None:
        started = time.monotonic()
        env = dict(os.environ, **case.env)
        env.pop(DEBUG_ENV, None)
        case.result = subprocess.run([str(BIN / case.tool), *case.args], cwd=workspace / 'cwd',
                                     env=env, capture_output=True, text=True, timeout=120)
        case.seconds = time.monotonic() - started

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(run, all_cases.values()))
    after = {p: digest(p) for p in before}
    return all_cases, before, after


CASE_NAMES = list(cases(Path('/unused')))


@pytest.mark.parametrize('name', CASE_NAMES)
def test_error_is_one_line_that_says_what_to_do(ran, name):
    case = ran[0][name]
    result = case.result
    assert result.returncode == case.status, result.stderr
    assert 'Traceback' not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f'{case.tool}: error: ') or \
        lines[0].startswith(f'{case.tool} ') and ': error: ' in lines[0]
    for text in case.says:
        assert text in lines[0], (text, lines[0])


def test_no_tool_changed_an_input_or_left_files_in_the_working_directory(ran, workspace):
    _, before, after = ran
    assert after == before
    assert list((workspace / 'cwd').iterdir()) == []   # e.g. no models/ or .cache from ppd-fetch


def test_fetch_without_internet_gives_up_at_once(workspace):
    """No retries or back-off: about as long as starting ppd-fetch at all (--help)."""
    env = dict(os.environ, HF_ENDPOINT=f'http://127.0.0.1:{closed_port()}')
    seconds = []
    for args in (['--help'], ['ppd', '--models-dir', str(workspace / 'm')]):
        started = time.monotonic()
        subprocess.run([str(BIN / 'ppd-fetch'), *args], env=env, capture_output=True,
                       timeout=120)
        seconds.append(time.monotonic() - started)
    assert seconds[1] < seconds[0] + 5, seconds
    assert not (workspace / 'm').exists()


def test_a_bug_is_one_line_too_and_the_debug_switch_shows_it(capsys, monkeypatch):
    def broken():
        return {}['missing']
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    assert run_tool('ppd-x', broken) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'unexpected KeyError' in err and DEBUG_ENV in err
    monkeypatch.setenv(DEBUG_ENV, '1')
    with pytest.raises(KeyError):
        run_tool('ppd-x', broken)


def test_expected_errors_and_tool_errors_keep_their_status(capsys):
    def missing():
        raise ToolError('no such thing; pass --thing', 3)
    assert run_tool('ppd-x', missing) == 3
    assert capsys.readouterr().err == 'ppd-x: error: no such thing; pass --thing\n'

    def lookup():
        raise LookupError('first line\n  second line')
    assert run_tool('ppd-x', lookup, lambda: (LookupError,)) == 2
    assert capsys.readouterr().err == 'ppd-x: error: first line second line\n'
