"""MoGe-2 network configurations as plain data (moge2-reference.md section 2).

The official ``model.pt`` carries its config as ``model_config``, a dict in MoGe's own layout:

    encoder      {backbone: 'dinov2_vitl14', intermediate_layers: [5, 11, 17, 23], dim_out: 1024}
    neck, points_head, mask_head, normal_head
                 ConvStack settings {dim_in, dim_res_blocks, dim_out, num_res_blocks,
                 resamplers, res_block_in_norm, res_block_hidden_norm, ...}
    scale_head   {dims: [1024, 1024, 1024, 1]}
    remap_output 'exp';  num_tokens_range [1200, 3600]

``MoGe2Config.from_model_config`` reads that layout (scalars or per-level lists, as MoGe
accepts them) into frozen dataclasses with one tuple entry per decoder level, and checks that
the parts fit together; ``to_model_config`` writes it back. A backbone is a DINOv2 name, or,
for networks trained here, a dict of ``EncoderConfig`` fields. Every check raises ValueError:
a config read from a file is validated before anything is sized from it.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .configs import EncoderConfig

LOG = logging.getLogger(__name__)

#: DINOv2 ViT/14 backbones with the plain (non-SwiGLU) MLP that MoGe can use.
DINOV2_BACKBONES = {
    'dinov2_vits14': {'embed_dim': 384, 'depth': 12, 'num_heads': 6},
    'dinov2_vitb14': {'embed_dim': 768, 'depth': 12, 'num_heads': 12},
    'dinov2_vitl14': {'embed_dim': 1024, 'depth': 24, 'num_heads': 16},
}
DINOV2_COMMON = {'patch_size': 14, 'img_size': 518, 'mlp_ratio': 4.0,
                 'interpolate_offset': 0.1, 'norm_eps': 1e-6}
#: The sizes of a custom backbone (a dict instead of a DINOv2 name).
BACKBONE_FIELDS = ('embed_dim', 'depth', 'num_heads') + tuple(DINOV2_COMMON)
RESAMPLERS = ('conv_transpose', 'bilinear', 'nearest')
REMAP_OUTPUTS = ('linear', 'sinh', 'exp', 'sinh_exp')
#: Generous bounds for any size read from a file (ViT-L needs 1024 / 24 / 4096).
MAX_CHANNELS = 8192
MAX_BLOCKS = 64
MAX_TOKENS = 1 << 16


def _positive(value: Any, what: str, upper: int = MAX_CHANNELS) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
        raise ValueError(f'{what} must be an integer in [1, {upper}], got {value!r}')
    return value


def _per_level(value: Any, levels: int, what: str, optional: bool = False) -> tuple:
    """MoGe's per-level settings: one value for every level, or a list of one per level."""
    if isinstance(value, (list, tuple)):
        if len(value) != levels:
            raise ValueError(f'{what} needs {levels} entries, got {len(value)}')
        return tuple(value)
    if value is None and not optional:
        raise ValueError(f'{what} is required')
    return (value,) * levels


