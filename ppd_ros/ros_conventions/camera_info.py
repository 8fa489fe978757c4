"""What a CameraInfo says about the image it comes with (no rclpy).

depth_node, like depth_image_proc, treats its input as a rectified image: it unprojects with
P, the projection of the rectified image, and never applies D. In ROS a camera's raw and
rectified images share one CameraInfo whose D describes the raw image, so a non-zero D alone
does not mean the input is raw; an image topic named like image_proc's outputs
(image_rect, image_rect_color) is taken as rectified.
"""
from __future__ import annotations

from collections.abc import Sequence

from ppd_ros.untrusted_text import quoted


def looks_rectified(image_topic: str) -> bool:
    """Whether the topic's last name component says rectified (image_rect, image_rect_color)."""
    return 'rect' in image_topic.rstrip('/').rsplit('/', 1)[-1]


def distortion_warning(image_topic: str, info_topic: str, distortion_model: str,
                       d: Sequence[float]) -> str | None:
    """A warning when the CameraInfo has non-zero distortion and the image topic does not
    look rectified; None otherwise."""
    if looks_rectified(image_topic) or not any(abs(float(k)) > 0.0 for k in d):
        return None
    coefficients = ', '.join(f'{float(k):.4g}' for k in list(d)[:8])
    if len(d) > 8:
        coefficients += f', ... ({len(d)} values)'
    model = quoted(distortion_model, 40) if distortion_model else 'no model'
    return (f"CameraInfo on '{info_topic}' has non-zero distortion "
            f"({model}, D = [{coefficients}]): depth_node treats "
            f"'{image_topic}' as a rectified image and unprojects it with P, ignoring D. If it "
            f"is the raw image, subscribe to the rectified one (image_proc's image_rect) "
            f"instead, or the clouds bend towards the image corners")
