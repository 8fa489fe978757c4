"""colcon builds ppd_ros as an ament_python package with the layout `ros2 run/launch` expect."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

COLCON = Path(sys.executable).with_name('colcon')


def _project_files(repo: Path) -> list[str]:
    """Tracked files plus untracked ones git does not ignore: what a clean clone would hold."""
    out = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=repo,
                         check=True, capture_output=True).stdout.decode()
    return [f for f in out.split('\0') if f and (repo / f).is_file()]


@pytest.fixture(scope='module')
def install_space(tmp_path_factory, repo_root):
    if not COLCON.exists():
        pytest.fail(f'colcon not found next to {sys.executable}; install requirements.txt')
    ws = tmp_path_factory.mktemp('colcon_ws')
    src = ws / 'src' / 'ppd_ros'
    for rel in _project_files(repo_root):
        dst = src / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo_root / rel, dst)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE='1')
    proc = subprocess.run([str(COLCON), 'build', '--base-paths', 'src'], cwd=ws, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return ws / 'install' / 'ppd_ros'


def test_ament_index_marker(install_space):
    assert (install_space / 'share/ament_index/resource_index/packages/ppd_ros').is_file()
    assert (install_space / 'share/ppd_ros/package.xml').is_file()


def test_node_executable_in_lib(install_space):
    exe = install_space / 'lib/ppd_ros/depth_node'
    assert exe.is_file() and os.access(exe, os.X_OK)
    entry_points = list(install_space.glob('lib/python3*/site-packages/ppd_ros*/entry_points.txt'))
    assert entry_points, 'no entry_points.txt in the install space'
    assert 'depth_node = ppd_ros.node.depth_node:main' in entry_points[0].read_text()


def test_launch_and_config_installed(install_space, repo_root):
    assert (install_space / 'share/ppd_ros/launch/depth.launch.py').is_file()
    shipped = sorted(p.name for p in (repo_root / 'config').iterdir())
    installed = sorted(p.name for p in (install_space / 'share/ppd_ros/config').iterdir())
    assert 'depth.yaml' in installed
    assert installed == shipped


def test_models_manifest_installed(install_space):
    assert (install_space / 'share/ppd_ros/models/README.md').is_file()
    assert (install_space / 'share/ppd_ros/models/manifest.yaml').is_file()


def test_python_package_installed(install_space):
    pkgs = list(install_space.glob('lib/python3*/site-packages/ppd_ros/__init__.py'))
    assert pkgs, 'ppd_ros python package missing from the install space'


def _entry_points(install_space) -> list[str]:
    text = next(install_space.glob('lib/python3*/site-packages/ppd_ros*/entry_points.txt'))
    return [line.split('=')[0].strip() for line in text.read_text().splitlines()
            if '=' in line and not line.startswith('[')]


def _ros2_run_env(install_space) -> dict:
    """What `source install/setup.bash` gives `ros2 run`: the install's Python packages
    first and its prefix in AMENT_PREFIX_PATH (ros2 run then executes lib/ppd_ros/<tool>)."""
    site = next(install_space.glob('lib/python3*/site-packages'))
    return dict(os.environ, PYTHONPATH=str(site), AMENT_PREFIX_PATH=str(install_space),
                PYTHONDONTWRITEBYTECODE='1')


def test_every_tool_runs_as_a_package_executable(install_space, tmp_path):
    """`ros2 run ppd_ros <tool>` runs <install>/lib/ppd_ros/<tool>: each answers --help."""
    from concurrent.futures import ThreadPoolExecutor
    tools = [t for t in _entry_points(install_space) if t.startswith('ppd-')]
    assert {'ppd-predict', 'ppd-eval', 'ppd-fetch', 'ppd-train', 'ppd-synth', 'ppd-demo'} <= set(tools)
    env = _ros2_run_env(install_space)

    def help_of(tool):
        exe = install_space / 'lib' / 'ppd_ros' / tool
        assert exe.is_file() and os.access(exe, os.X_OK), tool
        return subprocess.run([str(exe), '--help'], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(zip(tools, pool.map(help_of, tools)))
    for tool, result in results.items():
        assert result.returncode == 0 and 'usage:' in result.stdout, (tool, result.stderr)


def test_ppd_predict_from_the_install_finds_the_shipped_model(install_space, tmp_path):
    """The documented `ros2 run ppd_ros ppd-predict photo.png`, outside any checkout: the
    default (tiny) model comes from the install's share folder."""
    import cv2
    import numpy as np
    cv2.imwrite(str(tmp_path / 'photo.png'), np.full((24, 32, 3), 90, dtype=np.uint8))
    result = subprocess.run([str(install_space / 'lib/ppd_ros/ppd-predict'), 'photo.png',
                             '--device', 'cpu', '--steps', '1'], cwd=tmp_path,
                            env=_ros2_run_env(install_space), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert 'synthetic rooms' in result.stderr
    assert (tmp_path / 'out' / 'ppd' / 'photo_depth.png').is_file()


def test_readme_runs_the_tools_with_ros2_run_after_colcon(install_space, repo_root):
    import re
    readme = (repo_root / 'README.md').read_text()
    colcon = readme[readme.index('## Real ROS 2 install'):readme.index('## Topics')]
    documented = set(re.findall(r'ros2 run ppd_ros ([\w-]+)', readme))
    assert documented and documented <= set(_entry_points(install_space))
    bare = re.findall(r'^(?:\$ )?(ppd-[a-z]+) ', colcon, flags=re.M)
    assert not bare, f'colcon section runs tools without ros2 run: {bare}'
