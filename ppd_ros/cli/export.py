"""``ppd-export``: ONNX graphs of the semantics encoder and of one DiT step, for one network size.

The folder it writes (graphs, external weights, per-step conditioning, manifest.json) is what
``--backend onnxruntime`` / ``tensorrt`` (node parameters ``backend`` and ``export_dir``) run.
The network size comes from --network-size, or from a camera's --image-size and the network
area as the predictor computes it. Frames of other aspect ratios need their own export.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Sequence

from ppd_ros.cli.tool_main import ToolArgumentParser, tool_main
from ppd_ros.pipeline.predictor_loading import parse_network_area


def parse_size(text: str) -> tuple[int, int]:
    """'320x256' (width x height) -> (height, width)."""
    match = re.fullmatch(r'\s*(\d+)\s*[x*]\s*(\d+)\s*', str(text).lower())
    if not match:
        raise argparse.ArgumentTypeError(f'expected WIDTHxHEIGHT (e.g. 320x256), got {text!r}')
    return int(match.group(2)), int(match.group(1))


def build_parser() -> argparse.ArgumentParser:
    parser = ToolArgumentParser(
        prog='ppd-export', description=__doc__.split('\n\n')[0].replace('``', ''),
        epilog='Example: ppd-export exports/tiny_320x256 --checkpoint '
               'models/tiny_ppd.safetensors --network-size 320x256 --steps 4')
    parser.add_argument('outdir', help='new folder for the export (an existing export in it is '
                                       'never overwritten)')
    weights = parser.add_argument_group('weights (as ppd-predict)')
    weights.add_argument('--checkpoint', help='ppd_ros .safetensors (carries its config)')
    weights.add_argument('--dit-checkpoint', help='official ppd.pth (default models/ppd.pth)')
    weights.add_argument('--encoder-checkpoint',
                         help='official depth_anything_v2_vitl.pth '
                              '(default models/depth_anything_v2_vitl.pth)')
    weights.add_argument('--variant', default='large',
                         help='network of the official files (default large)')
    size = parser.add_argument_group('network size (one of)')
    size.add_argument('--network-size', type=parse_size, metavar='WxH',
                      help='network input width x height, multiples of 16 (e.g. 320x256)')
    size.add_argument('--image-size', type=parse_size, metavar='WxH',
                      help="the camera's image width x height: the network size is the one "
                           'the predictor resizes it to at --network-area')
    parser.add_argument('--network-area', type=parse_network_area, default=0,
                        metavar='WxH|PIXELS',
                        help="with --image-size: the network area (default 0: the model's "
                             'training area); recorded as the area the predictor uses')
    parser.add_argument('--steps', type=int, nargs='+', default=[4], metavar='N',
                        help='sampling step counts to precompute the conditioning of '
                             '(default 4)')
    parser.add_argument('--batch', type=int, default=1,
                        help='rows per graph call (noise samples x cameras); larger DiT batches '
                             'run in chunks of it (default 1)')
    return parser


def _network_size(args: argparse.Namespace, train_area: int) -> tuple[int, int, int]:
    """(h, w, area) from the size options."""
    from ppd_ros.model.network_resolution import bounded_network_size, check_network_input
    if (args.network_size is None) == (args.image_size is None):
        raise ValueError('give exactly one of --network-size and --image-size')
    if args.network_size is not None:
        if args.network_area:
            raise ValueError('--network-area goes with --image-size (a --network-size is '
                             'its own area)')
        h, w = args.network_size
        check_network_input(h, w)
        return h, w, h * w
    area = args.network_area or train_area
    h, w = bounded_network_size(*args.image_size, area)
    return h, w, area


@tool_main('ppd-export')
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    start = time.perf_counter()

    def log(message: str) -> None:
        print(f'ppd-export: {message} [{time.perf_counter() - start:.0f} s]', file=sys.stderr,
              flush=True)

    def fail(message: str) -> int:
        print(f'ppd-export: error: {message}', file=sys.stderr)
        return 2

    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as error:
        return fail(f'exporting needs onnx and onnxscript ({error.name} is missing): '
                    f'pip install -r requirements.txt')
    from ppd_ros.model import CheckpointError, get_config, load_checkpoint, load_official
    from ppd_ros.model.checkpoint import OFFICIAL_DIT_FILE, OFFICIAL_ENCODER_FILE, models_dir
    from ppd_ros.model.onnx_export import ExportError, export_model
    try:
        if args.checkpoint and (args.dit_checkpoint or args.encoder_checkpoint):
            raise ValueError('give either --checkpoint or --dit/--encoder-checkpoint, not both')
        if args.batch < 1 or min(args.steps) < 1:
            raise ValueError('--batch and --steps must be >= 1')
        if args.checkpoint:
            from ppd_ros.model.checkpoint import config_from_metadata, read_checkpoint_metadata
            config = config_from_metadata(read_checkpoint_metadata(args.checkpoint),
                                          args.checkpoint)
            sources = [args.checkpoint]
        else:
            config = get_config(args.variant)
            sources = [args.dit_checkpoint or models_dir() / OFFICIAL_DIT_FILE]
            if config.encoder.enabled:
                sources.append(args.encoder_checkpoint or models_dir() / OFFICIAL_ENCODER_FILE)
        h, w, area = _network_size(args, config.train_area)
        outdir = Path(args.outdir)
        if (outdir / 'manifest.json').exists():
            raise ExportError(f'{outdir} already holds an export; choose a new folder')
        log(f'loading {" + ".join(map(str, sources))} ...')
        model = (load_checkpoint(args.checkpoint) if args.checkpoint else
                 load_official(args.dit_checkpoint, args.encoder_checkpoint, args.variant))
        log(f'exporting {config.name} at {w}x{h} (width x height), steps '
            f'{", ".join(map(str, sorted(set(args.steps))))}, batch {args.batch} to {outdir}')
        manifest = export_model(model, outdir, h, w, steps=args.steps, batch=args.batch,
                                network_area=area, sources=sources, log=log)
    except (CheckpointError, ExportError, FileNotFoundError, ValueError) as error:
        return fail(str(error).splitlines()[0] if str(error) else type(error).__name__)
    except OSError as error:
        return fail(f'cannot write the export: {error}')
    total = sum((outdir / name).stat().st_size for name in manifest['files'])
    log(f'done: {outdir} ({total / 2**20:.1f} MiB); run it with --backend onnxruntime '
        f'--export-dir {outdir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
