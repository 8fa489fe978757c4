"""Estimate input frames lost before they reached the node, from the image stamps.

ROS 2 headers carry no sequence number, so a lost camera frame leaves no trace except a
longer gap between the stamps of the frames that did arrive. For a camera at a steady rate
the period is the median of the recent stamp intervals, and an interval of about k periods
means k - 1 frames went missing on the way (driver, middleware, network). This is an
estimate: it assumes a steady frame rate (it counts skipped triggers of a triggered camera
as lost too), and jumps of more than MAX_GAP_PERIODS periods, or backwards, count as a
restart of the stream, not as losses. What subscribers of the node's outputs fail to
receive cannot be seen from the node at all.
"""
from __future__ import annotations

import statistics
import threading
from collections import deque
from dataclasses import dataclass

#: Recent stamp intervals the period is the median of.
WINDOW = 31
#: An interval longer than this many periods means frames went missing ...
GAP_FACTOR = 1.5
#: ... unless it is longer than this: then the stream restarted (pause, bag jump).
MAX_GAP_PERIODS = 100


@dataclass(frozen=True)
class InputGapStatus:
    period_s: float | None      #: median stamp interval (None until known)
    missing: int                #: frames estimated lost upstream so far
    restarts: int               #: stamp jumps treated as a restart of the stream


class InputGapEstimator:
    """Thread-safe; `add(stamp_ns)` for every image received, in arrival order."""

    def __init__(self):
        self._lock = threading.Lock()
        self._last: int | None = None
        self._intervals: deque[int] = deque(maxlen=WINDOW)
        self._missing = 0
        self._restarts = 0

    def add(self, stamp_ns: int) -> None:
        with self._lock:
            last, self._last = self._last, stamp_ns
            if last is None:
                return
            interval = stamp_ns - last
            if interval == 0:  # the same frame again
                return
            period = statistics.median(self._intervals) if len(self._intervals) >= 3 else None
            if interval <= 0 or (period and interval > MAX_GAP_PERIODS * period):
                self._restarts += 1
                self._intervals.clear()
                return
            if period and interval > GAP_FACTOR * period:
                self._missing += round(interval / period) - 1
                return  # a gap is not a sample of the period
            self._intervals.append(interval)

    def status(self) -> InputGapStatus:
        with self._lock:
            period = (statistics.median(self._intervals) * 1e-9
                      if len(self._intervals) >= 3 else None)
            return InputGapStatus(period, self._missing, self._restarts)
