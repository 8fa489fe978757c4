"""Frames of a bag for evaluation: colour image + matched GT depth (+ matched reference
depth) + camera info (+ camera pose), by index.

Two passes over the bag:
1. ``index_bag`` reads every message of the topics once for its header stamp (and keeps
   the small camera infos and poses). Image i is the i-th message of the image topic; its GT
   depth (and its reference depth, when a reference topic is given) is the depth message with
   the nearest header stamp within ``gt_max_dt_ns``, and so is its camera pose; its camera
   info is the latest one stamped at or before it (the first one for earlier frames).
2. ``iter_frames`` streams the selected images in index order with their GT and reference,
   deserialising nothing else. Decoding to numpy is left to the caller (``decode_rgb`` /
   ``decode_gt`` / ``decode_reference``) so that a corrupt message costs one frame, never
   the run.

rosbags' Reader is used directly (not ppd_ros.bag.BagReader) because a message that cannot
even be deserialised must become a skipped frame instead of ending the iteration.
"""
from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2 import Reader

from ppd_ros.bag.message_decoders import (decode_camera_info, decode_compressed_image,
                                          decode_image, decode_pose_stamped, stamp_ns)
from ppd_ros.bag.typestore import COMPRESSED_IMAGE, typestore
from ppd_ros.evaluation.bag_topics import EvalTopics
from ppd_ros.synthetic.camera import CameraInfoFields

STORAGE_SUFFIXES = {'.mcap': 'mcap', '.db3': 'sqlite3'}


class FrameDecodeError(ValueError):
    """A frame whose image or depth cannot be used; the message says why."""


