"""Read rosbag2 bags (sqlite3 or mcap) in time order, decoding messages to numpy."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rosbags.rosbag2 import Reader

from .message_decoders import decode_message, stamp_ns
from .typestore import typestore

log = logging.getLogger('ppd_ros.bag')


class MissingTopicError(LookupError):
    """Requested topics that the bag does not contain."""

    def __init__(self, missing: list[str], available: dict[str, str], path: Path):
        self.missing, self.available = missing, available
        listing = ', '.join(f'{t} [{m}]' for t, m in sorted(available.items())) or '(none)'
        super().__init__(f'topic(s) {", ".join(missing)} not found in bag {path}; '
                         f'available topics: {listing}')


class BagMessageError(ValueError):
    """A message that cannot be deserialised or decoded (corrupt payload, bad encoding)."""

    def __init__(self, topic: str, timestamp_ns: int, cause: Exception):
        self.topic, self.timestamp_ns, self.cause = topic, timestamp_ns, cause
        super().__init__(f'cannot read the {topic} message at bag time {timestamp_ns} ns: '
                         f'{type(cause).__name__}: {cause}')


def log_and_skip(error: BagMessageError) -> None:
    """``on_error`` handler that logs a corrupt message and goes on with the next one."""
    log.warning('skipping a message: %s', error)


@dataclass(eq=False)
class BagMessage:
    """One message: bag time, header stamp and frame (None without a header), decoded data.

    ``data`` is a numpy array for Image / CompressedImage (RGB uint8 or depth float32
    metres), CameraInfoFields for CameraInfo, a structured array for PointCloud2, and the
    rosbags object itself for other types; ``msg`` is always the rosbags object.
    """
    topic: str
    msgtype: str
    timestamp_ns: int
    stamp_ns: int | None
    frame_id: str | None
    data: Any
    msg: Any


class BagReader:
    """Context manager over a rosbag2 directory (or a single .db3 / .mcap file)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._reader = Reader(self.path)

    def open(self) -> BagReader:
        self._reader.open()
        return self

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> BagReader:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def topics(self) -> dict[str, str]:
        """Topic name -> message type."""
        return {c.topic: c.msgtype for c in self._reader.connections}

    def message_count(self, topic: str) -> int:
        self.require_topics([topic])
        return sum(c.msgcount for c in self._reader.connections if c.topic == topic)

    @property
    def start_time_ns(self) -> int:
        return self._reader.start_time

    @property
    def end_time_ns(self) -> int:
        return self._reader.end_time

    def require_topics(self, topics: Iterable[str]) -> None:
        """Raise MissingTopicError (listing what the bag has) unless all ``topics`` exist."""
        available = self.topics
        missing = [t for t in topics if t not in available]
        if missing:
            raise MissingTopicError(missing, available, self.path)

    def messages(self, topics: Iterable[str] | None = None, *, decode: bool = True,
                 start_ns: int | None = None, stop_ns: int | None = None,
                 on_error: Callable[[BagMessageError], None] | None = None
                 ) -> Iterator[BagMessage]:
        """Messages of ``topics`` (all when None) in bag-time order, within [start, stop).

        A message that cannot be deserialised or decoded raises BagMessageError, or, with
        ``on_error`` (e.g. ``log_and_skip``), is handed to it and skipped.
        """
        if topics is None:
            connections = self._reader.connections
        else:
            topics = list(topics)
            self.require_topics(topics)
            connections = [c for c in self._reader.connections if c.topic in topics]
            if not connections:  # rosbags would read every topic for an empty selection
                return
        store = typestore()
        for conn, timestamp, raw in self._reader.messages(connections, start_ns, stop_ns):
            try:
                msg = store.deserialize_cdr(raw, conn.msgtype)
                data = decode_message(conn.msgtype, msg) if decode else None
            except Exception as err:  # noqa: BLE001 - any corrupt payload, reported with context
                error = BagMessageError(conn.topic, timestamp, err)
                if on_error is None:
                    raise error from err
                on_error(error)
                continue
            header = getattr(msg, 'header', None)
            yield BagMessage(
                topic=conn.topic, msgtype=conn.msgtype, timestamp_ns=timestamp,
                stamp_ns=stamp_ns(header.stamp) if header is not None else None,
                frame_id=header.frame_id if header is not None else None,
                data=data, msg=msg)
