"""Pair colour, depth and camera info from a bag into RGB-D frames by header stamp.

Colour and depth match on identical header stamps (as a registered RGB-D driver or
write_synthetic_bag publishes them). Each frame takes the camera info with the latest
stamp at or before its own (or the first one, for frames before any info). A frame is
yielded once the bag has moved past its stamp, so ties in bag time cannot reorder it.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ppd_ros.synthetic.camera import CameraInfoFields

from .reader import BagReader, log_and_skip

#: Incomplete frames older than this behind the bag clock are dropped as unmatched.
MAX_WAIT_NS = 1_000_000_000


@dataclass(eq=False)
class RgbdFrame:
    stamp_ns: int
    frame_id: str
    rgb: np.ndarray
    depth: np.ndarray | None
    camera_info: CameraInfoFields | None


def resolve_image_topic(topics: dict[str, str], image_topic: str) -> str:
    """``image_topic``, or its image_transport '/compressed' sibling when only that exists."""
    if image_topic not in topics and image_topic + '/compressed' in topics:
        return image_topic + '/compressed'
    return image_topic


def read_rgbd_frames(path: str | Path, image_topic: str = '/camera/image_raw',
                     depth_topic: str | None = '/camera/depth/image_raw',
                     info_topic: str | None = '/camera/camera_info') -> Iterator[RgbdFrame]:
    """RGB-D frames of a bag in stamp order; depth / info are None when their topic is None.

    Raises MissingTopicError (listing the bag's topics) when a named topic is absent.
    """
    with BagReader(path) as reader:
        image_topic = resolve_image_topic(reader.topics, image_topic)
        wanted = [t for t in (image_topic, depth_topic, info_topic) if t is not None]
        reader.require_topics(wanted)
        pending: dict[int, dict] = {}
        infos: deque[tuple[int, CameraInfoFields]] = deque(maxlen=64)
        first_info = None

        def info_for(stamp: int) -> CameraInfoFields | None:
            before = [info for s, info in infos if s <= stamp]
            return before[-1] if before else first_info

        def complete(entry: dict) -> bool:
            return 'rgb' in entry and (depth_topic is None or 'depth' in entry)

        def flush(now_ns: int | None) -> Iterator[RgbdFrame]:
            for stamp in sorted(pending):
                if now_ns is not None and stamp >= now_ns:
                    break
                entry = pending[stamp]
                if complete(entry):
                    del pending[stamp]
                    yield RgbdFrame(stamp, entry['frame_id'], entry['rgb'], entry.get('depth'),
                                    info_for(stamp))
                elif now_ns is None or stamp < now_ns - MAX_WAIT_NS:
                    del pending[stamp]  # never matched
                else:
                    break  # wait for its other half, keeping frames in stamp order

        for m in reader.messages(wanted, on_error=log_and_skip):
            if m.topic == info_topic:
                infos.append((m.stamp_ns, m.data))
                if first_info is None:
                    first_info = m.data
            else:
                entry = pending.setdefault(m.stamp_ns, {'frame_id': m.frame_id})
                entry['rgb' if m.topic == image_topic else 'depth'] = m.data
            yield from flush(m.timestamp_ns)
        yield from flush(None)
