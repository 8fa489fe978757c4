"""Match the node's recorded outputs to the frames that were published (no rclpy).

Outputs carry the header stamp of their input image; the stamp identifies the frame. Latency
of a frame (seconds):
  wall-clock stamps (default): receive wall time - header stamp (the stamp is the wall time
                               at which the frame was published);
  --sim-time:                  receive wall time - wall time at which the frame with that
                               (bag) stamp was published.
A published frame without a depth output is dropped.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ppd_ros.bag.message_decoders import stamp_ns
from ppd_ros.bag.typestore import CAMERA_INFO, IMAGE, POINT_CLOUD2, typestore
from ppd_ros.evaluation.output_bag import OutputTopics
from ppd_ros.messages.image_encoding import image_to_float32


@dataclass(frozen=True)
class PublishedFrame:
    index: int
    bag_stamp_ns: int         #: the frame's stamp in the bag
    sent_stamp_ns: int        #: the header stamp it was published with
    sent_wall_ns: int         #: wall time just before the image was published


@dataclass(eq=False)
class NodeOutput:
    received_ns: int          #: wall time the depth image arrived
    depth: Any                #: rosbags sensor_msgs/Image
    camera_info: Any | None = None
    points: Any | None = None


def latency_s(frame: PublishedFrame, output: NodeOutput, sim_time: bool) -> float:
    reference = frame.sent_wall_ns if sim_time else frame.sent_stamp_ns
    return (output.received_ns - reference) * 1e-9


def match_outputs(published: list[PublishedFrame],
                  received: Mapping[str, list[tuple[int, bytes]]],
                  topics: OutputTopics) -> tuple[dict[int, NodeOutput], int]:
    """{frame index: its outputs} and the number of depth outputs that matched no frame."""
    by_stamp = {f.sent_stamp_ns: f for f in published}
    store = typestore()
    outputs: dict[int, NodeOutput] = {}
    unmatched = 0
    for received_ns, raw in received.get(topics.depth, []):
        msg = store.deserialize_cdr(raw, IMAGE)
        frame = by_stamp.get(stamp_ns(msg.header.stamp))
        if frame is None:
            unmatched += 1
        elif frame.index not in outputs:
            outputs[frame.index] = NodeOutput(received_ns, msg)
    for topic, msgtype, attribute in ((topics.camera_info, CAMERA_INFO, 'camera_info'),
                                      (topics.points, POINT_CLOUD2, 'points')):
        for _, raw in received.get(topic, []):
            msg = store.deserialize_cdr(raw, msgtype)
            frame = by_stamp.get(stamp_ns(msg.header.stamp))
            if frame is not None and frame.index in outputs:
                setattr(outputs[frame.index], attribute, msg)
    return outputs, unmatched


def float_image(msg) -> np.ndarray:
    """The node's 32FC1 depth output as float32 H x W, values untouched (relative depth may be
    <= 0, which ppd_ros.bag.decode_image would mark invalid)."""
    return image_to_float32(msg.encoding, msg.height, msg.width, msg.step, msg.data,
                            bool(msg.is_bigendian))