def bag_storage(path: str | Path) -> str:
    """'mcap' or 'sqlite3', from the storage file(s) of a bag directory or file."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(path.iterdir()) if path.is_dir() else []
    for item in files:
        if item.suffix in STORAGE_SUFFIXES:
            return STORAGE_SUFFIXES[item.suffix]
    raise FileNotFoundError(f'{path} is not a rosbag2 bag (no .mcap or .db3 file)')


def bag_topics(path: str | Path) -> dict[str, str]:
    """{topic: message type} of a bag."""
    with Reader(Path(path)) as reader:
        return {c.topic: c.msgtype for c in reader.connections}


@dataclass(frozen=True, eq=False)
class CameraInfoEntry:
    stamp_ns: int
    fields: CameraInfoFields
    msg: Any                     # the rosbags message (re-published by live mode)


@dataclass(frozen=True, eq=False)
class CameraPoseEntry:
    stamp_ns: int
    world_from_camera: np.ndarray   # 4 x 4, camera (optical) frame -> fixed frame
    world_frame_id: str             # the fixed frame; poses in different ones do not compare


@dataclass(eq=False)
class BagIndex:
    """What pass 1 learnt about the bag."""
    image_stamps: list[int] = field(default_factory=list)      # header stamp per image
    image_frame_ids: list[str] = field(default_factory=list)
    unreadable_images: dict[int, str] = field(default_factory=dict)
    gt_for_image: dict[int, int] = field(default_factory=dict)  # image index -> GT ordinal
    reference_for_image: dict[int, int] = field(default_factory=dict)  # -> reference ordinal
    infos: list[CameraInfoEntry] = field(default_factory=list)
    skipped_infos: int = 0
    poses: list[CameraPoseEntry] = field(default_factory=list)
    pose_for_image: dict[int, int] = field(default_factory=dict)  # image index -> poses index

    @property
    def n_images(self) -> int:
        return len(self.image_stamps)

    def camera_info(self, stamp: int) -> CameraInfoEntry | None:
        if not self.infos:
            return None
        position = bisect.bisect_right([e.stamp_ns for e in self.infos], stamp)
        return self.infos[max(position - 1, 0)]


@dataclass(eq=False)
class SourceFrame:
    """One selected image with its matched GT and camera info (rosbags messages)."""
    index: int
    stamp_ns: int
    frame_id: str
    image_type: str
    image_msg: Any | None        # None when the message could not be deserialised
    gt_msg: Any | None
    camera_info: CameraInfoEntry | None
    problem: str | None = None   # why the frame is unusable, when known before decoding
    reference_msg: Any | None = None
    pose: CameraPoseEntry | None = None


def _deserialize(raw: bytes, msgtype: str):
    return typestore().deserialize_cdr(raw, msgtype)


def _connections(reader: Reader, topics: Iterable[str]):
    wanted = set(topics)
    return [c for c in reader.connections if c.topic in wanted]


def _depth_topics(topics: EvalTopics, index: BagIndex) -> dict[str, tuple[str, dict]]:
    """{name: (topic, image index -> ordinal map)} of the depth topics paired with images."""
    return {name: (topic, pairs) for name, topic, pairs in (
        ('gt', topics.gt, index.gt_for_image),
        ('reference', topics.reference, index.reference_for_image)) if topic is not None}


def _pair_by_stamp(index: BagIndex, stamps: list[tuple[int, int]], max_dt_ns: int,
                   pairs: dict[int, int]) -> None:
    """pairs[image index] = ordinal of the (stamp, ordinal) nearest to the image's stamp,
    when within max_dt_ns."""
    stamps.sort()
    keys = [s for s, _ in stamps]
    for i, stamp in enumerate(index.image_stamps):
        if i in index.unreadable_images or not keys:
            continue
        position = bisect.bisect_left(keys, stamp)
        near = [p for p in (position - 1, position) if 0 <= p < len(keys)]
        best = min(near, key=lambda p: abs(keys[p] - stamp))
        if abs(keys[best] - stamp) <= max_dt_ns:
            pairs[i] = stamps[best][1]


def index_bag(path: str | Path, topics: EvalTopics, gt_max_dt_ns: int) -> BagIndex:
    """Pass 1: header stamps of every image and depth message, all camera infos."""
    index = BagIndex()
    depth = _depth_topics(topics, index)
    depth_stamps: dict[str, list[tuple[int, int]]] = {name: [] for name in depth}  # (stamp, n)
    depth_counts = {name: 0 for name in depth}
    with Reader(Path(path)) as reader:
        names = [t for t in (topics.image, topics.info, topics.pose) if t is not None]
        names += [topic for topic, _ in depth.values()]
        for conn, timestamp, raw in reader.messages(_connections(reader, names)):
            try:
                msg = _deserialize(raw, conn.msgtype)
            except Exception as err:  # corrupt CDR: keep the slot, note the reason
                msg, reason = None, f'cannot deserialise {conn.msgtype}: {err}'
            depth_names = [name for name, (topic, _) in depth.items() if topic == conn.topic]
            if conn.topic == topics.image:
                i = len(index.image_stamps)
                index.image_stamps.append(stamp_ns(msg.header.stamp) if msg else timestamp)
                index.image_frame_ids.append(msg.header.frame_id if msg else '')
                if msg is None:
                    index.unreadable_images[i] = reason
            elif conn.topic == topics.pose:
                if msg is not None:
                    index.poses.append(CameraPoseEntry(stamp_ns(msg.header.stamp),
                                                       decode_pose_stamped(msg),
                                                       msg.header.frame_id))
            elif depth_names:
                for name in depth_names:
                    if msg is not None:
                        depth_stamps[name].append((stamp_ns(msg.header.stamp),
                                                   depth_counts[name]))
                    depth_counts[name] += 1
            elif msg is not None:
                try:
                    index.infos.append(CameraInfoEntry(stamp_ns(msg.header.stamp),
                                                       decode_camera_info(msg), msg))
                except Exception:  # noqa: BLE001 - a bad info is skipped, counted
                    index.skipped_infos += 1
            else:
                index.skipped_infos += 1
    index.infos.sort(key=lambda e: e.stamp_ns)
    for name, (_, pairs) in depth.items():
        _pair_by_stamp(index, depth_stamps[name], gt_max_dt_ns, pairs)
    _pair_by_stamp(index, [(p.stamp_ns, n) for n, p in enumerate(index.poses)], gt_max_dt_ns,
                   index.pose_for_image)
    return index


def iter_frames(path: str | Path, topics: EvalTopics, index: BagIndex,
                indices: Iterable[int]) -> Iterator[SourceFrame]:
    """Pass 2: the frames ``indices`` (any order given; yielded in increasing index order)."""
    wanted = sorted(set(indices))
    if not wanted:
        return
    wanted_set = set(wanted)
    depth = _depth_topics(topics, index)
    users = {name: Counter(pairs[i] for i in wanted if i in pairs)
             for name, (_, pairs) in depth.items()}        # ordinal -> frames still to use it
    buffered: dict[str, dict[int, bytes]] = {name: {} for name in depth}
    seen = {name: 0 for name in depth}
    images: dict[int, bytes] = {}
    n_image = 0
    next_pos = 0

    def ready() -> Iterator[SourceFrame]:
        nonlocal next_pos
        while next_pos < len(wanted):
            i = wanted[next_pos]
            if i not in images:
                return
            ordinals = {name: pairs.get(i) for name, (_, pairs) in depth.items()}
            if any(n is not None and n not in buffered[name] for name, n in ordinals.items()):
                return
            next_pos += 1
            raws = {name: buffered[name].get(n) for name, n in ordinals.items()}
            yield _build_frame(i, images.pop(i), raws, topics, index)
            for name, n in ordinals.items():
                if n is not None:
                    users[name][n] -= 1
                    if users[name][n] == 0:
                        del buffered[name][n]

    with Reader(Path(path)) as reader:
        names = [topics.image] + [topic for topic, _ in depth.values()]
        for conn, _, raw in reader.messages(_connections(reader, names)):
            if conn.topic == topics.image:
                if n_image in wanted_set:
                    images[n_image] = raw
                n_image += 1
            for name, (topic, _) in depth.items():
                if conn.topic == topic:
                    if seen[name] in users[name]:
                        buffered[name][seen[name]] = raw
                    seen[name] += 1
            yield from ready()
            if next_pos == len(wanted):
                return
    yield from ready()


def _build_frame(i: int, image_raw: bytes, depth_raws: dict[str, bytes | None],
                 topics: EvalTopics, index: BagIndex) -> SourceFrame:
    stamp = index.image_stamps[i]
    frame = SourceFrame(i, stamp, index.image_frame_ids[i], topics.image_type, None, None,
                        index.camera_info(stamp), index.unreadable_images.get(i))
    if i in index.pose_for_image:
        frame.pose = index.poses[index.pose_for_image[i]]
    if frame.problem is None:
        frame.image_msg = _deserialize(image_raw, topics.image_type)
    if depth_raws.get('gt') is not None:
        frame.gt_msg = _deserialize(depth_raws['gt'], topics.gt_type)
    if depth_raws.get('reference') is not None:
        frame.reference_msg = _deserialize(depth_raws['reference'], topics.reference_type)
    return frame


def decode_rgb(frame: SourceFrame) -> np.ndarray:
    """H x W x 3 uint8 RGB of the frame's image; FrameDecodeError when unusable."""
    if frame.image_msg is None:
        raise FrameDecodeError(frame.problem or 'no image message')
    try:
        if frame.image_type == COMPRESSED_IMAGE:
            rgb = decode_compressed_image(frame.image_msg)
        else:
            rgb = decode_image(frame.image_msg)
    except Exception as err:  # noqa: BLE001 - any decoding failure is a corrupt frame
        raise FrameDecodeError(f'image: {type(err).__name__}: {err}') from err
    if rgb.ndim != 3 or rgb.dtype != np.uint8:
        raise FrameDecodeError(f'image topic holds {rgb.dtype} {rgb.shape} data, not colour')
    return rgb


def decode_gt(frame: SourceFrame) -> np.ndarray | None:
    """H x W float32 GT metres (NaN invalid), None when the frame has no matched GT."""
    return _decode_depth(frame.gt_msg, 'depth')


def decode_reference(frame: SourceFrame) -> np.ndarray | None:
    """H x W float32 reference metres (NaN invalid), None when the frame has none matched."""
    return _decode_depth(frame.reference_msg, 'reference depth')


def _decode_depth(msg, what: str) -> np.ndarray | None:
    if msg is None:
        return None
    try:
        if msg.__msgtype__ == COMPRESSED_IMAGE:
            depth = decode_compressed_image(msg)
        else:
            depth = decode_image(msg)
    except Exception as err:  # noqa: BLE001
        raise FrameDecodeError(f'{what}: {type(err).__name__}: {err}') from err
    if depth.ndim != 2:
        encoding = getattr(msg, 'encoding', msg.__msgtype__)
        raise FrameDecodeError(f"{what} message has encoding '{encoding}'; expected 16UC1 "
                               '(mm) or 32FC1 (m)')
    return depth
