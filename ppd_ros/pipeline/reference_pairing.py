"""Pair each colour frame with the depth reference nearest to it in time (no rclpy).

References (any payload, e.g. the received Image message) are kept in a small ring buffer
ordered by header stamp. A colour frame stamped t gets the reference whose stamp is nearest
to t, if it is within max_dt; otherwise none, with a reason such as
"no depth_reference within 0.02 s of the image stamp".

A reference may arrive a little after its colour frame (separate driver threads). match()
can wait up to max_wait_s for it, but only while that is still possible: the reference
stream is live (something arrived within LIVE_WINDOW_S) and nothing newer than t + max_dt
has arrived yet (stamps are assumed to increase).
"""
from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

#: A reference stream with no arrival for this long counts as silent: match() never waits.
LIVE_WINDOW_S = 1.0
_NS = 1_000_000_000


@dataclass(frozen=True)
class ReferenceMatch:
    reference: Any | None   #: the paired reference; None when there is none
    dt_s: float | None      #: reference stamp - image stamp (s) of the match, or the nearest
    problem: str            #: why there is no match ('' with one)


@dataclass(frozen=True)
class ReferenceStreamStatus:
    received: int                   #: references added so far
    last_arrival_age_s: float | None  #: seconds since the last one arrived (None: never)
    last_dt_s: float | None         #: stamp difference of the last successful match


class ReferencePairing:
    """Thread-safe: add() from a subscription callback, match() from the worker."""

    def __init__(self, capacity: int = 30, name: str = 'depth_reference',
                 clock: Callable[[], float] = time.monotonic):
        if capacity < 1:
            raise ValueError(f'capacity must be >= 1, got {capacity}')
        self.capacity = capacity
        self.name = name
        self._clock = clock
        self._cond = threading.Condition()
        self._stamps: list[int] = []     # ascending, nanoseconds
        self._items: list[Any] = []
        self._received = 0
        self._last_arrival: float | None = None
        self._last_dt: float | None = None

    def add(self, stamp_ns: int, reference: Any) -> None:
        """Store a reference; the oldest one goes when the buffer is full."""
        with self._cond:
            if self._stamps and stamp_ns < self._stamps[-1] - _NS:
                self._stamps.clear()  # time went back by > 1 s: bag loop or clock reset
                self._items.clear()
            index = bisect.bisect_right(self._stamps, stamp_ns)
            self._stamps.insert(index, stamp_ns)
            self._items.insert(index, reference)
            if len(self._stamps) > self.capacity:
                del self._stamps[0], self._items[0]
            self._received += 1
            self._last_arrival = self._clock()
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self._stamps.clear()
            self._items.clear()

    def match(self, stamp_ns: int, max_dt_s: float, max_wait_s: float = 0.0) -> ReferenceMatch:
        """The stored reference nearest to stamp_ns within max_dt_s (module doc)."""
        max_dt_ns = round(max_dt_s * _NS)
        deadline = self._clock() + max_wait_s
        with self._cond:
            while True:
                index = self._nearest(stamp_ns)
                if index is not None and abs(self._stamps[index] - stamp_ns) <= max_dt_ns:
                    self._last_dt = (self._stamps[index] - stamp_ns) / _NS
                    return ReferenceMatch(self._items[index], self._last_dt, '')
                remaining = deadline - self._clock()
                if remaining <= 0 or not self._may_still_arrive(stamp_ns + max_dt_ns):
                    return self._miss(stamp_ns, max_dt_s, index)
                self._cond.wait(remaining)

    def status(self) -> ReferenceStreamStatus:
        with self._cond:
            age = None if self._last_arrival is None else self._clock() - self._last_arrival
            return ReferenceStreamStatus(self._received, age, self._last_dt)

    def _nearest(self, stamp_ns: int) -> int | None:
        if not self._stamps:
            return None
        index = bisect.bisect_left(self._stamps, stamp_ns)
        candidates = [i for i in (index - 1, index) if 0 <= i < len(self._stamps)]
        return min(candidates, key=lambda i: abs(self._stamps[i] - stamp_ns))

    def _may_still_arrive(self, latest_useful_ns: int) -> bool:
        live = (self._last_arrival is not None
                and self._clock() - self._last_arrival <= LIVE_WINDOW_S)
        return live and (not self._stamps or self._stamps[-1] < latest_useful_ns)

    def _miss(self, stamp_ns: int, max_dt_s: float, index: int | None) -> ReferenceMatch:
        if self._last_arrival is None:
            return ReferenceMatch(None, None, f'no {self.name} received yet')
        age = self._clock() - self._last_arrival
        problem = f'no {self.name} within {max_dt_s:g} s of the image stamp'
        dt = None
        if index is not None:
            dt = (self._stamps[index] - stamp_ns) / _NS
            problem += f' (nearest is {abs(dt):.3f} s {"newer" if dt > 0 else "older"}'
        else:
            problem += ' (none buffered'
        problem += f'; last one arrived {age:.1f} s ago)'
        return ReferenceMatch(None, dt, problem)
