"""ppd-predict outputs (npy, side-by-side PNG, PLY), its errors, and the colour/PLY helpers."""
import subprocess
import sys

import cv2
import matplotlib
import numpy as np
import pytest
import torch

from ppd_ros.cli.predict import main
from ppd_ros.evaluation.report_figures import is_ppd_ros_picture
from ppd_ros.geometry.colorize import SPECTRAL_LUT, colorize_depth
from ppd_ros.geometry.ply import read_ply, write_ply
from ppd_ros.model import build_model, save_checkpoint


def test_spectral_lut_matches_matplotlib():
    expected = (matplotlib.colormaps['Spectral'](np.arange(256))[:, :3] * 255).astype(np.uint8)
    np.testing.assert_array_equal(SPECTRAL_LUT, expected)


def test_colorize_near_is_red_far_is_blue_and_nan_is_invalid():
    depth = np.array([[0.0, 1.0, np.nan], [0.5, np.inf, 2.0]])
    rgb = colorize_depth(depth, invalid_color=(1, 2, 3))
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, 0], SPECTRAL_LUT[0])      # min -> red end
    np.testing.assert_array_equal(rgb[1, 2], SPECTRAL_LUT[255])    # max -> blue end
    np.testing.assert_array_equal(rgb[1, 0], SPECTRAL_LUT[63])     # 0.25 * 255 truncated
    assert rgb[0, 0, 0] > rgb[0, 0, 2] and rgb[1, 2, 2] > rgb[1, 2, 0]
    assert rgb[0, 2].tolist() == [1, 2, 3] and rgb[1, 1].tolist() == [1, 2, 3]
    clipped = colorize_depth(depth, vmin=0.0, vmax=1.0)
    np.testing.assert_array_equal(clipped[1, 2], SPECTRAL_LUT[255])
    assert colorize_depth(np.full((2, 2), 5.0)).tolist() == [[SPECTRAL_LUT[0].tolist()] * 2] * 2


def test_ply_round_trip(tmp_path):
    points = np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32)
    colors = np.random.default_rng(1).integers(0, 256, (10, 3), dtype=np.uint8)
    path = write_ply(tmp_path / 'c.ply', points, colors, comments=['hello world'])
    got_points, got_colors, comments = read_ply(path)
    np.testing.assert_array_equal(got_points, points)
    np.testing.assert_array_equal(got_colors, colors)
    assert comments == ['hello world']
    assert path.stat().st_size == len(path.read_bytes().split(b'end_header\n')[0]) + 11 + 10 * 15


def has_depth_colour_bar(rgb: np.ndarray) -> bool:
    """A row runs through most of the Spectral colour map in order: a colour bar, not a
    depth map (whose rows jump between colours)."""
    lut = SPECTRAL_LUT.astype(np.int32)
    for row in rgb[::2].astype(np.int32):
        distance = np.abs(row[:, None, :] - lut[None]).sum(axis=2)
        index, close = distance.argmin(axis=1), distance.min(axis=1) <= 12
        start = None
        for x in range(1, len(row)):
            in_order = close[x] and close[x - 1] and -2 <= index[x] - index[x - 1] <= 8
            if in_order and start is None:
                start = x - 1
            elif not in_order and start is not None:
                if index[x - 1] - index[start] >= 200:
                    return True
                start = None
    return False


@pytest.fixture(scope='module')
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model('tiny')
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return save_checkpoint(model, tmp_path_factory.mktemp('ckpt') / 'tiny.safetensors')


