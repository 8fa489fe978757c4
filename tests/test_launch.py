"""launch/depth.launch.py: its structure and the rules it applies (always: launch and
launch_ros are not installable here), and a real launch where launch_ros and an installed
ppd_ros are available."""
import ast
import subprocess
import sys
import textwrap

import pytest
import yaml

from ppd_ros.evaluation.node_process import parameter_text
from ppd_ros.node.launch_configuration import (PARAMETER_ARGUMENTS, LaunchArgumentError,
                                               node_arguments, node_environment,
                                               parameter_overrides, ros_arguments)
from ppd_ros.pipeline.package_paths import resolve_package_path
from ros_helpers import REPO_ROOT, ros_env, tiny_checkpoint  # noqa: F401 (fixture, used lazily)

LAUNCH_FILE = REPO_ROOT / 'launch' / 'depth.launch.py'
REMAPPED = {'image', 'compressed_image', 'camera_info', 'depth_reference'}
EXPECTED_ARGUMENTS = REMAPPED | {
    'namespace', 'params_file', 'use_sim_time', 'use_fastdds_profile', 'lifecycle', 'autostart',
    'log_level', 'checkpoint', 'dit_checkpoint', 'encoder_checkpoint', 'variant', 'device',
    'steps', 'depth_mode', 'depth_encoding', 'image_transport', 'qos_reliability'}


def _calls(tree, name):
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and getattr(n.func, 'id', getattr(n.func, 'attr', None)) == name]


def _assigned(tree, name):
    """The literal value assigned to a module-level name."""
    node, = [n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == name]
    return ast.literal_eval(node.value)


@pytest.fixture(scope='module')
def launch_tree():
    return ast.parse(LAUNCH_FILE.read_text(), filename=str(LAUNCH_FILE))


@pytest.fixture(scope='module')
def node_call(launch_tree):
    """The call that creates the depth_node action (Node or LifecycleNode)."""
    call, = [c for c in ast.walk(launch_tree) if isinstance(c, ast.Call) and any(
        k.arg == 'executable' and getattr(k.value, 'value', None) == 'depth_node'
        for k in c.keywords)]
    return {k.arg: k.value for k in call.keywords}


def test_launch_file_declares_the_expected_arguments(launch_tree):
    functions = {n.name for n in launch_tree.body if isinstance(n, ast.FunctionDef)}
    assert 'generate_launch_description' in functions
    declared = {c.args[0].value for c in _calls(launch_tree, 'DeclareLaunchArgument')}
    assert declared == EXPECTED_ARGUMENTS
    for call in _calls(launch_tree, 'DeclareLaunchArgument'):
        assert any(k.arg == 'description' for k in call.keywords)
    # every argument is either a remapping / the namespace / the params file, or performed
    # for launch_configuration, which knows every parameter argument
    performed = set(_assigned(launch_tree, 'NODE_ARGUMENTS'))
    assert performed == declared - REMAPPED - {'namespace', 'params_file'}
    assert set(PARAMETER_ARGUMENTS) <= performed


def test_profile_goes_to_the_node_alone(launch_tree, node_call):
    """Not SetEnvironmentVariable: an include would leak it to every later process."""
    assert not _calls(launch_tree, 'SetEnvironmentVariable')
    env, = _calls(node_call['additional_env'], 'node_environment')
    source = LAUNCH_FILE.read_text()
    assert 'fastdds_large_messages.xml' in source and 'depth.yaml' in source


def test_launch_file_starts_depth_node_or_its_managed_kind(launch_tree, node_call):
    assert node_call['package'].value == 'ppd_ros'
    remapped = {t.elts[0].value for t in node_call['remappings'].elts}
    assert remapped == {'image', 'image/compressed', 'camera_info', 'depth_reference'}
    params = node_call['parameters'].elts  # the YAML first, then the overrides
    assert len(params) == 2 and isinstance(params[1], ast.Name)
    assert _calls(node_call['arguments'], 'node_arguments')
    assert _calls(node_call['ros_arguments'], 'ros_arguments')
    kinds, = [n.value for n in ast.walk(launch_tree) if isinstance(n, ast.Assign)
              and getattr(n.targets[0], 'id', '') == 'node_action']
    assert {kinds.body.id, kinds.orelse.id} == {'LifecycleNode', 'Node'}
    # autostart: configure at once, activate after configuring (not after a deactivate)
    handler, = _calls(launch_tree, 'OnStateTransition')
    keywords = {k.arg: getattr(k.value, 'value', None) for k in handler.keywords}
    assert keywords['start_state'] == 'configuring' and keywords['goal_state'] == 'inactive'


