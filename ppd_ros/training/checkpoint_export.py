"""Half-precision copies of checkpoints for shipping (all metadata kept).

ppd_ros's save_checkpoint writes float32; its loader casts every floating tensor back to
float32, so a float16 copy loads unchanged with load_predictor / load_checkpoint.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch


def export_half(source: str | os.PathLike, target: str | os.PathLike,
                dtype: torch.dtype = torch.float16) -> Path:
    """Write ``source`` .safetensors with floating tensors cast to ``dtype`` to ``target``."""
    from safetensors.torch import load_file, save_file

    from ppd_ros.model.checkpoint import safetensors_metadata
    metadata = safetensors_metadata(source)
    tensors = load_file(str(source))
    for key, value in tensors.items():
        if value.is_floating_point():
            if dtype == torch.float16 and value.abs().max() > torch.finfo(torch.float16).max:
                raise ValueError(f'{key} overflows float16')
            tensors[key] = value.to(dtype).contiguous()
    metadata['storage_dtype'] = str(dtype).replace('torch.', '')
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(target), metadata=metadata)
    return target
