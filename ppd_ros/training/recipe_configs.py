"""Model configs of the shipped tiny recipe: the registry's 'tiny', with and without semantics.

The registry's 'tiny' DiT is hidden 256 (= the 16 x 16 noise values of a stem patch, like the
Large's 1024 = 4 x 16 x 16 input values): with hidden 128 half of the noise could never be
predicted (velocity MSE floor ~0.5, outputs stay noisy). Depth 2 (one block per grid) keeps the
three shipped files within 20 MB (the DiTs in float16, the encoder in int8).
"""
from __future__ import annotations

from ppd_ros.model.configs import ModelConfig, get_config


def recipe_config(variant: str = 'tiny_ppd') -> ModelConfig:
    """'tiny_ppd' (SP-DiT + tiny encoder), 'tiny_vanilla' (no encoder), or any registry variant."""
    if variant == 'tiny_ppd':
        return get_config('tiny', name='tiny_ppd')
    if variant == 'tiny_vanilla':
        return get_config('tiny', name='tiny_vanilla', encoder={'type': 'none'})
    return get_config(variant)
