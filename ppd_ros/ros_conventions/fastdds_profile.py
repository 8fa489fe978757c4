"""Is this process's Fast DDS given a large-message profile, and if not, what exactly fixes it.

Fast DDS reads its XML profile from an environment variable whose name depends on its major
version: Fast DDS 2.x (ROS 2 Humble, Iron, Jazzy) reads FASTRTPS_DEFAULT_PROFILES_FILE only;
Fast DDS 3 (ROS 2 Kilted and newer) reads FASTDDS_DEFAULT_PROFILES_FILE. Without a profile
that enlarges the shared-memory segment, a *publisher* of camera-sized messages loses most of
them towards best-effort readers (reliable readers still get every message, by
retransmission). The version is read from the Fast DDS library mapped into the process.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

#: The shipped profile (64 MB shared-memory segment plus UDPv4), relative to the package.
PROFILE = 'config/fastdds_large_messages.xml'
FASTDDS2_VARIABLE = 'FASTRTPS_DEFAULT_PROFILES_FILE'
FASTDDS3_VARIABLE = 'FASTDDS_DEFAULT_PROFILES_FILE'
#: Both names: setting both serves every ROS 2 release.
PROFILE_VARIABLES = (FASTDDS3_VARIABLE, FASTDDS2_VARIABLE)
#: ROS 2 releases shipping Fast DDS 2.x; later ones ship Fast DDS 3.
FASTDDS2_DISTROS = ('foxy', 'galactic', 'humble', 'iron', 'jazzy')

_LIBRARY = re.compile(r'lib(fastrtps|fastdds)\.so\.(\d+)')


def fastdds_major_version(libraries: Iterable[str]) -> int | None:
    """Major version of the Fast DDS library among loaded shared-library paths
    (libfastrtps.so.2.14 -> 2, libfastdds.so.3.2 -> 3); None when there is none."""
    for path in libraries:
        match = _LIBRARY.search(path)
        if match:
            return int(match.group(2))
    return None


def loaded_libraries(maps: Path = Path('/proc/self/maps')) -> list[str]:
    """Paths of the files mapped into this process (Linux); [] where that is unknown."""
    try:
        return [line.split()[-1] for line in maps.read_text().splitlines()
                if len(line.split()) >= 6]
    except OSError:
        return []


def profile_variable(major: int | None, ros_distro: str | None = None) -> str | None:
    """The variable this Fast DDS reads (from its major version, else the ROS_DISTRO)."""
    if major is None and ros_distro:
        major = 2 if ros_distro.lower() in FASTDDS2_DISTROS else 3
    if major is None:
        return None
    return FASTDDS2_VARIABLE if major < 3 else FASTDDS3_VARIABLE


def profile_problem(rmw: str, env: Mapping[str, str], major: int | None,
                    profile_path: str | None) -> str | None:
    """Why this process has no large-message profile, with the exact fix; None when it has
    one or does not run on Fast DDS. `profile_path` is the shipped profile to suggest."""
    if not rmw.startswith('rmw_fastrtps'):
        return None
    variable = profile_variable(major, env.get('ROS_DISTRO'))
    readable = (variable,) if variable else PROFILE_VARIABLES
    for name in readable:
        if env.get(name) and Path(env[name]).is_file():
            return None
    version = f'Fast DDS {major}.x' if major else 'Fast DDS'
    found = ''
    for name in readable:
        if env.get(name):
            found = f' ({name} names {env[name]}, which does not exist)'
    for name in PROFILE_VARIABLES:
        if name not in readable and env.get(name):
            found = f' ({name} is set, but {version} reads only {variable})'
    path = profile_path or f'<ppd_ros share>/{PROFILE}'
    fix = ' and '.join(f'{name}={path}' for name in readable)
    return (f'{version} runs without a large-message profile{found}: best-effort readers of '
            f'this node\'s images and clouds lose most of them, and so does this node from a '
            f'best-effort camera publisher. Fix: start this node, and a best-effort camera '
            f'driver, with {fix} exported (the launch file does this for the node with '
            f'use_fastdds_profile:=true).')
