"""Soak test: depth_node in its own process, fed for a long time; memory and latency per minute.

This process publishes rgb8 camera frames and CameraInfo at --rate Hz (a few synthetic rooms
in turn, stamped like a camera: with their scheduled capture time on the wall clock) and subscribes to the node's `points` (the cloud
subscriber) and /diagnostics. Every minute it prints one row: the node's resident memory
(VmRSS from /proc), the CPU seconds the node used, frames published, clouds received, and
the latency of those clouds (receive wall time - header stamp) as p50 / p99 / max. At the end
it compares the RSS after the warm-up minutes with the final RSS (the node must not grow) and
prints the node's own counters from /diagnostics (frames dropped, failed, and the input
frames it estimates lost upstream).

The node keeps only the newest frame, so a model slower than the camera drops frames rather
than queueing them: latency stays one frame's processing time plus transport. The machine may
be shared: the load average is printed on every row; run it nice'd.

    nice -n 10 python bench/soak.py --minutes 30 --rate 30 --width 640 --height 480 \
        --mode range [--json out/soak.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ppd_ros.demo.ros_isolation import isolate_ros  # noqa: E402
from ppd_ros.evaluation.dds_environment import large_message_env  # noqa: E402

isolate_ros()
os.environ.update(large_message_env(os.environ))  # before rclpy creates its participant

import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from ppd_ros.evaluation.node_process import DepthNodeProcess, depth_node_command  # noqa: E402
from ppd_ros.synthetic import generate_frame  # noqa: E402

NAMESPACE = '/soak'
PAGE = os.sysconf('SC_PAGE_SIZE')
TICKS = os.sysconf('SC_CLK_TCK')


def node_rss_mb(pid: int) -> float:
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
    return float('nan')


def node_cpu_s(pid: int) -> float:
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float('nan')


class Traffic:
    """Publisher of frames, subscriber of clouds and diagnostics (one rclpy node)."""

    def __init__(self, width: int, height: int):
        self.node = rclpy.create_node('ppd_soak')
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.image_pub = self.node.create_publisher(Image, f'{NAMESPACE}/image', qos)
        self.info_pub = self.node.create_publisher(CameraInfo, f'{NAMESPACE}/camera_info', qos)
        self.node.create_subscription(PointCloud2, f'{NAMESPACE}/points', self._on_cloud, qos)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10)
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.clouds = 0
        self.published = 0
        self.diagnostics: dict[str, str] = {}
        self.frames = [generate_frame(seed, width, height) for seed in range(4)]
        self.payloads = [np.ascontiguousarray(f.rgb).tobytes() for f in self.frames]
        self.width, self.height = width, height

    def _on_cloud(self, msg: PointCloud2) -> None:
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        with self.lock:
            self.latencies.append(time.time() - stamp)
            self.clouds += 1

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith('ppd_ros'):
                with self.lock:
                    self.diagnostics = {kv.key: kv.value for kv in status.values}

    def publish(self, index: int, stamp_ns: int) -> None:
        frame = self.frames[index % len(self.frames)]
        header = Header(frame_id='camera_color_optical_frame')
        header.stamp.sec, header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        intr = frame.intrinsics
        info = CameraInfo(header=header, width=self.width, height=self.height,
                          distortion_model='plumb_bob')
        info.k = [intr.fx, 0.0, intr.cx, 0.0, intr.fy, intr.cy, 0.0, 0.0, 1.0]
        info.p = [intr.fx, 0.0, intr.cx, 0.0, 0.0, intr.fy, intr.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.d = [0.0] * 5
        image = Image(header=header, height=self.height, width=self.width, encoding='rgb8',
                      step=3 * self.width)
        image.data = self.payloads[index % len(self.payloads)]
        self.info_pub.publish(info)
        self.image_pub.publish(image)
        with self.lock:
            self.published += 1

    def take_minute(self) -> tuple[int, int, list[float]]:
        with self.lock:
            out = (self.published, self.clouds, self.latencies)
            self.published, self.clouds, self.latencies = 0, 0, []
        return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--minutes', type=float, default=30.0)
    parser.add_argument('--rate', type=float, default=30.0, help='camera rate, Hz')
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--mode', default='range', choices=('relative', 'range'))
    parser.add_argument('--warmup-minutes', type=int, default=2,
                        help='RSS at the end of this minute is the reference for growth')
    parser.add_argument('--checkpoint', default='models/tiny_ppd.safetensors')
    parser.add_argument('--num-threads', type=int, default=0)
    parser.add_argument('--param', action='append', default=[], metavar='NAME:=VALUE')
    parser.add_argument('--json', type=Path, help='write the rows and summary here')
    parser.add_argument('--log', type=Path, default=Path('out/soak_node.log'))
    args = parser.parse_args(argv)

    args.log.parent.mkdir(parents=True, exist_ok=True)
    params = {'checkpoint': args.checkpoint, 'depth.mode': args.mode,
              'num_threads': args.num_threads, 'qos.reliability': 'best_effort'}
    command = depth_node_command(NAMESPACE, {}, params, args.param)
    node = DepthNodeProcess(command, args.log)
    rclpy.init()
    traffic = Traffic(args.width, args.height)
    executor = SingleThreadedExecutor()
    executor.add_node(traffic.node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    rows = []
    try:
        deadline = time.monotonic() + 120
        while traffic.image_pub.get_subscription_count() == 0 or \
                traffic.node.count_publishers(f'{NAMESPACE}/points') == 0:
            if not node.alive() or time.monotonic() > deadline:
                raise SystemExit(f'soak: the node did not come up:\n{node.log_tail()}')
            time.sleep(0.1)
        time.sleep(1.0)
        print(f'soak: depth_node pid {node.proc.pid}, {args.width}x{args.height} rgb8 at '
              f'{args.rate:g} Hz, depth.mode {args.mode}, {args.minutes:g} min; '
              f"ROS_DOMAIN_ID {os.environ['ROS_DOMAIN_ID']}", flush=True)
        print('| minute | node RSS (MB) | node CPU (s) | published | clouds | latency p50 (ms) '
              '| p99 (ms) | max (ms) | load (1 min) |', flush=True)
        print('|---|---|---|---|---|---|---|---|---|', flush=True)
        period = 1.0 / args.rate
        start, wall_start_ns = time.monotonic(), time.time_ns()
        next_frame, next_row, index = start, start + 60.0, 0
        cpu_before = node_cpu_s(node.proc.pid)
        end = start + args.minutes * 60.0 + 0.5  # the last minute's row included
        while time.monotonic() < end:
            if not node.alive():
                raise SystemExit(f'soak: the node exited:\n{node.log_tail()}')
            now = time.monotonic()
            if now >= next_frame:
                traffic.publish(index, wall_start_ns + round(index * period * 1e9))
                index += 1
                next_frame = start + index * period
                if next_frame < now - 1.0:  # this process fell behind: skip, do not burst
                    index = int((now - start) / period) + 1
                    next_frame = start + index * period
            if now >= next_row:
                published, clouds, latencies = traffic.take_minute()
                cpu = node_cpu_s(node.proc.pid)
                row = {'minute': len(rows) + 1, 'rss_mb': node_rss_mb(node.proc.pid),
                       'cpu_s': cpu - cpu_before, 'published': published, 'clouds': clouds,
                       'p50_ms': percentile(latencies, 50) * 1e3,
                       'p99_ms': percentile(latencies, 99) * 1e3,
                       'max_ms': max(latencies, default=float('nan')) * 1e3,
                       'load': os.getloadavg()[0]}
                cpu_before = cpu
                rows.append(row)
                print(f"| {row['minute']} | {row['rss_mb']:.1f} | {row['cpu_s']:.1f} | "
                      f"{published} | {clouds} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | "
                      f"{row['max_ms']:.1f} | {row['load']:.2f} |", flush=True)
                next_row += 60.0
            time.sleep(max(0.0, min(next_frame, next_row) - time.monotonic()))
    finally:
        time.sleep(1.5)  # a last /diagnostics
        with traffic.lock:
            diagnostics = dict(traffic.diagnostics)
        returncode = node.stop()
        executor.shutdown(timeout_sec=2.0)
        spinner.join(timeout=5.0)
        traffic.node.destroy_node()
        rclpy.try_shutdown()
    summary = {'node_exit_status': returncode, 'diagnostics': diagnostics}
    if len(rows) > args.warmup_minutes:
        warm, last = rows[args.warmup_minutes - 1]['rss_mb'], rows[-1]['rss_mb']
        summary.update(rss_after_warmup_mb=warm, rss_end_mb=last,
                       rss_change_percent=100.0 * (last - warm) / warm)
        print(f'soak: RSS after {args.warmup_minutes} warm-up minute(s) {warm:.1f} MB, at the end '
              f'{last:.1f} MB ({summary["rss_change_percent"]:+.2f} %); latency p50 over the '
              f'minutes {statistics.median(r["p50_ms"] for r in rows):.1f} ms')
    keys = ('frames received', 'frames processed', 'frames dropped', 'frames failed',
            'input frames missing (estimated from stamp gaps)')
    print('soak: node counters: ' + ', '.join(f'{k} {diagnostics.get(k, "?")}' for k in keys)
          + f'; node exit status {returncode}')
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({'settings': vars(args) | {'json': str(args.json),
                                                                  'log': str(args.log)},
                                         'rows': rows, 'summary': summary}, indent=1))
    return 0 if returncode == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
