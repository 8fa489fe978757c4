"""ROS 2 adapter: depth_node subscribes to images and publishes depth, clouds, diagnostics."""
