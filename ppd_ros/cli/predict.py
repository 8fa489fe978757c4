"""``ppd-predict``: relative depth for an image or a folder of images.

For every image ``<stem>`` it writes into --outdir:

* ``<stem>_relative_depth.npy``  float32 H x W relative depth (larger = farther, see
  ``ppd_ros.model.Prediction``), at the input resolution;
* ``<stem>.png``                 input | 50 px white gap | Spectral colour map (near = red);
* with --ply: ``<stem>_relative.ply``, or ``<stem>_metric.ply`` when --metric-fit A B gives the
  log-depth alignment log(1 + Z) = A * depth + B (Z in metres). The relative cloud uses
  Z = exp(depth): shape up to an unknown log-affine distortion, no unit. Points are in the
  camera optical frame (x right, y down, z forward), with intrinsics from --fx/--fy/--cx/--cy
  or a square-pixel camera of --hfov degrees.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ppd_ros.pipeline.predictor_loading import BACKEND_CHOICES, parse_network_area

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
GAP_PX = 50


def list_images(inputs: Sequence[str]) -> list[Path]:
    """Image files named directly or found (sorted, non-recursive) in the given folders."""
    images = []
    for item in map(Path, inputs):
        if item.is_dir():
            images += sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif item.is_file():
            images.append(item)
        else:
            raise FileNotFoundError(f'no such image or folder: {item}')
    return images


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


def side_by_side(rgb: np.ndarray, depth_rgb: np.ndarray, gap: int = GAP_PX) -> np.ndarray:
    """[input | white gap | colourised depth] as one RGB image."""
    white = np.full((rgb.shape[0], gap, 3), 255, dtype=np.uint8)
    return np.concatenate([rgb, white, depth_rgb], axis=1)


def check_intrinsics_arguments(args: argparse.Namespace) -> None:
    """--fx --fy --cx --cy: all or none, finite, positive focal lengths (their bounds relative
    to an image's size are checked per image)."""
    given = [args.fx, args.fy, args.cx, args.cy]
    if all(v is None for v in given):
        return
    if any(v is None for v in given):
        raise ValueError('give all of --fx --fy --cx --cy, or none (then --hfov is used)')
    if not (all(np.isfinite(given)) and args.fx > 0 and args.fy > 0):
        raise ValueError('--fx --fy --cx --cy must be finite, --fx and --fy positive')


def camera_for(args: argparse.Namespace, width: int, height: int):
    from ppd_ros.geometry.camera_model import camera_from_horizontal_fov, camera_from_info_fields
    check_intrinsics_arguments(args)
    if args.fx is None:
        return camera_from_horizontal_fov(width, height, args.hfov)
    k = [args.fx, 0.0, args.cx, 0.0, args.fy, args.cy, 0.0, 0.0, 1.0]
    return camera_from_info_fields(k, [0.0] * 12, width, height)


def write_point_cloud(path_stem: Path, rgb: np.ndarray, depth: np.ndarray,
                      args: argparse.Namespace, camera=None) -> Path:
    """PLY of the depth map; relative (Z = exp(depth)) unless a metric fit is given."""
    from ppd_ros.geometry.ply import write_ply
    from ppd_ros.geometry.unproject import unproject
    camera = camera or camera_for(args, depth.shape[1], depth.shape[0])
    if args.metric_fit is None:
        z = np.exp(depth.astype(np.float64))
        path = path_stem.with_name(path_stem.name + '_relative.ply')
        comments = ['ppd_ros relative depth: Z = exp(ppd_depth), unknown scale, not metres']
    else:
        a, b = args.metric_fit
        z = np.expm1(a * depth.astype(np.float64) + b)
        path = path_stem.with_name(path_stem.name + '_metric.ply')
        comments = [f'ppd_ros metric depth in metres: log(1 + Z) = {a} * ppd_depth + {b}']
    comments.append(f'camera optical frame (x right, y down, z forward); fx {camera.fx:.3f} '
                    f'fy {camera.fy:.3f} cx {camera.cx:.3f} cy {camera.cy:.3f}')
    stride = args.ply_stride
    xyz = unproject(z.astype(np.float32), camera, stride).reshape(-1, 3)
    colors = rgb[::stride, ::stride].reshape(-1, 3)
    keep = np.isfinite(xyz).all(axis=1)
    return write_ply(path, xyz[keep], colors[keep], comments)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='ppd-predict', description=__doc__.split('\n\n')[0].replace('``', ''),
        epilog='Official weights: run `ppd-fetch` (puts them into models/).')
    parser.add_argument('inputs', nargs='+', help='image files and/or folders of images')
    parser.add_argument('--outdir', default='out/ppd', help='output folder (default: out/ppd)')
    weights = parser.add_argument_group('weights')
    weights.add_argument('--checkpoint', help='ppd_ros .safetensors (carries its config)')
    weights.add_argument('--dit-checkpoint', help='official ppd.pth (default models/ppd.pth)')
    weights.add_argument('--encoder-checkpoint',
                         help='official depth_anything_v2_vitl.pth '
                         '(default models/depth_anything_v2_vitl.pth)')
    weights.add_argument('--variant', default='large',
                         help='network for official files (default large)')
    run = parser.add_argument_group('inference')
    run.add_argument('--device', default='auto', help='auto, cpu or cuda (default auto)')
    run.add_argument('--precision', default='fp32', choices=('fp32', 'fp16', 'bf16'))
    run.add_argument('--network-area', type=parse_network_area, default=0, metavar='WxH|PIXELS',
                     help='network resolution: about this many pixels, aspect ratio kept (e.g. '
                          "768x576); 0 (default) is the model's training area")
    run.add_argument('--upsampling', default='edge_aware',
                     choices=('edge_aware', 'nearest', 'bilinear'),
                     help='network output to image size: edge_aware (default; no value between '
                          'two surfaces), nearest, or bilinear as the reference run.py')
    run.add_argument('--backend', default='torch', choices=BACKEND_CHOICES,
                     help='what runs the networks (default torch); onnxruntime and tensorrt '
                          'run the --export-dir made by ppd-export from the same weights')
    run.add_argument('--export-dir', help='ppd-export folder for --backend onnxruntime/tensorrt')
    run.add_argument('--steps', type=int, default=4, help='sampling steps (default 4)')
    run.add_argument('--seed', type=int, default=0,
                     help='noise seed, the same for every image (default 0)')
    cloud = parser.add_argument_group('point cloud')
    cloud.add_argument('--ply', action='store_true', help='also write a PLY point cloud')
    cloud.add_argument('--fx', type=float)
    cloud.add_argument('--fy', type=float)
    cloud.add_argument('--cx', type=float)
    cloud.add_argument('--cy', type=float)
    cloud.add_argument('--hfov', type=float, default=60.0,
                       help='horizontal field of view in degrees when no fx/fy/cx/cy (default 60)')
    cloud.add_argument('--metric-fit', type=float, nargs=2, metavar=('A', 'B'),
                       help='metric PLY with log(1 + Z) = A * depth + B (Z in metres)')
    cloud.add_argument('--ply-stride', type=int, default=1, help='keep every n-th row and column')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tqdm import tqdm

    from ppd_ros.geometry.colorize import colorize_depth
    from ppd_ros.model import CheckpointError, load_predictor
    try:
        images = list_images(args.inputs)
        if args.ply:
            check_intrinsics_arguments(args)  # before loading weights
        predictor = load_predictor(args.checkpoint, dit_checkpoint=args.dit_checkpoint,
                                   encoder_checkpoint=args.encoder_checkpoint,
                                   variant=args.variant, device=args.device,
                                   precision=args.precision,
                                   network_area=args.network_area or None,
                                   upsampling=args.upsampling,
                                   backend=args.backend, export_dir=args.export_dir)
    except (CheckpointError, FileNotFoundError, ValueError) as error:
        print(f'ppd-predict: error: {error}', file=sys.stderr)
        return 2
    if not images:
        print('ppd-predict: error: no images found', file=sys.stderr)
        return 2
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in tqdm(images, desc='ppd-predict', unit='img', disable=len(images) < 2):
        try:
            rgb = read_rgb(path)
            camera = camera_for(args, rgb.shape[1], rgb.shape[0]) if args.ply else None
        except ValueError as error:  # unreadable file: report it, keep going with the rest
            tqdm.write(f'ppd-predict: error: {error}; skipped', file=sys.stderr)
            failed += 1
            continue
        pred = predictor.predict(rgb, steps=args.steps, seed=args.seed)
        stem = outdir / path.stem
        np.save(stem.with_name(path.stem + '_relative_depth.npy'), pred.depth)
        panel = side_by_side(rgb, colorize_depth(pred.depth))
        cv2.imwrite(str(stem.with_name(path.stem + '.png')),
                    cv2.cvtColor(panel, cv2.COLOR_RGB2BGR))
        if args.ply:
            write_point_cloud(stem, rgb, pred.depth, args, camera)
    print(f'wrote {len(images) - failed} result(s) to {outdir}'
          + (f'; {failed} unreadable image(s) skipped' if failed else ''))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
