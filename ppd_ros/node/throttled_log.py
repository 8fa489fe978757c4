"""Decide when to log each kind of recurring problem: once per period, counting repeats."""
from __future__ import annotations

import threading
import time
from typing import Callable


class ThrottledLog:
    """`due(key)` says whether a problem of kind `key` should be logged now.

    Unlike rclpy's throttle_duration_sec (one throttle per call site), every key has its own
    throttle, so different bad inputs each get their first message. The caller logs (rclpy
    loggers require one severity per call site, so logging is not done from here).
    """

    def __init__(self, period_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.period_s = period_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def due(self, key: str) -> str | None:
        """None while `key` is throttled; otherwise a suffix for the message ('' or a count
        of the reports suppressed since the last one)."""
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.period_s:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return None
            self._last[key] = now
            repeats = self._suppressed.pop(key, 0)
        return f' ({repeats} more since the last report)' if repeats else ''
