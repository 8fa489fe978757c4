"""Checkpoint reading, key mapping and strict loading.

Two formats:

* Official PPD release files (spec section 5): ``ppd.pth`` with ``dit.*`` keys and
  ``depth_anything_v2_vitl.pth`` with ``pretrained.*`` keys (its ``depth_head.*`` and the
  unused ``pretrained.mask_token`` are ignored). Either may be ``.pth`` or ``.safetensors``.
* ppd_ros's own format: one ``.safetensors`` holding the model's state dict (``dit.*``,
  ``encoder.*``) with the model config as JSON in the metadata. Shipped copies may store
  their large matrices as int8 with per-row scales (``int8_storage``); reading restores them.

Loading is strict: any missing key, unexpected key or wrong shape raises one
``CheckpointError`` that lists them all (the reference's strict=False would silently keep the
zero-initialised adaLN layers and output noise + 0.5).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

from .configs import ModelConfig, get_config
from .int8_storage import dequantize_state
from .pixel_perfect_depth import PixelPerfectDepth, build_model
from .weight_files import (CheckpointError, CheckpointNotFoundError, flat_tensors,
                           load_safetensors_tensors, load_torch_object, plain_data_problem,
                           read_safetensors_header)

MODELS_DIR_ENV = 'PPD_ROS_MODELS'
OFFICIAL_DIT_FILE = 'ppd.pth'
OFFICIAL_ENCODER_FILE = 'depth_anything_v2_vitl.pth'
FORMAT_NAME = 'ppd_ros'
FORMAT_VERSION = '1'
RESERVED_METADATA = ('format', 'format_version', 'config')

# Official keys that are present in the release files but not used by the network.
IGNORED_OFFICIAL_PREFIXES = ('depth_head.', 'sem_encoder.depth_head.')
IGNORED_OFFICIAL_KEYS = ('pretrained.mask_token', 'sem_encoder.pretrained.mask_token')


def models_dir() -> Path:
    """Where weights are looked for by default: $PPD_ROS_MODELS, else ./models."""
    return Path(os.environ.get(MODELS_DIR_ENV, 'models'))


def require_file(path: str | os.PathLike) -> Path:
    """The path, or a CheckpointNotFoundError telling how to get the official weights."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(
            f'checkpoint not found: {path}. Download the official weights with `ppd-fetch` '
            f'(it puts {OFFICIAL_DIT_FILE} and {OFFICIAL_ENCODER_FILE} into {models_dir()}/), '
            f'or pass the path of an existing file.', path=path)
    return path


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Flat {key: tensor} from a .pth (weights_only, memory-mapped) or .safetensors file.

    Any unreadable, damaged or hostile file is a one-line CheckpointError (weight_files).
    """
    path = require_file(path)
    if path.suffix == '.safetensors':
        return read_safetensors(path)
    data = load_torch_object(path)
    if isinstance(data, Mapping) and isinstance(data.get('state_dict'), Mapping):
        data = data['state_dict']  # Lightning-style wrapper
    return flat_tensors(data, path)


def read_state_and_config(path: str | os.PathLike, state_key: str = 'model',
                          config_key: str = 'model_config'
                          ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, config dict) of a torch.save'd ``{config_key: dict, state_key: state
    dict}`` file (e.g. MoGe-2's model.pt). The config is only checked to be plain data: its
    fields are the caller's to validate before they size anything."""
    path = require_file(path)
    data = load_torch_object(path)
    if not (isinstance(data, Mapping) and state_key in data and config_key in data):
        raise CheckpointError(f'{path} does not hold a dict with {state_key!r} and '
                              f'{config_key!r} entries', path=path)
    config = data[config_key]
    problem = ('is not a dict' if not isinstance(config, Mapping)
               else plain_data_problem(config))
    if problem:
        raise CheckpointError(f'{path}: {config_key!r} {problem}', path=path)
    return flat_tensors(data[state_key], path, f'a state dict of tensors under {state_key!r}'), \
        dict(config)


def read_safetensors(path: str | os.PathLike, dequantize: bool = True
                     ) -> dict[str, torch.Tensor]:
    """{key: tensor} of a .safetensors file, int8-stored tensors restored to float32 (unless
    ``dequantize`` is False: then as stored)."""
    tensors = flat_tensors(load_safetensors_tensors(path), path)
    return restore_int8(tensors, path) if dequantize else tensors


