"""Model variants as plain data.

A variant is a JSON-compatible dict; ``get_config`` turns it into a frozen ``ModelConfig``.
Configs travel inside ppd_ros checkpoints as JSON, so ``ModelConfig.from_dict(c.to_dict())``
must give back ``c``.

Shared semantics of all variants (PPD, spec section 3): DiT input = [x_t, R, G, B] at
network resolution h x w; a patch-16 stem gives the g16 grid; the first depth/2 blocks run
there, the fusion expands every token into 2x2 children (g8 grid, patch 8) and the last
depth/2 blocks run at g8; head dim is split in two RoPE halves (rows, columns).
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

ENCODER_TYPES = ('dinov2', 'moge2', 'none')

# Documented bounds of every config field, checked (type first) before a config sizes
# anything: configs also arrive inside weight files. (type, lowest, highest); ints must be
# ints (not bools, floats or strings), floats may be ints.
ENCODER_FIELD_BOUNDS: dict[str, tuple[type, float, float]] = {
    'embed_dim': (int, 1, 8192), 'depth': (int, 1, 256), 'num_heads': (int, 1, 256),
    'patch_size': (int, 1, 64), 'img_size': (int, 1, 8192), 'mlp_ratio': (float, 0.125, 32.0),
    'interpolate_offset': (float, 0.0, 1.0), 'norm_eps': (float, 1e-12, 0.1),
}
MODEL_FIELD_BOUNDS: dict[str, tuple[type, float, float]] = {
    'hidden_size': (int, 4, 8192), 'depth': (int, 2, 256), 'num_heads': (int, 1, 256),
    'mlp_ratio': (float, 0.125, 32.0), 'fusion_hidden_size': (int, 1, 65536),
    'stem_patch_size': (int, 2, 64), 'patch_size': (int, 1, 32), 'in_channels': (int, 1, 64),
    'out_channels': (int, 1, 64), 'rope_base': (float, 1.0, 1e6),
    'frequency_embedding_size': (int, 2, 4096), 'num_train_timesteps': (int, 1, 100_000),
    'train_width': (int, 16, 4096), 'train_height': (int, 16, 4096),
}
#: Largest training area (train_width x train_height): the network runs at about this many
#: pixels per image, so it bounds the work and memory of every prediction.
MAX_TRAIN_AREA = 2048 * 2048
MAX_NAME_LENGTH = 100


def _field_problems(config, bounds: Mapping[str, tuple[type, float, float]],
                    prefix: str = '') -> list[str]:
    """Type and range problems of the fields in `bounds` (module doc)."""
    problems = []
    for name, (kind, low, high) in bounds.items():
        value = getattr(config, name)
        if kind is int:
            valid_type = type(value) is int
        else:
            valid_type = type(value) in (int, float) and math.isfinite(value)
        if not valid_type:
            problems.append(f'{prefix}{name} must be {"an integer" if kind is int else "a number"}'
                            f', got {type(value).__name__} {_short(value)}')
        elif not low <= value <= high:
            problems.append(f'{prefix}{name} must be in [{low:g}, {high:g}], got {value}')
    return problems


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + '...'


@dataclass(frozen=True)
class EncoderConfig:
    """Semantics encoder: a DINOv2 ViT in the Depth-Anything-V2 layout (type 'dinov2': its
    final-norm patch tokens), MoGe-2's encoder (type 'moge2': the same ViT, the final-normed
    tokens of ``intermediate_layers`` each projected to ``dim_out`` channels and summed), or
    none."""

    type: str = 'dinov2'
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    patch_size: int = 14
    img_size: int = 518  # stored position grid = img_size // patch_size (37 for DA2)
    mlp_ratio: float = 4.0
    interpolate_offset: float = 0.1
    norm_eps: float = 1e-6
    intermediate_layers: tuple[int, ...] = ()  # moge2 only
    dim_out: int = 0                           # moge2 only

    def __post_init__(self):
        problems = []
        if not isinstance(self.type, str) or self.type not in ENCODER_TYPES:
            problems.append(f'encoder.type must be one of {ENCODER_TYPES}, got {_short(self.type)}')
        problems += _field_problems(self, ENCODER_FIELD_BOUNDS, 'encoder.')
        if not problems:
            problems += self._moge2_problems()
        if problems:
            raise ValueError('invalid encoder config: ' + '; '.join(problems))

    def _moge2_problems(self) -> list[str]:
        layers = self.intermediate_layers
        if not isinstance(layers, (list, tuple)) or len(layers) > self.depth or any(
                type(i) is not int for i in layers):
            return [f'encoder.intermediate_layers must be a list of block indices, got '
                    f'{_short(layers)}']
        object.__setattr__(self, 'intermediate_layers', tuple(layers))
        if self.type != 'moge2':
            if layers or self.dim_out:
                return ['encoder.intermediate_layers / dim_out belong to a moge2 encoder']
            return []
        if (not layers or list(layers) != sorted(set(layers))
                or not 0 <= layers[0] <= layers[-1] < self.depth):
            return [f'encoder.intermediate_layers must be increasing indices in [0, {self.depth})']
        if type(self.dim_out) is not int or not 1 <= self.dim_out <= 8192:
            return ['encoder.dim_out must be an integer in [1, 8192] for a moge2 encoder']
        return []

    @property
    def enabled(self) -> bool:
        return self.type != 'none'

    @property
    def pos_grid(self) -> int:
        return self.img_size // self.patch_size

    @property
    def semantic_dim(self) -> int:
        """Channels of the semantic tokens handed to the DiT fusion (0 without encoder)."""
        if self.type == 'moge2':
            return self.dim_out
        return self.embed_dim if self.enabled else 0


@dataclass(frozen=True)
class ModelConfig:
    """One PPD network: DiT sizes, cascade patch sizes, encoder, training area."""

    name: str
    hidden_size: int
    depth: int
    num_heads: int
    mlp_ratio: float
    fusion_hidden_size: int
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    stem_patch_size: int = 16
    patch_size: int = 8
    in_channels: int = 4  # [x_t, R, G, B]
    out_channels: int = 1
    rope_base: float = 100.0
    frequency_embedding_size: int = 256
    num_train_timesteps: int = 1000
    train_width: int = 1024
    train_height: int = 768

    def __post_init__(self):
        if not (isinstance(self.name, str) and 0 < len(self.name) <= MAX_NAME_LENGTH
                and self.name.isprintable()):
            raise ValueError(f'invalid model config: name must be a printable string of 1 to '
                             f'{MAX_NAME_LENGTH} characters, got {_short(self.name)}')
        if not isinstance(self.encoder, EncoderConfig):
            raise ValueError(f'invalid model config {self.name!r}: encoder must be an '
                             f'EncoderConfig, got {type(self.encoder).__name__}')
        problems = _field_problems(self, MODEL_FIELD_BOUNDS)
        if not problems and self.train_area > MAX_TRAIN_AREA:
            problems.append(f'train_width x train_height must be at most {MAX_TRAIN_AREA} '
                            f'pixels, got {self.train_area}')
        if problems:  # the checks below assume sane types and ranges
            raise ValueError(f'invalid model config {self.name!r}: ' + '; '.join(problems))
        if self.hidden_size % self.num_heads:
            problems.append('hidden_size must be divisible by num_heads')
        elif self.head_dim % 4:
            problems.append('head_dim must be divisible by 4 (two RoPE axes, rotate-half)')
        if self.depth < 2 or self.depth % 2:
            problems.append('depth must be even (half the blocks before the fusion)')
        if self.stem_patch_size != 2 * self.patch_size:
            problems.append('stem_patch_size must be 2 * patch_size (2x2 token expansion)')
        if self.stem_patch_size != 16:
            problems.append('stem_patch_size must be 16 (network sizes are multiples of 16)')
        if self.encoder.enabled and self.encoder.embed_dim % self.encoder.num_heads:
            problems.append('encoder.embed_dim must be divisible by encoder.num_heads')

        if problems:
            raise ValueError(f'invalid model config {self.name!r}: ' + '; '.join(problems))

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def train_area(self) -> int:
        return self.train_width * self.train_height

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> 'ModelConfig':
        """Checked config from a dict (ValueError naming every problem found)."""
        if not isinstance(data, Mapping):
            raise ValueError(f'a model config must be an object, got {type(data).__name__}')
        data = dict(data)
        encoder = data.pop('encoder', {})
        _reject_unknown(cls, data, 'model config')
        if isinstance(encoder, EncoderConfig):
            enc = encoder
        else:
            if not isinstance(encoder, Mapping):
                raise ValueError(f'the encoder config must be an object, got '
                                 f'{type(encoder).__name__}')
            _reject_unknown(EncoderConfig, encoder, 'encoder config')
            enc = EncoderConfig(**encoder)
        _require_fields(cls, data, 'model config')
        return cls(encoder=enc, **data)

    @classmethod
    def from_json(cls, text: str) -> 'ModelConfig':
        try:
            data = json.loads(text)
        except (TypeError, ValueError, RecursionError) as error:
            raise ValueError(f'the model config is not valid JSON ({error})') from None
        return cls.from_dict(data)


def _reject_unknown(cls, data: Mapping[str, Any], what: str) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known, key=str)
    if unknown:
        raise ValueError(f'unknown {what} keys: {_short(unknown)}')


def _require_fields(cls, data: Mapping[str, Any], what: str) -> None:
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                and f.name != 'encoder']
    missing = [name for name in required if name not in data]
    if missing:
        raise ValueError(f'{what} lacks {missing}')


DA2_VITL_ENCODER = {
    'type': 'dinov2', 'embed_dim': 1024, 'depth': 24, 'num_heads': 16, 'patch_size': 14,
    'img_size': 518, 'mlp_ratio': 4.0, 'interpolate_offset': 0.1, 'norm_eps': 1e-6,
    'intermediate_layers': (), 'dim_out': 0,
}
#: MoGe-2 ViT-L (moge-2-vitl-normal's encoder): DINOv2 ViT-L/14, blocks 5/11/17/23 projected.
MOGE2_VITL_ENCODER = {**DA2_VITL_ENCODER, 'type': 'moge2', 'intermediate_layers': (5, 11, 17, 23),
                      'dim_out': 1024}

VARIANTS: dict[str, dict[str, Any]] = {
    # The released PPD network (DiT() defaults + DA2 ViT-L/14 semantics), ~500M + 304M params.
    'large': {
        'name': 'large', 'hidden_size': 1024, 'depth': 24, 'num_heads': 16, 'mlp_ratio': 4.0,
        'fusion_hidden_size': 4096, 'encoder': dict(DA2_VITL_ENCODER),
        'stem_patch_size': 16, 'patch_size': 8, 'in_channels': 4, 'out_channels': 1,
        'rope_base': 100.0, 'frequency_embedding_size': 256, 'num_train_timesteps': 1000,
        'train_width': 1024, 'train_height': 768,
    },
    # The second released network (ppd_moge.pth): the same DiT with MoGe-2's encoder as
    # semantics (moge-2-vitl-normal's model.pt); its geometry heads can serve the same frame.
    'large_moge': {
        'name': 'large_moge', 'hidden_size': 1024, 'depth': 24, 'num_heads': 16, 'mlp_ratio': 4.0,
        'fusion_hidden_size': 4096, 'encoder': dict(MOGE2_VITL_ENCODER),
        'stem_patch_size': 16, 'patch_size': 8, 'in_channels': 4, 'out_channels': 1,
        'rope_base': 100.0, 'frequency_embedding_size': 256, 'num_train_timesteps': 1000,
        'train_width': 1024, 'train_height': 768,
    },
    # DiT-S sized cascade with the same DA2 ViT-L/14 semantics; trained at the pretrain area.
    'small': {
        'name': 'small', 'hidden_size': 384, 'depth': 12, 'num_heads': 6, 'mlp_ratio': 4.0,
        'fusion_hidden_size': 1536, 'encoder': dict(DA2_VITL_ENCODER),
        'stem_patch_size': 16, 'patch_size': 8, 'in_channels': 4, 'out_channels': 1,
        'rope_base': 100.0, 'frequency_embedding_size': 256, 'num_train_timesteps': 1000,
        'train_width': 512, 'train_height': 384,
    },
    # CPU-sized network for tests, demos and training from scratch on a laptop. hidden 256 =
    # the 16 x 16 values of a stem patch: a narrower stem cannot carry the pixel noise the DiT
    # must predict. Depth 2 is one block per grid (models/tiny_ppd.safetensors).
    'tiny': {
        'name': 'tiny', 'hidden_size': 256, 'depth': 2, 'num_heads': 4, 'mlp_ratio': 4.0,
        'fusion_hidden_size': 512,
        'encoder': {
            'type': 'dinov2', 'embed_dim': 128, 'depth': 4, 'num_heads': 2, 'patch_size': 14,
            'img_size': 112, 'mlp_ratio': 4.0, 'interpolate_offset': 0.1, 'norm_eps': 1e-6,
            'intermediate_layers': (), 'dim_out': 0,
        },
        'stem_patch_size': 16, 'patch_size': 8, 'in_channels': 4, 'out_channels': 1,
        'rope_base': 100.0, 'frequency_embedding_size': 256, 'num_train_timesteps': 1000,
        'train_width': 128, 'train_height': 96,
    },
}


def get_config(variant: str | Mapping[str, Any] | ModelConfig = 'large',
               **overrides) -> ModelConfig:
    """Config of a named variant (or a dict / ModelConfig), with optional top-level overrides.

    ``encoder`` overrides are merged into the variant's encoder dict, so
    ``get_config('tiny', name='tiny_vanilla', encoder={'type': 'none'})`` gives the
    vanilla-DiT ablation of ``tiny``.
    """
    if isinstance(variant, ModelConfig):
        data = variant.to_dict()
    elif isinstance(variant, str):
        if variant not in VARIANTS:
            raise ValueError(f'unknown model variant {variant!r}; known: {sorted(VARIANTS)}')
        data = json.loads(json.dumps(VARIANTS[variant]))  # deep copy
    else:
        data = json.loads(json.dumps(dict(variant)))
    encoder_overrides = overrides.pop('encoder', None)
    data.update(overrides)
    if encoder_overrides:
        data['encoder'] = {**data.get('encoder', {}), **dict(encoder_overrides)}
    return ModelConfig.from_dict(data)
