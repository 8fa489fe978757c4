"""Pixel-Perfect Depth (PPD) model core in plain PyTorch (no rclpy).

    predictor = load_predictor(dit_checkpoint='models/ppd.pth',
                               encoder_checkpoint='models/depth_anything_v2_vitl.pth')
    pred = predictor.predict(rgb_uint8)      # pred.depth: relative depth, larger = farther
"""
from .checkpoint import (CheckpointError, CheckpointNotFoundError, load_checkpoint, load_official,
                         save_checkpoint)
from .configs import VARIANTS, EncoderConfig, ModelConfig, get_config
from .engine import Engine, TorchEngine
from .pixel_perfect_depth import PixelPerfectDepth, build_model
from .predictor import DepthPredictor, Prediction, load_predictor

__all__ = [
    'CheckpointError', 'CheckpointNotFoundError', 'DepthPredictor', 'EncoderConfig', 'Engine',
    'ModelConfig', 'PixelPerfectDepth', 'Prediction', 'TorchEngine', 'VARIANTS', 'build_model',
    'get_config', 'load_checkpoint', 'load_official', 'load_predictor', 'save_checkpoint',
]
