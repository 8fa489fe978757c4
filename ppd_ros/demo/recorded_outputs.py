"""Read back what the demo recorded from the node (ppd-eval's live_bag) and its input bag.

Messages are matched to frames by header stamp: the live bag keeps the input frames' stamps.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ppd_ros.bag.reader import BagReader


@dataclass(frozen=True, eq=False)
class RecordedDepth:
    index: int                  #: frame index in the input bag
    stamp_ns: int
    depth_m: np.ndarray         #: H x W float32 metres, NaN where the node gave no depth


def read_depths(bag: Path, topic: str, stamps_ns: Sequence[int]) -> list[RecordedDepth]:
    """Every depth image on ``topic``, in frame order (frames the node dropped are absent)."""
    index_of = {stamp: i for i, stamp in enumerate(stamps_ns)}
    with BagReader(bag) as reader:
        found = [RecordedDepth(index_of[m.stamp_ns], m.stamp_ns, m.data)
                 for m in reader.messages([topic]) if m.stamp_ns in index_of]
    return sorted(found, key=lambda r: r.index)


def read_at_stamp(bag: Path, topics: Iterable[str], stamp_ns: int) -> dict[str, object]:
    """{topic: decoded message data} of the messages stamped ``stamp_ns`` (images as numpy
    arrays, clouds as structured arrays); topics without such a message are left out."""
    with BagReader(bag) as reader:
        return {m.topic: m.data for m in reader.messages(list(topics))
                if m.stamp_ns == stamp_ns}
