"""Catch what C libraries print to stderr during a call, so the caller can log it.

libjpeg ("Corrupt JPEG data: ..."), libpng ("libpng error: ...") and OpenCV's own logger
write straight to file descriptor 2, unthrottled: thousands of corrupt frames give thousands
of raw lines. `call_capturing_stderr` points descriptor 2 at a private file for the duration
of one call and hands back what was written. The descriptor is process-wide, so a line that
another thread logs meanwhile through the ROS logger (it starts with '[INFO]', '[WARN]', ...)
is written back to the real stderr unchanged; everything else is the library's.
"""
from __future__ import annotations

import os
import sys
import tempfile
import threading
from typing import Any, Callable

#: Captured output kept per call (the rest is dropped; one log line shows far less anyway).
MAX_CAPTURED_BYTES = 4096
_ROS_LOG_PREFIXES = tuple(f'[{level}]' for level in ('DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'))

_lock = threading.Lock()
_sink: Any = None


def _flush_python_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError, OSError):
            pass


def call_capturing_stderr(fn: Callable[..., Any], *args) -> tuple[Any, str]:
    """(fn(*args), text the call wrote to descriptor 2 other than ROS log lines)."""
    global _sink
    with _lock:
        try:
            if _sink is None:
                _sink = tempfile.TemporaryFile()
            saved = os.dup(2)
        except OSError:  # no usable descriptor 2 or temp dir: call without capturing
            return fn(*args), ''
        _flush_python_streams()
        os.dup2(_sink.fileno(), 2)
        try:
            result = fn(*args)
        finally:
            _flush_python_streams()
            os.dup2(saved, 2)
            os.close(saved)
            size = os.lseek(_sink.fileno(), 0, os.SEEK_END)
            text = ''
            if size:
                os.lseek(_sink.fileno(), 0, os.SEEK_SET)
                text = os.read(_sink.fileno(), min(size, 1 << 20)).decode('utf-8', 'replace')
                os.ftruncate(_sink.fileno(), 0)
                os.lseek(_sink.fileno(), 0, os.SEEK_SET)
    lines = text.splitlines(keepends=True)
    passed_on = ''.join(line for line in lines if line.startswith(_ROS_LOG_PREFIXES))
    if passed_on:
        os.write(2, passed_on.encode())
    library = ''.join(line for line in lines if not line.startswith(_ROS_LOG_PREFIXES))
    return result, library[:MAX_CAPTURED_BYTES]
