"""Bad inputs make depth_node log one clear error each and carry on with the good frames.

Raw transport: unsupported encoding, zero-size image, image / CameraInfo size mismatch, NaN
in CameraInfo K. Compressed transport: corrupt jpeg, and frames before any CameraInfo.
"""
import pytest

from ros_helpers import (NAMESPACE, NodeProcess, by_stamp, last_diagnostics, run_probe,
                         tiny_checkpoint)  # noqa: F401 (fixture)

DEPTH, INFO = f'{NAMESPACE}/depth/relative', f'{NAMESPACE}/depth/camera_info'
BAD = 4
GOOD = 5


def _run(checkpoint, work, phases, transport='raw'):
    node = NodeProcess(work / 'node.log', params={
        'checkpoint': str(checkpoint), 'num_threads': 1, 'steps': 1, 'colorize': False,
        'image_transport': transport})
    try:
        node.wait_ready()
        result = run_probe({'rate_hz': 10.0, 'transport': transport, 'phases': phases,
                            'record': [DEPTH, INFO, '/diagnostics']}, work)
        alive = node.proc.poll() is None
    finally:
        returncode = node.stop()
    return result, node.output(), alive, returncode


def _stamps(result, kind):
    """Stamps of each run of `kind` frames, in order, as lists."""
    runs, previous = [], None
    for p in result['published']:
        if p['kind'] == kind:
            if previous != kind:
                runs.append([])
            runs[-1].append(p['stamp'])
        previous = p['kind']
    return runs


@pytest.fixture(scope='module')
def raw_session(tiny_checkpoint, tmp_path_factory):
    phases = [{'kind': 'good', 'count': GOOD}]
    for bad in ('bad_encoding', 'zero_size', 'size_mismatch', 'nan_k'):
        phases += [{'kind': bad, 'count': BAD}, {'kind': 'good', 'count': GOOD}]
    return _run(tiny_checkpoint, tmp_path_factory.mktemp('bad_raw'), phases)


@pytest.fixture(scope='module')
def compressed_session(tiny_checkpoint, tmp_path_factory):
    phases = [{'kind': 'no_info', 'count': GOOD}, {'kind': 'corrupt', 'count': BAD},
              {'kind': 'good', 'count': GOOD}]
    return _run(tiny_checkpoint, tmp_path_factory.mktemp('bad_compressed'), phases, 'compressed')


def _assert_one_error(output, text):
    lines = [line for line in output.splitlines() if text in line]
    assert len(lines) == 1, f'expected one log line with {text!r}, got:\n' + '\n'.join(lines)
    return lines[0]


def test_node_survives_every_bad_input(raw_session):
    _, output, alive, returncode = raw_session
    assert alive and returncode == 0
    assert 'Traceback' not in output


@pytest.mark.parametrize('kind, text', [
    ('bad_encoding', "unsupported image encoding 'nv21'"),
    ('zero_size', 'image has no pixels (0x0)'),
    ('size_mismatch', 'image is 320x240 but CameraInfo is 640x480'),
    ('nan_k', 'CameraInfo K or P contains NaN'),
])
def test_each_bad_input_logs_one_clear_error(raw_session, kind, text):
    _, output, _, _ = raw_session
    assert '[ERROR]' in _assert_one_error(output, text)


def test_good_frames_after_each_bad_run_are_published(raw_session):
    result, _, _, _ = raw_session
    depth = by_stamp(result['topics'][DEPTH])
    info = by_stamp(result['topics'][INFO])
    good_runs = _stamps(result, 'good')
    assert len(good_runs) == 5
    for run in good_runs[1:]:  # each follows a bad run
        published = [s for s in run if s in depth]
        assert len(published) >= 3, 'node stopped publishing after bad input'
        assert all(depth[s]['width'] == 640 for s in published)
        assert sum(s in info for s in run) >= 3


def test_unreadable_images_produce_no_output(raw_session):
    result, _, _, _ = raw_session
    depth = by_stamp(result['topics'][DEPTH])
    for kind in ('bad_encoding', 'zero_size'):
        assert not any(s in depth for run in _stamps(result, kind) for s in run)


def test_bad_camera_info_keeps_depth_but_drops_camera_info(raw_session):
    result, _, _, _ = raw_session
    depth = by_stamp(result['topics'][DEPTH])
    info = by_stamp(result['topics'][INFO])
    for kind, width in (('size_mismatch', 320), ('nan_k', 640)):
        run, = _stamps(result, kind)
        assert sum(s in depth for s in run) >= 2
        assert all(depth[s]['width'] == width for s in run if s in depth)
        # at most the first frame may still meet the previous, valid CameraInfo
        assert sum(s in info for s in run) <= 1


def test_unreadable_frames_counted_as_failed_in_diagnostics(raw_session):
    result, _, _, _ = raw_session
    values = last_diagnostics(result)['values']
    # bad_encoding and zero_size frames fail; CameraInfo problems still publish depth
    assert 2 * (BAD - 1) <= int(values['frames failed']) <= 2 * BAD


def test_corrupt_compressed_frames_logged_once_and_skipped(compressed_session):
    result, output, alive, returncode = compressed_session
    assert alive and returncode == 0 and 'Traceback' not in output
    assert '[ERROR]' in _assert_one_error(output, "CompressedImage labelled 'jpeg' holds data")
    depth = by_stamp(result['topics'][DEPTH])
    corrupt, = _stamps(result, 'corrupt')
    assert not any(s in depth for s in corrupt)
    good, = _stamps(result, 'good')
    assert sum(s in depth for s in good) >= 3
    assert all(depth[s]['width'] == 640 for s in good if s in depth)


def test_frames_without_camera_info_publish_depth_only_with_a_warning(compressed_session):
    result, output, _, _ = compressed_session
    assert '[WARN]' in _assert_one_error(output, 'no CameraInfo received')
    depth = by_stamp(result['topics'][DEPTH])
    info = by_stamp(result['topics'][INFO])
    no_info, = _stamps(result, 'no_info')
    assert sum(s in depth for s in no_info) >= 3
    assert not any(s in info for s in no_info)
    good, = _stamps(result, 'good')
    assert sum(s in info for s in good) >= 3
