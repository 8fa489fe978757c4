"""``ppd-fetch``: download the official PPD weights from the Hugging Face hub into models/.

Only runs when asked; needs the optional ``huggingface_hub`` package (imported lazily).
Each file's size is checked against its parameter count (fp16 .. fp32 storage).
"""
from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from .checkpoint import OFFICIAL_DIT_FILE, OFFICIAL_ENCODER_FILE, models_dir

MIB = 1 << 20


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable weight file and the size range a genuine copy has."""

    repo_id: str
    filename: str
    min_bytes: int
    max_bytes: int
    description: str


def _size_range(params: int) -> tuple[int, int]:
    """Bytes of a state dict with `params` parameters stored in 16 to 32 bits, plus slack."""
    return 2 * params, 4 * params + 64 * MIB


OFFICIAL_FILES: dict[str, RemoteFile] = {
    'ppd': RemoteFile('gangweix/Pixel-Perfect-Depth', OFFICIAL_DIT_FILE,
                      *_size_range(499_842_112), 'PPD DiT, 499.8M parameters (dit.* keys)'),
    'da2': RemoteFile('depth-anything/Depth-Anything-V2-Large', OFFICIAL_ENCODER_FILE,
                      *_size_range(335_315_649), 'Depth-Anything-V2 ViT-L, semantics encoder'),
}

Downloader = Callable[..., str]


class FetchError(RuntimeError):
    """A download that could not be done or gave an implausible file."""


def hub_download(repo_id: str, filename: str, local_dir: str) -> str:
    """huggingface_hub.hf_hub_download into local_dir; path of the downloaded file."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise FetchError('huggingface_hub is not installed: `pip install huggingface_hub`, '
                         'or download the files by hand into the models/ folder') from None
    return hf_hub_download(repo_id=repo_id, filename=filename, local_dir=local_dir)


def check_size(path: Path, spec: RemoteFile) -> int:
    size = path.stat().st_size
    if not spec.min_bytes <= size <= spec.max_bytes:
        raise FetchError(f'{path} has {size} bytes, expected {spec.min_bytes}..{spec.max_bytes} '
                         f'for {spec.description}: incomplete or wrong file')
    return size


def fetch(names: Sequence[str] = ('ppd', 'da2'), destination: str | Path | None = None, *,
          download: Downloader | None = None, files: Mapping[str, RemoteFile] = OFFICIAL_FILES,
          force: bool = False, log=print) -> list[Path]:
    """Download the named files into destination (default: models/); returns their paths."""
    destination = Path(destination) if destination is not None else models_dir()
    destination.mkdir(parents=True, exist_ok=True)
    download = download or hub_download
    paths = []
    for name in names:
        spec = files[name]
        target = destination / spec.filename
        if target.is_file() and not force:
            check_size(target, spec)
            log(f'{name}: {target} already present')
        else:
            log(f'{name}: downloading {spec.filename} from {spec.repo_id} ...')
            got = Path(download(repo_id=spec.repo_id, filename=spec.filename,
                                local_dir=str(destination)))
            if got.resolve() != target.resolve():
                shutil.copyfile(got, target)
            size = check_size(target, spec)
            log(f'{name}: saved {target} ({size / MIB:.1f} MiB)')
        paths.append(target)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='ppd-fetch',
                                     description=__doc__.splitlines()[0].replace('``', ''))
    parser.add_argument('files', nargs='*', metavar='FILE',
                        help='which files (default: all): '
                        + ', '.join(f'{k} = {v.filename}' for k, v in OFFICIAL_FILES.items()))
    parser.add_argument('--models-dir', default=None, help='destination folder (default: models/)')
    parser.add_argument('--force', action='store_true', help='download again even if present')
    args = parser.parse_args(argv)
    unknown = sorted(set(args.files) - set(OFFICIAL_FILES))
    if unknown:
        parser.error(f'unknown file(s) {unknown}; choose from {sorted(OFFICIAL_FILES)}')
    try:
        paths = fetch(args.files or list(OFFICIAL_FILES), args.models_dir, force=args.force)
    except FetchError as error:
        print(f'ppd-fetch: error: {error}', file=sys.stderr)
        return 1
    print('weights in: ' + ', '.join(str(p) for p in paths))
    return 0


if __name__ == '__main__':
    sys.exit(main())
