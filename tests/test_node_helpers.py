"""depth_node's plain-Python parts: frame hand-over, throttled logging, parameters,
statistics, message building, compressed decoding and resource paths."""
import math
import threading
import time

import cv2
import numpy as np
import pytest

from ppd_ros.geometry.camera_model import camera_from_info_fields
from ppd_ros.geometry.pointcloud_layout import build_cloud, decode_cloud
from ppd_ros.messages.compressed_image import compressed_to_rgb
from ppd_ros.messages.image_encoding import ImageEncodingError
from ppd_ros.node.frame_statistics import FrameStatistics
from ppd_ros.node.latest_frame_slot import LatestFrameSlot
from ppd_ros.node.node_parameters import (PARAMETERS, DepthNodeSettings, ParameterSpec,
                                          validate_parameters)
from ppd_ros.node.throttled_log import ThrottledLog
from ppd_ros.pipeline.package_paths import candidate_paths, resolve_package_path

DEFAULTS = {p.name: p.default for p in PARAMETERS}


def test_slot_keeps_newest_frame_and_reports_replacements():
    slot = LatestFrameSlot()
    assert slot.put('a') is False
    assert slot.put('b') is True  # 'a' was never taken: dropped
    assert slot.take() == 'b'
    assert slot.put('c') is False
    assert slot.take() == 'c'
    assert slot.take(timeout=0.01) is None


def test_slot_take_waits_for_a_frame_and_close_releases_it():
    slot = LatestFrameSlot()
    got = []
    worker = threading.Thread(target=lambda: got.append(slot.take()))
    worker.start()
    time.sleep(0.05)
    slot.put('frame')
    worker.join(1.0)
    assert got == ['frame']
    worker = threading.Thread(target=lambda: got.append(slot.take()))
    worker.start()
    slot.close()
    worker.join(1.0)
    assert got == ['frame', None] and not worker.is_alive()


def test_throttled_log_is_per_key_and_counts_repeats():
    now = [0.0]
    log = ThrottledLog(5.0, clock=lambda: now[0])
    assert log.due('encoding') == ''
    assert log.due('encoding') is None
    assert log.due('size') == ''  # another key: not throttled
    now[0] = 6.0
    assert log.due('encoding') == ' (1 more since the last report)'
    assert log.due('encoding') is None


def test_default_parameters_are_valid_and_complete():
    assert validate_parameters(DEFAULTS) is None
    assert validate_parameters({**DEFAULTS, 'depth.mode': 'range',
                                'depth.encoding': '16UC1'}) is None
    settings = DepthNodeSettings.from_values(DEFAULTS)
    assert settings.depth_mode == 'relative' and settings.cloud_stride == 1
    assert len({p.name for p in PARAMETERS}) == len(PARAMETERS)


def test_yaml_declares_exactly_the_node_parameters(repo_root):
    import yaml
    data = yaml.safe_load((repo_root / 'config' / 'depth.yaml').read_text())
    params = data['/**']['ros__parameters']
    assert set(params) == set(DEFAULTS)
    assert params == DEFAULTS  # the YAML documents the built-in defaults
    assert validate_parameters(params) is None


def test_variant_choices_match_the_model_variants():
    from ppd_ros.model import VARIANTS
    spec = next(p for p in PARAMETERS if p.name == 'variant')
    assert set(spec.choices) == set(VARIANTS)


@pytest.mark.parametrize('change, match', [
    ({'depth.mode': 'reference', 'depth.min_m': 5.0, 'depth.max_m': 1.0}, 'depth.min_m'),
    ({'depth.mode': 'range', 'range.near_m': 5.0, 'range.far_m': 2.0}, 'near_m < far_m'),
    ({'depth.mode': 'metres'}, "'depth.mode' is 'metres'"),
    ({'depth.encoding': 'mono16'}, 'depth.encoding'),
    ({'image_transport': 'theora'}, 'image_transport'),
    ({'device': 'gpu0'}, 'device'),
    ({'network_area': 100}, 'network_area'),
    ({'warmup_size': '640'}, 'warmup_size'),
])
def test_invalid_parameter_combinations_are_explained(change, match):
    assert match in validate_parameters({**DEFAULTS, **change})


def test_descriptors_carry_ranges_and_read_only():
    by_name = {p.name: p.descriptor() for p in PARAMETERS}
    assert by_name['checkpoint'].read_only and by_name['device'].read_only
    assert not by_name['steps'].read_only and not by_name['cloud.stride'].read_only
    assert by_name['steps'].integer_range[0].from_value == 1
    assert by_name['output_scale'].floating_point_range[0].to_value == 1.0
    assert 'relative' in by_name['depth.mode'].additional_constraints
    assert all(d.description for d in by_name.values())
    assert isinstance(PARAMETERS[0], ParameterSpec)


