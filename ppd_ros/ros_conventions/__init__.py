"""ROS conventions as plain functions (no rclpy): topic naming, QoS matching, middleware set-up."""
