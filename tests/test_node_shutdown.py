"""Shutting down in the middle of a long inference: the prediction stops at its next diffusion
step and the node exits 0, without the abort of a thread torn down inside torch.

The slow inference is real: the shipped tiny model at a 512 x 384 network resolution with 64
diffusion steps (tens of seconds on this CPU); no double.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from ros_helpers import IMAGE_TOPIC, INFO_TOPIC, NodeProcess

SLOW = {'network_area': 512 * 384, 'steps': 64, 'num_threads': 1, 'lazy': False,
        'colorize': False}


def test_interrupt_stops_a_running_prediction_between_steps():
    from ppd_ros.model import load_predictor
    from ppd_ros.model.predictor import PredictionInterrupted
    predictor = load_predictor('models/tiny_ppd.safetensors', device='cpu',
                               network_area=256 * 192)
    rgb = np.zeros((48, 64, 3), np.uint8)
    outcome = {}

    def run():
        start = time.monotonic()
        try:
            predictor.predict(rgb, steps=64, seed=0)
            outcome['result'] = 'finished'
        except PredictionInterrupted as error:
            outcome['result'] = str(error)
        outcome['seconds'] = time.monotonic() - start

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(0.5)
    predictor.interrupt()
    worker.join(30.0)
    assert outcome['result'].startswith('prediction interrupted before step'), outcome
    assert predictor.predict(rgb, steps=1, seed=0).depth.shape == (48, 64)  # later calls run


def _publish_one_frame(width=640, height=480) -> float:
    """One rgb8 frame + CameraInfo from this process, once the node subscribes; its time."""
    import rclpy
    from sensor_msgs.msg import CameraInfo, Image

    from in_process_harness import header, payload
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('shutdown_test_camera', context=context)
    try:
        image_pub = node.create_publisher(Image, IMAGE_TOPIC, 1)
        info_pub = node.create_publisher(CameraInfo, INFO_TOPIC, 1)
        deadline = time.monotonic() + 60
        while image_pub.get_subscription_count() == 0 or info_pub.get_subscription_count() == 0:
            assert time.monotonic() < deadline, 'the node never subscribed'
            time.sleep(0.05)
        time.sleep(0.5)
        stamp = time.time_ns()
        info = CameraInfo(header=header(stamp), width=width, height=height)
        info.k = [500.0, 0, width / 2, 0, 500.0, height / 2, 0, 0, 1]
        info.p = [500.0, 0, width / 2, 0, 0, 500.0, height / 2, 0, 0, 0, 1, 0]
        info_pub.publish(info)
        image = Image(header=header(stamp), height=height, width=width, encoding='rgb8',
                      step=3 * width, check_fields=True)
        image.data = payload(np.full((height, width, 3), 100, np.uint8))
        image_pub.publish(image)
        sent = time.monotonic()
        time.sleep(0.3)  # let the middleware deliver before this participant goes away
        return sent
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


@pytest.mark.parametrize('signal_name', ['SIGINT'])
def test_sigint_during_a_long_inference_exits_zero_without_abort(tmp_path, signal_name):
    import signal
    node = NodeProcess(tmp_path / 'node.log', params=SLOW)
    try:
        node.wait_ready()
        sent = _publish_one_frame()
        time.sleep(max(0.0, sent + 3.0 - time.monotonic()))  # 3 s into the inference
        signalled = time.monotonic()
        node.proc.send_signal(getattr(signal, signal_name))
        returncode = node.proc.wait(timeout=30)
        exit_s = time.monotonic() - signalled
    finally:
        node.stop()
    output = node.output()
    assert returncode == 0, output
    assert 'terminate called' not in output and 'Traceback' not in output, output
    assert exit_s < 10.0, exit_s
    print(f'\n{signal_name} 3 s into a 64-step inference at 512x384: exit status {returncode} '
          f'after {exit_s:.2f} s')