def test_predict_folder_writes_npy_png_and_relative_ply(tmp_path, tiny_checkpoint):
    images = tmp_path / 'images'
    images.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(images / 'a.png'), rng.integers(0, 256, (60, 80, 3), dtype=np.uint8))
    cv2.imwrite(str(images / 'b.jpg'), rng.integers(0, 256, (50, 40, 3), dtype=np.uint8))
    (images / 'notes.txt').write_text('not an image')
    out = tmp_path / 'out'
    assert main([str(images), '--checkpoint', str(tiny_checkpoint), '--outdir', str(out),
                 '--device', 'cpu', '--ply', '--steps', '2']) == 0
    depth = np.load(out / 'a_relative_depth.npy')
    assert depth.shape == (60, 80) and depth.dtype == np.float32
    picture = cv2.cvtColor(cv2.imread(str(out / 'a_depth.png')), cv2.COLOR_BGR2RGB)
    assert has_depth_colour_bar(picture) and is_ppd_ros_picture(out / 'a_depth.png')
    points, colors, comments = read_ply(out / 'a_relative.ply')
    assert len(points) == 60 * 80 and colors is not None
    assert any('relative' in c for c in comments)
    np.testing.assert_allclose(np.sort(points[:, 2]), np.sort(np.exp(depth).ravel()), rtol=1e-5)
    assert np.load(out / 'b_relative_depth.npy').shape == (50, 40)


def test_writing_into_the_photos_folder_never_touches_a_photo(tmp_path, tiny_checkpoint):
    photos = tmp_path / 'photos'
    photos.mkdir()
    cv2.imwrite(str(photos / 'chelsea.png'), np.full((24, 32, 3), 90, dtype=np.uint8))
    original = (photos / 'chelsea.png').read_bytes()
    args = ['--checkpoint', str(tiny_checkpoint), '--outdir', str(photos), '--device', 'cpu',
            '--steps', '1']
    assert main([str(photos / 'chelsea.png'), *args]) == 0
    assert (photos / 'chelsea.png').read_bytes() == original
    assert sorted(p.name for p in photos.iterdir()) == [
        'chelsea.png', 'chelsea_depth.png', 'chelsea_relative_depth.npy']
    # the folder again: its own picture is not taken for a photo, the photo stays as it was
    assert main([str(photos), *args]) == 0
    assert (photos / 'chelsea.png').read_bytes() == original
    assert len(list(photos.iterdir())) == 3


def test_unreadable_image_is_reported_and_the_rest_still_written(tmp_path, tiny_checkpoint,
                                                                   capsys):
    images = tmp_path / 'images'
    images.mkdir()
    (images / 'a_broken.png').write_bytes(b'not a png at all')
    cv2.imwrite(str(images / 'b.png'), np.full((32, 48, 3), 90, dtype=np.uint8))
    out = tmp_path / 'out'
    assert main([str(images), '--checkpoint', str(tiny_checkpoint), '--outdir', str(out),
                 '--device', 'cpu', '--steps', '1']) == 1
    err = capsys.readouterr().err
    assert 'a_broken.png' in err and 'skipped' in err and 'Traceback' not in err
    assert np.load(out / 'b_relative_depth.npy').shape == (32, 48)
    assert not (out / 'a_broken_relative_depth.npy').exists()


