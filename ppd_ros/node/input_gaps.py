"""Estimate input frames lost before they reached the node, from the image stamps.

ROS 2 headers carry no sequence number, so a lost camera frame leaves no trace except a
longer gap between the stamps of the frames that did arrive. For a camera at a steady rate
the period is the median of the recent stamp intervals, and an interval of about k periods
means k - 1 frames went missing on the way (driver, middleware, network). This is an
estimate: it assumes a steady frame rate, stamped at capture. Gaps are only counted while the
recent intervals are steady (interquartile range at most MAX_SPREAD of the median):
stamps taken at irregular times (e.g. when a bursty publisher sends) say nothing about
losses. Skipped triggers of a triggered camera count as lost, and jumps of more than
MAX_GAP_PERIODS periods, or backwards, count as a restart of the stream, not as losses. What subscribers of the node's outputs fail to
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
#: Largest interquartile range of the intervals, relative to their median, for which the
#: stream counts as steady.
MAX_SPREAD = 0.5


@dataclass(frozen=True)
class InputGapStatus:
    period_s: float | None      #: median stamp interval (None until known)
    steady: bool                #: the recent intervals are steady: gaps are being counted
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
            period, steady = self._period()
            if interval < 0 or (period and interval > MAX_GAP_PERIODS * period):
                self._restarts += 1
                self._intervals.clear()
                return
            if steady and interval > GAP_FACTOR * period:
                self._missing += round(interval / period) - 1
                return  # a gap is not a sample of the period
            self._intervals.append(interval)

    def _period(self) -> tuple[float | None, bool]:
        """(median interval in ns or None, whether the intervals are steady)."""
        if len(self._intervals) < 3:
            return None, False
        period = statistics.median(self._intervals)
        q1, _, q3 = statistics.quantiles(self._intervals, n=4)
        return period, q3 - q1 <= MAX_SPREAD * period

    def status(self) -> InputGapStatus:
        with self._lock:
            period, steady = self._period()
            return InputGapStatus(None if period is None else period * 1e-9, steady,
                                  self._missing, self._restarts)
