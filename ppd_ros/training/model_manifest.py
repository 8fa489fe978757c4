"""models/manifest.yaml: the shipped weight files with size, sha256, variant and description."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def manifest_entry(path: str | os.PathLike, variant: str, description: str) -> dict:
    path = Path(path)
    return {'file': path.name, 'size_bytes': path.stat().st_size, 'sha256': sha256_of(path),
            'variant': variant, 'description': description}


def write_manifest(entries: Sequence[dict], path: str | os.PathLike) -> Path:
    import yaml
    path = Path(path)
    header = '# Weight files shipped in models/ (regenerate with ppd_ros.training.model_manifest).\n'
    path.write_text(header + yaml.safe_dump({'files': list(entries)}, sort_keys=False, width=100))
    return path