def restore_int8(tensors: Mapping[str, torch.Tensor], path: str | os.PathLike
                 ) -> dict[str, torch.Tensor]:
    """``dequantize_state``, with its problems raised as a CheckpointError naming ``path``."""
    try:
        return dequantize_state(tensors)
    except ValueError as error:
        raise CheckpointError(f'{path}: {error}', path=path) from None


# ----------------------------------------------------------------------------- key mapping

def is_ignored_official_key(key: str) -> bool:
    """Keys of the release files that ppd_ros deliberately does not load."""
    return key in IGNORED_OFFICIAL_KEYS or key.startswith(IGNORED_OFFICIAL_PREFIXES)


def dit_file_key_to_model(key: str) -> str | None:
    """ppd.pth key -> model key (None: not a key of that file).

    ``dit.X`` -> ``dit.X``; ``sem_encoder.pretrained.X`` -> ``encoder.X`` (encoder weights saved
    with the DiT would override the DA2 file, as in the reference).
    """
    if key.startswith('dit.'):
        return key
    if key.startswith('sem_encoder.pretrained.'):
        return 'encoder.' + key[len('sem_encoder.pretrained.'):]
    return None


def encoder_file_key_to_model(key: str) -> str | None:
    """depth_anything_v2_vitl.pth key -> model key: ``pretrained.X`` -> ``encoder.X``."""
    if key.startswith('pretrained.'):
        return 'encoder.' + key[len('pretrained.'):]
    return None


def model_key_to_official(key: str) -> str:
    """Model key -> key in the release files (inverse of the two maps above)."""
    if key.startswith('dit.'):
        return key
    if key.startswith('encoder.'):
        return 'pretrained.' + key[len('encoder.'):]
    raise ValueError(f'not a model key: {key}')


def official_key_shapes(config: str | Mapping[str, Any] | ModelConfig = 'large'
                        ) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """Expected (ppd.pth, DA2 file) key -> shape tables, mask_token included (no memory used)."""
    model = build_model(config, device='meta')
    dit, encoder = {}, {}
    for key, tensor in model.state_dict().items():
        table = dit if key.startswith('dit.') else encoder
        table[model_key_to_official(key)] = tuple(tensor.shape)
    if model.encoder is not None:
        encoder['pretrained.mask_token'] = (1, model.config.encoder.embed_dim)
    return dit, encoder


def convert_official_state_dicts(dit_state: Mapping[str, torch.Tensor],
                                 encoder_state: Mapping[str, torch.Tensor] | None = None
                                 ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Model state dict from the release files, plus the keys that fit neither map."""
    state, unexpected = {}, []
    for source, to_model in ((encoder_state or {}, encoder_file_key_to_model),
                             (dit_state, dit_file_key_to_model)):
        for key, tensor in source.items():
            if is_ignored_official_key(key):
                continue
            model_key = to_model(key)
            if model_key is None:
                unexpected.append(key)
            else:
                state[model_key] = tensor
    return state, unexpected


# ----------------------------------------------------------------------------- strict loading

def state_dict_problems(model: torch.nn.Module, state: Mapping[str, torch.Tensor]
                        ) -> tuple[list[str], list[str], list[tuple[str, tuple, tuple]]]:
    """(missing, unexpected, mismatched shapes) of ``state`` against ``model``."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [(k, tuple(expected[k].shape), tuple(state[k].shape))
                  for k in expected if k in state and state[k].shape != expected[k].shape]
    return missing, unexpected, mismatched


def load_state_dict_strict(model: torch.nn.Module, state: Mapping[str, torch.Tensor], *,
                           source: str = 'state dict', extra_unexpected: Iterable[str] = (),
                           assign: bool = False) -> None:
    """Load every tensor (cast to float32) or raise one CheckpointError listing all problems.

    ``assign=True`` makes the given tensors the parameters (no copy): use it on a model built
    on the meta device.
    """
    missing, unexpected, mismatched = state_dict_problems(model, state)
    unexpected = list(unexpected) + list(extra_unexpected)
    if missing or unexpected or mismatched:
        name = getattr(getattr(model, 'config', None), 'name', type(model).__name__)
        raise CheckpointError(f'{source} does not match the {name!r} model', missing=missing,
                              unexpected=unexpected, mismatched=mismatched)
    expected = model.state_dict()
    wrong_kind = [k for k, v in state.items()
                  if v.is_floating_point() != expected[k].is_floating_point() or v.is_complex()]
    if wrong_kind:
        key = wrong_kind[0]
        raise CheckpointError(f'{source}: {len(wrong_kind)} tensor(s) of the wrong kind, e.g. '
                              f'{key} is {state[key].dtype}, the model needs '
                              f'{expected[key].dtype}')
    state = {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=assign)


