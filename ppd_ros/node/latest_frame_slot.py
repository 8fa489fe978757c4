"""A one-frame hand-over between subscription callbacks and the inference worker.

Callbacks put() the newest frame and never block on the model; the worker take()s it. A frame
put while an earlier one is still waiting replaces it; the replaced frame counts as dropped.
"""
from __future__ import annotations

import threading
from typing import Any


class LatestFrameSlot:
    def __init__(self):
        self._cond = threading.Condition()
        self._frame: Any = None
        self._closed = False

    def put(self, frame: Any) -> bool:
        """Store `frame`; True when it replaced a frame the worker had not taken yet."""
        with self._cond:
            replaced = self._frame is not None
            self._frame = frame
            self._cond.notify()
            return replaced

    def take(self, timeout: float | None = None) -> Any:
        """The pending frame (waiting for one); None after close() or on timeout."""
        with self._cond:
            self._cond.wait_for(lambda: self._frame is not None or self._closed, timeout)
            if self._closed:
                return None
            frame, self._frame = self._frame, None
            return frame

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
