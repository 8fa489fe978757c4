"""The PPD network: a semantics encoder (or none) and the cascade DiT, built from a config."""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from .configs import ModelConfig, get_config
from .dit import CascadeRope, Conditioning, DiT
from .preprocess import encoder_input
from .vit_encoder import DinoV2Encoder


class PixelPerfectDepth(nn.Module):
    """Holds ``.dit`` and ``.encoder`` (None for a vanilla DiT); keys dit.* and encoder.*."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.dit = DiT(config)
        self.encoder = DinoV2Encoder(config.encoder) if config.encoder.enabled else None

    def semantics(self, image: torch.Tensor,
                  pos_embed: torch.Tensor | None = None) -> torch.Tensor | None:
        """Semantic tokens (B, N0, D_sem) on the g16 grid of image (B, 3, h, w) in [0, 1]."""
        if self.encoder is None:
            return None
        pixels = encoder_input(image, self.config.encoder.patch_size, self.config.stem_patch_size)
        return self.encoder(pixels, pos_embed)

    def velocity(self, x_t: torch.Tensor, image: torch.Tensor, t: torch.Tensor | None,
                 semantics: torch.Tensor | None = None, *, cond: Conditioning | None = None,
                 rope: CascadeRope | None = None) -> torch.Tensor:
        """v for latent x_t (B, 1, h, w) given the image (B, 3, h, w) in [0, 1] and timesteps t.

        The DiT input is [x_t, I - 0.5]; ``cond`` / ``rope`` are optional precomputations
        (``dit.condition(t)``, ``dit.rope_tables(h, w)``).
        """
        return self.dit(torch.cat((x_t, image - 0.5), dim=1), t, semantics, cond=cond, rope=rope)


def build_model(config: str | Mapping[str, Any] | ModelConfig = 'tiny', *,
                device=None) -> PixelPerfectDepth:
    """A randomly initialised model (deterministic under torch.manual_seed).

    ``device='meta'`` builds it without memory, to be filled by a checkpoint with assign=True.
    """
    config = get_config(config)
    if device is None:
        return PixelPerfectDepth(config)
    with torch.device(device):
        return PixelPerfectDepth(config)
