"""Environment for ROS 2 processes that exchange large messages (depth images, clouds).

Publishers of large messages over Fast DDS need the shared-memory profile
config/fastdds_large_messages.xml (ppd_ros.ros_conventions.fastdds_profile); both variable
names are set, so every Fast DDS version finds it. A profile the user already set is kept.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

from ppd_ros.pipeline.package_paths import resolve_package_path
from ppd_ros.ros_conventions.fastdds_profile import PROFILE, PROFILE_VARIABLES


def large_message_env(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``env`` with the profile variables set (unless one is set already)."""
    out = dict(env)
    if any(out.get(name) for name in PROFILE_VARIABLES):
        return out
    profile = resolve_package_path(PROFILE)
    if profile is not None:
        for name in PROFILE_VARIABLES:
            out[name] = str(profile)
    return out


@contextlib.contextmanager
def large_message_profile() -> Iterator[None]:
    """Set the profile variables in this process (before rclpy.init) and restore them after."""
    saved = {name: os.environ.get(name) for name in PROFILE_VARIABLES}
    os.environ.update({k: v for k, v in large_message_env(os.environ).items()
                       if k in PROFILE_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
