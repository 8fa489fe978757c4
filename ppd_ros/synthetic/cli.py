"""ppd-synth: write a synthetic RGB-D sequence to a rosbag2 bag and/or PNG previews."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from .generator import generate_sequence
from .preview import side_by_side, write_png


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='ppd-synth', description=__doc__,
        epilog='Bag topics: /camera/image_raw (rgb8) or /camera/image_raw/compressed, '
               '/camera/depth/image_raw (32FC1 metres, NaN invalid), /camera/camera_info.')
    p.add_argument('output', nargs='?', type=Path,
                   help='bag directory to create (omit to write previews only)')
    p.add_argument('--frames', type=int, default=30, help='number of frames (default 30)')
    p.add_argument('--width', type=int, default=320)
    p.add_argument('--height', type=int, default=240)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--storage', choices=('sqlite3', 'mcap'), default='sqlite3')
    p.add_argument('--rate', type=float, default=10.0, help='frame rate in Hz (default 10)')
    p.add_argument('--compressed', action='store_true',
                   help='store colour as CompressedImage on <image topic>/compressed')
    p.add_argument('--compressed-format', choices=('jpeg', 'png'), default='jpeg',
                   help='codec for --compressed (default jpeg; png is lossless)')
    p.add_argument('--preview-dir', type=Path,
                   help='also write rgb | colourised depth PNGs here, one per frame')
    p.add_argument('--overwrite', action='store_true', help='replace an existing bag')
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.output is None and args.preview_dir is None:
        print('ppd-synth: give an output bag path and/or --preview-dir', file=sys.stderr)
        return 2
    if args.frames < 1 or args.width < 1 or args.height < 1 or args.rate <= 0:
        print('ppd-synth: --frames, --width, --height and --rate must be positive',
              file=sys.stderr)
        return 2
    if args.preview_dir is not None:
        args.preview_dir.mkdir(parents=True, exist_ok=True)

    bar = tqdm(total=args.frames, unit='frame', desc='ppd-synth')

    depth_range = {}  # from the first frame, so colours do not flicker along the sequence

    def on_frame(i, frame):
        if args.preview_dir is not None:
            if not depth_range and frame.valid.any():
                valid = frame.depth[frame.valid]
                depth_range.update(vmin=float(valid.min()), vmax=float(valid.max()))
            write_png(args.preview_dir / f'frame_{i:06d}.png',
                      side_by_side(frame.rgb, frame.depth, **depth_range))
        bar.update(1)

    try:
        if args.output is not None:
            from ppd_ros.bag.synthetic_bag import write_synthetic_bag
            written = write_synthetic_bag(
                args.output, args.frames, args.width, args.height, args.seed, args.storage,
                args.rate, args.compressed, compressed_format=args.compressed_format,
                overwrite=args.overwrite,
                on_frame=on_frame)
        else:
            for i, frame in enumerate(generate_sequence(args.seed, args.frames, args.width,
                                                        args.height)):
                on_frame(i, frame)
    except (FileExistsError, OSError, ValueError) as exc:
        bar.close()
        print(f'ppd-synth: {exc}', file=sys.stderr)
        return 1
    bar.close()
    if args.output is not None:
        print(f'bag ({written.storage}): {written.path.resolve()}')
        for topic, count in written.topics.items():
            print(f'  {topic}: {count} messages')
    if args.preview_dir is not None:
        print(f'previews: {args.frames} PNGs in {args.preview_dir.resolve()}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
