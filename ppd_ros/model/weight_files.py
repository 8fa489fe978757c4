"""Reading weight files that may be damaged or hostile: containers, checks, one error class.

Weight files come from the internet. Whatever is wrong with one (empty, truncated, another
container than its name says, a pickle that is not plain tensors or that would run code, a
safetensors header of absurd length, malformed or non-object JSON, offsets past the end,
sparse or otherwise exotic tensors) becomes one ``CheckpointError`` whose single line names
the file and the problem. Nothing here runs code from a file: PyTorch files are read with
``weights_only=True`` and safetensors by its own parser after the header is checked here.

    container   first bytes: zip ("PK\\x03\\x04", torch.save), pickle protocol 2 ("\\x80\\x02",
                legacy torch.save), or an 8-byte little-endian header length followed by '{'
                (safetensors)
    safetensors header length <= min(file size - 8, MAX_SAFETENSORS_HEADER); one JSON object;
                "__metadata__" maps strings to strings; every tensor entry has a known dtype,
                a shape of non-negative ints and data_offsets [begin, end] inside the data
                with end - begin = bytes of the shape
"""
from __future__ import annotations

import json
import math
import os
import re
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

from ppd_ros.untrusted_text import one_line, quoted

#: Largest safetensors JSON header read (the safetensors library's own limit).
MAX_SAFETENSORS_HEADER = 100_000_000
#: Keys listed per kind in a CheckpointError message (all of them stay in its attributes).
LISTED_KEYS = 12

SAFETENSORS_DTYPE_BYTES = {
    'BOOL': 1, 'U8': 1, 'I8': 1, 'F8_E4M3': 1, 'F8_E5M2': 1, 'I16': 2, 'U16': 2, 'F16': 2,
    'BF16': 2, 'I32': 4, 'U32': 4, 'F32': 4, 'I64': 8, 'U64': 8, 'F64': 8,
}
ZIP_MAGIC = b'PK\x03\x04'
PICKLE_PROTOCOL_2 = b'\x80\x02'


def _listed(keys: list[str]) -> str:
    shown = ', '.join(quoted(k, 60)[1:-1] if not k.isprintable() or len(k) > 58 else k
                      for k in keys[:LISTED_KEYS])
    more = len(keys) - LISTED_KEYS
    return shown + (f', ... and {more} more' if more > 0 else '')


