"""What launch/depth.launch.py gives depth_node, from its launch arguments (no rclpy, no launch).

The launch file performs its arguments to strings and passes them here, so the rules are
plain functions that tests run without the launch system:

- parameters come from params_file first, then from the launch arguments that were given
  (an empty argument keeps the params_file's value);
- a model chosen by variant, dit_checkpoint or encoder_checkpoint without checkpoint
  empties a checkpoint the params file may set (a ppd_ros checkpoint wins over variant), so
  variant:=large loads the official Large files; `checkpoint:=...` always wins;
- the Fast DDS profile goes into the node's own environment (both variable names, so every
  Fast DDS version finds it), never into the launch's, so processes started after an include
  of this launch file do not inherit it.
"""
from __future__ import annotations

from collections.abc import Mapping

from ppd_ros.ros_conventions.fastdds_profile import PROFILE_VARIABLES

#: launch argument -> (node parameter, type); applied only when the argument is not empty.
PARAMETER_ARGUMENTS: dict[str, tuple[str, type]] = {
    'checkpoint': ('checkpoint', str),
    'dit_checkpoint': ('dit_checkpoint', str),
    'encoder_checkpoint': ('encoder_checkpoint', str),
    'variant': ('variant', str),
    'device': ('device', str),
    'steps': ('steps', int),
    'depth_mode': ('depth.mode', str),
    'depth_encoding': ('depth.encoding', str),
    'image_transport': ('image_transport', str),
    'qos_reliability': ('qos.reliability', str),
}
#: Arguments that choose the model without a ppd_ros checkpoint.
OFFICIAL_WEIGHT_ARGUMENTS = ('variant', 'dit_checkpoint', 'encoder_checkpoint')
TRUE_WORDS = ('true', '1', 'yes', 'on')


class LaunchArgumentError(ValueError):
    """A launch argument whose value cannot be used; the message says which and why."""


def _flag(values: Mapping[str, str], name: str) -> bool:
    return values.get(name, '').strip().lower() in TRUE_WORDS


def parameter_overrides(values: Mapping[str, str]) -> dict[str, object]:
    """Node parameters set by the launch arguments `values` (name -> performed string)."""
    overrides: dict[str, object] = {'use_sim_time': _flag(values, 'use_sim_time')}
    for argument, (parameter, kind) in PARAMETER_ARGUMENTS.items():
        text = values.get(argument, '').strip()
        if not text:
            continue
        try:
            overrides[parameter] = kind(text)
        except ValueError:
            raise LaunchArgumentError(f"launch argument {argument}:='{text}' is not "
                                      f'{"an integer" if kind is int else "valid"}') from None
    if 'checkpoint' not in overrides and any(values.get(a, '').strip()
                                             for a in OFFICIAL_WEIGHT_ARGUMENTS):
        overrides['checkpoint'] = ''  # the chosen model, not the params file's checkpoint
    return overrides


def node_environment(values: Mapping[str, str], profile_path: str) -> dict[str, str]:
    """Variables added to the node's environment only: the Fast DDS large-message profile
    under both names when use_fastdds_profile is true."""
    if not _flag(values, 'use_fastdds_profile'):
        return {}
    return {name: profile_path for name in PROFILE_VARIABLES}


def is_managed(values: Mapping[str, str]) -> bool:
    """lifecycle:=true: a managed (lifecycle) node."""
    return _flag(values, 'lifecycle')


def autostarts(values: Mapping[str, str]) -> bool:
    """A managed node that the launch file configures and activates itself."""
    return is_managed(values) and _flag(values, 'autostart')


def node_arguments(values: Mapping[str, str]) -> list[str]:
    """depth_node's own command-line options: --lifecycle for a managed node."""
    return ['--lifecycle'] if is_managed(values) else []


def ros_arguments(values: Mapping[str, str]) -> list[str]:
    """ROS arguments of the node process: the log level, when one is given."""
    level = values.get('log_level', '').strip()
    return ['--log-level', level] if level else []
