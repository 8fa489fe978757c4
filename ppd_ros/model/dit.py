"""Semantics-prompted cascade DiT of PPD (spec section 3).

    tokens = PatchEmbed16([x_t, I - 0.5])                       g16 grid, N0 tokens
    c      = TimestepEmbedder(t)                                raw integer t
    blocks 0 .. depth/2-1 at g16, RoPE on g16 positions
    tokens = expand_2x2(proj_fusion([tokens, normalize(sem)]))  g8 grid, N1 = 4 N0 tokens
    blocks depth/2 .. depth-1 at g8, RoPE on g8 positions
    v      = unpatchify8(FinalLayer(tokens, c))                 (B, 1, h, w) velocity

Everything that depends only on t (``condition``) or only on the resolution
(``rope_tables``) can be computed once and passed in, so a sampler pays for it once.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .configs import ModelConfig
from .fused_linear import gelu_name, linear
from .precision import compute_dtype_of, to_compute_dtype
from .rope import RopeTables, apply_rope, rope_tables
from .timestep_embedding import TimestepEmbedder
from .token_expansion import FusionMlp, expand_tokens, fusion_input


def modulate(y: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: y * (1 + scale) + shift, broadcast over tokens."""
    return y * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def modulated_norm(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor,
                   eps: float) -> torch.Tensor:
    """modulate(LayerNorm(x), shift, scale) for a LayerNorm without affine parameters.

    When every row shares one modulation (shift and scale of batch 1, as at inference) it is
    one LayerNorm whose affine weight is 1 + scale and bias is shift.
    """
    if shift.shape[0] == 1:
        return F.layer_norm(x, x.shape[-1:], 1 + scale[0], shift[0], eps)
    return modulate(F.layer_norm(x, x.shape[-1:], eps=eps), shift, scale)


