"""depth_node in its own process with samples: 2: depth/confidence beside the depth.

The node (tiny model with random weights, lazy as shipped) gets 320x240 frames from a probe
process in two phases, in depth.mode 'range': first the probe listens to depth/image only,
then it also subscribes to depth/confidence. The node's /diagnostics count what it published
on each output, so the test sees that no confidence map is sent while nobody listens.
"""
import pytest

from ros_helpers import NAMESPACE, NodeProcess, by_stamp, run_probe, tiny_checkpoint  # noqa: F401

METRIC, CONFIDENCE = (f'{NAMESPACE}/{t}' for t in ('depth/image', 'depth/confidence'))
PHASE = 6


@pytest.fixture(scope='module')
def session(tiny_checkpoint, tmp_path_factory):
    work = tmp_path_factory.mktemp('confidence')
    node = NodeProcess(work / 'node.log', params={
        'checkpoint': str(tiny_checkpoint), 'num_threads': 1, 'samples': 2, 'steps': 1,
        'depth.mode': 'range', 'range.near_m': 1.0, 'range.far_m': 4.0, 'output_scale': 0.5,
        'diagnostics_period': 0.2})
    try:
        node.wait_ready()
        result = run_probe({
            'width': 320, 'height': 240, 'rate_hz': 4.0,
            'phases': [{'kind': 'good', 'count': PHASE}, {'mark': 'alone'},
                       {'subscribe': [CONFIDENCE]},
                       {'kind': 'good', 'count': PHASE}, {'mark': 'listened'}],
            'record': [METRIC, '/diagnostics'],
            'mark_wait_s': 1.0,
        }, work)
    finally:
        node.stop()
    return result


def test_confidence_has_the_depth_stamp_frame_and_size_in_metres(session):
    depth, confidence = by_stamp(session['topics'][METRIC]), session['topics'][CONFIDENCE]
    assert len(confidence) >= PHASE // 2
    second_phase = {p['stamp'] for p in session['published'][PHASE:]}
    for msg in confidence:
        assert msg['stamp'] in second_phase and msg['stamp'] in depth
        twin = depth[msg['stamp']]
        assert msg['frame_id'] == twin['frame_id'] == 'camera_color_optical_frame'
        assert (msg['width'], msg['height'], msg['encoding']) == (160, 120, '32FC1')
        assert (twin['width'], twin['height']) == (160, 120)
        assert msg['min'] >= 0 and msg['max'] > 0      # a spread, in metres here
        assert msg['max'] < 10 * (4.0 - 1.0)


def test_confidence_is_published_only_while_someone_listens(session):
    alone, listened = session['marks']['alone'], session['marks']['listened']
    assert int(alone['frames processed']) >= PHASE // 2
    assert int(alone['published on depth/image']) >= PHASE // 2
    assert int(alone['published on depth/confidence']) == 0
    sent = int(listened['published on depth/confidence'])
    assert sent >= len(session['topics'][CONFIDENCE]) > 0
    assert 'scene change score' in listened and 'smoothed pixels (share)' in listened
