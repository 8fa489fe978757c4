"""A node under test plus a harness node in this test process, in a private rclpy context.

The harness publishes camera frames (rgb8 image, CameraInfo, optional depth reference) and
records what the node under test publishes, decoded to numpy. Messages still go through the
middleware (the conftest's per-session ROS_DOMAIN_ID, localhost only); only the process is
shared, so a test can hand the node objects such as a predictor double.
"""
from __future__ import annotations

import array
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from ppd_ros.geometry.pointcloud_layout import decode_cloud

NS = 1_000_000_000


def payload(arr: np.ndarray) -> array.array:
    out = array.array('B')
    out.frombytes(memoryview(np.ascontiguousarray(arr)).cast('B'))
    return out


def header(stamp_ns: int, frame_id: str = 'camera_color_optical_frame') -> Header:
    h = Header(frame_id=frame_id)
    h.stamp.sec, h.stamp.nanosec = divmod(stamp_ns, NS)
    return h


def stamp_of(msg) -> int:
    return msg.header.stamp.sec * NS + msg.header.stamp.nanosec


@dataclass
class Received:
    stamp: int
    time: float                 # time.monotonic() at arrival
    data: Any                   # decoded payload (see Harness._record)
    meta: dict = field(default_factory=dict)


class Harness:
    """Run `make_node(context)` and a publisher / recorder node under `namespace`."""

    def __init__(self, make_node: Callable[[rclpy.Context], Any], namespace: str):
        self.ns = namespace
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = make_node(self.context)
        self.probe = rclpy.create_node('reference_test_harness', context=self.context)
        self._cond = threading.Condition()
        self.received: dict[str, list[Received]] = defaultdict(list)
        self.image_pub = self.probe.create_publisher(Image, f'{namespace}/image', 10)
        self.info_pub = self.probe.create_publisher(CameraInfo, f'{namespace}/camera_info', 10)
        self.reference_pub = self.probe.create_publisher(Image, f'{namespace}/depth_reference',
                                                         10)
        for topic, kind in (('depth/image', Image), ('depth/relative', Image),
                            ('depth/colored', Image), ('depth/inliers', Image),
                            ('depth/source', Image),
                            ('depth/camera_info', CameraInfo), ('points', PointCloud2)):
            self.probe.create_subscription(kind, f'{namespace}/{topic}',
                                           self._recorder(topic), 10)
        self.probe.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.probe)
        self._spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self._spinner.start()

    # --- recording (executor thread) ---

    def _recorder(self, topic: str):
        def callback(msg):
            self._record(topic, stamp_of(msg), _decode(msg))
        return callback

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith('ppd_ros'):
                level = status.level[0] if isinstance(status.level, bytes) else int(status.level)
                self._record('/diagnostics', stamp_of(msg), {
                    'level': level, 'message': status.message,
                    'values': {kv.key: kv.value for kv in status.values}})

    def _record(self, topic: str, stamp: int, data) -> None:
        with self._cond:
            self.received[topic].append(Received(stamp, time.monotonic(), data))
            self._cond.notify_all()

    # --- test side ---

    def wait_until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f'timed out after {timeout} s waiting for {what}')
                self._cond.wait(min(remaining, 0.05))

    def wait_connected(self, timeout: float = 20.0,
                       outputs=('depth/image', 'depth/colored', 'points')) -> None:
        """Until the node subscribes to our inputs and publishes `outputs`."""
        pubs = (self.image_pub, self.info_pub, self.reference_pub)
        outputs = [f'{self.ns}/{t}' for t in outputs]
        self.wait_until(lambda: all(p.get_subscription_count() > 0 for p in pubs)
                        and all(self.probe.count_publishers(t) > 0 for t in outputs),
                        timeout, 'the node under test to connect')

    def stamps(self, topic: str) -> set[int]:
        with self._cond:
            return {r.stamp for r in self.received[topic]}

    def messages(self, topic: str) -> list[Received]:
        with self._cond:
            return list(self.received[topic])

    def publish_frame(self, stamp_ns: int, rgb: np.ndarray, k: np.ndarray) -> None:
        """CameraInfo (P = [K | 0]) and the rgb8 image, both stamped stamp_ns."""
        h, w = rgb.shape[:2]
        info = CameraInfo(header=header(stamp_ns), width=w, height=h,
                          distortion_model='plumb_bob')
        info.k = [float(v) for v in np.ravel(k)]
        info.p = [float(v) for v in np.hstack([np.reshape(k, (3, 3)), np.zeros((3, 1))]).ravel()]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.d = [0.0] * 5
        self.info_pub.publish(info)
        image = Image(header=header(stamp_ns), height=h, width=w, encoding='rgb8', step=3 * w,
                      check_fields=True)
        image.data = payload(rgb)
        self.image_pub.publish(image)

    def publish_reference_mm(self, stamp_ns: int, depth_m: np.ndarray) -> None:
        """16UC1 millimetres, 0 where depth_m is NaN."""
        mm = np.where(np.isfinite(depth_m), np.rint(depth_m * 1000.0), 0).astype('<u2')
        msg = Image(header=header(stamp_ns), height=mm.shape[0], width=mm.shape[1],
                    encoding='16UC1', step=2 * mm.shape[1], check_fields=True)
        msg.data = payload(mm)
        self.reference_pub.publish(msg)

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self._spinner.join(timeout=5.0)
        self.node.destroy_node()
        self.probe.destroy_node()
        rclpy.try_shutdown(context=self.context)


def _decode(msg):
    if isinstance(msg, CameraInfo):
        return (msg.width, msg.height)
    if isinstance(msg, PointCloud2):
        fields = [(f.name, f.offset, f.datatype, f.count) for f in msg.fields]
        xyz, _ = decode_cloud(fields, msg.point_step, msg.height, msg.width, msg.data)
        return xyz.copy()
    dtype = {'32FC1': '<f4', '16UC1': '<u2', 'mono8': np.uint8}.get(msg.encoding)
    if dtype is None:
        return (msg.encoding, msg.height, msg.width)
    return np.frombuffer(msg.data, dtype).reshape(msg.height, msg.width).copy()
