"""Binary little-endian PLY point clouds: x y z float32, optional red green blue uint8."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np


def write_ply(path: str | os.PathLike, points: np.ndarray, colors: np.ndarray | None = None,
              comments: Iterable[str] = ()) -> Path:
    """Write N x 3 points (and N x 3 uint8 RGB colours) to a binary PLY; returns the path."""
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    fields = [('x', '<f4'), ('y', '<f4'), ('z', '<f4')]
    if colors is not None:
        colors = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
        if len(colors) != len(points):
            raise ValueError(f'{len(colors)} colours for {len(points)} points')
        fields += [('red', 'u1'), ('green', 'u1'), ('blue', 'u1')]
    records = np.empty(len(points), dtype=fields)
    records['x'], records['y'], records['z'] = points.T
    if colors is not None:
        records['red'], records['green'], records['blue'] = colors.T
    header = ['ply', 'format binary_little_endian 1.0']
    header += [f'comment {c}' for comment in comments for c in str(comment).splitlines()]
    header += [f'element vertex {len(points)}',
               'property float x', 'property float y', 'property float z']
    if colors is not None:
        header += ['property uchar red', 'property uchar green', 'property uchar blue']
    header.append('end_header')
    path = Path(path)
    with open(path, 'wb') as f:
        f.write(('\n'.join(header) + '\n').encode('ascii'))
        f.write(records.tobytes())
    return path


def read_ply(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """(points N x 3, colours N x 3 or None, comments) of a file written by ``write_ply``."""
    data = Path(path).read_bytes()
    end = data.index(b'end_header\n') + len(b'end_header\n')
    lines = data[:end].decode('ascii').splitlines()
    if lines[:2] != ['ply', 'format binary_little_endian 1.0']:
        raise ValueError(f'{path}: not a binary little-endian PLY')
    count = next(int(line.split()[2]) for line in lines if line.startswith('element vertex'))
    names = [line.split()[2] for line in lines if line.startswith('property')]
    types = {'float': '<f4', 'uchar': 'u1'}
    dtype = [(line.split()[2], types[line.split()[1]])
             for line in lines if line.startswith('property')]
    records = np.frombuffer(data, dtype=dtype, count=count, offset=end)
    points = np.stack([records['x'], records['y'], records['z']], axis=1)
    colors = None
    if 'red' in names:
        colors = np.stack([records['red'], records['green'], records['blue']], axis=1)
    comments = [line[len('comment '):] for line in lines if line.startswith('comment ')]
    return points, colors, comments
