"""Depth upsampling to the image size: edge-aware (default), nearest, bilinear (reference)."""
import numpy as np
import pytest
import torch

from ppd_ros.evaluation.flying_pixels import flying_pixel_ratio
from ppd_ros.geometry.depth_upsampling import UPSAMPLING_METHODS, stepped_cells, upsample_depth
from ppd_ros.pipeline.depth_pipeline import resize_nearest
from ppd_ros.synthetic import generate_frame
from ros_helpers import tiny_checkpoint  # noqa: F401 (fixture)


def relative_depth(depth_m):
    """PPD's normalisation of metric depth (log(1 + d) over its 2nd..98th percentiles) and the
    way back to metres."""
    log_depth = np.log1p(depth_m)
    q2, q98 = np.nanquantile(log_depth, [0.02, 0.98])
    relative = ((log_depth - q2) / (q98 - q2)).astype(np.float32)
    return relative, lambda r: np.expm1(r * (q98 - q2) + q2)


def test_exact_low_resolution_depth_upsampled_2_5x_has_no_flying_pixels():
    """An exact 128 x 96 render brought to 320 x 240: the default (colour-guided edge-aware)
    upsampler leaves <= 1 % flying pixels at the depth edges; bilinear mixes surfaces."""
    ratios = {'edge_aware': [], 'bilinear': []}
    for seed in (1_000_000, 1_000_001, 1_000_002, 1_000_003):
        low = generate_frame(seed, 128, 96)
        high = generate_frame(seed, 320, 240)
        far = np.nanmax(np.where(low.valid, low.depth, np.nan))
        relative, to_metres = relative_depth(np.where(low.valid, low.depth, far))
        gt = np.where(high.valid, high.depth, np.nan)
        intr = high.intrinsics
        for method in ratios:
            up = upsample_depth(relative, 240, 320, method, guide=high.rgb)
            flying = flying_pixel_ratio(to_metres(up), gt, (intr.fx, intr.fy, intr.cx, intr.cy))
            ratios[method].append(flying.ratio)
    assert np.mean(ratios['edge_aware']) <= 0.01
    assert 0.2 <= np.mean(ratios['bilinear']) <= 0.35
    assert upsample_depth(relative, 240, 320).shape == (240, 320)   # the default method


def test_bilinear_is_the_reference_interpolation():
    low = np.random.default_rng(0).random((12, 16)).astype(np.float32)
    expected = torch.nn.functional.interpolate(torch.from_numpy(low)[None, None], size=(30, 40),
                                               mode='bilinear', align_corners=False)[0, 0]
    np.testing.assert_allclose(upsample_depth(low, 30, 40, 'bilinear'), expected.numpy(),
                               atol=1e-6)


def test_nearest_takes_the_source_pixel_under_each_centre():
    low = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(upsample_depth(low, 7, 10, 'nearest'),
                                  resize_nearest(low, 10, 7))


def test_edge_aware_equals_bilinear_on_slanted_planes():
    rows, cols = np.mgrid[0:24, 0:32].astype(np.float32)
    plane = 0.2 + 0.03 * rows + 0.05 * cols          # steep, but no step
    np.testing.assert_allclose(upsample_depth(plane, 60, 80),
                               upsample_depth(plane, 60, 80, 'bilinear'), atol=1e-6)
    assert len(stepped_cells(plane, 0.02)[0]) == 0


def step_scene(slope=0.0):
    """Near surface (0.2, optionally slanted) left of column 6 of 12, far one (0.8) right."""
    rows, cols = np.mgrid[0:8, 0:12].astype(np.float32)
    return np.where(cols < 6, 0.2 + slope * rows, 0.8).astype(np.float32)


def test_edge_aware_never_puts_a_pixel_between_two_surfaces():
    low = step_scene(slope=0.01)
    up = upsample_depth(low, 32, 48)
    near = up < 0.5
    source_row = np.clip((np.arange(32) + 0.5) / 4 - 0.5, 0, 7)
    plane = np.broadcast_to((0.2 + 0.01 * source_row)[:, None], up.shape)
    np.testing.assert_allclose(up[near], plane[near], atol=2e-4)        # the slant is kept
    assert np.all(np.abs(up[~near] - 0.8) < 1e-6)
    mixed = upsample_depth(low, 32, 48, 'bilinear')
    assert np.sum((mixed > 0.3) & (mixed < 0.7)) >= 32                    # bilinear does mix


