"""MoGe-2 weight files, loaded strictly: the official model.pt and ppd_ros's own format.

Official (moge2-reference.md section 2): ``model.pt`` of Ruicheng/moge-2-vitl-normal, a
torch.save'd {model_config, model} (read with weights_only). The config is checked before
anything is sized; every key of the state dict is used and its shape checked, so a missing,
extra or mis-shaped key is one CheckpointError naming it (MoGe's own loader is non-strict).
moge-2-vitl-normal has 521 tensors, 330,901,550 values (the mask_token and the two
normalisation buffers included).

ppd_ros format: one .safetensors with MoGe2Model's state dict (official key names) and the
config as JSON (``moge2_config``) in the metadata. A file may borrow its DINOv2 backbone from
a PPD checkpoint whose semantics encoder it started from (``backbone_file``, relative to the
file's folder, and ``backbone_digest`` of those stored tensors, see shared_weights) and store
only the backbone tensors it changed, which override the borrowed ones: the shipped tiny
MoGe-2 borrows tiny_ppd.safetensors's encoder that way. The PPD file's ``encoder.X`` is the
backbone's ``encoder.backbone.X``; ``mask_token`` stays in the MoGe file.
Shipped copies may store large matrices as int8 (int8_storage); loading restores float32.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from .checkpoint import (CheckpointError, load_state_dict_strict, models_dir, read_safetensors,
                         read_state_and_config, require_file, restore_int8, safetensors_metadata)
from .moge2 import MoGe2Model, build_moge2
from .moge2_config import MOGE2_VARIANTS, MoGe2Config, get_moge2_config
from .shared_weights import read_shared_tensors

OFFICIAL_MOGE2_FILE = 'moge-2-vitl-normal.pt'
OFFICIAL_MOGE2_TENSORS = 521
OFFICIAL_MOGE2_VALUES = 330_901_550
MOGE2_FORMAT = 'ppd_ros_moge2'
MOGE2_FORMAT_VERSION = '1'
BACKBONE = 'encoder.backbone.'
PPD_ENCODER = 'encoder.'


def is_moge2_checkpoint(path: str | os.PathLike) -> bool:
    """A ppd_ros MoGe-2 .safetensors file (header read only)."""
    path = Path(path)
    return (path.suffix == '.safetensors' and path.is_file()
            and safetensors_metadata(path).get('format') == MOGE2_FORMAT)


def ppd_encoder_to_backbone(key: str) -> str:
    """Key of a PPD checkpoint's DINOv2 encoder -> key of the MoGe-2 backbone."""
    return BACKBONE + key[len(PPD_ENCODER):]


def known_variant_name(config: MoGe2Config) -> str:
    """The MOGE2_VARIANTS name whose network ``config`` describes ('moge2' if none)."""
    for name in MOGE2_VARIANTS:
        if dataclasses.replace(get_moge2_config(name), name=config.name) == config:
            return name
    return 'moge2'


def load_official_moge2(path: str | os.PathLike | None = None) -> MoGe2Model:
    """MoGe2Model (CPU, float32) from an official model.pt (default: models/ + its name)."""
    path = require_file(path or models_dir() / OFFICIAL_MOGE2_FILE)
    state, model_config = read_state_and_config(path, 'model', 'model_config')
    try:
        config = MoGe2Config.from_model_config(model_config)
    except (ValueError, TypeError) as error:
        raise CheckpointError(f'{path}: unsupported MoGe-2 model_config: {error}',
                              path=path) from None
    config = dataclasses.replace(config, name=known_variant_name(config))
    model = build_moge2(config, device='meta')
    load_state_dict_strict(model, state, source=str(path), assign=True)
    return model.eval()


def load_any_moge2(path: str | os.PathLike) -> MoGe2Model:
    """A ppd_ros MoGe-2 .safetensors file or an official model.pt."""
    return load_moge2(path) if is_moge2_checkpoint(path) else load_official_moge2(path)


def save_moge2(model: MoGe2Model, path: str | os.PathLike,
               extra_metadata: Mapping[str, Any] | None = None) -> Path:
    """The whole network in float32 with its config (training checkpoints)."""
    from safetensors.torch import save_file
    path = Path(path)
    if path.suffix != '.safetensors':
        raise ValueError(f'MoGe-2 checkpoints are .safetensors files, got {path}')
    metadata = {str(k): v if isinstance(v, str) else json.dumps(v)
                for k, v in (extra_metadata or {}).items()}
    metadata.update(format=MOGE2_FORMAT, format_version=MOGE2_FORMAT_VERSION,
                    moge2_config=model.config.to_json())
    tensors = {k: v.detach().to('cpu', torch.float32).contiguous()
               for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    return path


def borrowed_backbone(owner: str | os.PathLike, metadata: Mapping[str, str]
                      ) -> dict[str, torch.Tensor]:
    """The float32 backbone tensors a file reads from its ``backbone_file`` ({} if none)."""
    if 'backbone_file' not in metadata:
        return {}
    stored = read_shared_tensors(owner, metadata['backbone_file'], PPD_ENCODER,
                                 metadata.get('backbone_digest', ''), 'backbone')
    return {ppd_encoder_to_backbone(k): v
            for k, v in restore_int8(stored, metadata['backbone_file']).items()}


def load_moge2(path: str | os.PathLike) -> MoGe2Model:
    """MoGe2Model (CPU, float32) from a ppd_ros MoGe-2 file; strict like every loader."""
    path = require_file(path)
    metadata = safetensors_metadata(path)
    if metadata.get('format') != MOGE2_FORMAT or 'moge2_config' not in metadata:
        raise CheckpointError(f'{path} is not a ppd_ros MoGe-2 checkpoint', path=path)
    try:
        config = MoGe2Config.from_json(metadata['moge2_config'])
    except (KeyError, ValueError, TypeError) as error:
        raise CheckpointError(f'{path}: invalid MoGe-2 config: {error}', path=path) from None
    state = borrowed_backbone(path, metadata)
    state.update(read_safetensors(path))     # its own tensors override borrowed ones
    model = build_moge2(config, device='meta')
    load_state_dict_strict(model, state, source=str(path), assign=True)
    return model.eval()
