"""The project rule: only the ROS adapter imports rclpy; everything else is plain Python."""
import pkgutil
import subprocess
import sys

import ppd_ros

#: Modules allowed to import rclpy (and ROS message packages): the node and live evaluation.
ROS_ADAPTERS = ('ppd_ros.node', 'ppd_ros.evaluation.live_session')
ROS_PACKAGES = ('rclpy', 'rcl_interfaces', 'sensor_msgs', 'std_msgs', 'diagnostic_msgs')


def _plain_python_modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(ppd_ros.__path__, 'ppd_ros.')]
    return sorted(n for n in names if not n.startswith(ROS_ADAPTERS))


def test_plain_python_modules_exist():
    modules = _plain_python_modules()
    for expected in ('ppd_ros.model.dit', 'ppd_ros.geometry.unproject', 'ppd_ros.alignment',
                     'ppd_ros.evaluation.metrics', 'ppd_ros.pipeline.depth_pipeline'):
        assert expected in modules


def test_model_geometry_alignment_evaluation_import_no_ros():
    code = ('import importlib, sys\n'
            f'for name in {_plain_python_modules()!r}:\n'
            '    importlib.import_module(name)\n'
            f'bad = sorted(m for m in sys.modules if m.split(".")[0] in {ROS_PACKAGES!r})\n'
            'print(bad)\n'
            'sys.exit(1 if bad else 0)\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
