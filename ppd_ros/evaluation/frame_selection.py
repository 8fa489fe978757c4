"""Which frames of a bag to evaluate (--start/--end/--stride) and which get pictures.

A frame index is the 0-based position of a message on the image topic, in bag order.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FrameSelection:
    """Indices start, start + stride, ... below end (None: to the last frame)."""
    start: int = 0
    end: int | None = None
    stride: int = 1

    def __post_init__(self):
        if self.start < 0:
            raise ValueError(f'--start must be >= 0, got {self.start}')
        if self.end is not None and self.end < self.start:
            raise ValueError(f'--end ({self.end}) must not be below --start ({self.start})')
        if self.stride < 1:
            raise ValueError(f'--stride must be >= 1, got {self.stride}')

    def indices(self, n_frames: int) -> list[int]:
        end = n_frames if self.end is None else min(self.end, n_frames)
        return list(range(self.start, end, self.stride))


def picture_indices(spec: str, selected: list[int]) -> list[int]:
    """Frames that get a side-by-side picture.

    spec: 'N' (N frames evenly spaced over the selection, first and last included),
    'none', or a comma-separated list of frame indices (those not selected are ignored).
    """
    spec = spec.strip().lower()
    if spec in ('', 'none', '0'):
        return []
    if ',' not in spec and spec.isdigit():
        count = min(int(spec), len(selected))
        if count == 0:
            return []
        if count == 1:
            return [selected[0]]
        last = len(selected) - 1
        return sorted({selected[round(i * last / (count - 1))] for i in range(count)})
    try:
        wanted = {int(item) for item in spec.split(',') if item.strip()}
    except ValueError:
        raise ValueError(f"--pictures must be a count, 'none' or a list like 0,10,20; "
                         f"got '{spec}'") from None
    chosen = set(selected)
    return sorted(wanted & chosen)