class CheckpointError(RuntimeError):
    """A weight file that cannot be used. ``str()`` is one line naming the file and the
    problem, then any missing / unexpected / mis-shaped keys (the first LISTED_KEYS of each;
    all of them are in the attributes)."""

    def __init__(self, message: str, *, path: str | os.PathLike | None = None,
                 missing: Iterable[str] = (), unexpected: Iterable[str] = (),
                 mismatched: Iterable[tuple[str, tuple, tuple]] = ()):
        self.path = None if path is None else str(path)
        self.missing = sorted(missing)
        self.unexpected = sorted(unexpected)
        self.mismatched = sorted(mismatched)
        parts = [' '.join(str(message).split())]
        if self.missing:
            parts.append(f'missing keys ({len(self.missing)}): {_listed(self.missing)}')
        if self.unexpected:
            parts.append(f'unexpected keys ({len(self.unexpected)}): {_listed(self.unexpected)}')
        if self.mismatched:
            shown = ', '.join(f'{k} expected {tuple(want)} got {tuple(got)}'
                              for k, want, got in self.mismatched[:LISTED_KEYS])
            more = len(self.mismatched) - LISTED_KEYS
            parts.append(f'wrong shapes ({len(self.mismatched)}): {shown}'
                         + (f', ... and {more} more' if more > 0 else ''))
        super().__init__('; '.join(parts))


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint file does not exist."""


def _describe_start(head: bytes) -> str:
    if not head:
        return 'it is empty'
    if head.startswith(ZIP_MAGIC):
        return 'it is a zip archive (a PyTorch .pth/.pt file?)'
    if head.startswith(b'\x80'):
        return 'it is a plain Python pickle, not a torch.save file'
    if len(head) >= 9 and head[8:9] == b'{':
        return 'it looks like a safetensors file'
    return f'it starts with bytes {head[:8]!r}'


def _sniff(path: Path) -> tuple[str | None, bytes]:
    """(container kind or None, first bytes) of a file."""
    try:
        with open(path, 'rb') as handle:
            head = handle.read(9)
    except OSError as error:
        raise CheckpointError(f'{path}: cannot be read ({one_line(error, 120)})',
                              path=path) from None
    if head.startswith(ZIP_MAGIC):
        return 'torch_zip', head
    if head.startswith(PICKLE_PROTOCOL_2):
        return 'torch_legacy', head
    if len(head) == 9 and head[8:9] == b'{':
        return 'safetensors', head
    return None, head


def file_container(path: str | os.PathLike) -> str:
    """'safetensors', 'torch_zip' or 'torch_legacy' from the first bytes of an existing file;
    CheckpointError for anything else."""
    kind, head = _sniff(Path(path))
    if kind is None:
        raise CheckpointError(f'{path} is not a PyTorch or safetensors weight file '
                              f'({_describe_start(head)})', path=path)
    return kind


# ----------------------------------------------------------------------------- safetensors

@dataclass(frozen=True)
class SafetensorsHeader:
    metadata: dict[str, str]
    tensors: dict[str, tuple[str, tuple[int, ...], tuple[int, int]]]  # dtype, shape, offsets


def _header_problem(header: Any, data_size: int) -> str | None:
    """Why a decoded safetensors header is unusable, or None."""
    if not isinstance(header, dict):
        return f'its header is JSON {type(header).__name__}, not an object'
    metadata = header.get('__metadata__', {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        return 'its __metadata__ is not a map of strings to strings'
    for key, entry in header.items():
        if key == '__metadata__':
            continue
        name = quoted(key, 60)
        if not isinstance(entry, dict):
            return f'tensor {name} has no dtype / shape / data_offsets entry'
        dtype, shape, offsets = entry.get('dtype'), entry.get('shape'), entry.get('data_offsets')
        if dtype not in SAFETENSORS_DTYPE_BYTES:
            return f'tensor {name} has the unknown dtype {quoted(dtype, 30)}'
        if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)):
            return f'tensor {name} has an invalid shape {quoted(shape, 40)}'
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(type(n) is int for n in offsets)):
            return f'tensor {name} has invalid data_offsets {quoted(offsets, 40)}'
        begin, end = offsets
        if not 0 <= begin <= end <= data_size:
            return (f'tensor {name} lies at bytes {begin}..{end}, outside the '
                    f'{data_size} data bytes of the file')
        if end - begin != math.prod(shape) * SAFETENSORS_DTYPE_BYTES[dtype]:
            return (f'tensor {name} has {end - begin} bytes, its shape {tuple(shape)} of '
                    f'{dtype} needs {math.prod(shape) * SAFETENSORS_DTYPE_BYTES[dtype]}')
    return None


def read_safetensors_header(path: str | os.PathLike) -> SafetensorsHeader:
    """The checked header of a .safetensors file (module doc); tensors are not read."""
    path = Path(path)
    kind, head = _sniff(path)
    if kind in ('torch_zip', 'torch_legacy') or len(head) < 9:
        raise CheckpointError(f'{path} is not a safetensors file ({_describe_start(head)})',
                              path=path)
    try:
        size = path.stat().st_size
        with open(path, 'rb') as handle:
            start = handle.read(8)
            (length,) = struct.unpack('<Q', start)
            if length > min(size - 8, MAX_SAFETENSORS_HEADER):
                raise CheckpointError(
                    f'{path} is not a usable safetensors file: its header claims {length} bytes '
                    f'but the file has {size} (truncated or not safetensors)', path=path)
            raw = handle.read(length)
    except OSError as error:
        raise CheckpointError(f'{path}: cannot be read ({one_line(error, 120)})',
                              path=path) from None
    try:
        header = json.loads(raw.decode('utf-8'))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise CheckpointError(f'{path} is not a usable safetensors file: its header is not '
                              f'valid JSON ({one_line(error, 100)})', path=path) from None
    problem = _header_problem(header, size - 8 - length)
    if problem:
        raise CheckpointError(f'{path} is not a usable safetensors file: {problem}', path=path)
    tensors = {k: (v['dtype'], tuple(v['shape']), tuple(v['data_offsets']))
               for k, v in header.items() if k != '__metadata__'}
    return SafetensorsHeader(dict(header.get('__metadata__', {})), tensors)


def load_safetensors_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """{key: tensor} (CPU, as stored) of a .safetensors file whose header passes the checks."""
    read_safetensors_header(path)
    from safetensors.torch import load_file
    try:
        return load_file(str(path), device='cpu')
    except Exception as error:  # the library's own checks (SafetensorError and others)
        raise CheckpointError(f'{path} is not a usable safetensors file: '
                              f'{one_line(error, 160)}', path=path) from None


# ----------------------------------------------------------------------------- PyTorch files

_BLOCKED_GLOBAL = re.compile(r'GLOBAL ([\w.]+)')


def load_torch_object(path: str | os.PathLike) -> Any:
    """What a torch.save file holds, read with weights_only=True (tensors and plain Python
    containers only; zip files memory-mapped). Every failure is a CheckpointError."""
    path = Path(path)
    container = file_container(path)
    if container == 'safetensors':
        raise CheckpointError(f'{path} is a safetensors file; name it .safetensors', path=path)
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": not for the log
            warnings.simplefilter('ignore')
            return torch.load(path, map_location='cpu', weights_only=True,
                              mmap=container == 'torch_zip')
    except Exception as error:  # torch raises many kinds for damaged or hostile files
        text = str(error)
        if 'Weights only load failed' in text:
            found = _BLOCKED_GLOBAL.search(text)
            what = f'the Python object {found.group(1)}' if found else 'objects'
            raise CheckpointError(
                f'{path} refers to {what}, which is not a tensor or plain data; refused '
                '(loading it could run code)', path=path) from None
        raise CheckpointError(f'{path} cannot be read as a PyTorch file (truncated or damaged?): '
                              f'{type(error).__name__}: {one_line(text, 120)}',
                              path=path) from None


def tensor_problem(key: Any, value: Any) -> str | None:
    """Why a state-dict entry is not a plain dense tensor under a string key, or None."""
    if not isinstance(key, str):
        return f'has a key of type {type(key).__name__} ({quoted(key, 40)})'
    if not isinstance(value, torch.Tensor):
        return f'holds a {type(value).__name__} under {quoted(key, 60)}, not a tensor'
    if value.layout != torch.strided or value.is_quantized or value.device.type != 'cpu':
        return f'holds a {value.layout} / quantized / non-CPU tensor under {quoted(key, 60)}'
    return None


def flat_tensors(data: Any, path: str | os.PathLike, what: str = 'a flat state dict of tensors'
                 ) -> dict[str, torch.Tensor]:
    """``data`` as {str: dense tensor}, or a CheckpointError saying what the file holds."""
    if not isinstance(data, Mapping):
        raise CheckpointError(f'{path} does not hold {what} (it holds a '
                              f'{type(data).__name__})', path=path)
    for key, value in data.items():
        problem = tensor_problem(key, value)
        if problem:
            raise CheckpointError(f'{path} does not hold {what}: it {problem}', path=path)
    return dict(data)


def plain_data_problem(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` is not JSON-like data (str keys; str, int, float, bool, None, lists,
    dicts; at most 32 levels deep), or None."""
    if depth > 32:
        return 'is nested too deeply'
    if value is None or isinstance(value, (str, bool, int, float)):
        return None
    if isinstance(value, (list, tuple)):
        return next((p for p in (plain_data_problem(v, depth + 1) for v in value) if p), None)
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f'has a non-string key {quoted(key, 40)}'
            problem = plain_data_problem(item, depth + 1)
            if problem:
                return problem
        return None
    return f'holds a {type(value).__name__}'
