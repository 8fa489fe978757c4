"""Per-frame depth processing shared by the ROS node and the offline tools (no rclpy)."""
