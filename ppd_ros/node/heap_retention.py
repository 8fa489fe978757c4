"""Keep freed heap memory in the process, so that per-frame buffers stop page-faulting.

A 1280x720 xyz+rgb cloud is 29.5 MB, and publishing it makes rclpy and the middleware
allocate copies of that size every frame. By default glibc serves blocks that large with
mmap and unmaps them on free, so each frame can touch ~7,200 fresh 4 KiB pages again: on a
2-core machine that cost 2-4 ms per frame when idle and ~16 ms when busy. The usual real-time
remedy (ROS 2's rttest, for one) is to keep the heap: one malloc arena, no mmap'd blocks, no
trimming of freed memory. The process then stays at its steady-state peak size, and later
frames reuse the same pages.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameters (glibc <malloc.h>)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8

#: (parameter, value): all threads share one arena; no block is mmap'd; freed memory is
#: never trimmed (the threshold is the largest int mallopt accepts).
RETAIN_SETTINGS = ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2**31 - 1))


def _mallopt():
    if not sys.platform.startswith('linux'):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
        return None
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt


def retain_freed_memory() -> bool:
    """Apply RETAIN_SETTINGS to this process's malloc. True when glibc accepted all of them,
    False where there is no glibc mallopt (nothing is changed then). Call it before starting
    threads: arenas that already exist keep serving the threads that use them."""
    mallopt = _mallopt()
    if mallopt is None:
        return False
    return all(mallopt(param, value) == 1 for param, value in RETAIN_SETTINGS)