def test_statistics_count_rate_and_age():
    now = [100.0]
    stats = FrameStatistics(window_s=5.0, clock=lambda: now[0])
    for i in range(11):
        stats.frame_received()
        stats.frame_processed({'dit': 0.1}, latency_s=0.2)
        now[0] += 0.1
    stats.frame_dropped()
    stats.frame_failed('bad image')
    snap = stats.snapshot()
    assert (snap.received, snap.processed, snap.dropped, snap.failed) == (11, 11, 1, 1)
    assert snap.rate_hz == pytest.approx(10 / 1.1)
    assert snap.last_frame_age_s == pytest.approx(0.1)
    assert snap.last_problem == 'bad image' and snap.last_failed
    assert snap.stage_seconds == {'dit': 0.1}
    stats.frame_processed({}, None, 'no CameraInfo')
    assert stats.snapshot().last_problem == 'no CameraInfo' and not stats.snapshot().last_failed
    now[0] += 10.0
    assert stats.snapshot().rate_hz == 0.0


def test_compressed_png_and_jpeg_decode_to_rgb():
    rgb = np.zeros((8, 10, 3), np.uint8)
    rgb[..., 0] = 255  # red
    png = cv2.imencode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
    np.testing.assert_array_equal(compressed_to_rgb('png', png), rgb)
    jpeg = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
    out = compressed_to_rgb('rgb8; jpeg compressed bgr8', jpeg)
    assert out.shape == (8, 10, 3) and out[..., 0].min() > 240 and out[..., 2].max() < 15


@pytest.mark.parametrize('fmt, data, match', [
    ('jpeg', b'\xff\xd8\xff not really a jpeg', 'corrupt'),
    ('png', b'', 'no data'),
    ('16UC1; compressedDepth png', b'\x00' * 20, 'unsupported'),
    ('theora', b'\x00' * 20, 'unsupported'),
])
def test_bad_compressed_frames_raise_clear_errors(fmt, data, match):
    with pytest.raises(ImageEncodingError, match=match):
        compressed_to_rgb(fmt, data)


def test_package_paths_resolve_absolute_then_checkout(tmp_path, repo_root):
    f = tmp_path / 'w.safetensors'
    f.write_bytes(b'x')
    assert resolve_package_path(str(f)) == f
    assert resolve_package_path('config/depth.yaml') == repo_root / 'config' / 'depth.yaml'
    assert resolve_package_path('models/nope.safetensors') is None
    assert repo_root / 'models' / 'nope.safetensors' in candidate_paths('models/nope.safetensors')


def test_missing_checkpoint_error_names_path_and_fetch_helper():
    from ppd_ros.pipeline.predictor_loading import ModelUnavailableError, load_predictor_from_paths
    with pytest.raises(ModelUnavailableError) as err:
        load_predictor_from_paths('models/missing_tiny.safetensors', '', '')
    assert 'models/missing_tiny.safetensors' in str(err.value) and 'ppd-fetch' in str(err.value)
    with pytest.raises(ModelUnavailableError, match='dit_checkpoint'):
        load_predictor_from_paths('', 'models/missing_ppd.pth', 'models/missing_da2.pth', 'large')
    # a file ppd-fetch knows is named with the command that fetches it
    with pytest.raises(ModelUnavailableError, match='`ppd-fetch da2`'):
        load_predictor_from_paths('', __file__, 'elsewhere/depth_anything_v2_vitl.pth', 'large')
    with pytest.raises(ModelUnavailableError, match='not on the hub: `ppd-fetch ppd_moge`'):
        load_predictor_from_paths('', 'elsewhere/ppd_moge.pth', __file__, 'large')


def test_variant_picks_the_weights_unless_a_checkpoint_is_given():
    from ppd_ros.pipeline.predictor_loading import MODEL_DEFAULTS, TINY_CHECKPOINT, weight_files
    official = ('models/ppd.pth', 'models/da2.pth')
    assert weight_files('', *official, 'tiny') == {'checkpoint': TINY_CHECKPOINT}
    assert weight_files('', *official, 'large') == {'dit_checkpoint': official[0],
                                                    'encoder_checkpoint': official[1]}
    assert weight_files('mine.safetensors', *official, 'large') == {'checkpoint': 'mine.safetensors'}
    defaults = [MODEL_DEFAULTS[k] for k in ('checkpoint', 'dit_checkpoint', 'encoder_checkpoint',
                                            'variant')]
    assert weight_files(*defaults) == {'checkpoint': TINY_CHECKPOINT}   # the shared default


