"""Weights one file reads from another, checked by a digest.

A shipped file may leave out tensors that another shipped file already holds (the tiny
semantics encoder is stored once, in tiny_ppd.safetensors). The referring file records the
other file's name, relative to its own folder, and ``weights_digest`` of the borrowed tensors
exactly as they are stored there (dtype included, int8 scales included), so a changed or
re-exported file is refused instead of silently giving other features.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Mapping

import torch

from .checkpoint import CheckpointError, CheckpointNotFoundError, read_safetensors, require_file


def weights_digest(tensors: Mapping[str, torch.Tensor], prefix: str) -> str:
    """sha256 over the tensors whose key starts with ``prefix`` (names, dtypes, shapes, bytes),
    in key order."""
    digest = hashlib.sha256()
    for key in sorted(k for k in tensors if k.startswith(prefix)):
        value = tensors[key].detach().cpu().contiguous()
        digest.update(f'{key}:{value.dtype}:{tuple(value.shape)};'.encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def shared_file(owner: str | os.PathLike, name: str) -> Path:
    """The file ``owner`` refers to by ``name``; CheckpointNotFoundError when it is missing."""
    path = Path(owner).parent / name
    if not path.is_file():
        raise CheckpointNotFoundError(f'{owner} takes weights from {path}, which is missing; '
                                      f'keep the two files in one folder', path=path)
    return path


def read_shared_tensors(owner: str | os.PathLike, name: str, prefix: str, digest: str,
                        what: str = 'weights') -> dict[str, torch.Tensor]:
    """The stored tensors under ``prefix`` of the file ``owner`` refers to, digest checked;
    ``what`` names them in the error."""
    path = shared_file(require_file(owner), name)
    tensors = {k: v for k, v in read_safetensors(path, dequantize=False).items()
               if k.startswith(prefix)}
    if weights_digest(tensors, prefix) != digest:
        raise CheckpointError(f'{path} no longer holds the {what} {owner} was made with; '
                              f'export the two files together', path=path)
    return tensors
