"""Pinhole intrinsics, unprojection and the depth_image_proc PointCloud2 layout."""
import math

import numpy as np
import pytest

from ppd_ros.geometry.camera_model import (CameraModelError, camera_from_horizontal_fov,
                                           camera_from_info_fields)
from ppd_ros.geometry.pointcloud_layout import (POINTFIELD_FLOAT32, XYZ_LAYOUT, XYZRGB_LAYOUT,
                                                CloudBuffer, build_cloud, decode_cloud)
from ppd_ros.geometry.unproject import decimated_shape, ray_table, unproject

W, H = 64, 48
K = [50.0, 0.0, 31.2, 0.0, 52.0, 23.7, 0.0, 0.0, 1.0]
P = [50.0, 0.0, 31.2, -5.0, 0.0, 52.0, 23.7, 0.0, 0.0, 0.0, 1.0, 0.0]


def _camera(k=K, p=P, width=W, height=H):
    return camera_from_info_fields(k, p, width, height)


def test_fronto_parallel_plane_unprojects_to_z_2():
    cam = _camera()
    xyz = unproject(np.full((H, W), 2.0, np.float32), cam)
    assert xyz.shape == (H, W, 3) and xyz.dtype == np.float32
    np.testing.assert_allclose(xyz[..., 2], 2.0, atol=1e-6)
    # x right, y down: pixel (u, v) -> ((u - cx) Z / fx, (v - cy) Z / fy)
    v, u = np.mgrid[0:H, 0:W]
    np.testing.assert_allclose(xyz[..., 0], (u - cam.cx) * 2.0 / cam.fx, atol=1e-5)
    np.testing.assert_allclose(xyz[..., 1], (v - cam.cy) * 2.0 / cam.fy, atol=1e-5)


def test_tilted_plane_unprojects_onto_that_plane():
    cam = _camera()
    # plane n . X = d with normal tilted about both axes; depth along each pixel's ray
    n = np.array([0.3, -0.2, 1.0])
    d = 3.0
    v, u = np.mgrid[0:H, 0:W]
    rays = np.stack([(u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, np.ones((H, W))], axis=-1)
    depth = d / (rays @ n)
    xyz = unproject(depth.astype(np.float32), cam).astype(np.float64)
    distance_m = np.abs(xyz @ n - d) / np.linalg.norm(n)
    assert np.max(distance_m) < 1e-5
    np.testing.assert_allclose(xyz, rays * depth[..., None], atol=1e-5)


def test_invalid_depth_gives_nan_points():
    depth = np.full((H, W), 1.5, np.float32)
    depth[0, 0], depth[1, 1], depth[2, 2], depth[3, 3] = np.nan, 0.0, -1.0, np.inf
    xyz = unproject(depth, _camera())
    for i in range(4):
        assert np.all(np.isnan(xyz[i, i]))
    assert np.all(np.isfinite(xyz[4:]))


def test_stride_samples_pixel_grid_with_full_resolution_intrinsics():
    cam = _camera()
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 5.0, (H, W)).astype(np.float32)
    full = unproject(depth, cam)
    for stride in (2, 3, 5):
        dec = unproject(depth, cam, stride=stride)
        assert dec.shape[:2] == decimated_shape(H, W, stride) == (math.ceil(H / stride),
                                                                   math.ceil(W / stride))
        np.testing.assert_array_equal(dec, full[::stride, ::stride])


def test_ray_table_cached_per_size_k_and_stride():
    cam = _camera()
    assert ray_table(cam, 2) is ray_table(_camera(), 2)
    assert ray_table(cam, 1) is not ray_table(cam, 2)
    assert ray_table(cam.scaled_to(32, 24)) is not ray_table(cam)


def test_unproject_rejects_size_mismatch():
    with pytest.raises(ValueError, match='64x48'):
        unproject(np.ones((10, 10), np.float32), _camera())


def test_scaled_intrinsics_project_points_onto_scaled_pixels():
    cam = _camera()
    rng = np.random.default_rng(1)
    pts = np.column_stack([rng.uniform(-1, 1, 50), rng.uniform(-1, 1, 50), rng.uniform(1, 4, 50)])
    uv = cam.project(pts)
    for out_w, out_h in ((32, 24), (128, 96), (100, 30)):
        sx, sy = out_w / W, out_h / H
        scaled = cam.scaled_to(out_w, out_h)
        assert (scaled.width, scaled.height) == (out_w, out_h)
        # pixel-centre convention: u' = (u + 0.5) sx - 0.5
        expected = np.column_stack([(uv[:, 0] + 0.5) * sx - 0.5, (uv[:, 1] + 0.5) * sy - 0.5])
        np.testing.assert_allclose(scaled.project(pts), expected, atol=1e-9)
        # K and P agree: projecting with each matrix lands on the same scaled pixel
        for m in (scaled.k, scaled.p[:, :3]):
            h = pts @ m.T
            np.testing.assert_allclose(h[:, :2] / h[:, 2:], expected, atol=1e-9)
        assert scaled.p[0, 3] == pytest.approx(P[3] * sx)  # Tx = -fx' B scales with fx
        assert scaled.p[1, 3] == pytest.approx(P[7] * sy)


def test_scaling_to_the_same_size_is_identity():
    cam = _camera()
    assert cam.scaled_to(W, H) is cam


