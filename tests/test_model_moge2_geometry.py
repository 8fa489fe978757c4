"""MoGe-2 infer geometry: focal / shift recovery, intrinsics, metric depth, mask, known cameras."""
import math

import numpy as np
import pytest
import torch

from ppd_ros.model.moge2 import build_moge2
from ppd_ros.model.moge2_geometry import (KnownIntrinsics, depth_to_points,
                                          geometry_from_outputs, image_plane_uv, infer,
                                          intrinsics_from_focal, recover_focal_shift)

H, W = 48, 80


def scene_points(camera: KnownIntrinsics, height=H, width=W):
    """Camera-frame points of a smooth depth map seen through ``camera``."""
    rows = torch.arange(height, dtype=torch.float32)[:, None]
    cols = torch.arange(width, dtype=torch.float32)[None, :]
    z = 2 + 0.5 * torch.sin(rows / 7) + 0.02 * cols
    x = (cols - camera.cx) / camera.fx * z
    y = (rows - camera.cy) / camera.fy * z
    return torch.stack((x, y, z), dim=-1)[None]


def affine_outputs(points, shift, scale=1.0, mask=None):
    """What a perfect network predicts: points with z shifted by -shift, a metric scale."""
    affine = points.clone()
    affine[..., 2] -= shift
    out = {'points': affine / scale, 'metric_scale': torch.tensor([scale])}
    if mask is not None:
        out['mask'] = mask
    return out


@pytest.mark.parametrize('fov', [45.0, 70.0, 100.0])
def test_focal_and_shift_are_recovered_from_consistent_points(fov):
    camera = KnownIntrinsics.from_fov_x(fov, W, H)
    points = scene_points(camera)
    out = geometry_from_outputs(affine_outputs(points, shift=0.3, scale=2.0))
    K = out.intrinsics[0].numpy()
    assert np.allclose(K, camera.normalised(W, H), rtol=1e-5)
    assert abs(out.shift.item() * 2.0 - 0.3) < 1e-5         # shift in network units
    assert torch.allclose(out.depth[0], points[0, ..., 2], rtol=1e-5)
    assert torch.allclose(out.points[0], points[0], rtol=1e-4, atol=1e-5)
    # the focal is in units of half the image diagonal
    assert math.isclose(out.focal.item(), 2 * camera.fx / math.hypot(W, H), rel_tol=1e-6)
    assert out.intrinsics_estimated


def test_intrinsics_from_focal_formula():
    K = intrinsics_from_focal(torch.tensor([1.2]), W / H)[0]
    ar = W / H
    assert math.isclose(K[0, 0].item(), 0.6 * math.sqrt(1 + ar * ar) / ar, rel_tol=1e-6)
    assert math.isclose(K[1, 1].item(), 0.6 * math.sqrt(1 + ar * ar), rel_tol=1e-6)
    assert K[0, 2].item() == K[1, 2].item() == 0.5


def test_known_camera_solves_only_the_shift_and_keeps_its_intrinsics():
    true = KnownIntrinsics(70.0, 75.0, 41.0, 22.5)   # fx != fy, off-centre principal point
    points = scene_points(true)
    out = geometry_from_outputs(affine_outputs(points, shift=-0.2), camera=true)
    assert np.array_equal(out.intrinsics[0].numpy(), true.normalised(W, H))
    assert abs(out.shift.item() + 0.2) < 1e-5
    assert torch.allclose(out.points[0], points[0], rtol=1e-4, atol=1e-5)
    assert not out.intrinsics_estimated
    # estimating a centred camera instead misses these intrinsics
    estimated = geometry_from_outputs(affine_outputs(points, shift=-0.2))
    assert not np.allclose(estimated.intrinsics[0].numpy(), true.normalised(W, H), rtol=1e-3)


def test_fov_x_path_equals_the_centred_known_camera():
    camera = KnownIntrinsics.from_fov_x(60.0, W, H)
    wrong_guess = scene_points(KnownIntrinsics.from_fov_x(75.0, W, H))  # inconsistent points
    by_fov = geometry_from_outputs(affine_outputs(wrong_guess, 0.1), fov_x=60.0)
    by_camera = geometry_from_outputs(affine_outputs(wrong_guess, 0.1), camera=camera)
    assert abs(by_fov.shift.item() - by_camera.shift.item()) < 1e-6
    assert torch.allclose(by_fov.intrinsics, by_camera.intrinsics, rtol=1e-6)
    with pytest.raises(ValueError, match='not both'):
        geometry_from_outputs(affine_outputs(wrong_guess, 0.1), fov_x=60.0, camera=camera)


