"""Training of PPD models (no rclpy): target normalisation, logit-normal timesteps, losses,
datasets (synthetic scenes, rosbag2 bags), a resumable trainer, the tiny recipe's stage-1
regressor and flow-matching stage 2, and held-out evaluation. Entry point: ``ppd-train``.
"""