def test_variant_alone_selects_the_official_weights():
    overrides = parameter_overrides({'variant': 'large', 'use_sim_time': 'false'})
    assert overrides == {'variant': 'large', 'checkpoint': '', 'use_sim_time': False}
    assert parameter_overrides({'dit_checkpoint': 'w/ppd.pth'})['checkpoint'] == ''
    # an explicit checkpoint wins; nothing given keeps the params file's values
    assert parameter_overrides({'variant': 'large', 'checkpoint': 'mine.safetensors'})[
        'checkpoint'] == 'mine.safetensors'
    assert parameter_overrides({'variant': '', 'checkpoint': ''}) == {'use_sim_time': False}


def test_launch_arguments_become_typed_parameters_and_options():
    overrides = parameter_overrides({'depth_mode': 'reference', 'depth_encoding': '16UC1',
                                     'steps': '8', 'qos_reliability': 'best_effort',
                                     'image_transport': 'compressed', 'use_sim_time': 'true'})
    assert overrides == {'depth.mode': 'reference', 'depth.encoding': '16UC1', 'steps': 8,
                         'qos.reliability': 'best_effort', 'image_transport': 'compressed',
                         'use_sim_time': True}
    with pytest.raises(LaunchArgumentError, match="steps:='four' is not an integer"):
        parameter_overrides({'steps': 'four'})
    assert node_environment({'use_fastdds_profile': 'true'}, '/p.xml') == {
        'FASTRTPS_DEFAULT_PROFILES_FILE': '/p.xml', 'FASTDDS_DEFAULT_PROFILES_FILE': '/p.xml'}
    assert node_environment({'use_fastdds_profile': 'false'}, '/p.xml') == {}
    assert node_arguments({'lifecycle': 'true'}) == ['--lifecycle']
    assert node_arguments({'lifecycle': 'false'}) == []
    assert ros_arguments({'log_level': 'debug'}) == ['--log-level', 'debug']
    assert ros_arguments({'log_level': ''}) == []


@pytest.mark.parametrize('params_checkpoint', ['', 'models/tiny_ppd.safetensors'])
def test_node_given_variant_large_loads_large_whatever_the_params_file_says(params_checkpoint,
                                                                            tmp_path):
    """What variant:=large hands the node on top of a params file, the shipped one or one that
    names a ppd_ros checkpoint (which would win over variant): the node must look for the
    official Large files (absent here), not run the tiny model."""
    if resolve_package_path('models/ppd.pth') is not None:
        pytest.skip('official weights installed: the node would load Large for minutes')
    params = yaml.safe_load((REPO_ROOT / 'config' / 'depth.yaml').read_text())
    params['/**']['ros__parameters']['checkpoint'] = params_checkpoint
    params_file = tmp_path / 'params.yaml'
    params_file.write_text(yaml.safe_dump(params))
    overrides = parameter_overrides({'variant': 'large'})
    args = [a for name, value in overrides.items()
            for a in ('-p', f"{name}:={parameter_text(value)}")]
    proc = subprocess.run([sys.executable, '-m', 'ppd_ros.node.depth_node', '--ros-args',
                           '--params-file', str(params_file), *args],
                          cwd=REPO_ROOT, env=ros_env(), capture_output=True, text=True,
                          timeout=60)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and 'Traceback' not in output
    assert "dit_checkpoint 'models/ppd.pth' not found" in output
    assert 'ready:' not in output


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
            'device': 'cpu', 'depth_mode': 'range', 'log_level': 'debug'}.items()),
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
    assert "depth.mode 'range'" in output and '[DEBUG]' in output, output
    assert 'large-message profile' not in output, output  # the node has the profile
    assert 'launch_ns.depth_node' in output, output
    assert 'Traceback' not in output, output


def test_ros_interface_page_names_every_launch_argument(launch_tree):
    page = (REPO_ROOT / 'docs' / 'ros_interface.md').read_text()
    for name in {c.args[0].value for c in _calls(launch_tree, 'DeclareLaunchArgument')}:
        assert f'`{name}`' in page, name
