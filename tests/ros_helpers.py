"""Cross-process helpers for depth_node tests.

As a module: start depth_node in its own process (NodeProcess), run a probe process
(run_probe), make tiny random-weight checkpoints. As a script, it is that probe: it
publishes camera frames (good and deliberately bad ones, as a plan lists), optionally sets
node parameters, and records what the node publishes into a JSON file:

    python tests/ros_helpers.py plan.json result.json

Every process uses the Fast DDS large-message profile (config/fastdds_large_messages.xml)
and inherits the per-session ROS_DOMAIN_ID that conftest.py sets.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FASTDDS_PROFILE = REPO_ROOT / 'config' / 'fastdds_large_messages.xml'
PARAMS_FILE = REPO_ROOT / 'config' / 'depth.yaml'
NAMESPACE = '/cam'
NODE_FQN = NAMESPACE + '/depth_node'
IMAGE_TOPIC = '/camera/color/image_raw'
INFO_TOPIC = '/camera/color/camera_info'

# intrinsics of the probe's 640 x 480 camera (P with a nonzero Tx, like a stereo right camera)
PROBE_K = [525.0, 0.0, 319.5, 0.0, 530.0, 239.5, 0.0, 0.0, 1.0]
PROBE_P = [525.0, 0.0, 319.5, -26.25, 0.0, 530.0, 239.5, 0.0, 0.0, 0.0, 1.0, 0.0]


# ----------------------------------------------------------------------------- test side

def ros_env(profile: bool = True, **extra: str) -> dict[str, str]:
    """Environment of a test's ROS process; `profile=False`: no Fast DDS profile at all."""
    env = dict(os.environ)
    env.update(PYTHONUNBUFFERED='1', RCUTILS_COLORIZED_OUTPUT='0')
    for name in ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE'):
        if profile:
            env[name] = str(FASTDDS_PROFILE)
        else:
            env.pop(name, None)
    env.pop('ROS_PYTHON_CHECK_FIELDS', None)
    env.update(extra)
    return env


def make_tiny_checkpoint(path: Path, **config_overrides) -> Path:
    """Random-weight 'tiny' model saved in the ppd_ros checkpoint format."""
    import torch

    from ppd_ros.model import build_model, get_config, save_checkpoint
    torch.manual_seed(0)
    save_checkpoint(build_model(get_config('tiny', **config_overrides)), path)
    return path


