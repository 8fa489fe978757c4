"""ppd-fetch: download the official weights into models/ (or place them there by hand).

Each file is one WEIGHT_FILES entry: where its authors publish it (a Hugging Face hub
repository, or any direct address), its licence, which setting takes its path, and the size
range a genuine copy has. To add a file, add an entry (and, if it belongs to a new model, a
name for it in DEFAULT_SELECTION or a selection of its own). Files
are fetched over plain HTTPS (proxies from the usual environment variables; HF_ENDPOINT
replaces https://huggingface.co, as for huggingface_hub), written under a temporary name and
moved into place only when complete. Without a connection ppd-fetch ends at once with one
line that says where each file comes from and where it goes.
"""
from __future__ import annotations

import os
import shutil
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ppd_ros.cli.tool_main import ToolArgumentParser, ToolError, tool_main

from .checkpoint import MODELS_DIR_ENV, models_dir

PROG = 'ppd-fetch'
MIB = 1 << 20
HUB = 'https://huggingface.co'
ENDPOINT_ENV = 'HF_ENDPOINT'
CONNECT_TIMEOUT_S = 15.0
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable weight file."""

    filename: str           #: name under models/ (and on the hub unless hub_filename says)
    repo_id: str            #: Hugging Face hub repository the authors publish it in ('' if none)
    description: str
    licence: str
    setting: str            #: the node parameter / tool option that takes its path
    min_bytes: int          #: a genuine copy has min_bytes .. max_bytes
    max_bytes: int
    direct_url: str = ''    #: for a file published outside the hub: its download address
    hub_filename: str = ''  #: its name in the hub repository, when that differs from filename
    tool_option: bool = True  #: the tools take its path as --<setting> too (not only the node)
    manual_source: str = ''  #: where to get it by hand when neither hub nor address serves it

    def url(self, endpoint: str | None = None) -> str:
        if self.direct_url:
            return self.direct_url
        if not self.repo_id:
            return self.manual_source
        endpoint = (endpoint or os.environ.get(ENDPOINT_ENV) or HUB).rstrip('/')
        return f'{endpoint}/{self.repo_id}/resolve/main/{self.hub_filename or self.filename}'


def size_range(params: int) -> tuple[int, int]:
    """Bytes of a state dict with `params` parameters stored in 16 to 32 bits, plus slack."""
    return 2 * params, 4 * params + 64 * MIB


WEIGHT_FILES: dict[str, RemoteFile] = {
    'ppd': RemoteFile('ppd.pth', 'gangweix/Pixel-Perfect-Depth',
                      'PPD DiT, 499.8M parameters (dit.* keys)', 'Apache-2.0',
                      'dit_checkpoint', *size_range(499_842_112)),
    'da2': RemoteFile('depth_anything_v2_vitl.pth', 'depth-anything/Depth-Anything-V2-Large',
                      'Depth-Anything-V2 ViT-L, the semantics encoder of PPD-Large',
                      'CC-BY-NC-4.0 (non-commercial)', 'encoder_checkpoint',
                      *size_range(335_315_649)),
    # published as model.pt; kept under its repository's name beside the other files
    'moge2': RemoteFile('moge-2-vitl-normal.pt', 'Ruicheng/moge-2-vitl-normal',
                        "MoGe-2 ViT-L, metric geometry for depth.mode moge and large_moge's "
                        'semantics encoder', 'MIT', 'moge_checkpoint',
                        *size_range(330_901_550), hub_filename='model.pt', tool_option=False),
    'ppd_moge': RemoteFile('ppd_moge.pth', '', 'PPD DiT trained with MoGe-2 semantics, 499.8M '
                           'parameters (dit.* keys)', 'not stated beside the file (the PPD code '
                           'is Apache-2.0)', 'dit_checkpoint', *size_range(499_842_112),
                           manual_source='the Google Drive link in the README of '
                                         'github.com/gangweix/pixel-perfect-depth'),
}
#: The files of --variant large (the default selection).
DEFAULT_SELECTION = ('ppd', 'da2')
#: The files of --variant large_moge (ppd_moge.pth is downloaded by hand, then checked here).
LARGE_MOGE_SELECTION = ('moge2', 'ppd_moge')

Downloader = Callable[[str, Path], None]


class FetchError(RuntimeError):
    """A download that could not be done or gave an implausible file."""


class ManualFileError(FetchError):
    """A file that is not on the hub is missing (the message says where to get it)."""


def url_download(url: str, target: Path, progress: bool = True) -> None:
    """GET url into target; FetchError (one sentence) when the server cannot be reached or
    answers with an error."""
    from tqdm import tqdm
    request = urllib.request.Request(url, headers={'User-Agent': 'ppd_ros ppd-fetch'})
    try:
        with urllib.request.urlopen(request, timeout=CONNECT_TIMEOUT_S) as response:
            total = int(response.headers.get('Content-Length') or 0) or None
            with open(target, 'wb') as out, tqdm(total=total, unit='B', unit_scale=True,
                                                 desc=target.name.removesuffix('.partial'),
                                                 disable=not progress) as bar:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as error:
        raise FetchError(f'{url} answered HTTP {error.code} {error.reason}') from None
    except (urllib.error.URLError, socket.timeout, ConnectionError) as error:
        reason = getattr(error, 'reason', error)
        raise FetchError(f'cannot reach {urllib.request.urlparse(url).netloc} ({reason})'
                         ) from None


def check_size(path: Path, spec: RemoteFile) -> int:
    size = path.stat().st_size
    if not spec.min_bytes <= size <= spec.max_bytes:
        raise FetchError(f'{path} has {size} bytes, expected {spec.min_bytes}..{spec.max_bytes} '
                         f'for {spec.description}: incomplete or wrong file')
    return size


def by_hand(specs: Sequence[RemoteFile], destination: Path) -> str:
    """How to place the files without ppd-fetch."""
    steps = '; '.join(f'{spec.url()} -> {destination / spec.filename}' for spec in specs)
    settings = ' / '.join(dict.fromkeys(spec.setting for spec in specs))
    options = ' / '.join(dict.fromkeys('--' + spec.setting.replace('_', '-')
                                       for spec in specs if spec.tool_option))
    return (f'download on a machine with internet and copy here: {steps} (or give the paths '
            f'with the node parameters {settings}' + (f', tool options {options})' if options
                                                       else ')'))


def fetch(names: Sequence[str] = DEFAULT_SELECTION, destination: str | Path | None = None, *,
          download: Downloader | None = None, files: Mapping[str, RemoteFile] = WEIGHT_FILES,
          force: bool = False, log=print) -> list[Path]:
    """Download the named files into destination (default: models/); returns their paths.

    Nothing is left behind when a download fails: no partial file, and no destination
    folder that this call created."""
    destination = Path(destination) if destination is not None else models_dir()
    download = download or url_download
    created = not destination.exists()
    paths = []
    try:
        for name in names:
            spec = files[name]
            target = destination / spec.filename
            if target.is_file() and not force:
                check_size(target, spec)
                log(f'{name}: {target} already present')
                paths.append(target)
                continue
            if not spec.repo_id and not spec.direct_url:
                raise ManualFileError(f'{spec.filename} is published only on {spec.manual_source}: '
                                 f'download it in a browser to {target}, or give its path '
                                 f'with {spec.setting}')
            destination.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + '.partial')
            try:
                download(spec.url(), partial)
                size = check_size(partial, spec)
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
            log(f'{name}: saved {target} ({size / MIB:.1f} MiB; {spec.description}; '
                f'licence {spec.licence})')
            paths.append(target)
    except BaseException:
        if created and destination.is_dir() and not any(destination.iterdir()):
            shutil.rmtree(destination)
        raise
    return paths


def build_parser() -> ToolArgumentParser:
    parser = ToolArgumentParser(
        prog=PROG, description=__doc__.split('\n\n')[0].split(': ', 1)[1],
        epilog='Files: ' + '; '.join(f'{name} = {spec.filename} ({spec.description}; '
                                     f'{spec.licence})' for name, spec in WEIGHT_FILES.items()))
    parser.add_argument('files', nargs='*', metavar='FILE',
                        help=f"which files (default: {' '.join(DEFAULT_SELECTION)}); choose "
                             f"from {', '.join(WEIGHT_FILES)}")
    parser.add_argument('--models-dir', type=Path, default=None,
                        help=f'destination folder (default: ${MODELS_DIR_ENV} or ./models)')
    parser.add_argument('--force', action='store_true', help='download again even if present')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser


@tool_main(PROG)
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    unknown = [name for name in args.files if name not in WEIGHT_FILES]
    if unknown:
        raise ToolError(f"unknown file(s) {', '.join(unknown)}; choose from "
                        f"{', '.join(WEIGHT_FILES)}")
    names = args.files or list(DEFAULT_SELECTION)
    destination = args.models_dir or models_dir()
    try:
        paths = fetch(names, destination, force=args.force,
                      download=lambda url, target: url_download(url, target,
                                                                not args.no_progress),
                      log=lambda line: print(f'{PROG}: {line}', file=sys.stderr))
    except ManualFileError as error:
        raise ToolError(str(error), 1) from None
    except FetchError as error:
        specs = [WEIGHT_FILES[name] for name in names]
        raise ToolError(f'{error}; {by_hand(specs, destination)}', 1) from None
    print('weights in: ' + ', '.join(str(p) for p in paths))
    return 0


if __name__ == '__main__':
    sys.exit(main())
