"""Which reliability a subscription needs so that it receives its publishers' messages.

A reliable reader never matches a best-effort writer (it receives nothing), while a
best-effort reader of a reliable writer gets only what the transport delivers first time: with
Fast DDS's default transports that is a small share of camera-sized images. 'auto' therefore
subscribes reliable unless a publisher offers only best effort.
"""
from __future__ import annotations

from collections.abc import Iterable

RELIABLE, BEST_EFFORT, AUTO = 'reliable', 'best_effort', 'auto'
RELIABILITY_CHOICES = (AUTO, RELIABLE, BEST_EFFORT)


def matching_reliability(setting: str, offered: Iterable[str]) -> str:
    """The reliability to subscribe with: `setting` itself unless it is 'auto'; for 'auto',
    best_effort when any publisher in `offered` (their reliabilities) is best effort,
    reliable otherwise, also while there is no publisher yet."""
    if setting != AUTO:
        return setting
    return BEST_EFFORT if BEST_EFFORT in set(offered) else RELIABLE
