"""The rosbags type store used for every bag this package writes or reads (ROS 2 Jazzy)."""
from __future__ import annotations

from functools import lru_cache

from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.store import Typestore

TIME = 'builtin_interfaces/msg/Time'
HEADER = 'std_msgs/msg/Header'
IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
REGION_OF_INTEREST = 'sensor_msgs/msg/RegionOfInterest'
POINT_CLOUD2 = 'sensor_msgs/msg/PointCloud2'
POINT_FIELD = 'sensor_msgs/msg/PointField'
POSE_STAMPED = 'geometry_msgs/msg/PoseStamped'
POSE = 'geometry_msgs/msg/Pose'
POINT = 'geometry_msgs/msg/Point'
QUATERNION = 'geometry_msgs/msg/Quaternion'


@lru_cache(maxsize=1)
def typestore() -> Typestore:
    return get_typestore(Stores.ROS2_JAZZY)


def msg_class(msgtype: str) -> type:
    """The rosbags dataclass for a message type name such as 'sensor_msgs/msg/Image'."""
    return typestore().types[msgtype]
