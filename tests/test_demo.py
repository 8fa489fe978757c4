"""ppd-demo end to end at reduced size: synthetic bag -> depth_node in its own process ->
recorded metric depth -> PNGs, PLY, comparison picture, summary.

With the shipped models/tiny_ppd.safetensors the node runs as in the real demo (depth.mode
fusion). Without it a random tiny checkpoint stands in; its relative depth is noise,
which no reference fit accepts, so that node runs in depth.mode range instead (still metric:
metres and clouds through the same recording and export path).
"""
from __future__ import annotations

import contextlib
import io
import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from eval_helpers import make_tiny_checkpoint
from ppd_ros.demo.cli import main
from ppd_ros.geometry.ply import read_ply
from ppd_ros.pipeline.package_paths import resolve_package_path

SHIPPED = 'models/tiny_ppd.safetensors'
FRAMES, WIDTH, HEIGHT = 6, 128, 96


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    """(exit status, output folder, stdout) of one reduced demo run."""
    root = tmp_path_factory.mktemp('demo')
    shipped = resolve_package_path(SHIPPED)
    if shipped is not None:
        checkpoint, extra = shipped, []
    else:
        checkpoint = make_tiny_checkpoint(root / 'tiny_random.safetensors')
        extra = ['--node-param', 'depth.mode:=range']
    out = root / 'out'
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        status = main(['--out', str(out), '--checkpoint', str(checkpoint), '--frames',
                       str(FRAMES), '--width', str(WIDTH), '--height', str(HEIGHT),
                       '--device', 'cpu', '--num-threads', '1', *extra])
    return status, out, stdout.getvalue()


def test_demo_succeeds_and_prints_the_table_and_outputs(demo):
    status, out, stdout = demo
    assert status == 0, stdout
    for text in ('RGB-D sensor depth (input)', 'ppd_ros fused (node output)',
                 'same fusion, inpainting instead of PPD', 'PPD alone, aligned to the sensor',
                 'AbsRel', 'latency', 'comparison.png', 'depth_mm/', str(out.resolve())):
        assert text in stdout


def test_summary_has_latency_drops_and_accuracy(demo):
    _, out, _ = demo
    summary = json.loads((out / 'demo_summary.json').read_text())
    frames = summary['frames']
    assert frames['published'] == FRAMES
    assert frames['received'] >= 1 and frames['received'] + frames['dropped'] == FRAMES
    assert 0 < summary['latency']['p50_s'] <= summary['latency']['p95_s'] < 10
    sensor, ppd = summary['accuracy']['rgbd_sensor'], summary['accuracy']['ppd_ros']
    assert sensor['coverage'] == pytest.approx(0.7, abs=0.03)     # 30 % holes
    assert ppd['coverage'] > 0.95                                  # the node fills them
    for scores in (sensor, ppd):
        assert scores['abs_rel'] >= 0 and 0 <= scores['d1'] <= 1
        assert 0 <= scores['flying_pixel_ratio'] <= 1 and scores['edge_chamfer_m'] > 0
    assert sensor['flying_pixel_ratio'] > 0.02                     # the simulated sensor's
    assert summary['reference_rows_frames'] == frames['received']
    for row in ('fused_inpainting', 'ppd_aligned'):                # scored on the same frames
        assert summary['accuracy'][row]['coverage'] > 0.95
        assert summary['accuracy'][row]['abs_rel'] >= 0
    assert (out / summary['outputs']['eval_summary']).is_file()


def test_depth_pngs_are_millimetres_and_colour(demo):
    _, out, _ = demo
    summary = json.loads((out / 'demo_summary.json').read_text())
    mm_files = sorted((out / 'depth_mm').glob('frame_*.png'))
    colour_files = sorted((out / 'depth_color').glob('frame_*.png'))
    assert len(mm_files) == len(colour_files) == summary['frames']['received']
    for path in mm_files:
        mm = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert mm.dtype == np.uint16 and mm.shape == (HEIGHT, WIDTH)
        valid = mm[mm > 0]
        assert valid.size > 0.9 * mm.size and valid.std() > 0
        assert 100 <= np.percentile(valid, 5) and np.percentile(valid, 95) <= 20_000
    colour = cv2.imread(str(colour_files[0]), cv2.IMREAD_UNCHANGED)
    assert colour.shape == (HEIGHT, WIDTH, 3) and colour.std() > 0


def test_ply_cloud_has_coloured_finite_points(demo):
    _, out, _ = demo
    plys = list(out.glob('cloud_frame_*.ply'))
    assert len(plys) == 1
    points, colours, comments = read_ply(plys[0])
    assert 0.9 * WIDTH * HEIGHT < len(points) <= WIDTH * HEIGHT
    assert np.isfinite(points).all() and (points[:, 2] > 0).all()
    assert colours is not None and colours.std() > 0
    assert any('ppd_ros' in c for c in comments)


def test_comparison_picture_has_two_rows_of_three_panels(demo):
    _, out, _ = demo
    picture = cv2.imread(str(out / 'comparison.png'))
    assert picture is not None
    assert picture.shape[1] >= 3 * WIDTH and picture.shape[0] >= 2 * HEIGHT
    assert picture.std() > 0


def test_missing_checkpoint_is_one_clear_line(tmp_path, capsys):
    missing = tmp_path / 'no_such_model.safetensors'
    assert main(['--out', str(tmp_path / 'out'), '--checkpoint', str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(missing) in err and 'models/tiny_ppd.safetensors' in err
    assert not (tmp_path / 'out').exists()


def test_demo_script_runs_ppd_demo(repo_root, tmp_path):
    """scripts/demo.sh reaches ppd-demo (checked through the missing-checkpoint exit)."""
    missing = tmp_path / 'no_such_model.safetensors'
    result = subprocess.run(['bash', str(repo_root / 'scripts' / 'demo.sh'), '--checkpoint',
                             str(missing), '--out', str(tmp_path / 'out')],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"ppd-demo: error: model checkpoint '{missing}' not found" in result.stderr


def test_a_foreign_non_empty_folder_is_left_alone(tmp_path, capsys):
    (tmp_path / 'bag').mkdir()
    (tmp_path / 'bag' / 'precious.txt').write_text('keep me')
    assert main(['--out', str(tmp_path), '--checkpoint', str(Path(__file__))]) == 2
    assert 'not a ppd-demo output folder' in capsys.readouterr().err
    assert (tmp_path / 'bag' / 'precious.txt').read_text() == 'keep me'
