"""Keep the demo's ROS 2 traffic to itself: its own domain, discovery on this host only.

Values the user has set are honoured. Child processes (the depth node) inherit them.
"""
from __future__ import annotations

import os
from collections.abc import MutableMapping

DOMAIN_VARIABLE = 'ROS_DOMAIN_ID'
DISCOVERY_VARIABLE = 'ROS_AUTOMATIC_DISCOVERY_RANGE'


def demo_domain_id(pid: int) -> int:
    """A domain id for this run, 1..100 (never the default domain 0)."""
    return 1 + pid % 100


def isolate_ros(env: MutableMapping[str, str] = os.environ, pid: int | None = None
                ) -> dict[str, str]:
    """Set ROS_DOMAIN_ID (from the process id) and localhost-only discovery in ``env``
    unless already set; returns the two values in effect."""
    if not env.get(DOMAIN_VARIABLE):
        env[DOMAIN_VARIABLE] = str(demo_domain_id(os.getpid() if pid is None else pid))
    if not env.get(DISCOVERY_VARIABLE):
        env[DISCOVERY_VARIABLE] = 'LOCALHOST'
    return {DOMAIN_VARIABLE: env[DOMAIN_VARIABLE], DISCOVERY_VARIABLE: env[DISCOVERY_VARIABLE]}