def test_mask_threshold_and_infinite_depth_outside():
    camera = KnownIntrinsics.from_fov_x(70.0, W, H)
    mask = torch.full((1, H, W), 0.9)
    mask[0, :, :10] = 0.2
    mask[0, 0, 20] = 0.5          # exactly 0.5 is not > 0.5
    out = geometry_from_outputs(affine_outputs(scene_points(camera), 0.0, mask=mask))
    assert not out.mask[0, :, :10].any() and not out.mask[0, 0, 20] and out.mask[0, 5, 30]
    assert torch.isinf(out.depth[0][~out.mask[0]]).all()
    assert torch.isfinite(out.depth[0][out.mask[0]]).all()
    kept = geometry_from_outputs(affine_outputs(scene_points(camera), 0.0, mask=mask),
                                 apply_mask=False)
    assert torch.isfinite(kept.depth).all()


def test_depth_behind_the_camera_after_the_shift_is_masked():
    camera = KnownIntrinsics.from_fov_x(70.0, W, H)
    points = scene_points(camera)
    out = geometry_from_outputs(affine_outputs(points, 0.0), camera=camera)
    assert out.mask.all()
    points[0, :4, :4, 2] = -1.0     # a few points behind the camera stay masked after the shift
    out = geometry_from_outputs({'points': points}, camera=camera)
    assert not out.mask[0, :4, :4].any() and out.mask[0, 10:, 10:].all()


def test_fewer_than_two_samples_give_focal_one_and_no_shift():
    points = scene_points(KnownIntrinsics.from_fov_x(70.0, W, H))
    focal, shift = recover_focal_shift(points, torch.zeros(1, H, W, dtype=torch.bool))
    assert focal.item() == 1.0 and shift.item() == 0.0


def test_solver_stops_early_as_the_reference_does():
    # Noisy points: MINPACK with ftol 1e-3 stops after a step or two, not at the least-squares
    # minimum that a tight tolerance reaches; recover_focal_shift must return the former.
    from scipy.optimize import least_squares
    rng = np.random.default_rng(0)
    uv = image_plane_uv(64, 64)                       # a 64 x 64 map is its own subsample
    z = 2 + torch.from_numpy(rng.normal(0, 0.5, (64, 64)).astype(np.float32))
    xy = uv / 1.2 * (z[..., None] + 0.4)
    xy = xy + torch.from_numpy(rng.normal(0, 0.5, xy.shape).astype(np.float32))
    points = torch.cat((xy, z[..., None]), dim=-1)[None]
    focal, shift = recover_focal_shift(points, torch.ones(1, 64, 64, dtype=torch.bool))
    xy_np, z_np, uv_np = xy.reshape(-1, 2).numpy(), z.reshape(-1).numpy(), uv.reshape(-1, 2).numpy()

    def residuals(s):
        p = xy_np / (z_np + s)[:, None]
        return ((p * uv_np).sum() / (p * p).sum() * p - uv_np).ravel()

    loose = least_squares(residuals, x0=0.0, method='lm', ftol=1e-3).x[0]
    tight = least_squares(residuals, x0=0.0, method='lm', ftol=1e-12, xtol=1e-12).x[0]
    assert shift.item() == np.float32(loose)
    assert abs(loose - tight) > 1e-2
    p = xy_np / (z_np + np.float32(loose))[:, None]
    assert math.isclose(focal.item(), (p * uv_np).sum() / np.square(p).sum(), rel_tol=1e-6)


def test_depth_to_points_uses_pixel_centres():
    K = torch.tensor([[[0.8, 0, 0.5], [0, 1.2, 0.5], [0, 0, 1]]])
    points = depth_to_points(torch.full((1, 4, 6), 2.0), K)
    u = (np.arange(6) + 0.5) / 6
    assert np.allclose(points[0, 0, :, 0].numpy(), (u - 0.5) / 0.8 * 2.0, atol=1e-6)
    assert np.allclose(points[0, ..., 2].numpy(), 2.0)


def test_infer_runs_the_network_at_its_token_budget():
    torch.manual_seed(0)
    model = build_moge2('moge2_tiny').eval()
    image = torch.rand(3, 96, 128)
    out = infer(model, image)
    assert out.depth.shape == (1, 96, 128) and out.intrinsics.shape == (1, 3, 3)
    assert out.metric_scale.shape == (1,) and out.normal is None
    with torch.no_grad():
        direct = model(image[None], grid=(6, 8))     # 48 tokens at 4:3 -> 6 x 8
    expected = geometry_from_outputs(direct)
    assert torch.equal(out.depth, expected.depth)
    with pytest.raises(ValueError, match='precision'):
        infer(model, image, precision='fp64')
