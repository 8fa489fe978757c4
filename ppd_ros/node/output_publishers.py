"""depth_node's output publishers, created and destroyed as the settings change.

The set of advertised topics follows ppd_ros.node.outputs.advertised_outputs: switching
depth.mode from 'relative' to 'range' at run time removes depth/relative and adds
depth/image and points. Publishing and re-syncing share one lock, so the inference worker
never publishes on a publisher that is being destroyed; a frame processed with older
settings simply skips outputs that are gone. While inactive (a managed node that is
configured but not active) the outputs stay advertised and nothing is published.
"""
from __future__ import annotations

import threading
from collections import Counter

from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from ppd_ros.node.outputs import CAMERA_INFO_MSG, IMAGE, OUTPUTS, POINT_CLOUD2, advertised_outputs

MESSAGE_TYPES = {IMAGE: Image, CAMERA_INFO_MSG: CameraInfo, POINT_CLOUD2: PointCloud2}
#: History depth of every output: a late subscriber gets the newest frame, nothing older.
OUTPUT_QOS_DEPTH = 1


class OutputPublishers:
    def __init__(self, node):
        self._node = node
        self._lock = threading.Lock()
        self._publishers: dict = {}
        self._active = False
        self._published: Counter[str] = Counter()

    def set_active(self, active: bool) -> None:
        """Allow publishing (True) or drop every message from now on (False)."""
        with self._lock:
            self._active = active

    def sync(self, settings) -> None:
        """Advertise exactly the outputs these settings can publish."""
        wanted = {o.topic for o in advertised_outputs(settings)}
        with self._lock:
            for topic in [t for t in self._publishers if t not in wanted]:
                self._node.destroy_publisher(self._publishers.pop(topic))
            for output in OUTPUTS:
                if output.topic in wanted and output.topic not in self._publishers:
                    self._publishers[output.topic] = self._node.create_publisher(
                        MESSAGE_TYPES[output.message], output.topic, OUTPUT_QOS_DEPTH)

    def topics(self) -> list[str]:
        """Resolved names of the advertised outputs."""
        with self._lock:
            return [p.topic_name for p in self._publishers.values()]

    def subscribed(self, topic: str) -> bool:
        with self._lock:
            publisher = self._publishers.get(topic)
            return publisher is not None and publisher.get_subscription_count() > 0

    def any_subscribed(self) -> bool:
        with self._lock:
            return any(p.get_subscription_count() > 0 for p in self._publishers.values())

    def wanted(self, topic: str, lazy: bool) -> bool:
        """Worth building: advertised, and subscribed to unless the node is not lazy."""
        with self._lock:
            publisher = self._publishers.get(topic) if self._active else None
            return publisher is not None and (not lazy or publisher.get_subscription_count() > 0)

    def publish(self, topic: str, msg) -> bool:
        """Publish on `topic` if it is still advertised and active; False when not."""
        with self._lock:
            publisher = self._publishers.get(topic) if self._active else None
            if publisher is None:
                return False
            publisher.publish(msg)
            self._published[topic] += 1
            return True

    def published(self) -> dict[str, int]:
        """Messages published so far per advertised output (relative topic name)."""
        with self._lock:
            return {topic: self._published[topic] for topic in self._publishers}

    def close(self) -> None:
        with self._lock:
            for publisher in self._publishers.values():
                self._node.destroy_publisher(publisher)
            self._publishers.clear()