def load_official(dit_checkpoint: str | os.PathLike | None = None,
                  encoder_checkpoint: str | os.PathLike | None = None,
                  config: str | Mapping[str, Any] | ModelConfig = 'large') -> PixelPerfectDepth:
    """Model (CPU, fp32) from the official release files; default paths are under models_dir().

    A 'moge2' semantics encoder (``large_moge``) comes from MoGe-2's model.pt, the DiT from
    ppd_moge.pth (ppd_moge.load_official_ppd_moge, which also gives the MoGe-2 model).
    """
    config = get_config(config)
    if config.encoder.type == 'moge2':
        from .ppd_moge import load_official_ppd_moge
        return load_official_ppd_moge(dit_checkpoint, encoder_checkpoint, config)[0]
    dit_path = require_file(dit_checkpoint or models_dir() / OFFICIAL_DIT_FILE)
    encoder_state, encoder_path = None, None
    if config.encoder.enabled:
        encoder_path = require_file(encoder_checkpoint or models_dir() / OFFICIAL_ENCODER_FILE)
        encoder_state = read_state_dict(encoder_path)
    state, unexpected = convert_official_state_dicts(read_state_dict(dit_path), encoder_state)
    model = build_model(config, device='meta')
    sources = ' + '.join(str(p) for p in (dit_path, encoder_path) if p is not None)
    load_state_dict_strict(model, state, source=sources, extra_unexpected=unexpected, assign=True)
    return model


# ----------------------------------------------------------------------------- ppd_ros format

def save_checkpoint(model: PixelPerfectDepth, path: str | os.PathLike,
                    extra_metadata: Mapping[str, Any] | None = None) -> Path:
    """Write the model as one .safetensors with its config (JSON) in the metadata.

    ``extra_metadata`` values that are not strings are stored as JSON.
    """
    from safetensors.torch import save_file
    path = Path(path)
    if path.suffix != '.safetensors':
        raise ValueError(f'ppd_ros checkpoints are .safetensors files, got {path}')
    metadata = {}
    for key, value in (extra_metadata or {}).items():
        if key in RESERVED_METADATA:
            raise ValueError(f'metadata key {key!r} is reserved')
        metadata[str(key)] = value if isinstance(value, str) else json.dumps(value)
    metadata.update(format=FORMAT_NAME, format_version=FORMAT_VERSION,
                    config=model.config.to_json())
    tensors = {k: v.detach().to('cpu', torch.float32).contiguous()
               for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    return path


def safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata in a .safetensors header, whatever wrote it (tensors not read)."""
    return read_safetensors_header(require_file(path)).metadata


def read_checkpoint_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata of a ppd_ros checkpoint (raises CheckpointError for other files)."""
    path = require_file(path)
    if path.suffix != '.safetensors':
        raise CheckpointError(f'{path} is not a ppd_ros checkpoint (.safetensors); official .pth '
                              f'files go to dit_checkpoint / encoder_checkpoint', path=path)
    metadata = safetensors_metadata(path)
    if metadata.get('format') != FORMAT_NAME or 'config' not in metadata:
        raise CheckpointError(f'{path} has no ppd_ros config metadata; official release files go '
                              f'to dit_checkpoint / encoder_checkpoint', path=path)
    return metadata


def config_from_metadata(metadata: Mapping[str, str], path: str | os.PathLike
                         ) -> ModelConfig:
    """The checked ModelConfig stored in a checkpoint's metadata (CheckpointError if invalid)."""
    try:
        return ModelConfig.from_json(metadata['config'])
    except (KeyError, ValueError, TypeError, RecursionError) as error:
        raise CheckpointError(f'{path}: {error}', path=path) from None


def load_checkpoint(path: str | os.PathLike) -> PixelPerfectDepth:
    """Model (CPU, fp32) from a ppd_ros checkpoint; its stored config defines the network."""
    metadata = read_checkpoint_metadata(path)
    model = build_model(config_from_metadata(metadata, path), device='meta')
    state = read_safetensors(path)
    load_state_dict_strict(model, state, source=str(path), assign=True)
    return model