def test_large_moge_left_at_the_default_paths_loads_its_own_release_files():
    from ppd_ros.pipeline.geometry_loading import load_metric_predictor_from_paths
    from ppd_ros.pipeline.predictor_loading import (MODEL_DEFAULTS, ModelUnavailableError,
                                                    load_predictor_from_paths, weight_files)
    defaults = (MODEL_DEFAULTS['dit_checkpoint'], MODEL_DEFAULTS['encoder_checkpoint'])
    assert weight_files('', *defaults, 'large_moge') == {
        'dit_checkpoint': 'models/ppd_moge.pth',
        'encoder_checkpoint': 'models/moge-2-vitl-normal.pt'}
    # paths the user gave are kept, and large keeps the Depth-Anything-v2 pair
    assert weight_files('', 'mine.pth', defaults[1], 'large_moge')['dit_checkpoint'] == 'mine.pth'
    assert weight_files('', *defaults, 'large') == {'dit_checkpoint': defaults[0],
                                                    'encoder_checkpoint': defaults[1]}
    # the missing file named in the error is the variant's own, for both loaders
    with pytest.raises(ModelUnavailableError, match="dit_checkpoint 'models/ppd_moge.pth'"):
        load_predictor_from_paths('', *defaults, 'large_moge')
    with pytest.raises(ModelUnavailableError, match="dit_checkpoint 'models/ppd_moge.pth'"):
        load_metric_predictor_from_paths('', *defaults, 'models/tiny_moge2.safetensors',
                                         'large_moge')


def test_messages_carry_layout_intrinsics_and_payload():
    from std_msgs.msg import Header
    from sensor_msgs.msg import CameraInfo

    from ppd_ros.node import message_builders as build
    header = Header(frame_id='cam')
    xyz = np.ones((2, 3, 3), np.float32)
    xyz[0, 0] = np.nan
    cloud_msg = build.pointcloud_message(header, build_cloud(xyz, np.zeros((2, 3, 3), np.uint8)))
    assert (cloud_msg.height, cloud_msg.width, cloud_msg.point_step, cloud_msg.row_step) == \
        (2, 3, 32, 96)
    assert cloud_msg.is_dense is False and len(cloud_msg.data) == 2 * 3 * 32
    fields = [(f.name, f.offset, f.datatype, f.count) for f in cloud_msg.fields]
    out_xyz, _ = decode_cloud(fields, 32, 2, 3, cloud_msg.data)
    np.testing.assert_array_equal(out_xyz, xyz)

    depth = np.array([[1.5, np.nan]], np.float32)
    m32 = build.depth_image_message(header, depth, '32FC1')
    assert (m32.encoding, m32.step, m32.height, m32.width) == ('32FC1', 8, 1, 2)
    np.testing.assert_array_equal(np.frombuffer(m32.data, '<f4'), depth[0])
    m16 = build.depth_image_message(header, depth, '16UC1')
    assert list(np.frombuffer(m16.data, '<u2')) == [1500, 0]

    rgb = np.array([[[1, 2, 3]]], np.uint8)
    colored = build.color_image_message(header, rgb, 'bgr8')
    assert colored.encoding == 'bgr8' and list(colored.data) == [3, 2, 1]

    source = CameraInfo(distortion_model='plumb_bob', d=[0.1, 0.0, 0.0, 0.0, 0.0])
    camera = camera_from_info_fields([500.0, 0, 319.5, 0, 500.0, 239.5, 0, 0, 1],
                                     [500.0, 0, 319.5, -25.0, 0, 500.0, 239.5, 0, 0, 0, 1, 0],
                                     640, 480).scaled_to(320, 240)
    info = build.camera_info_message(header, camera, source)
    assert (info.width, info.height, info.distortion_model) == (320, 240, 'plumb_bob')
    assert list(info.k) == [250.0, 0, 159.5, 0, 250.0, 119.5, 0, 0, 1]
    assert list(info.p) == [250.0, 0, 159.5, -12.5, 0, 250.0, 119.5, 0, 0, 0, 1, 0]
    assert list(info.d) == [0.1, 0.0, 0.0, 0.0, 0.0]
    assert not any(math.isnan(v) for v in info.k)