@dataclass(frozen=True)
class ConvStackConfig:
    """A MoGe ConvStack: per level an input 1x1 conv (or none), residual 3x3 blocks, an output
    1x1 conv (or none), and a x2 resampler to the next level."""

    dim_in: tuple[int | None, ...]
    dim_res_blocks: tuple[int, ...]
    dim_out: tuple[int | None, ...]
    num_res_blocks: tuple[int, ...]
    resamplers: tuple[str, ...]
    res_block_in_norm: str = 'none'
    res_block_hidden_norm: str = 'none'
    dim_times_res_block_hidden: int = 1
    activation: str = 'relu'

    def __post_init__(self):
        levels = len(self.dim_res_blocks)
        if not 1 <= levels <= 8:
            raise ValueError(f'a ConvStack needs 1 to 8 levels, got {levels}')
        for name in ('dim_in', 'dim_out', 'num_res_blocks'):
            if len(getattr(self, name)) != levels:
                raise ValueError(f'{name} needs {levels} entries')
        if len(self.resamplers) != levels - 1:
            raise ValueError(f'resamplers needs {levels - 1} entries, got {len(self.resamplers)}')
        for level in range(levels):
            _positive(self.dim_res_blocks[level], f'dim_res_blocks[{level}]')
            for name in ('dim_in', 'dim_out'):
                if getattr(self, name)[level] is not None:
                    _positive(getattr(self, name)[level], f'{name}[{level}]')
            count = self.num_res_blocks[level]
            if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_BLOCKS:
                raise ValueError(f'num_res_blocks[{level}] must be in [0, {MAX_BLOCKS}]')
        unknown = sorted(set(self.resamplers) - set(RESAMPLERS))
        if unknown:
            raise ValueError(f'unsupported resamplers {unknown}; supported: {RESAMPLERS}')
        if (self.res_block_in_norm, self.res_block_hidden_norm) != ('none', 'none'):
            raise ValueError("only res_block_in_norm / res_block_hidden_norm 'none' are "
                             'supported (the released MoGe-2 decoders have no norms)')
        if self.activation != 'relu':
            raise ValueError(f"only activation 'relu' is supported, got {self.activation!r}")
        _positive(self.dim_times_res_block_hidden, 'dim_times_res_block_hidden', 16)

    @property
    def levels(self) -> int:
        return len(self.dim_res_blocks)

    def out_channels(self, level: int) -> int:
        """Channels of the stack's output at ``level``."""
        out = self.dim_out[level]
        return self.dim_res_blocks[level] if out is None else out

    def in_channels(self, level: int) -> int:
        """Channels the stack's input at ``level`` must have."""
        dim = self.dim_in[level]
        return self.dim_res_blocks[level] if dim is None else dim

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], what: str) -> 'ConvStackConfig':
        data = dict(data)
        known = {f.name for f in dataclasses.fields(cls)}
        _warn_unknown(data, known, what)
        if not isinstance(data.get('dim_res_blocks'), (list, tuple)):
            raise ValueError(f'{what}.dim_res_blocks must be a list (one entry per level)')
        levels = len(data['dim_res_blocks'])
        resamplers = data.get('resamplers', 'conv_transpose')
        return cls(
            dim_in=_per_level(data.get('dim_in'), levels, f'{what}.dim_in', optional=True),
            dim_res_blocks=tuple(data['dim_res_blocks']),
            dim_out=_per_level(data.get('dim_out'), levels, f'{what}.dim_out', optional=True),
            num_res_blocks=_per_level(data.get('num_res_blocks', 1), levels,
                                      f'{what}.num_res_blocks'),
            resamplers=_per_level(resamplers, levels - 1, f'{what}.resamplers'),
            res_block_in_norm=data.get('res_block_in_norm', 'layer_norm'),
            res_block_hidden_norm=data.get('res_block_hidden_norm', 'group_norm'),
            dim_times_res_block_hidden=data.get('dim_times_res_block_hidden', 1),
            activation=data.get('activation', 'relu'))

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class MoGe2EncoderConfig:
    """DINOv2 backbone, the blocks whose (final-normed) tokens are taken, their projection width.

    ``backbone_name`` is the DINOv2 name of an official backbone ('' for a custom one, whose
    sizes are then the ``backbone`` fields).
    """

    backbone: EncoderConfig
    intermediate_layers: tuple[int, ...]
    dim_out: int
    backbone_name: str = ''

    def __post_init__(self):
        if self.backbone.type != 'dinov2':
            raise ValueError('the MoGe-2 backbone is a DINOv2 ViT')
        depth = self.backbone.depth
        if not self.intermediate_layers or any(
                isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < depth
                for i in self.intermediate_layers):
            raise ValueError(f'intermediate_layers must be block indices in [0, {depth}), got '
                             f'{list(self.intermediate_layers)}')
        if list(self.intermediate_layers) != sorted(set(self.intermediate_layers)):
            raise ValueError('intermediate_layers must be increasing')
        _positive(self.dim_out, 'encoder.dim_out')

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> 'MoGe2EncoderConfig':
        data = dict(data)
        _warn_unknown(data, {'backbone', 'intermediate_layers', 'dim_out'}, 'encoder')
        backbone = data.get('backbone')
        if isinstance(backbone, str):
            if backbone not in DINOV2_BACKBONES:
                raise ValueError(f'unsupported backbone {backbone!r}; supported: '
                                 f'{sorted(DINOV2_BACKBONES)} or a dict of its sizes')
            name, fields = backbone, {**DINOV2_COMMON, **DINOV2_BACKBONES[backbone]}
        elif isinstance(backbone, Mapping):
            name, fields = '', {**DINOV2_COMMON, **dict(backbone)}
            unknown = sorted(set(fields) - set(BACKBONE_FIELDS))
            if unknown:
                raise ValueError(f'unknown encoder.backbone keys: {unknown}')
        else:
            raise ValueError('encoder.backbone must be a DINOv2 name or a dict of its sizes')
        for key in ('embed_dim', 'depth', 'num_heads', 'patch_size', 'img_size'):
            _positive(fields[key], f'encoder.backbone.{key}')
        _positive(fields['depth'], 'encoder.backbone.depth', MAX_BLOCKS)
        encoder = EncoderConfig(type='dinov2', **fields)
        if encoder.embed_dim % encoder.num_heads:
            raise ValueError('encoder.backbone.embed_dim must be divisible by num_heads')
        layers = data.get('intermediate_layers')
        if isinstance(layers, int) and not isinstance(layers, bool):  # MoGe: the last n blocks
            layers = list(range(encoder.depth - layers, encoder.depth))
        if not isinstance(layers, (list, tuple)):
            raise ValueError('encoder.intermediate_layers must be a list of block indices')
        return cls(encoder, tuple(layers), data.get('dim_out'), name)

    def to_dict(self) -> dict[str, Any]:
        if self.backbone_name:
            backbone: Any = self.backbone_name
        else:
            backbone = {k: getattr(self.backbone, k) for k in BACKBONE_FIELDS}
        return {'backbone': backbone, 'intermediate_layers': list(self.intermediate_layers),
                'dim_out': self.dim_out}


