"""Camera geometry in numpy and OpenCV (no rclpy): intrinsics, unprojection, PointCloud2 layout,
colorization and PLY files."""
