"""Damaged and hostile weight files, built from a good tiny ppd_ros checkpoint.

hostile_checkpoints(): ppd_ros-format files (loaded as `checkpoint`); hostile_torch_files():
official-format .pth files (loaded as dit_checkpoint / encoder_checkpoint). Each maps a name
to (path, text the one-line CheckpointError must contain).
"""
from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import torch
from safetensors.torch import save_file


def split_safetensors(data: bytes) -> tuple[dict, bytes]:
    """(header dict, tensor bytes) of a safetensors file's contents."""
    (length,) = struct.unpack('<Q', data[:8])
    return json.loads(data[8:8 + length]), data[8 + length:]


def join_safetensors(header, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack('<Q', len(raw)) + raw + body


class _RunsCode:
    def __reduce__(self):
        return (os.system, ('echo this must never run',))


def hostile_checkpoints(good: Path, out: Path) -> dict[str, tuple[Path, str]]:
    data = good.read_bytes()
    header, body = split_safetensors(data)
    config = json.loads(header['__metadata__']['config'])

    def with_config(**change) -> bytes:
        h = json.loads(json.dumps(header))
        h['__metadata__']['config'] = json.dumps({**config, **change})
        return join_safetensors(h, body)

    first = next(k for k in header if k != '__metadata__')
    far = json.loads(json.dumps(header))
    far[first]['data_offsets'] = [0, 10**12]
    files = {
        'empty': (b'', 'empty'),
        'truncated': (data[:len(data) // 2], 'outside the'),
        'huge_header': (struct.pack('<Q', 2**63) + data[8:], 'header claims'),
        'malformed_json': (struct.pack('<Q', 5) + b'{abc}' + body, 'not valid JSON'),
        'non_object_json': (join_safetensors([1, 2], body), 'not an object'),
        'offsets_out_of_range': (join_safetensors(far, body), 'outside the'),
        'zip_container': (None, 'zip archive'),
        'num_heads_zero': (with_config(num_heads=0), 'num_heads must be in'),
        'string_size': (with_config(hidden_size='256'), 'hidden_size must be an integer'),
        'train_area_1e12': (with_config(train_width=10**6, train_height=10**6),
                            'train_width must be in'),
        'nan_rope_base': (join_safetensors(
            {**header, '__metadata__': {**header['__metadata__'], 'config': json.dumps(
                {**config, 'rope_base': float('nan')})}}, body), 'rope_base must be a number'),
        'config_not_json': (join_safetensors(
            {**header, '__metadata__': {**header['__metadata__'], 'config': '{oops'}}, body),
            'not valid JSON'),
    }
    out.mkdir(parents=True, exist_ok=True)
    result = {}
    for name, (blob, text) in files.items():
        path = out / f'{name}.safetensors'
        if blob is None:
            torch.save({'dit.x': torch.zeros(2)}, path)
        else:
            path.write_bytes(blob)
        result[name] = (path, text)
    # an int8 matrix without its per-row scale
    from ppd_ros.model.checkpoint import read_safetensors, safetensors_metadata
    tensors = read_safetensors(good)
    key = next(k for k, v in tensors.items() if v.dim() == 2 and v.numel() >= 4096)
    tensors[key] = torch.zeros(tensors[key].shape, dtype=torch.int8)
    path = out / 'int8_without_scale.safetensors'
    save_file(tensors, str(path), metadata=safetensors_metadata(good))
    result['int8_without_scale'] = (path, 'without its scale')
    return result


def hostile_torch_files(out: Path) -> dict[str, tuple[Path, str]]:
    out.mkdir(parents=True, exist_ok=True)
    good = out / 'good.pth'
    torch.save({'dit.a': torch.zeros(3)}, good)
    data = good.read_bytes()
    result = {}

    def put(name, text, blob=None, obj=None, save=torch.save):
        path = out / f'{name}.pth'
        if blob is not None:
            path.write_bytes(blob)
        else:
            save(obj, path)
        result[name] = (path, text)

    put('code_running_pickle', 'could run code', obj={'dit.a': _RunsCode()})
    put('plain_pickle', 'plain Python pickle',
        save=lambda obj, path: path.write_bytes(pickle.dumps(obj, protocol=4)),
        obj={'dit.a': 1})
    put('not_plain_tensors', 'not a tensor', obj={'dit.a': torch.zeros(2), 'dit.b': [1, 2]})
    put('sparse_tensor', 'sparse', obj={'dit.a': torch.zeros(3, 3).to_sparse()})
    put('truncated', 'truncated or damaged', blob=data[:len(data) // 2])
    put('empty', 'empty', blob=b'')
    put('png_named_pth', 'not a PyTorch or safetensors', blob=b'\x89PNG\r\n\x1a\n' + bytes(40))
    return result
