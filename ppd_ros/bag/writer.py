"""Write rosbag2 bags (sqlite3 or mcap storage) from rosbags message objects."""
from __future__ import annotations

import shutil
from pathlib import Path

from rosbags.rosbag2 import StoragePlugin, Writer

from .typestore import typestore

#: Storage names as `ros2 bag record -s` spells them.
STORAGES = {'sqlite3': StoragePlugin.SQLITE3, 'mcap': StoragePlugin.MCAP}
#: Suffixes of single-file bags and their storage.
STORAGE_SUFFIXES = {'.db3': 'sqlite3', '.mcap': 'mcap'}
#: rosbag2 metadata version written by ROS 2 Jazzy (rosbags also writes 8).
DEFAULT_BAG_VERSION = 9


def looks_like_bag(path: Path) -> bool:
    """A rosbag2 directory: metadata.yaml or storage files inside, and nothing else nested."""
    if not path.is_dir():
        return False
    entries = list(path.iterdir())
    return all(e.is_file() for e in entries) and any(
        e.name == 'metadata.yaml' or e.suffix in ('.db3', '.mcap') for e in entries)


def storage_for_path(path: str | Path) -> str | None:
    """The storage a single-file bag path asks for by its suffix (.db3, .mcap), else None."""
    return STORAGE_SUFFIXES.get(Path(path).suffix)


class BagWriter:
    """Context manager writing messages to a new rosbag2 bag.

    A path ending in .mcap or .db3 becomes that one storage file (rosbag2 readers open it
    without metadata.yaml); any other path becomes a rosbag2 directory. The bag is written
    under ``<path>.partial`` and moved into place when it is complete, so an interrupted
    write leaves no half bag. Topics are registered on their first message, with the
    message's type. ``overwrite`` replaces an existing bag (never anything else).
    """

    def __init__(self, path: str | Path, storage: str = 'sqlite3', *,
                 version: int = DEFAULT_BAG_VERSION, overwrite: bool = False):
        if storage not in STORAGES:
            raise ValueError(f"unknown storage '{storage}'; expected one of {sorted(STORAGES)}")
        self.path = Path(path)
        self.storage = storage
        self.single_file = storage_for_path(self.path) is not None
        if self.single_file and storage_for_path(self.path) != storage:
            raise ValueError(f'{self.path} names a {storage_for_path(self.path)} file, but the '
                             f'storage is {storage}')
        if self.path.exists():
            if not overwrite:
                raise FileExistsError(f'{self.path} exists; pass overwrite=True to replace it')
            if not (looks_like_bag(self.path) or (self.single_file and self.path.is_file())):
                raise FileExistsError(f'{self.path} exists and is not a rosbag2 bag; '
                                      'refusing to overwrite it')
        self._staging = self.path.with_name(self.path.name + '.partial')
        if self._staging.exists():  # left by an interrupted write
            leftover = self._staging / self.path.name
            if not (self._staging.is_dir() and len(list(self._staging.iterdir())) <= 1
                    and (not leftover.exists() or looks_like_bag(leftover))):
                raise FileExistsError(f'{self._staging} exists and is not an unfinished bag; '
                                      'move it away')
            shutil.rmtree(self._staging)
        self._staging.mkdir(parents=True)
        self._writer = Writer(self._staging / self.path.name, version=version,
                              storage_plugin=STORAGES[storage])
        self._connections = {}
        self.counts: dict[str, int] = {}

    def open(self) -> BagWriter:
        self._writer.open()
        return self

    def close(self) -> None:
        self._writer.close()
        written = self._staging / self.path.name
        if self.single_file:
            written = written / (self.path.name + self.path.suffix)
        if self.path.is_dir():
            shutil.rmtree(self.path)
        elif self.path.exists():
            self.path.unlink()
        written.rename(self.path)
        shutil.rmtree(self._staging)

    def abort(self) -> None:
        self._writer.abort()
        shutil.rmtree(self._staging, ignore_errors=True)

    def __enter__(self) -> BagWriter:
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def set_custom_data(self, key: str, value: str) -> None:
        """A key/value pair for metadata.yaml's custom_data."""
        self._writer.set_custom_data(key, value)

    def write(self, topic: str, msg, timestamp_ns: int | None = None) -> None:
        """Serialise ``msg`` (a rosbags message object) onto ``topic``.

        ``timestamp_ns`` is the bag (receive) time; it defaults to the message's header stamp.
        """
        msgtype = msg.__msgtype__
        conn = self._connections.get(topic)
        if conn is None:
            conn = self._writer.add_connection(topic, msgtype, typestore=typestore())
            self._connections[topic] = conn
            self.counts[topic] = 0
        elif conn.msgtype != msgtype:
            raise TypeError(f"topic '{topic}' carries {conn.msgtype}, not {msgtype}")
        if timestamp_ns is None:
            header = getattr(msg, 'header', None)
            if header is None:
                raise ValueError(f'{msgtype} has no header: pass timestamp_ns')
            timestamp_ns = header.stamp.sec * 1_000_000_000 + header.stamp.nanosec
        self._writer.write(conn, int(timestamp_ns), typestore().serialize_cdr(msg, msgtype))
        self.counts[topic] += 1
