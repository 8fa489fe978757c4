"""ppd-synth: write a synthetic RGB-D sequence to a rosbag2 bag and/or PNG previews."""
from __future__ import annotations

import sys
from pathlib import Path

from ppd_ros.cli.tool_main import ToolArgumentParser, ToolError, tool_main

PROG = 'ppd-synth'


def build_parser() -> ToolArgumentParser:
    p = ToolArgumentParser(
        prog=PROG, description=__doc__.split(': ', 1)[1],
        epilog='Bag topics: /camera/image_raw (rgb8) or /camera/image_raw/compressed, '
               '/camera/depth/image_raw (32FC1 metres, NaN invalid), /camera/camera_info, '
               '/camera/pose (geometry_msgs/PoseStamped: the camera optical frame in the '
               "world; 'world_<r>' for room r with --frames-per-room).")
    p.add_argument('output', nargs='?', type=Path,
                   help='bag to create: NAME.mcap or NAME.db3 is one storage file, any other '
                        'path a rosbag2 folder (omit to write previews only)')
    p.add_argument('--frames', type=int, default=30, help='number of frames (default 30)')
    p.add_argument('--width', type=int, default=320, help='image width in pixels (default 320)')
    p.add_argument('--height', type=int, default=240,
                   help='image height in pixels (default 240)')
    p.add_argument('--seed', type=int, default=0,
                   help='scene seed; the same seed gives the same scenes (default 0)')
    p.add_argument('--storage', choices=('sqlite3', 'mcap'), default=None,
                   help='bag storage (default: from a .mcap / .db3 output name, else sqlite3)')
    p.add_argument('--rate', type=float, default=10.0, help='frame rate in Hz (default 10)')
    p.add_argument('--compressed', action='store_true',
                   help='store colour as CompressedImage on <image topic>/compressed')
    p.add_argument('--compressed-format', choices=('jpeg', 'png'), default='jpeg',
                   help='codec for --compressed (default jpeg; png is lossless)')
    p.add_argument('--preview-dir', type=Path,
                   help='also write rgb | colourised depth PNGs here, one per frame')
    p.add_argument('--overwrite', action='store_true',
                   help='replace an existing bag at the output path (never anything else)')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    p.add_argument('--frames-per-room', type=int, default=None, metavar='N',
                   help='move the camera to another room every N frames (scene cuts; room r '
                        'is the one-room sequence of seed + r); default: one room')
    p.add_argument('--pose-topic', default='/camera/pose',
                   help="topic of the camera poses (default %(default)s; 'none': no poses)")
    return p


def _storage(args) -> str:
    from ppd_ros.bag.writer import storage_for_path
    by_name = storage_for_path(args.output) if args.output is not None else None
    if args.storage and by_name and args.storage != by_name:
        raise ToolError(f'{args.output} names a {by_name} file but --storage is {args.storage}; '
                        'drop --storage or change the file name')
    return args.storage or by_name or 'sqlite3'


def _check_output(path: Path, overwrite: bool) -> None:
    from ppd_ros.bag.writer import looks_like_bag, storage_for_path
    if not path.exists():
        return
    if not overwrite:
        raise ToolError(f'{path} exists; pass --overwrite to replace it, or choose another '
                        'output path')
    if not (looks_like_bag(path) or (path.is_file() and storage_for_path(path))):
        raise ToolError(f'{path} exists and is not a rosbag2 bag; --overwrite only replaces '
                        'bags: choose another output path')


@tool_main(PROG)
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.output is None and args.preview_dir is None:
        raise ToolError('give an output bag path and/or --preview-dir')
    if args.frames < 1 or args.width < 1 or args.height < 1 or args.rate <= 0:
        raise ToolError('--frames, --width, --height and --rate must be positive')
    if args.frames_per_room is not None and args.frames_per_room < 1:
        raise ToolError('--frames-per-room must be positive')
    pose_topic = None if args.pose_topic.lower() == 'none' else args.pose_topic
    storage = _storage(args)
    if args.output is not None:
        _check_output(args.output, args.overwrite)
    from tqdm import tqdm

    from .generator import generate_room_walks
    from .preview import side_by_side, write_png
    if args.preview_dir is not None:
        args.preview_dir.mkdir(parents=True, exist_ok=True)
    depth_range = {}  # from the first frame, so colours do not flicker along the sequence

    with tqdm(total=args.frames, unit='frame', desc=PROG, disable=args.no_progress) as bar:
        def on_frame(i, frame):
            if args.preview_dir is not None:
                if not depth_range and frame.valid.any():
                    valid = frame.depth[frame.valid]
                    depth_range.update(vmin=float(valid.min()), vmax=float(valid.max()))
                write_png(args.preview_dir / f'frame_{i:06d}.png',
                          side_by_side(frame.rgb, frame.depth, **depth_range))
            bar.update(1)

        if args.output is not None:
            from ppd_ros.bag.synthetic_bag import write_synthetic_bag
            written = write_synthetic_bag(
                args.output, args.frames, args.width, args.height, args.seed, storage,
                args.rate, args.compressed, compressed_format=args.compressed_format,
                overwrite=args.overwrite, on_frame=on_frame, pose_topic=pose_topic,
                frames_per_room=args.frames_per_room)
        else:
            walks = generate_room_walks(args.seed, args.frames, args.frames_per_room
                                        or args.frames, args.width, args.height)
            for i, (_, frame) in enumerate(walks):
                on_frame(i, frame)
    if args.output is not None:
        print(f'bag ({written.storage}): {written.path.resolve()}')
        for topic, count in written.topics.items():
            print(f'  {topic}: {count} messages')
    if args.preview_dir is not None:
        print(f'previews: {args.frames} PNGs in {args.preview_dir.resolve()}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
