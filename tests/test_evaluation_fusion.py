"""ppd-eval offline with a reference depth topic: the fusion comparison of a bag, scored with
the node's own fusion code."""
from __future__ import annotations

import numpy as np
import pytest

from eval_helpers import (DEPTH_TOPIC, HEIGHT, IMAGE_TOPIC, WIDTH, eval_args, read_csv,
                          read_json)
from ppd_ros.bag import write_synthetic_bag
from ppd_ros.bag.message_decoders import decode_image
from ppd_ros.evaluation.cli import main
from ppd_ros.evaluation.fusion_comparison import (COMPARISON_COLUMNS, comparison_depths,
                                                  score_comparison)
from ppd_ros.geometry.camera_model import camera_from_info_fields
from ppd_ros.pipeline.package_paths import resolve_package_path
from ppd_ros.synthetic import DepthSensorModel, generate_sequence

SENSOR_TOPIC = '/camera/aligned_depth_to_color/image_raw'
N_FRAMES = 3
SENSOR = DepthSensorModel(hole_size_px=8)


@pytest.fixture(scope='module')
def shipped_tiny():
    """The trained tiny model: fusion needs a prediction that fits the sensor."""
    return resolve_package_path('models/tiny_ppd.safetensors')


@pytest.fixture(scope='module')
def run(tmp_path_factory, shipped_tiny):
    root = tmp_path_factory.mktemp('fusion_eval')
    bag = write_synthetic_bag(root / 'bag', N_FRAMES, WIDTH, HEIGHT, seed=5,
                              sensor_depth_topic=SENSOR_TOPIC,
                              sensor_depth=lambda i, frame: SENSOR.corrupt(frame.depth, i))
    out = root / 'out'
    status = main(eval_args(bag.path, out, shipped_tiny, '--reference-topic', SENSOR_TOPIC,
                            '--pictures', 'none'))
    return status, out, bag


def test_every_frame_gets_the_four_rows(run, capsys):
    status, out, _ = run
    assert status == 0
    rows = read_csv(out / 'frames.csv')
    assert len(rows) == N_FRAMES and set(COMPARISON_COLUMNS) <= set(rows[0])
    for row in rows:
        assert float(row['sensor_coverage']) == pytest.approx(0.7, abs=0.05)
        for name in ('fused', 'fused_inpainting', 'ppd_aligned'):
            assert float(row[f'{name}_coverage']) > 0.99
        assert float(row['fused_abs_rel']) < float(row['ppd_aligned_abs_rel'])
    comparison = read_json(out / 'summary.json')['fusion_comparison']
    assert comparison['frames_scored'] == N_FRAMES
    assert comparison['reference_topic'] == SENSOR_TOPIC
    assert comparison['table'].count('\n| ') == 4


def test_scores_are_those_of_the_node_code(run, shipped_tiny):
    """Frame 1 recomputed in-process with the pipeline (predictor and temporal stage, after
    frame 0, with the node's temporal defaults) and comparison_depths (what the node's
    FusionScaler runs) gives the stored scores."""
    _, out, bag = run
    from ppd_ros.model import load_predictor
    from ppd_ros.pipeline.depth_pipeline import DepthPipeline, PipelineOptions
    from ppd_ros.pipeline.temporal_smoothing import RECOMMENDED
    frames = list(generate_sequence(5, N_FRAMES, WIDTH, HEIGHT))
    frame = frames[1]
    gt = np.where(frame.valid, frame.depth, np.nan).astype(np.float32)
    from ppd_ros.bag.message_builders import depth_image_msg
    sensor_mm = depth_image_msg(SENSOR.corrupt(frame.depth, 1), 0, 'f', '16UC1')
    sensor = decode_image(sensor_mm)
    pipeline = DepthPipeline(load_predictor(str(shipped_tiny), device='cpu'), overlap=False)
    options = PipelineOptions(steps=4, seed=0, cloud=False, colorize=False,
                              temporal=RECOMMENDED)
    pipeline.process(frames[0].rgb, None, options)
    relative = pipeline.process(frame.rgb, None, options).relative
    info = frame.camera_info
    camera = camera_from_info_fields(info.k, info.p, info.width, info.height)
    expected = score_comparison(comparison_depths(relative, sensor, frame.rgb), gt, camera)
    row = read_csv(out / 'frames.csv')[1]
    for key in ('fused_abs_rel', 'fused_edge_chamfer_m', 'fused_inpainting_abs_rel',
                'ppd_aligned_abs_rel', 'sensor_flying_pixel_ratio'):
        assert float(row[key]) == pytest.approx(expected[key], rel=1e-4)


def test_offline_reference_needs_ground_truth(tmp_path, run, shipped_tiny, capsys):
    _, _, bag = run
    args = [str(bag.path), '--out', str(tmp_path / 'out'), '--image-topic', IMAGE_TOPIC,
            '--reference-topic', SENSOR_TOPIC, '--checkpoint', str(shipped_tiny)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and '--depth-topic' in err and DEPTH_TOPIC not in err
