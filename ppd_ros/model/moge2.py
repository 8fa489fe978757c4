"""The MoGe-2 network (moge2-reference.md section 3): image -> affine points, mask, normal, scale.

    grid      (bh, bw) = (int(sqrt(N / ar)), int(sqrt(N ar)))     ar = W / H, truncated
    encoder   F0 = sum_k proj_k(norm(block_{l_k}(ViT(normalise(aa_bilinear(I, 14 bh x 14 bw))))))
              cls = norm(block_{l_last})[cls]
    neck      ConvStack([F0 | uv_0], uv_1, .., uv_4)        uv_l: view-plane (u, v), 2^l bh x 2^l bw
    heads     points / mask / normal = ConvStack(neck outputs)[last level]; scale = MLP(cls)
    output    bilinear (no antialias) to H x W, then remap: points (x z, y z, z) with z = exp(c),
              normal / |normal|, mask = sigmoid, metric_scale = exp(scale)

The encoder alone is also PPD's MoGe-2 semantics encoder (section 5): the same features on the
DiT's g16 grid, flattened to tokens. ``MoGe2Model.decode`` turns features of any grid into the
outputs, so one encoder pass can serve both (``ppd_ros.model.moge2_geometry``).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .configs import EncoderConfig
from .moge2_config import ConvStackConfig, MoGe2Config, MoGe2EncoderConfig, get_moge2_config
from .preprocess import IMAGENET_MEAN, IMAGENET_STD, NETWORK_MULTIPLE
from .vit_encoder import DinoV2Encoder


def token_grid(height: int, width: int, num_tokens: int) -> tuple[int, int]:
    """(bh, bw) of MoGe's ViT for an H x W image and a token budget (truncation, not round)."""
    aspect = width / height
    return int(math.sqrt(num_tokens / aspect)), int(math.sqrt(num_tokens * aspect))


def view_plane_uv(grid_h: int, grid_w: int, aspect: float, dtype=torch.float32,
                  device=None) -> torch.Tensor:
    """(2, n_h, n_w) pixel-centre coordinates in units of the half diagonal of an image of
    aspect ``aspect`` (W / H): u spans +-ar / sqrt(1 + ar^2) (n_w - 1) / n_w along columns,
    v spans +-1 / sqrt(1 + ar^2) (n_h - 1) / n_h along rows."""
    span_x = aspect / math.sqrt(1 + aspect ** 2)
    span_y = 1 / math.sqrt(1 + aspect ** 2)
    u = torch.linspace(-span_x * (grid_w - 1) / grid_w, span_x * (grid_w - 1) / grid_w, grid_w,
                       dtype=dtype, device=device)
    v = torch.linspace(-span_y * (grid_h - 1) / grid_h, span_y * (grid_h - 1) / grid_h, grid_h,
                       dtype=dtype, device=device)
    return torch.stack((u.expand(grid_h, grid_w), v[:, None].expand(grid_h, grid_w)))


def conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    """3x3 convolution with edge-replicating padding."""
    return nn.Conv2d(c_in, c_out, 3, padding=1, padding_mode='replicate')


class ResidualConvBlock(nn.Module):
    """x + conv_b(relu(conv_a(relu(x)))); the norm slots (layers 0 and 3) are empty."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.layers = nn.Sequential(nn.Identity(), nn.ReLU(), conv3x3(channels, hidden),
                                    nn.Identity(), nn.ReLU(), conv3x3(hidden, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


class Upsample2x(nn.Module):
    """x2 interpolation (bilinear without antialias, or nearest); no weights."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == 'nearest':
            return F.interpolate(x, scale_factor=2, mode='nearest')
        return F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)


def resampler(kind: str, c_in: int, c_out: int) -> nn.Sequential:
    """x2 upsampling then a 3x3 conv: keys .0 (ConvTranspose2d, or no weights) and .1."""
    if kind == 'conv_transpose':
        return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 2, stride=2), conv3x3(c_out, c_out))
    return nn.Sequential(Upsample2x(kind), conv3x3(c_in, c_out))


