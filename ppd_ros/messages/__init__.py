"""Message payload conversion in plain numpy (no rclpy, no cv_bridge).

Functions take and return plain fields, so they serve rclpy messages and rosbags
dataclasses alike.
"""
