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
