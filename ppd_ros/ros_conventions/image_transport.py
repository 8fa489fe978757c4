"""image_transport's naming rules, so that depth_image_proc-style consumers find our topics.

A CameraSubscriber (image_transport) or any depth_image_proc node subscribed to an image topic
looks for the CameraInfo as a *sibling* of that image: the image topic's last name component
replaced by `camera_info`. An output image `<ns>/depth/image` is therefore paired with
`<ns>/depth/camera_info`, and every image output of one camera must share its parent.
"""
from __future__ import annotations


def camera_info_topic(image_topic: str) -> str:
    """The CameraInfo topic image_transport pairs with `image_topic` (getCameraInfoTopic).

    The name is split at '/', empty components are dropped (except a trailing one), the last
    component is removed and `camera_info` appended, always as an absolute name. Like
    image_transport, this expects a fully resolved name (namespace and remapping applied):
    '/ns/depth/image' -> '/ns/depth/camera_info', 'image' -> '/camera_info'.
    """
    parts = image_topic.split('/')
    parents = [p for p in parts[:-1] if p]
    return ''.join('/' + p for p in parents) + '/camera_info'

