"""Write evaluated frames as a rosbag2 bag with depth_node's topic layout.

Every message carries the input image's header stamp and frame id, and is stored at that
bag time. What the depth is, is fixed for the whole bag (also recorded in the bag's metadata
custom_data under 'ppd_ros.eval.depth'), and named like the node's outputs
(ppd_ros.node.outputs):
  metric   (a GT depth topic was given): <ns>/depth/image, 32FC1 metres, the prediction
           aligned per frame to the GT with the paper's RANSAC fit log(1 + d) = a * pred + b;
           frames without GT are left out; <ns>/points (organized, x y z rgb) are written
           when camera info exists.
  relative (no GT): <ns>/depth/relative, 32FC1 PPD relative depth, normalised log(1 + d),
           larger = farther, NOT metres; no points.
<ns>/depth/camera_info sits beside the depth (image_transport's sibling rule). Points use
depth_node's PointCloud2 layout (32-byte xyz + rgb points, is_dense false). The bag is
written under a temporary name and replaces an earlier one when complete.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ppd_ros.bag.message_builders import camera_info_msg, depth_image_msg, pointcloud2_msg
from ppd_ros.bag.writer import BagWriter
from ppd_ros.evaluation.frame_results import FrameResult
from ppd_ros.geometry.camera_model import camera_from_info_fields
from ppd_ros.geometry.unproject import unproject
from ppd_ros.node.outputs import CAMERA_INFO, POINTS, depth_topic
from ppd_ros.pipeline.depth_pipeline import resize_nearest

METRIC_MEANING = ("32FC1 metres: PPD relative depth aligned per frame to the GT depth with the "
                  "paper's RANSAC fit log(1 + d) = a * pred + b")
RELATIVE_MEANING = ('32FC1 PPD relative depth (normalised log(1 + d), larger = farther), '
                    'NOT metres')


@dataclass(frozen=True)
class OutputTopics:
    depth: str          #: <ns>/depth/image (metres) or <ns>/depth/relative
    camera_info: str
    points: str

    @classmethod
    def under(cls, namespace: str, metric: bool) -> OutputTopics:
        """depth_node's topics in `namespace`; `metric` picks the depth topic."""
        ns = '/' + namespace.strip('/') if namespace.strip('/') else ''
        depth = depth_topic('range' if metric else 'relative')
        return cls(f'{ns}/{depth}', f'{ns}/{CAMERA_INFO}', f'{ns}/{POINTS}')


def write_output_bag(path: Path, storage: str, results: Iterable[FrameResult],
                     topics: OutputTopics, metric: bool) -> dict[str, int]:
    """Write the bag; returns {topic: message count}."""
    with BagWriter(path, storage, overwrite=True) as bag:
        bag.set_custom_data('ppd_ros.eval.depth', METRIC_MEANING if metric else RELATIVE_MEANING)
        for result in results:
            depth = result.metres if metric else result.relative
            if depth is None:
                continue
            stamp, frame_id = result.stamp_ns, result.frame_id
            bag.write(topics.depth, depth_image_msg(depth, stamp, frame_id))
            if result.camera is None:
                continue
            bag.write(topics.camera_info, camera_info_msg(result.camera, stamp, frame_id))
            if metric:
                info = result.camera
                camera = camera_from_info_fields(info.k, info.p, info.width, info.height)
                rgb = resize_nearest(result.rgb, info.width, info.height)
                bag.write(topics.points, pointcloud2_msg(unproject(depth, camera), stamp,
                                                         frame_id, rgb))
        counts = dict(bag.counts)
    return counts