def test_metric_fit_and_intrinsics_give_a_metric_cloud(tmp_path, tiny_checkpoint):
    image = tmp_path / 'c.png'
    cv2.imwrite(str(image), np.full((32, 48, 3), 90, dtype=np.uint8))
    out = tmp_path / 'out'
    assert main([str(image), '--checkpoint', str(tiny_checkpoint), '--outdir', str(out),
                 '--device', 'cpu', '--ply', '--metric-fit', '2.0', '1.0',
                 '--fx', '40', '--fy', '40', '--cx', '0', '--cy', '0']) == 0
    depth = np.load(out / 'c_relative_depth.npy')
    points, _, comments = read_ply(out / 'c_metric.ply')
    z = np.expm1(2.0 * depth.astype(np.float64) + 1.0)
    valid = z > 0                                      # non-positive metric depth is dropped
    assert 0 < valid.sum() < z.size
    u, v = np.meshgrid(np.arange(48), np.arange(32))
    np.testing.assert_allclose(points[:, 2], z[valid], rtol=1e-5)
    # X = (u - cx) Z / fx, Y = (v - cy) Z / fy
    np.testing.assert_allclose(points[:, 0], (u / 40 * z)[valid], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(points[:, 1], (v / 40 * z)[valid], rtol=1e-5, atol=1e-6)
    assert any('metres' in c for c in comments)


def test_missing_checkpoint_is_one_clear_line_with_exit_code_2(tmp_path):
    image = tmp_path / 'x.png'
    cv2.imwrite(str(image), np.zeros((16, 16, 3), dtype=np.uint8))
    missing = tmp_path / 'models' / 'ppd.pth'
    result = subprocess.run([sys.executable, '-m', 'ppd_ros.cli.predict', str(image),
                             '--dit-checkpoint', str(missing), '--outdir', str(tmp_path / 'o')],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in result.stderr
    assert str(missing) in lines[0] and 'ppd-fetch' in lines[0]


def test_model_and_cli_import_no_rclpy():
    code = ('import sys, ppd_ros.model, ppd_ros.model.fetch, ppd_ros.cli.predict; '
            'sys.exit(int(any(m.split(".")[0] == "rclpy" for m in sys.modules)))')
    assert subprocess.run([sys.executable, '-c', code], timeout=120).returncode == 0


def test_moge_writes_the_authors_metric_cloud_with_estimated_or_given_intrinsics(tmp_path):
    """--moge with the shipped tiny PPD and tiny MoGe-2: metric depth at the network size and
    the mask back-projected in metres, with MoGe-2's intrinsics or the camera's."""
    from ppd_ros.synthetic import generate_frame
    frame = generate_frame(1_000_003, 128, 96, hfov_deg=70.0)
    image = tmp_path / 'room.png'
    cv2.imwrite(str(image), cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR))
    args = [str(image), '--device', 'cpu', '--ply', '--moge', '--num-threads', '1']
    assert main([*args, '--outdir', str(tmp_path / 'est')]) == 0
    metric = np.load(tmp_path / 'est' / 'room_metric_depth.npy')
    points, colors, comments = read_ply(tmp_path / 'est' / 'room_metric.ply')
    assert metric.shape == (96, 128) and colors is not None and 0 < len(points) <= metric.size
    assert np.isfinite(points).all() and (points[:, 2] > 0).all()
    ok = frame.valid
    assert np.median(np.abs(metric[ok] - frame.depth[ok]) / frame.depth[ok]) < 0.5   # metres
    assert any('MoGe-2 estimate' in c for c in comments)
    assert any('half a pixel' in c for c in comments)
    intr = frame.intrinsics
    assert main([*args, '--outdir', str(tmp_path / 'cam'), '--fx', str(intr.fx), '--fy',
                 str(intr.fy), '--cx', str(intr.cx), '--cy', str(intr.cy)]) == 0
    _, _, comments = read_ply(tmp_path / 'cam' / 'room_metric.ply')
    assert any('the given camera' in c and f'fx {intr.fx:.3f}' in c for c in comments)


def test_moge_refuses_a_manual_metric_fit_in_one_line(tmp_path, capsys):
    image = tmp_path / 'c.png'
    cv2.imwrite(str(image), np.full((32, 48, 3), 90, dtype=np.uint8))
    assert main([str(image), '--moge', '--metric-fit', '1', '0', '--outdir',
                 str(tmp_path / 'out')]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and '--metric-fit' in err[0]


def test_samples_write_the_mean_depth_and_the_spread(tmp_path, tiny_checkpoint):
    image = tmp_path / 'a.png'
    rgb = np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    cv2.imwrite(str(image), rgb)
    out = tmp_path / 'out'
    assert main([str(image), '--checkpoint', str(tiny_checkpoint), '--outdir', str(out),
                 '--device', 'cpu', '--steps', '1', '--samples', '3']) == 0
    spread = np.load(out / 'a_spread.npy')
    assert spread.shape == (48, 64) and spread.dtype == np.float32 and np.all(spread >= 0)
    assert spread.max() > 0
    picture = cv2.imread(str(out / 'a_spread.png'))
    assert picture is not None and picture.std() > 20
    assert main([str(image), '--checkpoint', str(tiny_checkpoint), '--outdir', str(out),
                 '--samples', '0']) == 2