def gated_residual(x: torch.Tensor, gate: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
    """x + gate * branch (gate (B, D) broadcast over tokens) in one pass."""
    return torch.addcmul(x, gate.unsqueeze(1), branch)


class CascadeRope(NamedTuple):
    """RoPE tables of both stages: g16 (before the fusion) and g8 (after)."""

    coarse: RopeTables
    fine: RopeTables


class Conditioning(NamedTuple):
    """Everything derived from t: c, each block's 6 adaLN vectors and the final layer's 2."""

    c: torch.Tensor
    blocks: tuple[torch.Tensor, ...]
    final: torch.Tensor

    def select(self, i: int) -> 'Conditioning':
        """Row i (one timestep) of a conditioning computed for a list of timesteps."""
        return Conditioning(self.c[i:i + 1], tuple(m[i:i + 1] for m in self.blocks),
                            self.final[i:i + 1])


class PatchEmbed(nn.Module):
    """Non-overlapping patch stem: (B, C, h, w) -> (B, (h/p)(w/p), D), row-major tokens.

    The weights are those of a Conv2d with kernel = stride = p (keys ``proj.weight`` of shape
    (D, C, p, p)); it runs as the same operation written as a matrix product over unfolded
    patches, avoiding oneDNN's bf16 convolution (wrong for 4 -> 1024, p = 16 in torch 2.13).
    """

    def __init__(self, patch_size: int, in_channels: int, dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        p = self.patch_size
        patches = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
        patches = patches.reshape(b, (h // p) * (w // p), c * p * p)
        weight = self.proj.weight.reshape(self.proj.out_channels, c * p * p)
        return F.linear(patches, weight, self.proj.bias)


def rope_heads_first(u: torch.Tensor, tables: RopeTables) -> torch.Tensor:
    """RoPE of u (B, N, heads, d) (tables (N, 1, d)) as a (B, heads, N, d) tensor.

    Eager without gradients, the result is written straight into a head-major tensor (out=
    has no autograd; otherwise it is a transposed view, which torch.compile lays out itself).
    """
    if (u.requires_grad and torch.is_grad_enabled()) or torch.compiler.is_compiling():
        return apply_rope(u, tables).transpose(1, 2)
    b, n, h, d = u.shape
    head_major = u.new_empty(b, h, n, d)
    apply_rope(u, tables, out=head_major.transpose(1, 2))
    return head_major


class Attention(nn.Module):
    """Multi-head self-attention with per-head qk LayerNorm (affine, shared) and 2D RoPE.

    q, k and v come from the three row blocks of ``qkv`` as three products, so each is a
    contiguous (B, N, heads, head_dim) tensor and the qk-norm needs no layout copy; RoPE writes
    q and k head-major (B, heads, N, head_dim), the layout attention reads fastest.
    """

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm = nn.LayerNorm(self.head_dim, eps=1e-5)
        self.k_norm = nn.LayerNorm(self.head_dim, eps=1e-5)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, rope: RopeTables) -> torch.Tensor:
        b, n, d = x.shape
        heads = (b, n, self.num_heads, self.head_dim)
        weight, bias = self.qkv.weight, self.qkv.bias
        q, k, v = (linear(x, weight[i * d:(i + 1) * d], bias[i * d:(i + 1) * d]).view(heads)
                   for i in range(3))
        per_token = RopeTables(rope.cos.unsqueeze(1), rope.sin.unsqueeze(1))  # (N, 1, head_dim)
        q = rope_heads_first(self.q_norm(q), per_token)
        k = rope_heads_first(self.k_norm(k), per_token)
        v = v.transpose(1, 2).contiguous()
        out = F.scaled_dot_product_attention(q, k, v)
        return linear(out.transpose(1, 2).reshape(b, n, d), self.proj.weight, self.proj.bias)


class Mlp(nn.Module):
    """fc1 -> GELU (tanh approximation) -> fc2."""

    def __init__(self, dim: int, hidden_dim: int, approximate: str = 'tanh'):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU(approximate=approximate)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = linear(x, self.fc1.weight, self.fc1.bias, gelu_name(self.act.approximate))
        return linear(hidden, self.fc2.weight, self.fc2.bias)


class DiTBlock(nn.Module):
    """Transformer block with adaLN-Zero conditioning."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def modulation(self, c: torch.Tensor) -> torch.Tensor:
        """(B, 6D): shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp."""
        return self.adaLN_modulation(c)

    def forward(self, x: torch.Tensor, modulation: torch.Tensor, rope: RopeTables) -> torch.Tensor:
        modulation = modulation.to(x.dtype)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = modulation.chunk(6, -1)
        attn_in = modulated_norm(x, shift_msa, scale_msa, self.norm1.eps)
        x = gated_residual(x, gate_msa, self.attn(attn_in, rope))
        mlp_in = modulated_norm(x, shift_mlp, scale_mlp, self.norm2.eps)
        return gated_residual(x, gate_mlp, self.mlp(mlp_in))


class FinalLayer(nn.Module):
    """adaLN-modulated LayerNorm, then a linear map to patch_size^2 * out_channels values."""

    def __init__(self, dim: int, patch_size: int, out_channels: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.linear = nn.Linear(dim, patch_size * patch_size * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def modulation(self, c: torch.Tensor) -> torch.Tensor:
        """(B, 2D): shift, scale."""
        return self.adaLN_modulation(c)

    def forward(self, x: torch.Tensor, modulation: torch.Tensor) -> torch.Tensor:
        """Runs in the dtype of its own weights (float32 at reduced precision)."""
        x = to_compute_dtype(x, self.linear.weight.dtype)
        shift, scale = modulation.to(x.dtype).chunk(2, dim=-1)
        return self.linear(modulated_norm(x, shift, scale, self.norm_final.eps))


class DiT(nn.Module):
    """The PPD velocity network v = DiT([x_t, I - 0.5], t, semantics)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        dim = config.hidden_size
        self.x_embedder = PatchEmbed(config.stem_patch_size, config.in_channels, dim)
        self.t_embedder = TimestepEmbedder(dim, config.frequency_embedding_size)
        self.blocks = nn.ModuleList(
            DiTBlock(dim, config.num_heads, config.mlp_ratio) for _ in range(config.depth))
        self.proj_fusion = FusionMlp(
            dim + config.encoder.semantic_dim, config.fusion_hidden_size, 4 * dim)
        self.final_layer = FinalLayer(dim, config.patch_size, config.out_channels)
        self.initialize_weights()

    @property
    def fusion_after(self) -> int:
        """Index of the last block on the g16 grid (the fusion follows it)."""
        return self.config.depth // 2 - 1

    def initialize_weights(self) -> None:
        """DiT init: xavier linears, zero adaLN outputs and final linear, so v == 0 at start."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        stem = self.x_embedder.proj
        nn.init.xavier_uniform_(stem.weight.view(stem.weight.shape[0], -1))
        nn.init.zeros_(stem.bias)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        for layer in [*(b.adaLN_modulation[-1] for b in self.blocks),
                      self.final_layer.adaLN_modulation[-1], self.final_layer.linear]:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def inference_cast_modules(self) -> list[nn.Module]:
        """What runs in bf16 / fp16 at reduced precision (precision.py): the blocks' attention
        and MLP and the fusion MLP; stem, t embedding, adaLN and final layer stay float32."""
        return [*(m for b in self.blocks for m in (b.attn, b.mlp)), self.proj_fusion]

    def condition(self, t: torch.Tensor) -> Conditioning:
        """Conditioning for raw integer timesteps t: 0-d or (B,)."""
        c = self.t_embedder(t)
        return Conditioning(c, tuple(b.modulation(c) for b in self.blocks),
                            self.final_layer.modulation(c))

    def rope_tables(self, height: int, width: int, device=None) -> CascadeRope:
        """RoPE tables for a network input of height x width pixels (multiples of 16)."""
        cfg = self.config
        s, p = cfg.stem_patch_size, cfg.patch_size
        return CascadeRope(
            rope_tables(height // s, width // s, cfg.head_dim, cfg.rope_base, device),
            rope_tables(height // p, width // p, cfg.head_dim, cfg.rope_base, device))

    def unpatchify(self, y: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """(B, N1, p*p*C) -> (B, C, h, w).

        Pixel (p*a + u, p*b + v), channel c <- token (a, b), channel (u*p + v)*C + c.
        """
        p, c = self.config.patch_size, self.config.out_channels
        y = y.reshape(y.shape[0], height // p, width // p, p, p, c)
        y = torch.einsum('nhwpqc->nchpwq', y)
        return y.reshape(y.shape[0], c, height, width)

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None,
                semantics: torch.Tensor | None = None, *,
                cond: Conditioning | None = None, rope: CascadeRope | None = None) -> torch.Tensor:
        """Velocity for x = [x_t, I - 0.5] (B, 4, h, w).

        Give either t (raw integer timesteps) or a precomputed ``cond = self.condition(t)``;
        ``rope`` defaults to ``self.rope_tables(h, w)``.
        """
        _, _, height, width = x.shape
        stem = self.config.stem_patch_size
        if height % stem or width % stem:
            raise ValueError(f'network input {height}x{width} is not a multiple of {stem}')
        if (semantics is None) != (self.config.encoder.semantic_dim == 0):
            raise ValueError('semantics must be given exactly when the config has an encoder')
        if cond is None:
            cond = self.condition(t)
        if rope is None:
            rope = self.rope_tables(height, width, x.device)

        tokens = to_compute_dtype(self.x_embedder(x), compute_dtype_of(self))
        split = self.fusion_after + 1
        for block, modulation in zip(self.blocks[:split], cond.blocks[:split]):
            tokens = block(tokens, modulation, rope.coarse)
        tokens = expand_tokens(self.proj_fusion(fusion_input(tokens, semantics)),
                               height // stem, width // stem)
        for block, modulation in zip(self.blocks[split:], cond.blocks[split:]):
            tokens = block(tokens, modulation, rope.fine)
        return self.unpatchify(self.final_layer(tokens, cond.final), height, width)