def test_colour_decides_where_the_step_falls_inside_a_cell():
    low = step_scene()
    # the low-res step lies between source columns 5 and 6 (output columns 22..25 at 4x);
    # the colour image puts the object boundary at output column 25
    guide = np.zeros((32, 48, 3), np.uint8)
    guide[:, 25:] = 200
    up = upsample_depth(low, 32, 48, guide=guide)
    assert np.all(up[:, :25] == pytest.approx(0.2)) and np.all(up[:, 25:] == pytest.approx(0.8))
    guide[:, 22:] = 200   # moved: boundary at column 22
    up = upsample_depth(low, 32, 48, guide=guide)
    assert np.all(up[:, :22] == pytest.approx(0.2)) and np.all(up[:, 22:] == pytest.approx(0.8))
    # no colour edge: each pixel takes the nearer source pixel's surface
    unguided = upsample_depth(low, 32, 48)
    np.testing.assert_array_equal(unguided < 0.5, upsample_depth(low, 32, 48, 'nearest') < 0.5)


def test_noise_is_upsampled_nearest():
    """An untrained network's output has steps everywhere: nearest (never a blend) instead of
    per-pixel edge handling."""
    noise = np.random.default_rng(1).random((24, 32)).astype(np.float32)
    np.testing.assert_array_equal(upsample_depth(noise, 60, 80),
                                  upsample_depth(noise, 60, 80, 'nearest'))


def test_only_the_steps_near_the_given_source_pixels_are_treated():
    low = step_scene()
    near = np.zeros(low.shape, bool)
    near[:4] = True                       # the top half of the step only
    up = upsample_depth(low, 32, 48, near=near)
    bilinear = upsample_depth(low, 32, 48, 'bilinear')
    assert np.all((up[:14] < 0.21) | (up[:14] > 0.79))
    np.testing.assert_allclose(up[20:], bilinear[20:], atol=1e-5)


def test_arguments_are_checked():
    low = np.zeros((4, 4), np.float32)
    assert set(UPSAMPLING_METHODS) == {'edge_aware', 'nearest', 'bilinear'}
    with pytest.raises(ValueError, match='upsampling method'):
        upsample_depth(low, 8, 8, 'bicubic')
    with pytest.raises(ValueError, match='guide'):
        upsample_depth(low, 8, 8, guide=np.zeros((4, 4, 3), np.uint8))
    same = upsample_depth(low, 4, 4)
    assert same is not low and same.shape == (4, 4)
    one_row = upsample_depth(np.array([[0.0, 1.0]], np.float32), 3, 6)
    assert one_row.shape == (3, 6) and np.all(np.isfinite(one_row))


def test_the_predictor_upsamples_with_the_selected_method():
    from ppd_ros.model import DepthPredictor, build_model
    torch.manual_seed(0)
    model = build_model('tiny')
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    predictor = DepthPredictor(model, device='cpu')
    assert predictor.upsampling == 'edge_aware'
    rgb = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    default = predictor.predict(rgb, steps=1, seed=0)
    np.testing.assert_array_equal(
        default.depth, upsample_depth(default.network_depth, 120, 160, 'edge_aware', rgb))
    for method in ('nearest', 'bilinear'):
        predictor.upsampling = method
        pred = predictor.predict(rgb, steps=1, seed=0)
        np.testing.assert_array_equal(pred.network_depth, default.network_depth)
        np.testing.assert_array_equal(pred.depth,
                                      upsample_depth(pred.network_depth, 120, 160, method))
    with pytest.raises(ValueError, match='upsampling'):
        predictor.upsampling = 'cubic'


def test_ppd_predict_upsampling_option(tmp_path, tiny_checkpoint):
    import cv2

    from ppd_ros.cli.predict import main
    from ppd_ros.model import load_predictor
    image = np.random.default_rng(3).integers(0, 256, (150, 200, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / 'a.png'), image)
    predictor = load_predictor(str(tiny_checkpoint), device='cpu', upsampling='nearest')
    expected = predictor.predict(image[:, :, ::-1].copy(), steps=1, seed=0).depth
    assert main([str(tmp_path / 'a.png'), '--checkpoint', str(tiny_checkpoint), '--outdir',
                 str(tmp_path / 'out'), '--device', 'cpu', '--steps', '1',
                 '--upsampling', 'nearest']) == 0
    np.testing.assert_array_equal(np.load(tmp_path / 'out' / 'a_relative_depth.npy'), expected)
