"""The rclpy side of live evaluation: publish serialized bag messages, record node outputs.

Messages travel as CDR bytes both ways (publish of bytes; subscriptions with raw=True), so
recording costs the callback almost nothing and receive times stay accurate. The session owns
its own rclpy Context and spins it on a background thread. Only live mode imports this module.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from ppd_ros.evaluation.bag_topics import EvalTopics
from ppd_ros.evaluation.output_bag import OutputTopics

NODE_NAME = 'ppd_eval_player'
_RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                       reliability=ReliabilityPolicy.RELIABLE)


@dataclass
class Received:
    """Raw messages per output topic: (wall receive time ns, CDR bytes)."""
    messages: dict[str, list[tuple[int, bytes]]] = field(default_factory=dict)
    last_ns: int = 0


class LiveSession:
    """with LiveSession(...) as s: s.wait_until_connected(...); s.publish(...); s.received"""

    def __init__(self, inputs: EvalTopics, outputs: OutputTopics, sim_time: bool):
        self._inputs, self._outputs, self._sim_time = inputs, outputs, sim_time
        self._lock = threading.Lock()
        self.received = Received({outputs.depth: [], outputs.camera_info: [], outputs.points: []})

    def __enter__(self) -> LiveSession:
        self._closing = False
        self._context = Context()
        rclpy.init(context=self._context, signal_handler_options=SignalHandlerOptions.NO)
        self._node = rclpy.create_node(NODE_NAME, context=self._context)
        node = self._node
        image_type = CompressedImage if self._inputs.compressed else Image
        self._image_pub = node.create_publisher(image_type, self._inputs.image, _RELIABLE)
        self._info_pub = (node.create_publisher(CameraInfo, self._inputs.info, _RELIABLE)
                          if self._inputs.info else None)
        self._reference_pub = (node.create_publisher(Image, self._inputs.reference, _RELIABLE)
                               if self._inputs.reference else None)
        self._clock_pub = (node.create_publisher(Clock, '/clock', _RELIABLE)
                           if self._sim_time else None)
        self._subs = [node.create_subscription(msg_type, topic, self._recorder(topic),
                                               _RELIABLE, raw=True)
                      for msg_type, topic in ((Image, self._outputs.depth),
                                              (CameraInfo, self._outputs.camera_info),
                                              (PointCloud2, self._outputs.points))]
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(node)
        self._spinner = threading.Thread(target=self._spin, name='ppd_eval_spin', daemon=True)
        self._spinner.start()
        return self

    def __exit__(self, *exc) -> None:
        self._closing = True
        self._executor.shutdown(timeout_sec=2.0)
        self._spinner.join(timeout=5.0)
        self._node.destroy_node()
        self._context.try_shutdown()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except Exception:
            # executor.shutdown() may destroy a handle the spinning thread is still using
            # (rclpy raises InvalidHandle then); harmless while closing, a bug otherwise
            if not self._closing:
                raise

    def _recorder(self, topic: str):
        store = self.received.messages[topic]

        def on_message(raw: bytes) -> None:
            now = time.time_ns()
            with self._lock:
                store.append((now, raw))
                self.received.last_ns = now
        return on_message

    def connected(self) -> bool:
        """The node subscribes to our image (and reference depth, when one is played) and
        publishes depth to us."""
        return (self._image_pub.get_subscription_count() > 0
                and (self._reference_pub is None
                     or self._reference_pub.get_subscription_count() > 0)
                and self._subs[0].get_publisher_count() > 0)

    def publish(self, image: bytes, info: bytes | None, clock_ns: int | None,
                reference: bytes | None = None) -> int:
        """Publish one frame (clock first, then camera info, then the reference depth, then
        the image, so the node has the reference when the image arrives); returns the wall
        time [ns] taken just before the image went out."""
        if clock_ns is not None and self._clock_pub is not None:
            msg = Clock()
            msg.clock.sec, msg.clock.nanosec = divmod(clock_ns, 1_000_000_000)
            self._clock_pub.publish(msg)
        if info is not None and self._info_pub is not None:
            self._info_pub.publish(info)
        if reference is not None and self._reference_pub is not None:
            self._reference_pub.publish(reference)
        sent = time.time_ns()
        self._image_pub.publish(image)
        return sent

    def depth_count(self) -> int:
        with self._lock:
            return len(self.received.messages[self._outputs.depth])

    def last_receive_ns(self) -> int:
        with self._lock:
            return self.received.last_ns