class ConvStack(nn.Module):
    """Coarse-to-fine decoder; level l adds its input to the upsampled state:

        x = input_l(in_l) (+ resampler_{l-1}(x));  x = res_blocks_l(x);  out_l = output_l(x)
    """

    def __init__(self, config: ConvStackConfig):
        super().__init__()
        self.config = config
        dims = config.dim_res_blocks
        hidden = config.dim_times_res_block_hidden

        def conv1x1_or_identity(c_in, c_out):
            return nn.Identity() if c_in is None else nn.Conv2d(c_in, c_out, 1)

        self.input_blocks = nn.ModuleList(
            conv1x1_or_identity(config.dim_in[l], dims[l]) for l in range(config.levels))
        self.res_blocks = nn.ModuleList(
            nn.Sequential(*(ResidualConvBlock(dims[l], hidden * dims[l])
                            for _ in range(config.num_res_blocks[l])))
            for l in range(config.levels))
        self.resamplers = nn.ModuleList(
            resampler(config.resamplers[l], dims[l], dims[l + 1]) for l in range(config.levels - 1))
        self.output_blocks = nn.ModuleList(
            nn.Identity() if config.dim_out[l] is None else nn.Conv2d(dims[l], config.dim_out[l], 1)
            for l in range(config.levels))

    def forward(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        outputs, x = [], None
        for level, feature in enumerate(inputs):
            f = self.input_blocks[level](feature)
            x = f if x is None else x + f
            x = self.res_blocks[level](x)
            outputs.append(self.output_blocks[level](x))
            if level < len(self.resamplers):
                x = self.resamplers[level](x)
        return outputs


class MoGe2Backbone(DinoV2Encoder):
    """DINOv2 ViT/14 that also returns intermediate blocks. ``mask_token`` is part of every
    DINOv2 file and unused (kept so that the file loads key for key)."""

    def __init__(self, config: EncoderConfig):
        super().__init__(config)
        self.mask_token = nn.Parameter(torch.zeros(1, config.embed_dim))

    def intermediate_layers(self, pixels: torch.Tensor, layers: tuple[int, ...],
                            pos_embed: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Final-norm tokens [cls, patches] (B, 1 + gh gw, D) after each block in ``layers``."""
        p = self.config.patch_size
        if pos_embed is None:
            pos_embed = self.position_embedding(pixels.shape[-2] // p, pixels.shape[-1] // p)
        x = self.patch_embed(pixels)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = x + pos_embed.to(x.dtype)
        taken = []
        for index, block in enumerate(self.blocks[:layers[-1] + 1]):
            x = block(x)
            if index in layers:
                taken.append(self.norm(x))
        return taken


class MoGe2Encoder(nn.Module):
    """Backbone + one 1x1 projection per taken block, summed; keys encoder.backbone.*,
    encoder.output_projections.*, encoder.image_mean / image_std."""

    def __init__(self, config: MoGe2EncoderConfig):
        super().__init__()
        self.config = config
        self.backbone = MoGe2Backbone(config.backbone)
        dim = config.backbone.embed_dim
        self.output_projections = nn.ModuleList(
            nn.Conv2d(dim, config.dim_out, 1) for _ in config.intermediate_layers)
        self.register_buffer('image_mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer('image_std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    @property
    def patch_size(self) -> int:
        return self.config.backbone.patch_size

    def precompute(self, grid_h: int, grid_w: int) -> torch.Tensor:
        """What depends only on the grid: the backbone's position embedding."""
        return self.backbone.position_embedding(grid_h, grid_w)

    def position_embedding(self, grid_h: int, grid_w: int) -> torch.Tensor:
        return self.precompute(grid_h, grid_w)

    def pixels(self, image: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
        """Antialiased bilinear resize to (p gh, p gw), then ImageNet normalisation."""
        p = self.patch_size
        resized = F.interpolate(image, (p * grid_h, p * grid_w), mode='bilinear',
                                align_corners=False, antialias=True)
        return (resized - self.image_mean.to(resized.dtype)) / self.image_std.to(resized.dtype)

    def features(self, image: torch.Tensor, grid_h: int, grid_w: int,
                 pos_embed: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(F0 (B, dim_out, gh, gw), cls (B, D)) for image (B, 3, H, W) in [0, 1].

        F0 sums the projected patch tokens of every taken block; cls is the last one's."""
        layers = self.backbone.intermediate_layers(self.pixels(image, grid_h, grid_w),
                                                   self.config.intermediate_layers, pos_embed)
        b = image.shape[0]
        f0 = None
        for tokens, projection in zip(layers, self.output_projections):
            grid = tokens[:, 1:].transpose(1, 2).reshape(b, -1, grid_h, grid_w)
            projected = projection(grid)
            f0 = projected if f0 is None else f0 + projected
        return f0, layers[-1][:, 0]

    def semantics(self, image: torch.Tensor,
                  precomputed: torch.Tensor | None = None) -> torch.Tensor:
        """PPD's MoGe-2 semantic tokens (B, gh gw, dim_out) on the g16 grid of image
        (B, 3, 16 gh, 16 gw): F0 flattened row-major (``forward_semantics``)."""
        grid_h = image.shape[-2] // NETWORK_MULTIPLE
        grid_w = image.shape[-1] // NETWORK_MULTIPLE
        f0, _ = self.features(image, grid_h, grid_w, precomputed)
        return f0.flatten(2).transpose(1, 2)


def moge2_encoder_config(config: EncoderConfig) -> MoGe2EncoderConfig:
    """MoGe-2 encoder settings of a PPD semantics encoder config of type 'moge2'."""
    if config.type != 'moge2':
        raise ValueError(f'not a moge2 encoder config: type {config.type!r}')
    backbone = dataclasses.replace(config, type='dinov2', intermediate_layers=(), dim_out=0)
    return MoGe2EncoderConfig(backbone, config.intermediate_layers, config.dim_out)


def semantics_encoder(config: EncoderConfig) -> MoGe2Encoder:
    """PPD's semantics encoder of type 'moge2' (keys encoder.backbone.*, encoder.output_...)."""
    return MoGe2Encoder(moge2_encoder_config(config))


def same_encoder(a: MoGe2EncoderConfig, b: MoGe2EncoderConfig) -> bool:
    """Whether two encoder configs describe the same network (the backbone's name aside)."""
    return (a.backbone, a.intermediate_layers, a.dim_out) == (b.backbone, b.intermediate_layers,
                                                              b.dim_out)


def remap_points(raw: torch.Tensor, mode: str) -> torch.Tensor:
    """(..., 3) raw head output -> affine points."""
    if mode == 'linear':
        return raw
    if mode == 'sinh':
        return torch.sinh(raw)
    if mode == 'exp':
        xy, z = raw.split([2, 1], dim=-1)
        z = torch.exp(z)
        return torch.cat((xy * z, z), dim=-1)
    if mode == 'sinh_exp':
        xy, z = raw.split([2, 1], dim=-1)
        return torch.cat((torch.sinh(xy), torch.exp(z)), dim=-1)
    raise ValueError(f'unknown remap_output {mode!r}')


class MoGe2Model(nn.Module):
    """MoGe-2 with the official state-dict layout (keys encoder.*, neck.*, *_head.*)."""

    def __init__(self, config: MoGe2Config):
        super().__init__()
        self.config = config
        self.encoder = MoGe2Encoder(config.encoder)
        self.neck = ConvStack(config.neck)
        self.points_head = ConvStack(config.points_head)
        self.mask_head = ConvStack(config.mask_head) if config.mask_head else None
        self.normal_head = ConvStack(config.normal_head) if config.normal_head else None
        self.scale_head = None
        if config.scale_head is not None:
            dims = config.scale_head
            layers: list[nn.Module] = []
            for i in range(len(dims) - 1):
                layers += [nn.Linear(dims[i], dims[i + 1]), nn.ReLU()]
            self.scale_head = nn.Sequential(*layers[:-1])

    def token_grid(self, height: int, width: int, num_tokens: int | None = None) -> tuple[int, int]:
        """MoGe's ViT grid for an H x W image (num_tokens: the top of the range by default)."""
        return token_grid(height, width, num_tokens or self.config.num_tokens())

    def neck_inputs(self, features: torch.Tensor, aspect: float) -> list[torch.Tensor]:
        """[F0 | uv_0, uv_1, ..., uv_L]: view-plane coordinates at every decoder level."""
        b, _, grid_h, grid_w = features.shape
        inputs = []
        for level in range(self.config.neck.levels):
            uv = view_plane_uv(grid_h << level, grid_w << level, aspect, device=features.device)
            uv = uv.unsqueeze(0).expand(b, -1, -1, -1)
            inputs.append(torch.cat((features, uv.to(features.dtype)), dim=1) if level == 0 else uv)
        return inputs

    def decode(self, features: torch.Tensor, cls: torch.Tensor, height: int, width: int
               ) -> dict[str, torch.Tensor]:
        """Outputs at H x W from encoder features of any grid (see the module docstring)."""
        neck = self.neck(self.neck_inputs(features, width / height))
        out: dict[str, torch.Tensor] = {}

        def head_map(head: ConvStack) -> torch.Tensor:
            level = head(neck)[-1]
            level = F.interpolate(level, (height, width), mode='bilinear', align_corners=False)
            return level.permute(0, 2, 3, 1)

        out['points'] = remap_points(head_map(self.points_head), self.config.remap_output)
        if self.normal_head is not None:
            out['normal'] = F.normalize(head_map(self.normal_head), dim=-1)
        if self.mask_head is not None:
            out['mask'] = torch.sigmoid(head_map(self.mask_head)[..., 0])
        if self.scale_head is not None:
            out['metric_scale'] = torch.exp(self.scale_head(cls)[:, 0])
        return out

    def forward(self, image: torch.Tensor, num_tokens: int | None = None,
                grid: tuple[int, int] | None = None) -> dict[str, torch.Tensor]:
        """{points (B, H, W, 3), mask (B, H, W), normal (B, H, W, 3), metric_scale (B,)} for
        image (B, 3, H, W) in [0, 1]; the ViT grid is ``grid`` or ``token_grid(num_tokens)``."""
        height, width = image.shape[-2:]
        grid_h, grid_w = grid or self.token_grid(height, width, num_tokens)
        features, cls = self.encoder.features(image, grid_h, grid_w)
        return self.decode(features, cls, height, width)


def build_moge2(config: str | Mapping[str, Any] | MoGe2Config = 'moge2_tiny', *,
                device=None) -> MoGe2Model:
    """A randomly initialised MoGe-2 network; ``device='meta'`` allocates nothing."""
    config = get_moge2_config(config)
    if device is None:
        return MoGe2Model(config)
    with torch.device(device):
        return MoGe2Model(config)
