"""launch/depth.launch.py: declared arguments (always), and a real launch where launch_ros
and an installed ppd_ros are available."""
import ast
import subprocess
import sys
import textwrap

import pytest

from ros_helpers import REPO_ROOT, ros_env, tiny_checkpoint  # noqa: F401 (fixture, used lazily)

LAUNCH_FILE = REPO_ROOT / 'launch' / 'depth.launch.py'
EXPECTED_ARGUMENTS = {'image', 'compressed_image', 'camera_info', 'depth_reference',
                      'namespace', 'params_file', 'variant', 'steps', 'device', 'use_sim_time',
                      'use_fastdds_profile'}


def _calls(tree, name):
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and getattr(n.func, 'id', getattr(n.func, 'attr', None)) == name]


@pytest.fixture(scope='module')
def launch_tree():
    return ast.parse(LAUNCH_FILE.read_text(), filename=str(LAUNCH_FILE))


def test_launch_file_declares_the_expected_arguments(launch_tree):
    functions = {n.name for n in launch_tree.body if isinstance(n, ast.FunctionDef)}
    assert 'generate_launch_description' in functions
    declared = {c.args[0].value for c in _calls(launch_tree, 'DeclareLaunchArgument')}
    assert declared == EXPECTED_ARGUMENTS
    for call in _calls(launch_tree, 'DeclareLaunchArgument'):
        assert any(k.arg == 'description' for k in call.keywords)


def test_launch_file_sets_both_fastdds_profile_variables(launch_tree):
    names = {c.args[0].value for c in _calls(launch_tree, 'SetEnvironmentVariable')}
    assert names == {'FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE'}
    assert all(any(k.arg == 'condition' for k in c.keywords)
               for c in _calls(launch_tree, 'SetEnvironmentVariable'))
    source = LAUNCH_FILE.read_text()
    assert 'fastdds_large_messages.xml' in source and 'depth.yaml' in source


def test_launch_file_starts_depth_node_with_remappings(launch_tree):
    node, = _calls(launch_tree, 'Node')
    keywords = {k.arg: k.value for k in node.keywords}
    assert keywords['package'].value == 'ppd_ros'
    assert keywords['executable'].value == 'depth_node'
    remapped = {t.elts[0].value for t in keywords['remappings'].elts}
    assert remapped == {'image', 'image/compressed', 'camera_info', 'depth_reference'}
    params = keywords['parameters'].elts  # the YAML first, then the overrides
    assert len(params) == 2 and isinstance(params[1], ast.Name)


_LAUNCH_SCRIPT = textwrap.dedent('''
    import sys
    from launch import LaunchDescription, LaunchService
    from launch.actions import IncludeLaunchDescription, Shutdown, TimerAction
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    launch_file, params_file = sys.argv[1:3]
    service = LaunchService()
    service.include_launch_description(LaunchDescription([
        IncludeLaunchDescription(PythonLaunchDescriptionSource(launch_file), launch_arguments={
            'image': '/launch_test/image', 'camera_info': '/launch_test/camera_info',
            'namespace': 'launch_ns', 'params_file': params_file, 'steps': '2',
            'device': 'cpu'}.items()),
        TimerAction(period=25.0, actions=[Shutdown(reason='test done')]),
    ]))
    sys.exit(service.run())
''')


def test_real_launch_starts_the_node(request, tmp_path):
    pytest.importorskip('launch_ros')
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    try:
        get_package_share_directory('ppd_ros')
    except (PackageNotFoundError, ValueError, OSError):
        pytest.skip('ppd_ros is not installed in an ament prefix (colcon build + source)')
    tiny_checkpoint = request.getfixturevalue('tiny_checkpoint')
    params = tmp_path / 'params.yaml'
    params.write_text('/**:\n  ros__parameters:\n'
                      f'    checkpoint: {tiny_checkpoint}\n    num_threads: 1\n')
    proc = subprocess.run([sys.executable, '-c', _LAUNCH_SCRIPT, str(LAUNCH_FILE), str(params)],
                          env=ros_env(), capture_output=True, text=True, timeout=120)
    output = proc.stdout + proc.stderr
    assert 'ready:' in output, output
    assert 'listening on /launch_test/image' in output, output
    assert 'launch_ns.depth_node' in output, output
    assert 'Traceback' not in output, output
