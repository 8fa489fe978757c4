"""depth_node as a managed (lifecycle) node, driven through its lifecycle services.

configure loads the model (a random tiny checkpoint; a missing one makes configure fail),
activate subscribes and publishes, deactivate stops both without unloading the model,
shutdown releases everything. Frames are sent in every state; outputs must answer exactly
the frames sent while active.
"""
import time

import numpy as np
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.parameter import Parameter

from in_process_harness import NS, Harness
from ros_helpers import tiny_checkpoint  # noqa: F401 (fixture)

NAMESPACE = '/managed'
T0 = 1_700_000_000 * NS
K = np.array([[60.0, 0, 31.5], [0, 60.0, 23.5], [0, 0, 1]])
RGB = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
OUTPUTS = ('depth/relative', 'depth/colored')


def managed_node(checkpoint):
    def make(context):
        from ppd_ros.node.depth_node import ManagedDepthNode
        params = {'checkpoint': str(checkpoint), 'lazy': False, 'steps': 1, 'num_threads': 1,
                  'diagnostics_period': 0.2}
        return ManagedDepthNode(context=context, namespace=NAMESPACE, parameter_overrides=[
            Parameter(k, value=v) for k, v in params.items()])
    return make


class Lifecycle:
    """Client of the node's lifecycle services, as `ros2 lifecycle set` is."""

    def __init__(self, harness):
        self.harness = harness
        node = f'{NAMESPACE}/depth_node'
        self.change = harness.probe.create_client(ChangeState, f'{node}/change_state')
        self.get = harness.probe.create_client(GetState, f'{node}/get_state')
        assert self.change.wait_for_service(10.0) and self.get.wait_for_service(10.0)

    def _call(self, client, request):
        future = client.call_async(request)
        self.harness.wait_until(future.done, 30.0, 'a lifecycle service reply')
        return future.result()

    def set(self, label: str) -> bool:
        return self._call(self.change, ChangeState.Request(
            transition=Transition(label=label))).success

    def state(self) -> str:
        return self._call(self.get, GetState.Request()).current_state.label


def send(harness, stamps, first, count, wait_for_outputs):
    for k in range(count):
        stamp = T0 + (first + k) * NS // 10
        harness.publish_frame(stamp, RGB, K)
        stamps.append(stamp)
        if wait_for_outputs:
            harness.wait_until(lambda: all(stamp in harness.stamps(t) for t in OUTPUTS), 20.0,
                               f'the outputs of frame {first + k}')
        else:
            time.sleep(0.15)
    if not wait_for_outputs:
        time.sleep(0.5)  # time enough for outputs that should not come


def test_configure_with_missing_weights_fails_and_stays_unconfigured(tmp_path, capfd):
    harness = Harness(managed_node(tmp_path / 'missing.safetensors'), NAMESPACE)
    try:
        lifecycle = Lifecycle(harness)
        assert not lifecycle.set('configure')
        assert lifecycle.state() == 'unconfigured'
    finally:
        harness.close()
    assert 'configure failed' in capfd.readouterr().err


def test_outputs_appear_only_while_active(tiny_checkpoint):
    harness = Harness(managed_node(tiny_checkpoint), NAMESPACE)
    stamps = {}
    topics = [f'{NAMESPACE}/{t}' for t in OUTPUTS]
    try:
        lifecycle = Lifecycle(harness)
        assert lifecycle.state() == 'unconfigured'
        send(harness, stamps.setdefault('unconfigured', []), 0, 2, False)

        assert lifecycle.set('configure') and lifecycle.state() == 'inactive'
        predictor = harness.node._pipeline.predictor  # loaded by configure
        harness.wait_until(lambda: all(harness.probe.count_publishers(t) for t in topics), 10.0,
                           'the outputs to be advertised')
        assert harness.image_pub.get_subscription_count() == 0  # inputs only while active
        send(harness, stamps.setdefault('inactive', []), 10, 2, False)

        for round_, first in ((1, 20), (2, 40)):
            assert lifecycle.set('activate') and lifecycle.state() == 'active'
            harness.wait_until(lambda: harness.image_pub.get_subscription_count() > 0
                               and harness.info_pub.get_subscription_count() > 0, 10.0,
                               'the node to subscribe')
            time.sleep(0.3)  # discovery of the reliable inputs settles
            send(harness, stamps.setdefault(f'active {round_}', []), first, 3, True)
            assert lifecycle.set('deactivate') and lifecycle.state() == 'inactive'
            assert harness.node._pipeline.predictor is predictor  # still loaded
            send(harness, stamps.setdefault(f'deactivated {round_}', []), first + 10, 2, False)

        assert lifecycle.set('shutdown') and lifecycle.state() == 'finalized'
        assert harness.node._pipeline is None  # released
        send(harness, stamps.setdefault('finalized', []), 60, 2, False)
    finally:
        harness.close()
    active = set(stamps['active 1'] + stamps['active 2'])
    for topic in OUTPUTS:
        assert harness.stamps(topic) == active, topic
    assert harness.stamps('depth/camera_info') == active
