"""DINOv2 ViT semantics encoder in the Depth-Anything-V2 layout (spec section 4).

    tokens = [cls, PatchEmbed14(pixels)] + pos_embed(grid)       no register tokens
    block:   x += ls1 * Attn(norm1(x));  x += ls2 * MLP(norm2(x))    exact-GELU MLP
    output   = norm(x)[:, 1:]                                    final-norm patch tokens

As a semantics encoder of the DiT (``semantics``) it takes the DiT's image (B, 3, h, w) in
[0, 1] and returns tokens on the g16 grid: ImageNet-normalised, bicubic-resized to
(h/16 * p, w/16 * p) pixels, so its patch grid is the DiT's g16 grid.

The stored position embedding covers a G x G grid (37 for DA2). Other grids gh x gw use
bicubic interpolation driven by scale_factor ((gh+0.1)/G, (gw+0.1)/G), exactly as DINOv2;
``F.interpolate(size=...)`` maps coordinates differently and is *not* equivalent.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .configs import EncoderConfig
from .dit import Mlp, PatchEmbed
from .fused_linear import linear
from .precision import compute_dtype_of, to_compute_dtype
from .preprocess import NETWORK_MULTIPLE, encoder_input


def interpolate_pos_embed(pos_embed: torch.Tensor, grid_h: int, grid_w: int,
                          offset: float = 0.1) -> torch.Tensor:
    """(1, 1 + G*G, D) stored embedding -> (1, 1 + gh*gw, D) for a gh x gw patch grid.

    Unchanged when the grid is the stored square grid. Otherwise the G x G part is resized
    in float32 with bicubic (a=-0.75, no antialias) by scale factors (gh+offset)/G (rows) and
    (gw+offset)/G (columns): source = (dst + 0.5) / factor - 0.5. The cls entry is kept.
    """
    stored = pos_embed.shape[1] - 1
    side = int(round(stored ** 0.5))
    if side * side != stored:
        raise ValueError(f'pos_embed grid of {stored} tokens is not square')
    if grid_h == side and grid_w == side:
        return pos_embed
    cls_pos = pos_embed[:, :1].float()
    grid = pos_embed[:, 1:].float().reshape(1, side, side, -1).permute(0, 3, 1, 2)
    scale = ((grid_h + offset) / side, (grid_w + offset) / side)
    grid = F.interpolate(grid, scale_factor=scale, mode='bicubic', antialias=False)
    if grid.shape[-2:] != (grid_h, grid_w):
        raise ValueError(f'pos_embed interpolation gave {tuple(grid.shape[-2:])}, '
                         f'expected {(grid_h, grid_w)}')
    grid = grid.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, -1)
    return torch.cat((cls_pos, grid), dim=1)


class EncoderAttention(nn.Module):
    """Plain multi-head self-attention, scale head_dim^-0.5; qkv rows are [q; k; v]."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = linear(x, self.qkv.weight, self.qkv.bias)
        qkv = qkv.reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(*qkv.contiguous().unbind(0))  # head-major: faster
        return linear(out.transpose(1, 2).reshape(b, n, d), self.proj.weight, self.proj.bias)


class LayerScale(nn.Module):
    """Per-channel residual branch scale gamma."""

    def __init__(self, dim: int, init_value: float = 1.0):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), init_value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class EncoderBlock(nn.Module):
    """Pre-norm ViT block with LayerScale on both residual branches."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, eps: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = EncoderAttention(dim, num_heads)
        self.ls1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), approximate='none')
        self.ls2 = LayerScale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.addcmul(x, self.ls1.gamma, self.attn(self.norm1(x)))  # x + ls1(attn(...))
        return torch.addcmul(x, self.ls2.gamma, self.mlp(self.norm2(x)))


class DinoV2Encoder(nn.Module):
    """DINOv2 ViT returning final-norm patch tokens (B, gh*gw, D) for normalised pixels."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        if not config.enabled:
            raise ValueError('DinoV2Encoder needs an encoder config of type dinov2')
        self.config = config
        dim, grid = config.embed_dim, config.pos_grid
        self.patch_embed = PatchEmbed(config.patch_size, 3, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, dim))
        self.blocks = nn.ModuleList(
            EncoderBlock(dim, config.num_heads, config.mlp_ratio, config.norm_eps)
            for _ in range(config.depth))
        self.norm = nn.LayerNorm(dim, eps=config.norm_eps)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """DINOv2-style random init (only used without pretrained weights)."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def inference_cast_modules(self) -> list[nn.Module]:
        """What runs in bf16 / fp16 at reduced precision (precision.py): the blocks (their
        LayerNorm weights stay float32); patch and position embedding stay float32."""
        return list(self.blocks)

    def position_embedding(self, grid_h: int, grid_w: int) -> torch.Tensor:
        """Stored position embedding resized to a gh x gw patch grid (cls first)."""
        return interpolate_pos_embed(self.pos_embed, grid_h, grid_w,
                                     self.config.interpolate_offset)

    def precompute(self, grid_h: int, grid_w: int) -> torch.Tensor:
        """What depends only on the g16 grid (the position embedding); see ``semantics``."""
        return self.position_embedding(grid_h, grid_w)

    def semantics(self, image: torch.Tensor,
                  precomputed: torch.Tensor | None = None) -> torch.Tensor:
        """Semantic tokens (B, gh*gw, D) of image (B, 3, 16 gh, 16 gw) in [0, 1].

        ``precomputed`` is ``self.precompute(gh, gw)`` (computed here when omitted).
        """
        pixels = encoder_input(image, self.config.patch_size, NETWORK_MULTIPLE)
        return self(pixels, precomputed)

    def forward(self, pixels: torch.Tensor, pos_embed: torch.Tensor | None = None) -> torch.Tensor:
        """pixels (B, 3, gh*p, gw*p), ImageNet-normalised; pos_embed may be precomputed."""
        p = self.config.patch_size
        grid_h, grid_w = pixels.shape[-2] // p, pixels.shape[-1] // p
        if pos_embed is None:
            pos_embed = self.position_embedding(grid_h, grid_w)
        x = self.patch_embed(pixels)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = to_compute_dtype(x + pos_embed.to(x.dtype), compute_dtype_of(self))
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, 1:]
