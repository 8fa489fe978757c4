"""ppd_ros: Pixel-Perfect Depth for ROS 2.

The model (``ppd_ros.model``), geometry, alignment and evaluation code import no rclpy and
work from plain Python; ``ppd_ros.node`` is the thin ROS 2 adapter over them.
"""
__version__ = '0.1.0'
