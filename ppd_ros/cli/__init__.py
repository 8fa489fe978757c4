"""Command-line tools of ppd_ros (no rclpy)."""
