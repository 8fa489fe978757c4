"""Thread-safe per-frame counters and timings of depth_node, for /diagnostics."""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class StatisticsSnapshot:
    received: int
    processed: int
    dropped: int            # replaced while waiting for the busy worker
    skipped_idle: int       # not processed because nothing subscribed (lazy mode)
    failed: int             # not processed: unreadable image or processing error
    rate_hz: float          # processed frames per second over the recent window
    last_frame_age_s: float | None      # time since the last input frame arrived
    last_latency_s: float | None        # publish time - input stamp of the last output
    stage_seconds: dict[str, float] = field(default_factory=dict)  # last frame, per stage
    last_problem: str | None = None     # what went wrong with the last frame, if anything
    last_failed: bool = False           # ... and whether it failed (else it was degraded)


class FrameStatistics:
    def __init__(self, window_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._window_s = window_s
        self._lock = threading.Lock()
        self._received = self._processed = self._dropped = self._skipped = self._failed = 0
        self._done_times: deque[float] = deque()
        self._last_received: float | None = None
        self._last_latency: float | None = None
        self._stages: dict[str, float] = {}
        self._last_problem: str | None = None
        self._last_failed = False

    def frame_received(self) -> None:
        with self._lock:
            self._received += 1
            self._last_received = self._clock()

    def frame_dropped(self) -> None:
        with self._lock:
            self._dropped += 1

    def frame_skipped_idle(self) -> None:
        with self._lock:
            self._skipped += 1

    def frame_failed(self, error: str) -> None:
        with self._lock:
            self._failed += 1
            self._last_problem, self._last_failed = error, True

    def frame_processed(self, stage_seconds: dict[str, float], latency_s: float | None,
                        problem: str | None = None) -> None:
        """A published frame; `problem` says what it lacked (e.g. unusable CameraInfo)."""
        now = self._clock()
        with self._lock:
            self._processed += 1
            self._done_times.append(now)
            self._stages = dict(stage_seconds)
            self._last_latency = latency_s
            self._last_problem, self._last_failed = problem, False

    def snapshot(self) -> StatisticsSnapshot:
        now = self._clock()
        with self._lock:
            while self._done_times and now - self._done_times[0] > self._window_s:
                self._done_times.popleft()
            n = len(self._done_times)
            # completions in the window over the time since the first of them: decays to 0
            # once frames stop coming
            rate = (n - 1) / max(now - self._done_times[0], 1e-9) if n >= 2 else 0.0
            age = None if self._last_received is None else now - self._last_received
            return StatisticsSnapshot(self._received, self._processed, self._dropped,
                                      self._skipped, self._failed, rate, age,
                                      self._last_latency, dict(self._stages), self._last_problem,
                                      self._last_failed)
