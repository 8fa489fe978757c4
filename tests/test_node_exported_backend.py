"""depth_node with backend onnxruntime, in its own process, beside one with backend torch.

Both nodes run the same random-weight tiny checkpoint (adaLN and final layer live, so the
DiT really moves the noise) on the same 640x480 frames from one probe process; the
onnxruntime node runs an export made with ppd-export for that camera. Their depth/relative
images, paired by stamp, must agree within 1e-4.
"""
import numpy as np
import pytest

from ppd_ros.model import save_checkpoint
from ros_helpers import NodeProcess, run_probe
from test_model_predictor import randomized_tiny

pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')

TORCH_NS, ONNX_NS = '/cam_torch', '/cam_onnx'
FRAMES = 4


@pytest.fixture(scope='module')
def session(tmp_path_factory):
    from ppd_ros.cli.export import main as ppd_export
    work = tmp_path_factory.mktemp('exported_backend')
    checkpoint = save_checkpoint(randomized_tiny(), work / 'tiny.safetensors')
    export_dir = work / 'export'
    assert ppd_export([str(export_dir), '--checkpoint', str(checkpoint),
                       '--image-size', '640x480']) == 0
    common = {'checkpoint': str(checkpoint), 'num_threads': 1}
    nodes = [NodeProcess(work / 'torch.log', params=common, namespace=TORCH_NS),
             NodeProcess(work / 'onnx.log', namespace=ONNX_NS,
                         params={**common, 'backend': 'onnxruntime',
                                 'export_dir': str(export_dir)})]
    topics = [f'{TORCH_NS}/depth/relative', f'{ONNX_NS}/depth/relative']
    try:
        for node in nodes:
            node.wait_ready()
        result = run_probe({'rate_hz': 2.0, 'phases': [{'kind': 'good', 'count': FRAMES}],
                            'record': topics, 'save_depth': topics,
                            'wait_for_outputs': topics, 'settle_s': 4.0}, work)
    finally:
        codes = [node.stop() for node in nodes]
    arrays = np.load(work / 'probe_result.npz')
    return result, arrays, [node.output() for node in nodes], codes


def test_onnxruntime_node_publishes_the_torch_nodes_depth(session):
    result, arrays, logs, codes = session
    assert codes == [0, 0], logs
    assert '(backend onnxruntime)' in logs[1] and '(backend torch)' in logs[0]
    by_stamp = [{int(k.split('/')[1]): arrays[k] for k in arrays.files if k.startswith(f'{i}/')}
                for i in range(2)]
    common = sorted(set(by_stamp[0]) & set(by_stamp[1]))
    assert len(common) >= FRAMES // 2, logs
    worst = 0.0
    for stamp in common:
        torch_depth, onnx_depth = by_stamp[0][stamp], by_stamp[1][stamp]
        assert torch_depth.shape == onnx_depth.shape == (480, 640)
        worst = max(worst, float(np.abs(torch_depth - onnx_depth).max()))
    print(f'node depth/relative, onnxruntime vs torch over {len(common)} frames: max {worst:.3g}')
    assert worst <= 1e-4
    assert np.ptp(by_stamp[0][common[0]]) > 0.5  # a real depth map, not a constant


def test_onnxruntime_node_refuses_to_start_without_an_export(tmp_path):
    node = NodeProcess(tmp_path / 'node.log', namespace='/cam_missing',
                       params={'backend': 'onnxruntime', 'export_dir': str(tmp_path / 'none')})
    code = node.proc.wait(60)
    node.stop()
    output = node.output()
    assert code != 0 and 'ppd-export' in output and 'Traceback' not in output