def test_zero_p_falls_back_to_k():
    cam = _camera(p=[0.0] * 12)
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (50.0, 52.0, 31.2, 23.7)


@pytest.mark.parametrize('k, p, size, match', [
    ([math.nan] + K[1:], P, (W, H), 'NaN'),
    (K, P[:11] + [math.inf], (W, H), 'NaN'),
    (K[:8], P, (W, H), '9 K'),
    ([0.0] * 9, [0.0] * 12, (W, H), 'focal'),
    (K, P, (0, H), 'size'),
])
def test_invalid_camera_info_rejected(k, p, size, match):
    with pytest.raises(CameraModelError, match=match):
        camera_from_info_fields(k, p, *size)


def test_default_intrinsics_from_horizontal_fov():
    cam = camera_from_horizontal_fov(640, 480, 90.0)
    assert cam.fx == pytest.approx(320.0) and cam.fy == pytest.approx(320.0)
    assert (cam.cx, cam.cy) == (319.5, 239.5)
    # the left and right image edges lie at +-45 degrees
    u_edges = cam.project(np.array([[-1.0, 0.0, 1.0], [1.0, 0.0, 1.0]]))[:, 0]
    np.testing.assert_allclose(u_edges, [-0.5, 639.5])
    with pytest.raises(CameraModelError):
        camera_from_horizontal_fov(640, 480, 180.0)


def test_layouts_match_depth_image_proc():
    assert XYZ_LAYOUT.point_step == 16
    assert XYZ_LAYOUT.fields == (('x', 0, POINTFIELD_FLOAT32, 1), ('y', 4, POINTFIELD_FLOAT32, 1),
                                 ('z', 8, POINTFIELD_FLOAT32, 1))
    assert XYZRGB_LAYOUT.point_step == 32
    assert XYZRGB_LAYOUT.fields[3] == ('rgb', 16, POINTFIELD_FLOAT32, 1)


def test_cloud_bytes_decode_to_same_xyz_and_rgb():
    rng = np.random.default_rng(2)
    xyz = rng.normal(size=(5, 7, 3)).astype(np.float32)
    xyz[1, 2] = np.nan
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    cloud = build_cloud(xyz, rgb)
    assert (cloud.height, cloud.width, cloud.point_step, cloud.row_step) == (5, 7, 32, 7 * 32)
    assert cloud.data.dtype == np.uint8 and cloud.data.size == 5 * 7 * 32
    out_xyz, out_rgb = decode_cloud(cloud.fields, cloud.point_step, 5, 7, cloud.data.tobytes())
    np.testing.assert_array_equal(out_xyz, xyz)  # NaN positions compare equal
    np.testing.assert_array_equal(out_rgb, rgb)
    # PCL byte order of the first point's colour: b, g, r, 0; padding bytes are zero
    point = cloud.data[:32]
    assert list(point[16:20]) == [rgb[0, 0, 2], rgb[0, 0, 1], rgb[0, 0, 0], 0]
    assert not point[12:16].any() and not point[20:32].any()


def test_cloud_without_rgb_is_16_byte_points():
    xyz = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    cloud = build_cloud(xyz)
    assert cloud.point_step == 16 and cloud.data.size == 2 * 3 * 16
    out_xyz, out_rgb = decode_cloud(cloud.fields, 16, 2, 3, cloud.data)
    np.testing.assert_array_equal(out_xyz, xyz)
    assert out_rgb is None


def test_unproject_writes_straight_into_cloud_buffer():
    cam = _camera()
    depth = np.full((H, W), 2.0, np.float32)
    buf = CloudBuffer(*decimated_shape(H, W, 2), with_rgb=True)
    unproject(depth, cam, stride=2, out=buf.xyz)
    xyz, _ = decode_cloud(buf.layout.fields, 32, buf.height, buf.width, buf.data)
    np.testing.assert_array_equal(xyz, unproject(depth, cam, stride=2))


def test_packed_rgb_reads_as_uint32_0x00rrggbb():
    rgb = np.array([[[0x12, 0x34, 0x56]]], np.uint8)
    cloud = build_cloud(np.zeros((1, 1, 3), np.float32), rgb)
    assert cloud.data[16:20].view('<u4')[0] == 0x00123456


def test_rgb_rejected_for_xyz_only_layout():
    with pytest.raises(ValueError, match='no rgb'):
        CloudBuffer(2, 2, with_rgb=False).set_rgb(np.zeros((2, 2, 3), np.uint8))


def test_cloud_bytes_read_as_numpy_structured_array():
    rgb = np.array([[[1, 2, 3]], [[250, 251, 252]]], dtype=np.uint8)  # 2 x 1: single column
    xyz = np.array([[[1.0, 2.0, 3.0]], [[np.nan] * 3]], dtype=np.float32)
    cloud = build_cloud(xyz, rgb)
    points = np.frombuffer(cloud.data, dtype=XYZRGB_LAYOUT.dtype)
    assert points.dtype.names == ('x', 'y', 'z', 'rgb') and points.dtype.itemsize == 32
    assert (points['x'][0], points['y'][0], points['z'][0]) == (1.0, 2.0, 3.0)
    assert np.isnan(points['z'][1])
    assert list(points['rgb']) == [0x010203, 0xFAFBFC]
