"""Depth-sensor fusion (no rclpy): keep a depth sensor where it is trustworthy and fill the
rest with PPD locally corrected to it."""