@dataclass(frozen=True)
class MoGe2Config:
    """A whole MoGe-2 network. Absent heads (``None``) have no weights and no output."""

    name: str
    encoder: MoGe2EncoderConfig
    neck: ConvStackConfig
    points_head: ConvStackConfig | None
    mask_head: ConvStackConfig | None
    normal_head: ConvStackConfig | None
    scale_head: tuple[int, ...] | None
    remap_output: str = 'linear'
    num_tokens_range: tuple[int, int] = (1200, 3600)

    def __post_init__(self):
        neck = self.neck
        expected_in = (self.encoder.dim_out + 2,) + (2,) * (neck.levels - 1)
        if neck.dim_in != expected_in:
            raise ValueError(f'neck.dim_in must be {list(expected_in)} (features + u, v at level 0, '
                             f'u, v at the others), got {list(neck.dim_in)}')
        for name in ('points_head', 'mask_head', 'normal_head'):
            head = getattr(self, name)
            if head is None:
                continue
            if head.levels != neck.levels or any(
                    head.in_channels(level) != neck.out_channels(level)
                    for level in range(neck.levels)):
                raise ValueError(f'{name} inputs do not match the neck outputs')
            last = head.dim_out[-1]
            want = 1 if name == 'mask_head' else 3
            if last != want:
                raise ValueError(f'{name} must output {want} channels at its last level')
        if self.points_head is None:
            raise ValueError('a MoGe-2 network needs a points_head')
        if self.scale_head is not None:
            dims = self.scale_head
            if len(dims) < 2 or dims[0] != self.encoder.backbone.embed_dim or dims[-1] != 1:
                raise ValueError('scale_head.dims must run from the backbone width to 1')
            for i, dim in enumerate(dims):
                _positive(dim, f'scale_head.dims[{i}]')
        if self.remap_output not in REMAP_OUTPUTS:
            raise ValueError(f'remap_output must be one of {REMAP_OUTPUTS}, got '
                             f'{self.remap_output!r}')
        low, high = self.num_tokens_range
        _positive(low, 'num_tokens_range[0]', MAX_TOKENS)
        _positive(high, 'num_tokens_range[1]', MAX_TOKENS)
        if low > high:
            raise ValueError('num_tokens_range must be increasing')

    def num_tokens(self, resolution_level: int = 9) -> int:
        """Token budget of a resolution level 0..9, as MoGe's infer computes it."""
        if not 0 <= resolution_level <= 9:
            raise ValueError(f'resolution_level must be in 0..9, got {resolution_level}')
        low, high = self.num_tokens_range
        return int(low + (resolution_level / 9) * (high - low))

    @classmethod
    def from_model_config(cls, data: Mapping[str, Any], name: str = 'moge2') -> 'MoGe2Config':
        """From MoGe's ``model_config`` layout. Keys MoGe ignores are ignored with a warning."""
        if not isinstance(data, Mapping):
            raise ValueError('a MoGe-2 model config is a dict')
        data = dict(data)
        _warn_unknown(data, {'encoder', 'neck', 'points_head', 'mask_head', 'normal_head',
                             'scale_head', 'remap_output', 'num_tokens_range'}, 'model_config')
        for key in ('encoder', 'neck'):
            if not isinstance(data.get(key), Mapping):
                raise ValueError(f'model_config.{key} must be a dict')

        def stack(key):
            value = data.get(key)
            if value is None:
                return None
            if not isinstance(value, Mapping):
                raise ValueError(f'model_config.{key} must be a dict')
            return ConvStackConfig.from_dict(value, key)

        scale = data.get('scale_head')
        if scale is not None:
            if not (isinstance(scale, Mapping) and isinstance(scale.get('dims'), (list, tuple))):
                raise ValueError('model_config.scale_head must be {"dims": [...]}')
            scale = tuple(scale['dims'])
        tokens = data.get('num_tokens_range', (1200, 3600))
        if not (isinstance(tokens, (list, tuple)) and len(tokens) == 2):
            raise ValueError('num_tokens_range must be [low, high]')
        return cls(name, MoGe2EncoderConfig.from_dict(data['encoder']), stack('neck'),
                   stack('points_head'), stack('mask_head'), stack('normal_head'), scale,
                   data.get('remap_output', 'linear'), tuple(tokens))

    def to_model_config(self) -> dict[str, Any]:
        """MoGe's ``model_config`` layout (the inverse of ``from_model_config``)."""
        out: dict[str, Any] = {'encoder': self.encoder.to_dict(), 'neck': self.neck.to_dict()}
        for key in ('points_head', 'mask_head', 'normal_head'):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key).to_dict()
        if self.scale_head is not None:
            out['scale_head'] = {'dims': list(self.scale_head)}
        out['remap_output'] = self.remap_output
        out['num_tokens_range'] = list(self.num_tokens_range)
        return out

    def to_json(self) -> str:
        return json.dumps({'name': self.name, 'model_config': self.to_model_config()},
                          sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> 'MoGe2Config':
        data = json.loads(text)
        return cls.from_model_config(data['model_config'], data['name'])


def _warn_unknown(data: Mapping[str, Any], known: set[str], what: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        LOG.warning('MoGe-2 %s: ignoring unknown keys %s', what, unknown)


def _stack(dim_in: Sequence, dims: Sequence[int], blocks: Sequence[int], out: int | None) -> dict:
    resamplers = ['conv_transpose'] * (len(dims) - 2) + ['bilinear']
    return {'dim_in': list(dim_in), 'dim_res_blocks': list(dims),
            'dim_out': [None] * (len(dims) - 1) + [out], 'num_res_blocks': list(blocks),
            'resamplers': resamplers, 'res_block_in_norm': 'none', 'res_block_hidden_norm': 'none',
            'dim_times_res_block_hidden': 1, 'activation': 'relu'}


def _layout(backbone: Any, layers: list[int], dim: int, dims: list[int], neck_blocks: list[int],
            head_blocks: list[int], normal: bool, tokens: list[int]) -> dict[str, Any]:
    out = {
        'encoder': {'backbone': backbone, 'intermediate_layers': layers, 'dim_out': dim},
        'neck': _stack([dim + 2] + [2] * (len(dims) - 1), dims, neck_blocks, None),
        'points_head': _stack(dims, dims, head_blocks, 3),
        'mask_head': _stack(dims, dims, head_blocks, 1),
        'scale_head': {'dims': [backbone['embed_dim'] if isinstance(backbone, dict)
                                else DINOV2_BACKBONES[backbone]['embed_dim']] * 3 + [1]},
        'remap_output': 'exp', 'num_tokens_range': tokens,
    }
    if normal:
        out['normal_head'] = _stack(dims, dims, head_blocks, 3)
    return out


#: model_config of known networks. 'moge2_vitl_normal' is Ruicheng/moge-2-vitl-normal
#: (spec section 2); 'moge2_tiny' is the CPU-sized network trained here (models/README.md):
#: the tiny PPD's 12-block encoder as backbone, 48 tokens (the g16 grid of 128 x 96).
MOGE2_VARIANTS: dict[str, dict[str, Any]] = {
    'moge2_vitl_normal': _layout('dinov2_vitl14', [5, 11, 17, 23], 1024, [1024, 256, 128, 64, 32],
                                 [0, 2, 2, 2, 0], [0, 1, 1, 1, 0], True, [1200, 3600]),
    'moge2_vitl': _layout('dinov2_vitl14', [5, 11, 17, 23], 1024, [1024, 256, 128, 64, 32],
                          [0, 2, 2, 2, 0], [0, 1, 1, 1, 0], False, [1200, 3600]),
    'moge2_tiny': _layout({'embed_dim': 128, 'depth': 12, 'num_heads': 2, **DINOV2_COMMON,
                           'img_size': 112},
                          [2, 5, 8, 11], 128, [128, 32, 16, 8, 8], [0, 1, 1, 1, 0],
                          [0, 1, 1, 1, 0], False, [48, 48]),
}


def get_moge2_config(variant: str | Mapping[str, Any] | MoGe2Config = 'moge2_vitl_normal'
                     ) -> MoGe2Config:
    """A named variant, a ``model_config`` dict, or a MoGe2Config as is."""
    if isinstance(variant, MoGe2Config):
        return variant
    if isinstance(variant, str):
        if variant not in MOGE2_VARIANTS:
            raise ValueError(f'unknown MoGe-2 variant {variant!r}; known: {sorted(MOGE2_VARIANTS)}')
        return MoGe2Config.from_model_config(json.loads(json.dumps(MOGE2_VARIANTS[variant])),
                                             variant)
    return MoGe2Config.from_model_config(variant)
