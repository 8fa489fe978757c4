"""Compact copies of checkpoints for shipping (all metadata kept).

Floating tensors are cast to ``storage`` (float16 or bfloat16). Tensors under the
``int8_prefixes`` that are large matrices are stored as int8 with one float32 scale per row
(``int8_storage``) instead, about half their float16 size. Int8 suits the frozen semantics
encoder (``encoder.``): its features are L2-normalised before fusion. The DiT's velocity
error compounds over the Euler steps, so it stays float16.

ppd_ros's loaders restore float32 from any of these, so a copy loads unchanged with
load_predictor / load_checkpoint / load_stage1. The choices are recorded in the metadata as
``storage_dtype`` and ``int8_prefixes``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping, Sequence

import torch

from ppd_ros.model.int8_storage import quantize_state, should_quantize

STORAGES = ('float16', 'bfloat16')


def stored_tensors(tensors: Mapping[str, torch.Tensor], storage: str = 'float16',
                   int8_prefixes: Sequence[str] = ()) -> dict[str, torch.Tensor]:
    """``tensors`` as ``export_weights`` writes them (see the module docstring)."""
    if storage not in STORAGES:
        raise ValueError(f'storage must be one of {STORAGES}, got {storage!r}')
    int8_prefixes = tuple(int8_prefixes)
    if '' in int8_prefixes:
        raise ValueError('an int8 prefix must not be empty')
    dtype = getattr(torch, storage)
    selected = {k: v for k, v in tensors.items()
                if int8_prefixes and k.startswith(int8_prefixes) and should_quantize(v)}
    out = {}
    for key, value in tensors.items():
        if key in selected:
            continue
        if value.is_floating_point():
            if dtype == torch.float16 and value.abs().max() > torch.finfo(torch.float16).max:
                raise ValueError(f'{key} overflows float16')
            value = value.to(dtype)
        out[key] = value.contiguous()
    out.update(quantize_state(selected))
    return out


def export_weights(source: str | os.PathLike, target: str | os.PathLike,
                   storage: str = 'float16', int8_prefixes: Sequence[str] = ()) -> Path:
    """Write ``source`` .safetensors to ``target`` as ``stored_tensors`` (metadata kept)."""
    from safetensors.torch import save_file

    from ppd_ros.model.checkpoint import read_safetensors, safetensors_metadata
    metadata = with_storage_metadata(safetensors_metadata(source), storage, int8_prefixes)
    tensors = stored_tensors(read_safetensors(source), storage, int8_prefixes)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(target), metadata=metadata)
    return target


def with_storage_metadata(metadata: Mapping[str, str], storage: str,
                          int8_prefixes: Sequence[str]) -> dict[str, str]:
    """``metadata`` with the entries that record how the tensors are stored replaced."""
    entries = {k: v for k, v in metadata.items() if k not in ('storage_dtype', 'int8_prefixes')}
    entries['storage_dtype'] = storage
    if int8_prefixes:
        entries['int8_prefixes'] = json.dumps(list(int8_prefixes))
    return entries
