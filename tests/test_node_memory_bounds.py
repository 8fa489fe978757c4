"""depth_node's memory does not grow with the number of image sizes it has seen.

The node runs in its own process (its RSS is read from /proc) with the shipped tiny model;
this process is the camera. After 30 frames of one size, 100 frames of 100 distinct sizes and
shapes (aspect ratios 1:8 to 8:1, so some 20 distinct network resolutions, far more than the
predictor's per-resolution cache keeps) must leave the node within 50 MB of that RSS.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from ros_helpers import IMAGE_TOPIC, INFO_TOPIC, NAMESPACE, NodeProcess


def rss_mb(pid: int) -> float:
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
    raise AssertionError('no VmRSS')


class Camera:
    """Publishes rgb8 frames and CameraInfo; waits for each frame's depth."""

    def __init__(self):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image
        self.rclpy, self.Image, self.CameraInfo = rclpy, Image, CameraInfo
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('memory_test_camera', context=self.context)
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.image_pub = self.node.create_publisher(Image, IMAGE_TOPIC, qos)
        self.info_pub = self.node.create_publisher(CameraInfo, INFO_TOPIC, qos)
        self.answered: set[int] = set()
        self.node.create_subscription(Image, f'{NAMESPACE}/depth/relative', self._on_depth, qos)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        import threading
        self.spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self.spinner.start()

    def _on_depth(self, msg) -> None:
        self.answered.add(msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec)

    def wait_connected(self) -> None:
        deadline = time.monotonic() + 60
        while self.image_pub.get_subscription_count() == 0 or \
                self.node.count_publishers(f'{NAMESPACE}/depth/relative') == 0:
            assert time.monotonic() < deadline, 'the node never connected'
            time.sleep(0.05)
        time.sleep(0.5)

    def send(self, width: int, height: int) -> None:
        from in_process_harness import header, payload
        stamp = time.time_ns()
        info = self.CameraInfo(header=header(stamp), width=width, height=height)
        f = 0.8 * max(width, height)
        info.k = [f, 0.0, width / 2, 0.0, f, height / 2, 0.0, 0.0, 1.0]
        info.p = [f, 0.0, width / 2, 0.0, 0.0, f, height / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
        self.info_pub.publish(info)
        v, u = np.mgrid[0:height, 0:width]
        rgb = np.stack([u % 256, v % 256, (u + v) % 256], -1).astype(np.uint8)
        image = self.Image(header=header(stamp), height=height, width=width, encoding='rgb8',
                           step=3 * width, check_fields=True)
        image.data = payload(rgb)
        self.image_pub.publish(image)
        deadline = time.monotonic() + 30
        while stamp not in self.answered:
            assert time.monotonic() < deadline, f'no depth for the {width}x{height} frame'
            time.sleep(0.01)

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.spinner.join(timeout=5.0)
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)


def distinct_sizes(n: int = 100) -> list[tuple[int, int]]:
    sizes = []
    for i in range(n):
        aspect = 8.0 ** (2.0 * i / (n - 1) - 1.0)   # 1:8 .. 8:1
        area = 60_000 + 2_000 * i                   # all below 640 x 480
        width = max(1, round(math.sqrt(area * aspect)))
        sizes.append((width, max(1, round(area / width))))
    assert len(set(sizes)) == n
    return sizes


def test_rss_after_100_image_sizes_stays_within_50_mb_of_one_size(tmp_path):
    node = NodeProcess(tmp_path / 'node.log', params={
        'steps': 1, 'num_threads': 1, 'colorize': False,
        'qos.reliability': 'reliable'})  # camera-sized frames: no losses on default transports
    camera = Camera()
    try:
        node.wait_ready()
        camera.wait_connected()
        for _ in range(30):
            camera.send(640, 480)
        one_size = rss_mb(node.proc.pid)
        for width, height in distinct_sizes():
            camera.send(width, height)
        many_sizes = rss_mb(node.proc.pid)
    finally:
        camera.close()
        returncode = node.stop()
    print(f'\nnode RSS after 30 frames of 640x480: {one_size:.1f} MB; after 100 more sizes: '
          f'{many_sizes:.1f} MB ({many_sizes - one_size:+.1f} MB)')
    assert returncode == 0, node.output()
    assert many_sizes - one_size < 50.0
