"""Evaluation of depth predictions against ground truth (pure numpy, no rclpy).

alignment_eval: the paper's RANSAC log-space alignment and LSQ scale+shift; metrics: AbsRel
and delta accuracies; edge_band / edge_chamfer / flying_pixels: edge-aware point-cloud metrics;
nearest_neighbour: exact 3-D nearest-neighbour distances.
"""