@pytest.fixture(scope='session')
def tiny_checkpoint(tmp_path_factory) -> Path:
    """Session-wide random tiny checkpoint; import this fixture into a test module to use it."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp('ppd_model') / 'tiny_random.safetensors')


class NodeProcess:
    """depth_node in a subprocess (python -m ppd_ros.node.depth_node --ros-args ...)."""

    def __init__(self, log_path: Path, params: dict | None = None, remaps: dict | None = None,
                 params_file: Path | None = PARAMS_FILE, namespace: str = NAMESPACE,
                 profile: bool = True):
        args = [sys.executable, '-m', 'ppd_ros.node.depth_node', '--ros-args',
                '-r', f'__ns:={namespace}']
        if params_file is not None:
            args += ['--params-file', str(params_file)]
        remaps = {'image': IMAGE_TOPIC, 'camera_info': INFO_TOPIC,
                  'image/compressed': IMAGE_TOPIC + '/compressed', **(remaps or {})}
        for src, dst in remaps.items():
            args += ['-r', f'{src}:={dst}']
        for name, value in (params or {}).items():
            args += ['-p', f'{name}:={_param_text(value)}']
        self.log_path = log_path
        self._log = open(log_path, 'w')
        self.proc = subprocess.Popen(args, cwd=REPO_ROOT, env=ros_env(profile), stdout=self._log,
                                     stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if 'ready:' in self.output():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f'depth_node exited early:\n{self.output()}')
            time.sleep(0.1)
        raise AssertionError(f'depth_node not ready after {timeout} s:\n{self.output()}')

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors='replace')

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def __enter__(self) -> NodeProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _param_text(value) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def run_probe(plan: dict, workdir: Path, timeout: float = 120.0, profile: bool = True) -> dict:
    """Run the probe process with `plan`; returns its recorded result."""
    plan_path, result_path = workdir / 'probe_plan.json', workdir / 'probe_result.json'
    plan_path.write_text(json.dumps(plan))
    proc = subprocess.run([sys.executable, __file__, str(plan_path), str(result_path)],
                          cwd=REPO_ROOT, env=ros_env(profile), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f'probe failed:\n{proc.stdout}\n{proc.stderr}'
    return json.loads(result_path.read_text())


def by_stamp(messages: list[dict]) -> dict[int, dict]:
    return {m['stamp']: m for m in messages}


def last_diagnostics(result: dict) -> dict:
    statuses = result['topics'].get('/diagnostics', [])
    assert statuses, 'no ppd_ros diagnostics received'
    return statuses[-1]


# ---------------------------------------------------------------------------- probe side

def _probe_main(plan_path: str, result_path: str) -> int:
    import array
    import struct
    import threading

    import cv2
    import numpy as np
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rcl_interfaces.srv import SetParameters
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

    plan = json.loads(Path(plan_path).read_text())
    width, height = plan.get('width', 640), plan.get('height', 480)
    frame_id = plan.get('frame_id', 'camera_color_optical_frame')
    rate_hz = plan.get('rate_hz', 10.0)
    compressed = plan.get('transport', 'raw') == 'compressed'
    record = plan.get('record', [])

    rclpy.init()
    node = rclpy.create_node('ppd_test_probe')
    lock = threading.Lock()
    recorded: dict[str, list] = {topic: [] for topic in record}
    depth_arrays: dict[int, np.ndarray] = {}  # stamp -> metres (or relative), for clouds
    keep_depth = any(topic.endswith('points') for topic in record)
    # plan['save_depth']: topics whose float depth arrays go to <result>.npz as 'i/stamp'
    save_depth = plan.get('save_depth', [])
    saved_depth: dict[str, np.ndarray] = {}
    cloud_payloads: dict[int, tuple] = {}

    def now_ns() -> int:
        return time.time_ns()

    def stamp_ns(header) -> int:
        return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec

    def cdr_stamp_ns(raw: bytes) -> int:
        """Header stamp of a serialized message: after the 4-byte CDR encapsulation header,
        int32 sec and uint32 nanosec (little endian)."""
        sec, nanosec = struct.unpack_from('<iI', raw, 4)
        return sec * 1_000_000_000 + nanosec

    def on_image(topic):
        def cb(msg: Image):
            entry = {'recv': now_ns(), 'stamp': stamp_ns(msg.header),
                     'frame_id': msg.header.frame_id, 'width': msg.width, 'height': msg.height,
                     'encoding': msg.encoding, 'step': msg.step, 'bytes': len(msg.data)}
            if msg.encoding in ('32FC1', '16UC1'):
                if msg.encoding == '32FC1':
                    d = np.frombuffer(msg.data, '<f4').astype(np.float32)
                else:
                    mm = np.frombuffer(msg.data, '<u2')
                    d = np.where(mm == 0, np.nan, mm * 1e-3).astype(np.float32)
                finite = d[np.isfinite(d)]
                entry.update(finite_fraction=float(finite.size / max(d.size, 1)),
                             min=float(finite.min()) if finite.size else None,
                             max=float(finite.max()) if finite.size else None,
                             percentiles_2_98=[float(q) for q in np.percentile(finite, [2, 98])]
                             if finite.size else None)
                if keep_depth and msg.width * msg.height == d.size:
                    depth_arrays[entry['stamp']] = d.reshape(msg.height, msg.width)
                if topic in save_depth and msg.width * msg.height == d.size:
                    saved_depth[f"{save_depth.index(topic)}/{entry['stamp']}"] = d.reshape(
                        msg.height, msg.width)
            with lock:
                recorded[topic].append(entry)
        return cb

    def on_info(topic):
        def cb(msg: CameraInfo):
            with lock:
                recorded[topic].append({'recv': now_ns(), 'stamp': stamp_ns(msg.header),
                                        'frame_id': msg.header.frame_id, 'width': msg.width,
                                        'height': msg.height, 'k': list(msg.k),
                                        'p': list(msg.p), 'd': list(msg.d),
                                        'distortion_model': msg.distortion_model})
        return cb

    def on_points(topic):
        def cb(msg: PointCloud2):
            cloud_payloads[stamp_ns(msg.header)] = (
                {f.name: (f.offset, f.datatype) for f in msg.fields}, msg.point_step,
                msg.height, msg.width, bytes(msg.data))
            with lock:
                recorded[topic].append({'recv': now_ns(), 'stamp': stamp_ns(msg.header),
                                        'frame_id': msg.header.frame_id, 'width': msg.width,
                                        'height': msg.height, 'point_step': msg.point_step,
                                        'row_step': msg.row_step, 'is_dense': msg.is_dense,
                                        'fields': [[f.name, f.offset, f.datatype, f.count]
                                                   for f in msg.fields],
                                        'bytes': len(msg.data)})
        return cb

    consumers: dict[str, dict] = {}

    def camera_consumer(image_topic: str) -> None:
        """Subscribe like depth_image_proc: default (reliable) QoS, and the CameraInfo topic
        derived from the image topic as image_transport derives it."""
        from ppd_ros.ros_conventions.image_transport import camera_info_topic
        entry = consumers[image_topic] = {'info_topic': camera_info_topic(image_topic),
                                          'image_stamps': [], 'info_stamps': []}
        subs.append(node.create_subscription(  # raw CDR: the stamp is all it needs
            Image, image_topic, lambda raw: entry['image_stamps'].append(cdr_stamp_ns(raw)), 10,
            raw=True))
        subs.append(node.create_subscription(
            CameraInfo, entry['info_topic'],
            lambda m: entry['info_stamps'].append(stamp_ns(m.header)), 10))

    def advertised_topics(settle_s: float = 0.5, timeout: float = 10.0) -> list[str]:
        """The node's published topics, once the graph has stopped changing for settle_s."""
        namespace, _, name = plan.get('node', NODE_FQN).rpartition('/')
        previous, deadline = None, time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(settle_s)
            current = sorted(topic for topic, _ in node.get_publisher_names_and_types_by_node(
                name, namespace or '/'))
            if current == previous:
                break
            previous = current
        return current

    def on_diagnostics(msg: DiagnosticArray):
        for status in msg.status:
            if status.name.startswith('ppd_ros'):
                with lock:
                    recorded['/diagnostics'].append({
                        'recv': now_ns(), 'name': status.name, 'level': status.level[0]
                        if isinstance(status.level, bytes) else int(status.level),
                        'message': status.message,
                        'values': {kv.key: kv.value for kv in status.values}})

    big_qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
    # 'default': what a plain rclpy publisher / subscriber gets with a history depth of 10
    qos_by_name = {'best_effort': big_qos, 'default': 10}
    record_qos = qos_by_name[plan.get('record_qos', 'best_effort')]
    publisher_qos = qos_by_name[plan.get('publisher_qos', 'best_effort')]
    subs = []
    for topic in record:
        if topic == '/diagnostics':
            subs.append(node.create_subscription(DiagnosticArray, topic, on_diagnostics, 10))
        elif topic.endswith('camera_info'):
            subs.append(node.create_subscription(CameraInfo, topic, on_info(topic), record_qos))
        elif topic.endswith('points'):
            subs.append(node.create_subscription(PointCloud2, topic, on_points(topic),
                                                 record_qos))
        else:
            subs.append(node.create_subscription(Image, topic, on_image(topic), record_qos))

    for topic in plan.get('camera_consumers', []):
        camera_consumer(topic)

    image_topic = plan.get('image_topic', IMAGE_TOPIC)
    if compressed:
        image_pub = node.create_publisher(CompressedImage, image_topic + '/compressed',
                                          publisher_qos)
    else:
        image_pub = node.create_publisher(Image, image_topic, publisher_qos)
    info_pub = node.create_publisher(CameraInfo, plan.get('info_topic', INFO_TOPIC),
                                     publisher_qos)
    param_client = node.create_client(SetParameters,
                                      plan.get('node', NODE_FQN) + '/set_parameters')

    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()

    if 'scene_seed' in plan:  # a procedural room (a trained model finds real depth in it)
        from ppd_ros.synthetic import generate_frame
        rgb = generate_frame(plan['scene_seed'], width, height).rgb
    else:  # a smooth colour ramp with a few shapes: the rgb8 test frame
        v, u = np.mgrid[0:height, 0:width]
        rgb = np.stack([(u * 255 // max(width - 1, 1)), (v * 255 // max(height - 1, 1)),
                        ((u + v) % 256)], axis=-1).astype(np.uint8)
        rgb[height // 4: height // 2, width // 4: width // 2] = (200, 30, 30)

    def payload(arr) -> array.array:
        out = array.array('B')
        out.frombytes(memoryview(np.ascontiguousarray(arr)).cast('B'))
        return out

    good_data = payload(rgb)
    small = np.ascontiguousarray(rgb[::2, ::2])
    small_data = payload(small)
    jpeg = payload(cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1])
    rng = np.random.default_rng(0)
    garbage = payload(rng.integers(0, 256, 5000, dtype=np.uint8))

    def header_for(stamp: int):
        from std_msgs.msg import Header
        h = Header(frame_id=frame_id)
        h.stamp.sec, h.stamp.nanosec = divmod(stamp, 1_000_000_000)
        return h

    def camera_info(header, bad_k: bool) -> CameraInfo:
        msg = CameraInfo(header=header, width=width, height=height, distortion_model='plumb_bob')
        msg.d = [0.01, -0.02, 0.0, 0.0, 0.0]
        msg.k = [float('nan')] + PROBE_K[1:] if bad_k else list(PROBE_K)
        msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        msg.p = list(PROBE_P)
        return msg

    def image_for(kind: str, header):
        if compressed:
            msg = CompressedImage(header=header, format='jpeg')
            msg.data = garbage if kind == 'corrupt' else jpeg
            return msg
        msg = Image(header=header, height=height, width=width, encoding='rgb8', step=width * 3)
        if kind == 'bad_encoding':
            msg.encoding = 'nv21'
            msg.step = width * 2
        elif kind == 'zero_size':
            msg.height = msg.width = msg.step = 0
            return msg
        elif kind == 'size_mismatch':
            msg.height, msg.width, msg.step = small.shape[0], small.shape[1], small.shape[1] * 3
            msg.data = small_data
            return msg
        msg.data = good_data
        return msg

    def wait_for(condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f'timed out waiting for {what}')
            time.sleep(0.05)

    def check_clouds() -> None:
        """Compare each cloud with its depth image and camera_info, unprojected here."""
        infos = {m['stamp']: m for t, msgs in recorded.items() if t.endswith('camera_info')
                 for m in msgs}
        for topic, msgs in recorded.items():
            if not topic.endswith('points'):
                continue
            for entry in msgs:
                fields, step, h, w, data = cloud_payloads[entry['stamp']]
                buf = np.frombuffer(data, np.uint8)
                xyz = np.stack([np.ndarray((h, w), '<f4', buf, fields[n][0], (w * step, step))
                                for n in 'xyz'], axis=-1)
                entry['finite_fraction'] = float(np.isfinite(xyz[..., 2]).mean())
                depth, info = depth_arrays.get(entry['stamp']), infos.get(entry['stamp'])
                if depth is None or info is None:
                    continue
                stride = -(-depth.shape[1] // w)
                z = depth[::stride, ::stride]
                fx, cx, fy, cy = info['p'][0], info['p'][2], info['p'][5], info['p'][6]
                v, u = np.mgrid[0:depth.shape[0]:stride, 0:depth.shape[1]:stride]
                expected = np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], axis=-1)
                entry['stride'] = stride
                entry['nan_pattern_matches'] = bool(np.array_equal(np.isnan(expected),
                                                                   np.isnan(xyz)))
                entry['xyz_max_error'] = float(np.nanmax(np.abs(xyz - expected)))
                if 'rgb' in fields and depth.shape == rgb.shape[:2]:
                    packed = np.ndarray((h, w), '<u4', buf, fields['rgb'][0], (w * step, step))
                    colours = np.stack([(packed >> s) & 0xFF for s in (16, 8, 0)], axis=-1)
                    entry['rgb_matches_input'] = bool(np.array_equal(
                        colours, rgb[::stride, ::stride]))

    result = {'published': [], 'parameter_results': [], 'topics': recorded, 'graph': {},
              'camera_consumers': consumers, 'marks': {}, 'matched_after_s': {}}
    try:
        wait_for(lambda: image_pub.get_subscription_count() > 0, 60.0, 'the node to subscribe')
        for topic in plan.get('wait_for_outputs', record):
            if topic != '/diagnostics':
                wait_for(lambda: node.count_publishers(topic) > 0, 30.0, f'a publisher of {topic}')
        time.sleep(plan.get('discovery_settle_s', 1.0))  # let the node see our subscriptions
        period = 1.0 / rate_hz
        next_time = time.monotonic()
        for phase in plan['phases']:
            if 'set_parameters' in phase:
                wait_for(lambda: param_client.service_is_ready(), 20.0, 'set_parameters')
                request = SetParameters.Request(parameters=[
                    Parameter(name, value=value).to_parameter_msg()
                    for name, value in phase['set_parameters'].items()])
                future = param_client.call_async(request)
                wait_for(future.done, 20.0, 'set_parameters reply')
                result['parameter_results'].append(
                    [[r.successful, r.reason] for r in future.result().results])
                continue
            if 'graph' in phase:
                result['graph'][phase['graph']] = advertised_topics()
                next_time = time.monotonic()
                continue
            if 'image_publisher' in phase:  # a new camera publisher with other QoS
                node.destroy_publisher(image_pub)
                image_pub = node.create_publisher(Image, image_topic,
                                                  qos_by_name[phase['image_publisher']])
                start = time.monotonic()
                wait_for(lambda: image_pub.get_subscription_count() > 0, 20.0,
                         'the node to match the new publisher')
                result['matched_after_s'][phase['image_publisher']] = time.monotonic() - start
                next_time = time.monotonic()
                continue
            if 'subscribe' in phase:  # record more topics from now on (Image topics)
                for topic in phase['subscribe']:
                    with lock:
                        recorded.setdefault(topic, [])
                    sub = node.create_subscription(Image, topic, on_image(topic), record_qos)
                    subs.append(sub)
                    wait_for(lambda: sub.get_publisher_count() > 0, 20.0, f'a publisher of {topic}')
                time.sleep(plan.get('discovery_settle_s', 1.0))  # the node sees us too
                next_time = time.monotonic()
                continue
            if 'mark' in phase:  # the node's counters once its next diagnostics are out
                time.sleep(plan.get('mark_wait_s', 1.5))
                with lock:
                    result['marks'][phase['mark']] = recorded['/diagnostics'][-1]['values']
                next_time = time.monotonic()
                continue
            if 'sleep' in phase:
                time.sleep(phase['sleep'])
                next_time = time.monotonic()
                continue
            kind = phase['kind']
            for _ in range(phase['count']):
                stamp = now_ns()
                header = header_for(stamp)
                if kind != 'no_info':
                    info_pub.publish(camera_info(header, kind == 'nan_k'))
                image_pub.publish(image_for(kind, header))
                result['published'].append({'stamp': stamp, 'kind': kind})
                next_time += period
                time.sleep(max(0.0, next_time - time.monotonic()))
        time.sleep(plan.get('settle_s', 2.0))
    finally:
        executor.shutdown(timeout_sec=2.0)
        spinner.join(timeout=5.0)
        check_clouds()
        Path(result_path).write_text(json.dumps(result))
        if save_depth:
            np.savez(Path(result_path).with_suffix('.npz'), **saved_depth)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(_probe_main(sys.argv[1], sys.argv[2]))
