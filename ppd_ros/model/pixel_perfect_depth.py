"""The PPD network: a semantics encoder (or none) and the cascade DiT, built from a config.

The semantics encoder is chosen by ``config.encoder.type`` from ``SEMANTICS_ENCODERS``. An
encoder class takes the EncoderConfig and provides

    precompute(grid_h, grid_w)          constants of one g16 grid (cached by the engine)
    semantics(image, precomputed=None)  (B, 3, h, w) in [0, 1] -> (B, gh*gw, semantic_dim)

so that it owns its own preprocessing (resize, normalisation) and the DiT sees tokens on its
g16 grid whatever the encoder.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from torch import nn

from .configs import EncoderConfig, ModelConfig, get_config
from .dit import CascadeRope, Conditioning, DiT
from .moge2 import semantics_encoder as moge2_semantics_encoder
from .vit_encoder import DinoV2Encoder

SEMANTICS_ENCODERS: dict[str, Callable[[EncoderConfig], nn.Module]] = {
    'dinov2': DinoV2Encoder,
    'moge2': moge2_semantics_encoder,   # MoGe-2's encoder (ppd_moge.pth's semantics)
}


def build_semantics_encoder(config: EncoderConfig) -> nn.Module | None:
    """The encoder module for ``config.type`` (None for type 'none')."""
    if not config.enabled:
        return None
    if config.type not in SEMANTICS_ENCODERS:
        raise ValueError(f'no semantics encoder of type {config.type!r}; known: '
                         f'{sorted(SEMANTICS_ENCODERS)}')
    return SEMANTICS_ENCODERS[config.type](config)


class PixelPerfectDepth(nn.Module):
    """Holds ``.dit`` and ``.encoder`` (None for a vanilla DiT); keys dit.* and encoder.*."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.dit = DiT(config)
        self.encoder = build_semantics_encoder(config.encoder)

    def semantics(self, image: torch.Tensor, precomputed: Any = None) -> torch.Tensor | None:
        """Semantic tokens (B, N0, D_sem) on the g16 grid of image (B, 3, h, w) in [0, 1].

        ``precomputed``: ``encoder.precompute(h // 16, w // 16)``, if already at hand.
        """
        if self.encoder is None:
            return None
        return self.encoder.semantics(image, precomputed)

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
