"""``ppd-predict``: relative depth for an image or a folder of images.

For every image ``<stem>`` it writes into --outdir (never over an input image):

* ``<stem>_relative_depth.npy``  float32 H x W relative depth (larger = farther, see
  ``ppd_ros.model.Prediction``), at the input resolution;
* ``<stem>_depth.png``           input | relative depth (Spectral, near = red), titled, with
  a colour bar;
* with --samples K > 1 (the depth is then the mean of K noise draws): ``<stem>_spread.npy``,
  float32 H x W standard deviation of the K draws in relative-depth units (larger = less
  sure), and ``<stem>_spread.png``, input | spread;
* with --ply: ``<stem>_relative.ply``, or ``<stem>_metric.ply`` when --metric-fit A B gives the
  log-depth alignment log(1 + Z) = A * depth + B (Z in metres). The relative cloud uses
  Z = exp(depth): shape up to an unknown log-affine distortion, no unit. Points are in the
  camera optical frame (x right, y down, z forward), with intrinsics from --fx/--fy/--cx/--cy
  or a square-pixel camera of --hfov degrees;
* with --moge (metric depth from one image, the node's depth.mode moge): PPD's output fitted to
  MoGe-2's metric depth over its mask as the authors' run_point_cloud.py does
  (ppd_ros.pipeline.moge_point_cloud), ``<stem>_metric_depth.npy`` float32 metres at the
  network resolution, and with --ply ``<stem>_metric.ply``: the mask's pixels back-projected
  with MoGe-2's estimated intrinsics, or the camera's from --fx/--fy/--cx/--cy (MoGe-2 then
  solves only the depth shift). Pixel centres follow MoGe-2 and CameraInfo (cx = 0.5 w - 0.5),
  half a pixel from run_point_cloud.py's cx = 0.5 w; the PLY's comments say so.

The model options and their defaults are those of depth_node and ppd-eval: the shipped tiny
model unless --variant large (official weights, ``ppd-fetch``) or --checkpoint says otherwise.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ppd_ros.cli.tool_main import ToolArgumentParser, ToolError, refuse_overwriting_inputs, tool_main

PROG = 'ppd-predict'
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


def list_images(inputs: Sequence[str]) -> list[Path]:
    """Image files named directly or found (sorted, non-recursive) in the given folders;
    pictures that ppd_ros wrote itself are left out of folders."""
    from ppd_ros.evaluation.report_figures import is_ppd_ros_picture
    images = []
    for item in map(Path, inputs):
        if item.is_dir():
            images += sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                             and p.is_file() and not is_ppd_ros_picture(p))
        elif item.is_file():
            images.append(item)
        else:
            raise ToolError(f'no such image or folder: {item}')
    return images


def output_paths(image: Path, outdir: Path, args: argparse.Namespace) -> dict[str, Path]:
    """What ppd-predict writes for ``image``."""
    stem = image.stem
    paths = {'depth': outdir / f'{stem}_relative_depth.npy', 'picture': outdir / f'{stem}_depth.png'}
    if args.moge:
        paths['metric_depth'] = outdir / f'{stem}_metric_depth.npy'
    if args.samples > 1:
        paths.update(spread=outdir / f'{stem}_spread.npy',
                     spread_picture=outdir / f'{stem}_spread.png')
    if args.ply:
        kind = 'relative' if args.metric_fit is None and not args.moge else 'metric'
        paths['ply'] = outdir / f'{stem}_{kind}.ply'
    return paths


def check_outputs(images: list[Path], outdir: Path, args: argparse.Namespace) -> None:
    """ToolError before any work when an output would overwrite an input or another output."""
    seen: dict[Path, Path] = {}
    for image in images:
        for path in output_paths(image, outdir, args).values():
            other = seen.setdefault(path.resolve(), image)
            if other != image:
                raise ToolError(f'{other} and {image} would both write {path}; give images with '
                                'different names, or run them separately with other --outdir')
    refuse_overwriting_inputs(images, seen, 'choose another --outdir')


def read_rgb(path: Path) -> np.ndarray:
    """RGB of an image file; JPEG and PNG go through the checked decoder (declared size within
    the default pixel budget and aspect ratio before anything is decoded)."""
    from ppd_ros.messages.compressed_image import compressed_to_rgb
    from ppd_ros.messages.image_encoding import ImageEncodingError
    from ppd_ros.messages.image_header import sniff_container
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f'cannot read image {path}: {error.strerror}') from None
    if sniff_container(memoryview(data)) is not None:
        try:
            return compressed_to_rgb('', data)
        except ImageEncodingError as error:
            raise ValueError(f'cannot read image {path}: {error}') from None
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f'cannot read image {path}')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def check_intrinsics_arguments(args: argparse.Namespace) -> None:
    """--fx --fy --cx --cy: all or none, finite, positive focal lengths (their bounds relative
    to an image's size are checked per image)."""
    given = [args.fx, args.fy, args.cx, args.cy]
    if all(v is None for v in given):
        return
    if any(v is None for v in given):
        raise ToolError('give all of --fx --fy --cx --cy, or none (then --hfov is used)')
    if not (all(np.isfinite(given)) and args.fx > 0 and args.fy > 0):
        raise ToolError('--fx --fy --cx --cy must be finite, --fx and --fy positive')


def camera_for(args: argparse.Namespace, width: int, height: int):
    from ppd_ros.geometry.camera_model import camera_from_horizontal_fov, camera_from_info_fields
    check_intrinsics_arguments(args)
    if args.fx is None:
        return camera_from_horizontal_fov(width, height, args.hfov)
    k = [args.fx, 0.0, args.cx, 0.0, args.fy, args.cy, 0.0, 0.0, 1.0]
    return camera_from_info_fields(k, [0.0] * 12, width, height)


def write_point_cloud(path: Path, rgb: np.ndarray, depth: np.ndarray,
                      args: argparse.Namespace, camera) -> Path:
    """PLY of the depth map; relative (Z = exp(depth)) unless a metric fit is given."""
    from ppd_ros.geometry.ply import write_ply
    from ppd_ros.geometry.unproject import unproject
    if args.metric_fit is None:
        z = np.exp(depth.astype(np.float64))
        comments = ['ppd_ros relative depth: Z = exp(ppd_depth), unknown scale, not metres']
    else:
        a, b = args.metric_fit
        z = np.expm1(a * depth.astype(np.float64) + b)
        comments = [f'ppd_ros metric depth in metres: log(1 + Z) = {a} * ppd_depth + {b}']
    comments.append(f'camera optical frame (x right, y down, z forward); fx {camera.fx:.3f} '
                    f'fy {camera.fy:.3f} cx {camera.cx:.3f} cy {camera.cy:.3f}')
    stride = args.ply_stride
    xyz = unproject(z.astype(np.float32), camera, stride).reshape(-1, 3)
    colors = rgb[::stride, ::stride].reshape(-1, 3)
    keep = np.isfinite(xyz).all(axis=1)
    return write_ply(path, xyz[keep], colors[keep], comments)


def write_moge_outputs(paths: dict[str, Path], rgb: np.ndarray, pred, depth_predictor) -> None:
    """--moge: the authors' metric cloud of one frame (its depth, and the PLY with --ply)."""
    from ppd_ros.geometry.ply import write_ply
    from ppd_ros.model.preprocess import resize_keep_aspect
    from ppd_ros.pipeline.moge_point_cloud import metric_cloud
    rgb_network = resize_keep_aspect(rgb, depth_predictor.network_area)
    cloud = metric_cloud(pred.network_depth, pred.geometry, rgb_network)
    np.save(paths['metric_depth'], cloud.metric_depth)
    if 'ply' in paths:
        comments = list(cloud.comments)
        if cloud.fallback:
            comments.append(f'fit fallback: {cloud.fallback}')
        write_ply(paths['ply'], cloud.points, cloud.colors, comments)


def load_moge_model(options, args: argparse.Namespace):
    """(MetricDepthPredictor, info) for --moge: PPD as the model options say, MoGe-2 from
    --moge-checkpoint (or, for --variant large_moge, the encoder file itself)."""
    from ppd_ros.pipeline.geometry_loading import load_metric_predictor_from_paths
    if options.backend != 'torch':
        raise ToolError(f'--moge runs on the torch backend only; drop --backend {options.backend}')
    files = options.resolved_weight_files()
    predictor = load_metric_predictor_from_paths(
        str(files.get('checkpoint', '')), str(files.get('dit_checkpoint', '')),
        str(files.get('encoder_checkpoint', '')), args.moge_checkpoint, options.variant,
        options.device, options.precision, options.num_threads, options.network_area,
        upsampling=options.upsampling)
    return predictor, {'name': f'{predictor.config.name} + MoGe-2'}


def write_picture(path: Path, image: Path, rgb: np.ndarray, depth: np.ndarray,
                  model_label: str, steps: int) -> Path:
    from ppd_ros.evaluation.report_figures import side_by_side_picture
    title = f'{image.name}: relative depth by {model_label}, {steps} steps'
    return side_by_side_picture(path, rgb, depth, None, title, metric=False)


def build_parser() -> argparse.ArgumentParser:
    from ppd_ros.evaluation.model_options import add_model_arguments
    parser = ToolArgumentParser(
        prog=PROG, description=__doc__.split('\n\n')[0].replace('``', ''),
        epilog='Official weights: run `ppd-fetch` (puts them into models/), then --variant large.')
    parser.add_argument('inputs', nargs='+', help='image files and/or folders of images')
    parser.add_argument('--outdir', default='out/ppd',
                        help='output folder (default: %(default)s); input images are never '
                             'overwritten')
    add_model_arguments(parser)
    cloud = parser.add_argument_group('point cloud')
    cloud.add_argument('--ply', action='store_true', help='also write a PLY point cloud')
    cloud.add_argument('--fx', type=float, help='focal length x [px] (give all four or none)')
    cloud.add_argument('--fy', type=float, help='focal length y [px]')
    cloud.add_argument('--cx', type=float, help='principal point x [px]')
    cloud.add_argument('--cy', type=float, help='principal point y [px]')
    cloud.add_argument('--hfov', type=float, default=60.0,
                       help='horizontal field of view in degrees when no fx/fy/cx/cy (default 60)')
    cloud.add_argument('--metric-fit', type=float, nargs=2, metavar=('A', 'B'),
                       help='metric PLY with log(1 + Z) = A * depth + B (Z in metres)')
    cloud.add_argument('--ply-stride', type=int, default=1,
                       help='keep every n-th row and column (default 1)')
    from ppd_ros.pipeline.geometry_loading import DEFAULT_MOGE_CHECKPOINT
    moge = parser.add_argument_group('metric depth from MoGe-2 (depth.mode moge)')
    moge.add_argument('--moge', action='store_true',
                      help="metric depth and, with --ply, the metric cloud the way the authors' "
                           'run_point_cloud.py makes it; intrinsics from --fx/--fy/--cx/--cy or '
                           "MoGe-2's estimate")
    moge.add_argument('--moge-checkpoint', default=DEFAULT_MOGE_CHECKPOINT,
                      help='MoGe-2 weights: an official model.pt or a ppd_ros MoGe-2 file '
                           '(default %(default)s); unused with --variant large_moge, whose '
                           '--encoder-checkpoint is MoGe-2')
    return parser


def _expected_errors():
    from ppd_ros.geometry.camera_model import CameraModelError
    from ppd_ros.pipeline.predictor_loading import ModelUnavailableError
    return (ModelUnavailableError, CameraModelError)


@tool_main(PROG, _expected_errors)
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tqdm import tqdm

    from ppd_ros.evaluation.model_options import load_model, model_options_from_args
    options = model_options_from_args(args)
    if args.ply_stride < 1:
        raise ToolError(f'--ply-stride must be >= 1, got {args.ply_stride}')
    if args.metric_fit is not None and not np.isfinite(args.metric_fit).all():
        raise ToolError(f'--metric-fit needs two finite numbers, got {args.metric_fit}')
    if args.moge and args.metric_fit is not None:
        raise ToolError('--moge fits the metric depth itself; drop --metric-fit')
    images = list_images(args.inputs)
    if not images:
        raise ToolError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {', '.join(args.inputs)}")
    outdir = Path(args.outdir)
    check_outputs(images, outdir, args)
    if args.ply or args.moge:
        check_intrinsics_arguments(args)  # before loading weights
        if args.fx is None and not args.moge:
            camera_for(args, 2, 2)        # a usable --hfov
    notice = options.notice()
    if notice:
        print(f'{PROG}: note: {notice}', file=sys.stderr)
    predictor, info = load_moge_model(options, args) if args.moge else load_model(options)
    outdir.mkdir(parents=True, exist_ok=True)
    seed = None if options.seed < 0 else options.seed
    failed = 0
    for image in tqdm(images, desc=PROG, unit='img', disable=len(images) < 2):
        try:
            rgb = read_rgb(image)
            camera = (camera_for(args, rgb.shape[1], rgb.shape[0])
                      if args.ply or (args.moge and args.fx is not None) else None)
        except ValueError as error:  # unreadable file: report it, keep going with the rest
            tqdm.write(f'{PROG}: error: {error}; skipped', file=sys.stderr)
            failed += 1
            continue
        paths = output_paths(image, outdir, args)
        if args.moge:
            from ppd_ros.model.moge2_geometry import KnownIntrinsics
            known = None if args.fx is None else KnownIntrinsics(camera.fx, camera.fy,
                                                                 camera.cx, camera.cy)
            pred = predictor.predict(rgb, steps=options.steps, seed=seed, camera=known,
                                     samples=options.samples)
        else:
            pred = predictor.predict(rgb, steps=options.steps, seed=seed,
                                     samples=options.samples)
        np.save(paths['depth'], pred.depth)
        write_picture(paths['picture'], image, rgb, pred.depth, info['name'], options.steps)
        if pred.spread is not None:
            from ppd_ros.evaluation.report_figures import spread_picture
            np.save(paths['spread'], pred.spread)
            spread_picture(paths['spread_picture'], rgb, pred.spread,
                           f'{image.name}: spread of {options.samples} draws by '
                           f"{info['name']}, {options.steps} steps")
        if args.moge:
            try:
                write_moge_outputs(paths, rgb, pred, predictor.depth)
            except ValueError as error:   # e.g. MoGe-2 masked out the whole image
                tqdm.write(f'{PROG}: error: {image}: {error}; no metric output', file=sys.stderr)
                failed += 1
        elif args.ply:
            write_point_cloud(paths['ply'], rgb, pred.depth, args, camera)
    print(f'wrote {len(images) - failed} result(s) to {outdir}'
          + (f'; {failed} unreadable image(s) skipped' if failed else ''))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
