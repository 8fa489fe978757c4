"""Camera geometry in plain numpy (no rclpy): intrinsics, unprojection, PointCloud2 layout."""
