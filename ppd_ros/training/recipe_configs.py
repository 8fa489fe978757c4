"""Model configs of the shipped tiny recipe.

The registry's 'tiny' DiT (hidden 128) cannot do pixel-space flow matching: its patch-16 stem
maps the 256 noise values of a patch to 128 channels, so half of the noise can never be
predicted (velocity MSE floor ~0.5, outputs stay noisy). The recipe therefore widens the DiT
to hidden 256 (= 16 x 16 noise values, like the Large's 1024 = 4 x 16 x 16 input values) and
keeps the fusion MLP at 512 (it has to carry the noise too); depth 2 (one block per grid) keeps
the three shipped files within 20 MB in float16. The semantics encoder is tiny's unchanged.
"""
from __future__ import annotations

from ppd_ros.model.configs import ModelConfig, get_config

RECIPE_DIT = {'hidden_size': 256, 'num_heads': 4, 'depth': 2, 'mlp_ratio': 4.0,
              'fusion_hidden_size': 512}


def recipe_config(variant: str = 'tiny_ppd') -> ModelConfig:
    """'tiny_ppd' (SP-DiT + tiny encoder), 'tiny_vanilla' (no encoder), or any registry variant."""
    if variant == 'tiny_ppd':
        return get_config('tiny', name='tiny_ppd', **RECIPE_DIT)
    if variant == 'tiny_vanilla':
        return get_config('tiny', name='tiny_vanilla', encoder={'type': 'none'}, **RECIPE_DIT)
    return get_config(variant)
