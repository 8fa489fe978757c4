"""Resolve and check the evaluation topics of a bag: colour image, GT depth, camera info,
camera poses (for flicker), and (live mode) the metric depth reference played into the
node's depth_reference input.

The image topic may be given as the raw topic while the bag holds only its image_transport
'/compressed' sibling (or the other way round); the message type decides how it is decoded.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ppd_ros.bag.reader import MissingTopicError
from ppd_ros.bag.typestore import CAMERA_INFO, COMPRESSED_IMAGE, IMAGE, POSE_STAMPED

#: --camera-info-topic / --pose-topic value that picks the image topic's sibling
#: ('camera_info', 'pose') if it exists.
AUTO = 'auto'
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)


class TopicTypeError(ValueError):
    """A topic exists but carries a message type the evaluation cannot use."""


@dataclass(frozen=True)
class EvalTopics:
    image: str
    image_type: str            # sensor_msgs/msg/Image or sensor_msgs/msg/CompressedImage
    gt: str | None
    gt_type: str | None
    info: str | None
    reference: str | None = None       # sensor_msgs/msg/Image, 16UC1 mm or 32FC1 m
    reference_type: str | None = None
    pose: str | None = None            # geometry_msgs/msg/PoseStamped of the camera

    @property
    def compressed(self) -> bool:
        return self.image_type == COMPRESSED_IMAGE


def _image_topic(available: dict[str, str], topic: str) -> str:
    if topic in available:
        return topic
    if topic + '/compressed' in available:
        return topic + '/compressed'
    if topic.endswith('/compressed') and topic[:-len('/compressed')] in available:
        return topic[:-len('/compressed')]
    return topic


def _sibling(available: dict[str, str], image_topic: str, name: str, msgtype: str
             ) -> str | None:
    base = image_topic[:-len('/compressed')] if image_topic.endswith('/compressed') else image_topic
    candidate = base.rsplit('/', 1)[0] + '/' + name
    return candidate if available.get(candidate) == msgtype else None


def resolve_topics(available: dict[str, str], bag: Path, image: str, gt: str | None,
                   info: str | None, reference: str | None = None,
                   pose: str | None = None) -> EvalTopics:
    """Check the topics against the bag's {topic: type}; MissingTopicError lists what exists.

    info / pose 'auto': the camera_info / pose beside the image topic when the bag has it,
    else none.
    """
    image = _image_topic(available, image)
    info_topic = _sibling(available, image, 'camera_info', CAMERA_INFO) if info == AUTO else info
    pose_topic = _sibling(available, image, 'pose', POSE_STAMPED) if pose == AUTO else pose
    missing = [t for t in (image, gt, info_topic, reference, pose_topic)
               if t is not None and t not in available]
    if missing:
        raise MissingTopicError(missing, available, bag)
    if available[image] not in IMAGE_TYPES:
        raise TopicTypeError(f"image topic '{image}' carries {available[image]}; expected "
                             f"{' or '.join(IMAGE_TYPES)}")
    if gt is not None and available[gt] not in IMAGE_TYPES:
        raise TopicTypeError(f"depth topic '{gt}' carries {available[gt]}; expected a "
                             f"16UC1 (mm) or 32FC1 (m) {IMAGE}")
    if info_topic is not None and available[info_topic] != CAMERA_INFO:
        raise TopicTypeError(f"camera info topic '{info_topic}' carries "
                             f"{available[info_topic]}; expected {CAMERA_INFO}")
    if reference is not None and available[reference] != IMAGE:
        raise TopicTypeError(f"reference topic '{reference}' carries {available[reference]}; "
                             f"expected a 16UC1 (mm) or 32FC1 (m) {IMAGE}")
    if pose_topic is not None and available[pose_topic] != POSE_STAMPED:
        raise TopicTypeError(f"pose topic '{pose_topic}' carries {available[pose_topic]}; "
                             f'expected {POSE_STAMPED}')
    return EvalTopics(image, available[image], gt, available[gt] if gt else None, info_topic,
                      reference, available[reference] if reference else None, pose_topic)
