"""depth_node start-up failures (no traceback, non-zero exit) and lazy mode."""
import subprocess
import sys

from ros_helpers import (NAMESPACE, REPO_ROOT, NodeProcess, last_diagnostics, ros_env,
                         run_probe, tiny_checkpoint)  # noqa: F401 (fixture)


def _run_node_expecting_exit(*ros_args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'ppd_ros.node.depth_node', '--ros-args',
                           '--params-file', str(REPO_ROOT / 'config' / 'depth.yaml'), *ros_args],
                          cwd=REPO_ROOT, env=ros_env(), capture_output=True, text=True, timeout=60)


def test_missing_checkpoint_is_one_fatal_error_and_nonzero_exit(tmp_path):
    missing = tmp_path / 'no_such_model.safetensors'
    proc = _run_node_expecting_exit('-p', f'checkpoint:={missing}')
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert 'Traceback' not in output
    fatal = [line for line in output.splitlines() if '[FATAL]' in line]
    assert len(fatal) == 1, output
    assert str(missing) in fatal[0] and 'ppd-fetch' in fatal[0]


def test_missing_official_weights_name_the_first_missing_file(tmp_path):
    proc = _run_node_expecting_exit('-p', "checkpoint:=''", '-p', 'variant:=large', '-p',
                                    f'dit_checkpoint:={tmp_path / "ppd.pth"}')
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and 'Traceback' not in output
    assert f'{tmp_path / "ppd.pth"}' in output and 'ppd-fetch' in output


def test_invalid_parameters_stop_the_node_with_a_clear_message():
    for args, text in ((('-p', 'depth.min_m:=5.0', '-p', 'depth.max_m:=1.0'), 'depth.min_m'),
                       (('-p', 'depth.mode:=range', '-p', 'range.far_m:=0.2'), 'near_m < far_m'),
                       (('-p', 'steps:=0'), 'steps'),
                       (('-p', 'image_transport:=theora'), 'image_transport')):
        proc = _run_node_expecting_exit(*args)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0 and 'Traceback' not in output, output
        assert '[FATAL]' in output and text in output, output


def test_lazy_node_runs_no_inference_without_subscribers(tiny_checkpoint, tmp_path):
    with NodeProcess(tmp_path / 'node.log', params={'checkpoint': str(tiny_checkpoint),
                                                    'num_threads': 1}) as node:
        node.wait_ready()
        result = run_probe({'rate_hz': 10.0, 'phases': [{'kind': 'good', 'count': 15}],
                            'record': ['/diagnostics'], 'settle_s': 1.5}, tmp_path)
    status = last_diagnostics(result)
    values = status['values']
    assert int(values['frames processed']) == 0
    assert int(values['frames skipped (no subscribers)']) >= 10
    assert 'idle' in status['message']
    assert 'dit (ms)' not in values  # the model never ran
    assert f'{NAMESPACE}/depth/relative' not in result['topics']


def test_malformed_ros_arguments_exit_without_traceback():
    proc = _run_node_expecting_exit('-p', 'checkpoint:=')
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr and 'cannot initialise ROS' in proc.stderr


def test_help_prints_usage_and_exits_without_starting_the_node():
    proc = subprocess.run([sys.executable, '-m', 'ppd_ros.node.depth_node', '--help'],
                          cwd=REPO_ROOT, env=ros_env(), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and proc.stderr == ''
    assert proc.stdout.startswith('usage: depth_node')
    for text in ('--lifecycle', '--ros-args', 'depth/image', 'depth/relative', 'qos.reliability'):
        assert text in proc.stdout
    assert 'ready:' not in proc.stdout


def test_unknown_option_is_one_line_and_exit_status_2():
    proc = subprocess.run([sys.executable, '-m', 'ppd_ros.node.depth_node', '--bogus'],
                          cwd=REPO_ROOT, env=ros_env(), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and proc.stdout == ''
    assert proc.stderr.count('\n') == 1 and '--bogus' in proc.stderr