def test_diagnostic_levels_follow_the_last_frame():
    from diagnostic_msgs.msg import DiagnosticStatus

    from ppd_ros.node.diagnostics import depth_node_status
    from ppd_ros.node.frame_statistics import StatisticsSnapshot

    def status(**kw):
        base = dict(received=10, processed=8, dropped=2, skipped_idle=0, failed=0, rate_hz=5.0,
                    last_frame_age_s=0.1, last_latency_s=0.2, stage_seconds={'dit': 0.05})
        return depth_node_status('ppd_ros: depth_node', '/cam/depth_node',
                                 StatisticsSnapshot(**{**base, **kw}), idle=False)

    ok = status()
    assert ok.level == DiagnosticStatus.OK and ok.name == 'ppd_ros: depth_node'
    values = {kv.key: kv.value for kv in ok.values}
    assert values['frames dropped'] == '2' and values['dit (ms)'] == '50.00'
    assert status(last_problem='no CameraInfo').level == DiagnosticStatus.WARN
    assert status(last_problem='bad image', last_failed=True).level == DiagnosticStatus.ERROR
    assert status(last_frame_age_s=None).level == DiagnosticStatus.STALE
    assert status(last_frame_age_s=30.0).level == DiagnosticStatus.STALE


def test_metric_parameters_become_scale_settings():
    settings = DepthNodeSettings.from_values({
        **DEFAULTS, 'depth.mode': 'reference', 'depth.min_m': 0.3, 'depth.max_m': 8.0,
        'scale.hold_frames': 2, 'scale.smoothing': 1.0, 'reference.inlier_threshold': 0.1})
    scale = settings.scale
    assert (scale.min_m, scale.max_m, scale.hold_frames, scale.smoothing) == (0.3, 8.0, 2, 1.0)
    assert scale.inlier_threshold == 0.1 and scale.range_near_m == DEFAULTS['range.near_m']
    assert validate_parameters({**DEFAULTS, 'depth.mode': 'reference'}) is None
    by_name = {p.name: p.descriptor() for p in PARAMETERS}
    assert by_name['reference.queue_size'].read_only  # sized once, at start-up
    for name in ('depth.min_m', 'depth.max_m', 'scale.hold_frames', 'scale.smoothing',
                 'reference.max_dt', 'reference.publish_inliers'):
        assert not by_name[name].read_only, name  # run-time changeable
    assert by_name['reference.max_dt'].floating_point_range[0].to_value == 1.0


def test_diagnostics_report_the_metric_scale():
    from diagnostic_msgs.msg import DiagnosticStatus

    from ppd_ros.alignment import LogAffineFit
    from ppd_ros.node.diagnostics import depth_node_status
    from ppd_ros.node.frame_statistics import StatisticsSnapshot
    from ppd_ros.pipeline.metric_scaler import ScaleStatus
    from ppd_ros.pipeline.reference_pairing import ReferenceStreamStatus

    stats = StatisticsSnapshot(received=10, processed=10, dropped=0, skipped_idle=0, failed=0,
                               rate_hz=5.0, last_frame_age_s=0.1, last_latency_s=0.2)
    fit = LogAffineFit(1.2, 0.4, 0.85, 0.012, 4096, True)
    reference = ReferenceStreamStatus(received=12, last_arrival_age_s=0.05, last_dt_s=-0.004)

    def status(scale, idle=False):
        return depth_node_status('ppd_ros: depth_node', '/cam/depth_node', stats, idle,
                                 'reference', scale, reference)

    tracking = status(ScaleStatus('reference', True, '', 1.21, 0.41, 0, fit))
    values = {kv.key: kv.value for kv in tracking.values}
    assert tracking.level == DiagnosticStatus.OK
    assert values['depth mode'] == 'reference' and values['metric scale'] == 'tracking'
    assert (values['scale a'], values['scale b']) == ('1.21', '0.41')
    assert (values['fit inlier ratio'], values['fit residual (log)'], values['fit points']) == \
        ('0.85', '0.012', '4096')
    assert values['references received'] == '12'
    assert values['reference stamp offset (s)'] == '-0.004'

    holding = status(ScaleStatus('reference', True, 'holding last fit (2/5): fit failed: x',
                                 1.2, 0.4, 2, None))
    assert holding.level == DiagnosticStatus.WARN and holding.message.startswith('holding')
    assert {kv.key: kv.value for kv in holding.values}['fit points'] == ''
    gone = status(ScaleStatus('reference', False, 'metric scale unavailable: no depth_reference '
                                                  'within 0.02 s of the image stamp', held_for=9))
    assert gone.level == DiagnosticStatus.ERROR
    assert 'no metric output' in gone.message and 'no depth_reference within' in gone.message
    assert {kv.key: kv.value for kv in gone.values}['scale held for (frames)'] == '9'
    assert status(ScaleStatus('reference', False, 'no frame'), idle=True).level == \
        DiagnosticStatus.OK
