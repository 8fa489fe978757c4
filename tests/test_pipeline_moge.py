"""depth mode 'moge' without ROS: the shipped tiny PPD and tiny MoGe-2 on synthetic frames."""
from pathlib import Path

import numpy as np
import pytest

from ppd_ros.geometry.camera_model import camera_from_info_fields
from ppd_ros.pipeline.depth_pipeline import DepthPipeline, PipelineOptions
from ppd_ros.pipeline.geometry_loading import load_metric_predictor_from_paths
from ppd_ros.pipeline.metric_scaler import metric_scaler_for_mode
from ppd_ros.pipeline.predictor_loading import ModelUnavailableError
from ppd_ros.synthetic import generate_frame

MODELS = Path(__file__).resolve().parents[1] / 'models'


@pytest.fixture(scope='module')
def pipeline():
    predictor = load_metric_predictor_from_paths(
        str(MODELS / 'tiny_ppd.safetensors'), '', '', str(MODELS / 'tiny_moge2.safetensors'),
        device='cpu')
    pipe = DepthPipeline(predictor, overlap=False)
    yield pipe
    pipe.close()


@pytest.fixture(scope='module')
def frame():
    return generate_frame(1_000_007, 160, 120, hfov_deg=60.0)


def camera_of(frame):
    K = frame.intrinsics.K
    return camera_from_info_fields(K.ravel(), np.hstack((K, np.zeros((3, 1)))).ravel(),
                                   frame.intrinsics.width, frame.intrinsics.height)


def abs_rel(metres, frame):
    ok = np.isfinite(metres) & frame.valid
    return float(np.mean(np.abs(metres[ok] - frame.depth[ok]) / frame.depth[ok])), ok.mean()


def test_metres_and_estimated_intrinsics_without_a_camera(pipeline, frame):
    scaler = metric_scaler_for_mode('moge')
    scaler.begin_frame(0.0)
    result = pipeline.process(frame.rgb, None, PipelineOptions(output_scale=0.5), scaler)
    assert scaler.status.available and scaler.status.fit.ok
    assert result.camera_estimated and result.camera is not None
    assert (result.camera.width, result.camera.height) == (80, 60)
    assert result.cloud is not None and result.metres.shape == (60, 80)
    # a centred camera; the tiny MoGe-2's focal within 25 % of the truth (60 degrees)
    assert result.camera.cx == pytest.approx(39.5) and result.camera.cy == pytest.approx(29.5)
    assert result.camera.fx == pytest.approx(frame.intrinsics.fx / 2, rel=0.25)
    error, coverage = abs_rel(pipeline.process(frame.rgb, None, PipelineOptions(), scaler).metres,
                              frame)
    assert error < 0.5 and coverage > 0.8


def test_known_camera_is_used_and_kept(pipeline, frame):
    scaler = metric_scaler_for_mode('moge')
    scaler.begin_frame(0.0)
    camera = camera_of(frame)
    result = pipeline.process(frame.rgb, camera, PipelineOptions(), scaler)
    assert not result.camera_estimated
    assert result.camera.fx == camera.fx and result.camera.cx == camera.cx
    assert scaler.status.available and result.cloud is not None


def test_without_geometry_the_scale_is_held_then_dropped(pipeline, frame):
    settings = metric_scaler_for_mode('moge').settings
    scaler = metric_scaler_for_mode('moge')
    scaler.begin_frame(0.0)
    assert pipeline.process(frame.rgb, None, PipelineOptions(), scaler).metres is not None
    pipeline.predictor.geometry_enabled = False
    try:
        for k in range(settings.hold_frames):
            scaler.begin_frame(0.1 * (k + 1))
            held = pipeline.process(frame.rgb, None, PipelineOptions(), scaler)
            assert held.metres is not None and scaler.status.state == 'holding'
        scaler.begin_frame(1.0)
        gone = pipeline.process(frame.rgb, None, PipelineOptions(), scaler)
        assert gone.metres is None and gone.cloud is None
        assert 'no MoGe-2 geometry' in scaler.status.reason
    finally:
        pipeline.predictor.geometry_enabled = True


def test_a_missing_moge_file_is_one_clear_error(tmp_path):
    with pytest.raises(ModelUnavailableError, match="moge_checkpoint '.*nowhere.pt' not found"):
        load_metric_predictor_from_paths(str(MODELS / 'tiny_ppd.safetensors'), '', '',
                                         str(tmp_path / 'nowhere.pt'), device='cpu')
