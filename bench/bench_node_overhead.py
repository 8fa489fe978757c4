"""Per-frame overhead of depth_node around the model forward pass.

Times everything the node does per frame except the network itself, at 640x480 and
1280x720: decoding the incoming Image, the model's postprocess (bilinear upsampling of the
network output to the input size), metric conversion, the organized xyz+rgb cloud
(depth_image_proc layout), colorize, and building + publishing the depth, camera_info,
cloud and colored messages (array.array payloads, rclpy conversion and serialisation; the
publishers have no subscribers). Prints median milliseconds per stage.

    python bench/bench_node_overhead.py [--frames 30] [--stride 1]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

import numpy as np  # noqa: E402
import rclpy  # noqa: E402
import torch  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from ppd_ros.geometry.camera_model import camera_from_horizontal_fov  # noqa: E402
from ppd_ros.messages.image_encoding import image_to_rgb  # noqa: E402
from ppd_ros.model.predictor import Prediction  # noqa: E402
from ppd_ros.model.preprocess import network_size, upsample_depth  # noqa: E402
from ppd_ros.node import message_builders as build  # noqa: E402
from ppd_ros.pipeline.depth_pipeline import DepthPipeline, PipelineOptions  # noqa: E402

SIZES = ((640, 480), (1280, 720))
LARGE_MODEL_AREA = 1024 * 768


class NetworkOutputOnly:
    """Stands in for the predictor: a fixed network output, upsampled as the model does."""

    def __init__(self, width: int, height: int):
        h, w = network_size(height, width, LARGE_MODEL_AREA)
        rng = np.random.default_rng(0)
        self.network = torch.from_numpy(rng.uniform(0.0, 1.0, (1, 1, h, w)).astype(np.float32))
        self.size = (height, width)

    def predict(self, rgb, steps=4, seed=None):
        start = time.perf_counter()
        depth = upsample_depth(self.network, *self.size)[0, 0].numpy()
        elapsed = time.perf_counter() - start
        return Prediction(depth, self.network[0, 0].numpy(), {'postprocess': elapsed,
                                                              'total': elapsed})


class ExpScale:
    """Metric stand-in: relative depth in [0, 1] -> 0.5 .. 10 m."""

    def to_metres(self, relative):
        return np.exp(relative * np.float32(3.0)) * np.float32(0.5)


def _incoming_image(rgb: np.ndarray) -> Image:
    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding='rgb8', step=rgb.shape[1] * 3)
    msg.data = build.uint8_array(rgb)
    return msg


def bench_size(node, width: int, height: int, frames: int, stride: int) -> dict[str, float]:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    incoming = _incoming_image(rgb)
    camera = camera_from_horizontal_fov(width, height, 70.0)
    info_source = CameraInfo(distortion_model='plumb_bob', d=[0.0] * 5)
    pipeline = DepthPipeline(NetworkOutputOnly(width, height))
    options = PipelineOptions(cloud_stride=stride)
    pubs = {name: node.create_publisher(kind, f'bench/{name}', 1) for name, kind in
            (('depth', Image), ('info', CameraInfo), ('points', PointCloud2), ('colored', Image))}
    samples: dict[str, list[float]] = {}
    for i in range(frames + 3):  # 3 warm-up frames
        t = {}
        start = time.perf_counter()
        decoded = image_to_rgb(incoming.encoding, incoming.height, incoming.width, incoming.step,
                               incoming.data)
        t['decode image'] = time.perf_counter() - start
        frame = pipeline.process(decoded, camera, options, ExpScale())
        for stage in ('postprocess', 'metric', 'resize', 'cloud', 'colorize'):
            t[stage] = frame.timings[stage]
        header = Header(frame_id='camera_optical_frame')
        clock = time.perf_counter()
        msgs = {'depth': build.depth_image_message(header, frame.depth, '32FC1'),
                'info': build.camera_info_message(header, frame.camera, info_source),
                'points': build.pointcloud_message(header, frame.cloud),
                'colored': build.color_image_message(header, frame.colored, 'bgr8')}
        t['build messages'] = time.perf_counter() - clock
        clock = time.perf_counter()
        for name, msg in msgs.items():
            pubs[name].publish(msg)
        t['publish (rclpy)'] = time.perf_counter() - clock
        t['total'] = time.perf_counter() - start
        if i >= 3:
            for k, v in t.items():
                samples.setdefault(k, []).append(v)
    for pub in pubs.values():
        node.destroy_publisher(pub)
    return {k: statistics.median(v) * 1e3 for k, v in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=30)
    parser.add_argument('--stride', type=int, default=1, help='cloud.stride')
    parser.add_argument('--threads', type=int, default=1, help='torch CPU threads')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rclpy.init()
    node = rclpy.create_node('ppd_bench_node_overhead')
    try:
        results = {f'{w}x{h}': bench_size(node, w, h, args.frames, args.stride) for w, h in SIZES}
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    stages = list(next(iter(results.values())))
    print(f'depth_node per-frame overhead, median ms over {args.frames} frames '
          f'(cloud xyz+rgb, stride {args.stride}; torch threads {args.threads})')
    print(f'| stage | ' + ' | '.join(results) + ' |')
    print('|---|' + '---:|' * len(results))
    for stage in stages:
        print(f'| {stage} | ' + ' | '.join(f'{r[stage]:.2f}' for r in results.values()) + ' |')


if __name__ == '__main__':
    main()
