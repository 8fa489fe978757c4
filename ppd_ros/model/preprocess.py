"""Image <-> tensor steps around the network (spec sections 1 and 4).

    network size   s = sqrt(area / (H W)); h = max(16, 16 round(H s / 16)), same for w
    resize         cv2 INTER_AREA when shrinking (s < 1), INTER_CUBIC otherwise
    image tensor   RGB uint8 -> /255 in float64 -> float32, (1, 3, h, w) in [0, 1]
    encoder input  ImageNet-normalise, then bicubic resize to (h/16 * 14, w/16 * 14)
    postprocess    bilinear (align_corners=False) back to the input H x W
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NETWORK_MULTIPLE = 16


def network_size(height: int, width: int, area: int = 1024 * 768) -> tuple[int, int]:
    """(h, w) for an H x W image: about `area` pixels, aspect kept roughly, multiples of 16."""
    s = math.sqrt(area / (height * width))
    m = NETWORK_MULTIPLE
    return max(m, m * round(height * s / m)), max(m, m * round(width * s / m))


def resize_keep_aspect(image: np.ndarray, area: int = 1024 * 768) -> np.ndarray:
    """Resize an H x W (x C) uint8 image to ``network_size`` with the reference's cv2 flags."""
    height, width = image.shape[:2]
    h, w = network_size(height, width, area)
    shrinking = math.sqrt(area / (height * width)) < 1
    flag = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return cv2.resize(image, (w, h), interpolation=flag)


def image_to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """H x W x 3 RGB uint8 -> (1, 3, H, W) float32 in [0, 1] (divided in float64 first)."""
    scaled = (np.ascontiguousarray(rgb) / 255.0).astype(np.float32)
    return torch.from_numpy(scaled).permute(2, 0, 1).unsqueeze(0).contiguous()


def encoder_input(image: torch.Tensor, encoder_patch: int = 14,
                  stem_patch: int = NETWORK_MULTIPLE) -> torch.Tensor:
    """(B, 3, h, w) in [0, 1] -> normalised pixels at (h/16 * 14, w/16 * 14) for the ViT.

    Normalisation comes before the bicubic resize (a=-0.75, no antialias, no clamping), so that
    the encoder's patch grid equals the DiT's g16 grid.
    """
    mean = torch.tensor(IMAGENET_MEAN, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    normalised = (image - mean) / std
    size = (image.shape[-2] // stem_patch * encoder_patch,
            image.shape[-1] // stem_patch * encoder_patch)
    return F.interpolate(normalised, size=size, mode='bicubic', align_corners=False)


def upsample_depth(network_depth: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, 1, h, w) -> (B, 1, H, W), bilinear with align_corners=False."""
    return F.interpolate(network_depth, size=(height, width), mode='bilinear', align_corners=False)
