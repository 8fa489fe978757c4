"""Shared pytest configuration.

Every test session gets its own ROS_DOMAIN_ID and localhost-only discovery. They are set in
the process environment at configure time, before any test module imports rclpy, so that
child processes (nodes, publishers, recorders) inherit them and parallel runs on one machine
never see each other's traffic.
"""
import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def session_domain_id(pid: int) -> int:
    """Domain id for a test session: 1..100, never the default domain 0."""
    return 1 + (pid % 100)


def pytest_configure(config):
    os.environ['ROS_DOMAIN_ID'] = str(session_domain_id(os.getpid()))
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'


@pytest.fixture(scope='session')
def ros_domain_id() -> int:
    """The isolated ROS_DOMAIN_ID of this session (child processes inherit it)."""
    return int(os.environ['ROS_DOMAIN_ID'])


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope='session')
def python_exe() -> str:
    return sys.executable
