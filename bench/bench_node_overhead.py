"""Per-frame overhead of depth_node around the model forward pass.

Times everything the node does per frame except the network itself, at 640x480 and
1280x720 with cloud strides 1 and 2: decoding the incoming Image, the model's postprocess
(bilinear upsampling of the network output to the input size), metric conversion, the
organized xyz+rgb cloud (depth_image_proc layout, point_step 32), colorize, and building +
publishing the depth, camera_info, cloud and colored messages (array.array payloads, rclpy
conversion and serialisation). By default the publishers have no subscribers; --subscriber
starts one subscriber process for all four topics (with the Fast DDS large-message profile),
which is what a deployment pays.

Stages run as depth_node wires them (DepthPipeline.process, then message_builders), in a
worker thread as in the node, with the node's default retain_heap (glibc keeps freed memory:
the message copies stop page-faulting); --no-retain-heap measures plain malloc. The pipeline
recycles the cloud payload of the previous frame once its message is gone and colourises
beside the cloud build (--no-overlap: one after the other), as in the node. Torch threads
default to torch's own default, as depth_node's num_threads: 0.

The machine is shared: the load average is printed with the results, and every number is
a median over --frames frames. 'wall' is elapsed time (includes time spent waiting for a
CPU); 'cpu' is this process's CPU time (time.process_time: all its threads, so OpenCV's
helper threads count too), which is far less sensitive to other processes. The rows
'in pipeline: ...' are each pipeline stage's own wall time; they are part of 'pipeline' and
overlap (colorize runs beside cloud), so they are not added to the total. A third table
counts minor page faults (fresh 4 KiB pages, ~1-2 us each on this VM): 0 in steady state.

    python bench/bench_node_overhead.py [--frames 40] [--strides 1 2] [--subscriber]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / 'config' / 'fastdds_large_messages.xml'
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
if '--subscriber' in sys.argv and '--no-profile' not in sys.argv:
    for _var in ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE'):
        os.environ.setdefault(_var, str(PROFILE))

import cv2  # noqa: E402
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
from ppd_ros.node.heap_retention import retain_freed_memory  # noqa: E402
from ppd_ros.pipeline.depth_pipeline import DepthPipeline, PipelineOptions  # noqa: E402

SIZES = ((640, 480), (1280, 720))
LARGE_MODEL_AREA = 1024 * 768
TOPICS = (('depth', Image), ('info', CameraInfo), ('points', PointCloud2), ('colored', Image))
PIPELINE_STAGES = ('postprocess', 'metric', 'resize', 'cloud', 'colorize')
#: Rows of the pipeline's own stage timings (colorize overlaps cloud: not summed)
STAGE_ROW = '  in pipeline: {}'

SUBSCRIBER = '''
import sys, rclpy
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
rclpy.init()
node = rclpy.create_node('ppd_bench_subscriber')
for name, kind in (('depth', Image), ('info', CameraInfo), ('points', PointCloud2),
                   ('colored', Image)):
    node.create_subscription(kind, sys.argv[1] + name, lambda msg: None, QoSProfile(depth=1))
try:
    rclpy.spin(node)
except BaseException:
    pass
'''


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
        return Prediction(depth, self.network[0, 0].numpy(),
                          {'postprocess': elapsed, 'total': elapsed})


class ExpScale:
    """Metric stand-in: relative depth in [0, 1] -> 0.5 .. 10 m."""

    def to_metres(self, relative):
        return np.exp(relative * np.float32(3.0)) * np.float32(0.5)


class Clock:
    """Wall and process-CPU seconds, and minor page faults, per stage of one frame."""

    def __init__(self):
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.faults: dict[str, float] = {}
        self._mark = self._now()

    @staticmethod
    def _now() -> tuple[float, float, int]:
        return (time.perf_counter(), time.process_time(),
                resource.getrusage(resource.RUSAGE_SELF).ru_minflt)

    def lap(self, stage: str) -> None:
        now = self._now()
        for store, new, old in zip((self.wall, self.cpu, self.faults), now, self._mark):
            store[stage] = store.get(stage, 0) + new - old
        self._mark = now

    def restart(self) -> None:
        self._mark = self._now()


def _incoming_image(rgb: np.ndarray) -> Image:
    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding='rgb8', step=rgb.shape[1] * 3)
    msg.data = build.uint8_array(rgb)
    return msg


def _totals(t: dict[str, float]) -> None:
    t['total'] = sum(t.values())
    t['total excl. publish'] = t['total'] - t['publish points'] - t['publish depth+info+colored']


def bench_size(node, width: int, height: int, stride: int, frames: int, warmup: int,
               subscribers: int, overlap: bool = True) -> tuple[dict[str, float], ...]:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    incoming = _incoming_image(rgb)
    camera = camera_from_horizontal_fov(width, height, 70.0)
    info_source = CameraInfo(distortion_model='plumb_bob', d=[0.0] * 5)
    pipeline = DepthPipeline(NetworkOutputOnly(width, height), overlap=overlap)
    options = PipelineOptions(cloud_stride=stride)
    pubs = {name: node.create_publisher(kind, f'bench/{name}', 1) for name, kind in TOPICS}
    if subscribers:
        deadline = time.monotonic() + 30.0
        while any(p.get_subscription_count() < subscribers for p in pubs.values()):
            if time.monotonic() > deadline:
                raise RuntimeError('the subscriber process did not match within 30 s')
            time.sleep(0.05)
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    faults: dict[str, list[float]] = {}
    for i in range(frames + warmup):
        c = Clock()
        decoded = image_to_rgb(incoming.encoding, incoming.height, incoming.width,
                               incoming.step, incoming.data)
        c.lap('decode image')
        frame = pipeline.process(decoded, camera, options, ExpScale())
        c.lap('pipeline')
        header = Header(frame_id='camera_optical_frame')
        depth_msg = build.depth_image_message(header, frame.depth, '32FC1')
        info_msg = build.camera_info_message(header, frame.camera, info_source)
        c.lap('build depth+info msgs')
        points_msg = build.pointcloud_message(header, frame.cloud)
        c.lap('build points msg')
        colored_msg = build.color_image_message(header, frame.colored, 'bgr8')
        c.lap('build colored msg')
        pubs['points'].publish(points_msg)
        c.lap('publish points')
        pubs['depth'].publish(depth_msg)
        pubs['info'].publish(info_msg)
        pubs['colored'].publish(colored_msg)
        c.lap('publish depth+info+colored')
        del points_msg, depth_msg, info_msg, colored_msg
        c.faults['total'] = sum(c.faults.values())
        if i >= warmup:
            for store, values in ((wall, c.wall), (cpu, c.cpu), (faults, c.faults)):
                if values is not c.faults:
                    _totals(values)
                for k, v in values.items():
                    store.setdefault(k, []).append(v)
            for stage in PIPELINE_STAGES:  # each stage's own wall time, inside 'pipeline'
                wall.setdefault(STAGE_ROW.format(stage), []).append(frame.timings[stage])
    for pub in pubs.values():
        node.destroy_publisher(pub)
    messages = ('build depth+info msgs', 'build points msg', 'build colored msg',
                'publish points', 'publish depth+info+colored')
    order = ('decode image', 'pipeline', *messages, 'total', 'total excl. publish')
    stage_rows = tuple(STAGE_ROW.format(stage) for stage in PIPELINE_STAGES)
    fault_order = ('decode image', 'pipeline', *messages, 'total')
    return ({k: statistics.median(wall[k]) * 1e3 for k in order + stage_rows},
            {k: statistics.median(cpu[k]) * 1e3 for k in order},
            {k: statistics.median(faults[k]) for k in fault_order})


def _run_in_worker(fn, *args):
    """Run fn in a separate thread, as depth_node runs its pipeline in a worker thread."""
    result = {}

    def target():
        try:
            result['value'] = fn(*args)
        except BaseException as err:  # re-raised in the caller
            result['error'] = err

    thread = threading.Thread(target=target, name='bench_worker')
    thread.start()
    thread.join()
    if 'error' in result:
        raise result['error']
    return result['value']


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f'{one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs'


def _table(title: str, columns: dict[str, dict[str, float]], digits: int = 2) -> None:
    print(f'\n{title}')
    print('| stage | ' + ' | '.join(columns) + ' |')
    print('|---|' + '---:|' * len(columns))
    for stage in next(iter(columns.values())):
        bold = '**' if stage.startswith('total') else ''
        print(f'| {bold}{stage}{bold} | '
              + ' | '.join(f'{r[stage]:.{digits}f}' for r in columns.values()) + ' |')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=40)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--strides', type=int, nargs='+', default=[1, 2], help='cloud.stride')
    parser.add_argument('--sizes', nargs='+', default=[f'{w}x{h}' for w, h in SIZES])
    parser.add_argument('--threads', type=int, default=0,
                        help="torch CPU threads (0: torch's default, as depth_node)")
    parser.add_argument('--subscriber', action='store_true',
                        help='one subscriber process on all four topics')
    parser.add_argument('--no-profile', action='store_true',
                        help='with --subscriber: no Fast DDS large-message profile')
    parser.add_argument('--cv-threads', type=int, default=None,
                        help='cv2.setNumThreads (default: leave OpenCV\'s default)')
    parser.add_argument('--main-thread', action='store_true',
                        help='run in the main thread instead of a worker thread')
    parser.add_argument('--no-overlap', action='store_true',
                        help='colourise after the cloud in one thread (DepthPipeline overlap=False)')
    parser.add_argument('--no-retain-heap', action='store_true',
                        help="plain glibc malloc (depth_node's retain_heap: false)")
    args = parser.parse_args()
    retained = False if args.no_retain_heap else retain_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.cv_threads is not None:
        cv2.setNumThreads(args.cv_threads)
    sizes = [tuple(int(v) for v in s.split('x')) for s in args.sizes]
    load_before = _load()
    rclpy.init()
    node = rclpy.create_node('ppd_bench_node_overhead')
    sub = None
    if args.subscriber:
        prefix = node.get_namespace().rstrip('/') + '/bench/'
        sub = subprocess.Popen([sys.executable, '-c', SUBSCRIBER, prefix])
    wall, cpu, faults = {}, {}, {}
    try:
        for w, h in sizes:
            for stride in args.strides:
                run = (bench_size if args.main_thread
                       else lambda *a: _run_in_worker(bench_size, *a))
                key = f'{w}x{h} s{stride}'
                wall[key], cpu[key], faults[key] = run(node, w, h, stride, args.frames, args.warmup,
                                                       1 if sub else 0, not args.no_overlap)
    finally:
        if sub is not None:
            sub.terminate()
            sub.wait(timeout=10)
        node.destroy_node()
        rclpy.try_shutdown()
    print('depth_node per-frame overhead (everything but the network forward), median ms over '
          f'{args.frames} frames; cloud xyz+rgb (point_step 32), stride sN')
    print(f'load average before: {load_before}; after: {_load()}')
    if sub is None:
        subscribers = 'none'
    else:
        subscribers = '1 (other process, ' + ('default Fast DDS transports)' if args.no_profile
                                              else 'Fast DDS large-message profile)')
    print(f"subscribers: {subscribers}; thread: {'main' if args.main_thread else 'worker'}; "
          f'torch threads {torch.get_num_threads()}; OpenCV threads {cv2.getNumThreads()}; '
          f'numpy {np.__version__}, OpenCV {cv2.__version__}; retain_heap {retained}')
    _table('wall-clock ms (median)', wall)
    _table('process CPU ms (median; all threads of the process)', cpu)
    _table('minor page faults (median; 4 KiB pages first touched, ~1-2 us each here)', faults, 0)


if __name__ == '__main__':
    main()
