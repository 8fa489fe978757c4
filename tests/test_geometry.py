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
    ([1e-300] + K[1:], [1e-300] + P[1:], (W, H), 'fx=1e-300, fy=52 are outside'),
    (K, P[:5] + [1e-30] + P[6:], (W, H), 'CameraInfo P focal lengths'),
    ([1e6] + K[1:], P, (W, H), 'CameraInfo K focal lengths'),
    (K[:2] + [1e300] + K[3:], P, (W, H), r'principal point \(1e\+300, 23.7\) lies far outside'),
    (K, P[:6] + [-60.0] + P[7:], (W, H), 'principal point'),
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


# --- fast paths vs straightforward reference implementations --------------------------------
# The references below are the plain-numpy implementations the OpenCV-assisted code replaced;
# every fast path must give the same bytes.

def _reference_unproject(depth, camera, stride=1):
    rays = ray_table(camera, stride)
    z = depth[::stride, ::stride].astype(np.float32)
    z[~(z > 0) | ~np.isfinite(z)] = np.nan
    out = np.empty(z.shape + (3,), dtype=np.float32)
    np.multiply(z, rays.x_over_z[np.newaxis, :], out=out[..., 0])
    np.multiply(z, rays.y_over_z[:, np.newaxis], out=out[..., 1])
    out[..., 2] = z
    return out


def _reference_cloud_bytes(xyz, rgb=None):
    """depth_image_proc layout written field by field with numpy."""
    h, w = xyz.shape[:2]
    step = 32 if rgb is not None else 16
    data = np.zeros(h * w * step, np.uint8)
    words = data.view('<u4').reshape(h, w, step // 4)
    words[..., :3] = np.ascontiguousarray(xyz, '<f4').view('<u4')
    if rgb is not None:
        r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
        words[..., 4] = (r << 16) | (g << 8) | b
    return data


def _reference_colorize(depth, vmin=None, vmax=None, invalid_color=(0, 0, 0)):
    from ppd_ros.geometry.colorize import SPECTRAL_LUT
    depth = np.asarray(depth, dtype=np.float64)
    valid = np.isfinite(depth)
    out = np.empty(depth.shape + (3,), dtype=np.uint8)
    out[...] = np.asarray(invalid_color, dtype=np.uint8)
    if not valid.any():
        return out
    values = depth[valid]
    lo = float(values.min()) if vmin is None else float(vmin)
    hi = float(values.max()) if vmax is None else float(vmax)
    if hi > lo:
        scaled = np.clip((values - lo) / (hi - lo) * 255.0, 0.0, 255.0)
    else:
        scaled = np.zeros_like(values)
    out[valid] = SPECTRAL_LUT[scaled.astype(np.uint8)]
    return out


def _awkward_depth(h, w, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.2, 12.0, (h, w))
    bad = rng.random((h, w))
    depth[bad < 0.03] = np.nan
    depth[(bad >= 0.03) & (bad < 0.04)] = 0.0
    depth[(bad >= 0.04) & (bad < 0.05)] = -2.5
    depth[(bad >= 0.05) & (bad < 0.055)] = np.inf
    depth[(bad >= 0.055) & (bad < 0.06)] = -np.inf
    return depth.astype(dtype)


@pytest.mark.parametrize('size', [(48, 64), (37, 53), (1, 1), (1, 9), (7, 1)])
@pytest.mark.parametrize('stride', [1, 2, 3, 5])
@pytest.mark.parametrize('awkward', [False, True])
@pytest.mark.parametrize('block_bytes', [None, 1, 700])  # one block; a row each; 2-10 rows
def test_cloud_fast_paths_match_reference_bytes(size, stride, awkward, block_bytes,
                                                monkeypatch):
    from ppd_ros.geometry import pointcloud_layout
    from ppd_ros.geometry.unproject import unproject_to_cloud
    if block_bytes is not None:
        monkeypatch.setattr(pointcloud_layout, 'BLOCK_BYTES', block_bytes)
    h, w = size
    cam = camera_from_horizontal_fov(w, h, 70.0)
    rng = np.random.default_rng(7)
    depth = (_awkward_depth(h, w) if awkward
             else rng.uniform(0.3, 9.0, (h, w)).astype(np.float32))
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    ref_xyz = _reference_unproject(depth, cam, stride)
    dec_rgb = rgb[::stride, ::stride]
    for with_rgb in (True, False):
        expected = _reference_cloud_bytes(ref_xyz, dec_rgb if with_rgb else None)
        # as the pipeline does it: unproject into the buffer, then set_rgb on a strided view
        buf = CloudBuffer(*decimated_shape(h, w, stride), with_rgb=with_rgb)
        unproject(depth, cam, stride, out=buf.xyz)
        if with_rgb:
            buf.set_rgb(dec_rgb)
        np.testing.assert_array_equal(buf.data, expected)
        # the one-pass version
        cloud = unproject_to_cloud(depth, cam, stride, rgb if with_rgb else None)
        np.testing.assert_array_equal(cloud.data, expected)
        assert (cloud.height, cloud.width) == ref_xyz.shape[:2]
    # unproject into a new array, a contiguous out, and a generic strided out
    got = unproject(depth, cam, stride)
    np.testing.assert_array_equal(got.view(np.uint32), ref_xyz.view(np.uint32))
    contiguous = np.full(ref_xyz.shape, 7.0, np.float32)
    assert unproject(depth, cam, stride, out=contiguous) is contiguous
    np.testing.assert_array_equal(contiguous.view(np.uint32), ref_xyz.view(np.uint32))
    fortran = np.asfortranarray(np.zeros(ref_xyz.shape, np.float32))
    unproject(depth, cam, stride, out=fortran)
    np.testing.assert_array_equal(fortran.view(np.uint32), ref_xyz.view(np.uint32))


def test_unproject_float64_depth_and_never_writes_input():
    cam = _camera()
    depth = _awkward_depth(H, W, seed=3, dtype=np.float64)
    depth[0, 1] = 1e-50  # > 0 in float64, 0 in float32: invalid, as before
    before = depth.copy()
    for stride in (1, 2):
        got = unproject(depth, cam, stride)
        np.testing.assert_array_equal(got.view(np.uint32),
                                      _reference_unproject(depth, cam, stride).view(np.uint32))
    f32 = _awkward_depth(H, W, seed=4)
    f32_before = f32.copy()
    unproject(f32, cam)
    np.testing.assert_array_equal(depth, before)
    np.testing.assert_array_equal(f32.view(np.uint32), f32_before.view(np.uint32))


def test_point_words_refuses_views_it_cannot_widen():
    from ppd_ros.geometry.unproject import point_words
    buf = CloudBuffer(3, 4, with_rgb=True)
    words = point_words(buf.xyz)
    assert words is not None and words.shape == (3, 4, 8)
    assert np.shares_memory(words, buf.data)
    # a plain (h, w, 8)[..., :3] slice widens too; a slice whose last point would run past the
    # buffer, a read-only view or a non-point layout does not
    big = np.zeros((3, 4, 8), np.float32)
    assert point_words(big[..., :3]) is not None
    assert point_words(big[..., 5:8]) is None
    ro = big[..., :3]
    ro.flags.writeable = False
    assert point_words(ro) is None
    assert point_words(np.zeros((3, 4, 3), np.float32)[::2]) is None  # rows not adjacent
    # every other point of a packed (h, w, 3) array is a 24-byte point layout: only the
    # x, y, z of those points are written, the points in between are left alone
    cam = _camera(width=4, height=3, k=[2.0, 0, 1.5, 0, 2.0, 1.0, 0, 0, 1], p=[0.0] * 12)
    packed = np.full((3, 8, 3), -1.0, np.float32)
    depth = np.random.default_rng(0).uniform(1, 2, (3, 4)).astype(np.float32)
    unproject(depth, cam, out=packed[:, ::2])
    np.testing.assert_array_equal(packed[:, ::2], _reference_unproject(depth, cam))
    assert np.all(packed[:, 1::2] == -1.0)


def test_pack_rgb_of_views_matches_reference():
    from ppd_ros.geometry.pointcloud_layout import pack_rgb
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (13, 17, 3), dtype=np.uint8)
    for view in (rgb, rgb[::2, ::2], rgb[::3, ::5], rgb[1::4, 2::3], rgb[:, ::-1], rgb[::-2],
                 np.asfortranarray(rgb), np.zeros((9, 8, 4), np.uint8)[..., :3], rgb[:0]):
        r, g, b = (view[..., i].astype(np.uint32) for i in range(3))
        packed = pack_rgb(view)
        assert packed.dtype == np.dtype('<u4') and packed.flags.c_contiguous
        np.testing.assert_array_equal(packed, (r << 16) | (g << 8) | b)
        assert not packed.view(np.uint8).reshape(view.shape[:2] + (4,))[..., 3].any()


def test_write_rows_validates_shapes():
    buf = CloudBuffer(2, 3, with_rgb=False)
    with pytest.raises(ValueError, match='2 x 3'):
        buf.write_rows(0, *(np.zeros((3, 2), np.float32),) * 3)
    with pytest.raises(ValueError, match='2 x 3'):
        buf.write_rows(1, *(np.zeros((2, 3), np.float32),) * 3)
    with pytest.raises(ValueError, match='no rgb'):
        buf.write_rows(0, *(np.zeros((2, 3), np.float32),) * 3, rgb=np.zeros((2, 3, 3), np.uint8))
    rgb_buf = CloudBuffer(4, 3, with_rgb=True)
    rng = np.random.default_rng(3)
    xyz = rng.normal(size=(4, 3, 3)).astype(np.float32)
    rgb = rng.integers(0, 256, (4, 3, 3), dtype=np.uint8)
    rgb_buf.write_rows(0, *(xyz[:3, :, i] for i in range(3)), rgb=rgb[:3])
    rgb_buf.write_rows(3, *(xyz[3:, :, i] for i in range(3)), rgb=rgb[3:])
    np.testing.assert_array_equal(rgb_buf.data, _reference_cloud_bytes(xyz, rgb))


@pytest.mark.parametrize('case', ['valid', 'awkward', 'nan_only', 'all_nan', 'constant',
                                  'limits', 'limits_awkward', 'int', 'float16', 'float64'])
@pytest.mark.parametrize('block_bytes', [None, 1])  # one block; a row per block
def test_colorize_matches_reference(case, block_bytes, monkeypatch):
    from ppd_ros.geometry import colorize
    from ppd_ros.geometry.colorize import colorize_depth
    if block_bytes is not None:
        monkeypatch.setattr(colorize, '_BLOCK_BYTES', block_bytes)
    rng = np.random.default_rng(11)
    depth = rng.uniform(0.5, 9.0, (31, 45)).astype(np.float32)
    kwargs = {}
    if case == 'awkward' or case == 'limits_awkward':
        depth = _awkward_depth(31, 45, seed=2)
    if case == 'nan_only':
        depth[rng.random(depth.shape) < 0.2] = np.nan
    if case == 'all_nan':
        depth[...] = np.nan
    if case == 'constant':
        depth[...] = 4.0
    if case.startswith('limits'):
        kwargs = {'vmin': 1.0, 'vmax': 6.5}
    if case == 'int':
        depth = rng.integers(0, 5000, depth.shape).astype(np.uint16)
    if case == 'float16':
        depth = depth.astype(np.float16)
    if case == 'float64':
        depth = depth.astype(np.float64) * 1.0001
    for color in ((0, 0, 0), (10, 200, 30)):
        expected = _reference_colorize(depth, invalid_color=color, **kwargs)
        got = colorize_depth(depth, invalid_color=color, **kwargs)
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(colorize_depth(depth, invalid_color=color, bgr=True,
                                                     **kwargs), expected[..., ::-1])
        out = np.full(expected.shape, 99, np.uint8)
        assert colorize_depth(depth, invalid_color=color, out=out, **kwargs) is out
        np.testing.assert_array_equal(out, expected)


def test_colorize_quantisation_edges_match_reference():
    """Values on and next to the bin edges: float64 evaluation, as written, truncated."""
    from ppd_ros.geometry.colorize import colorize_depth
    edges = np.arange(256, dtype=np.float64) / 255.0 * 3.0 + 0.25
    near = np.concatenate([edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)])
    for dtype in (np.float64, np.float32):
        depth = near.astype(dtype).reshape(3, 256)
        np.testing.assert_array_equal(colorize_depth(depth), _reference_colorize(depth))
        np.testing.assert_array_equal(colorize_depth(depth, vmin=0.25, vmax=3.25),
                                      _reference_colorize(depth, vmin=0.25, vmax=3.25))


def test_colorize_rejects_bad_out():
    from ppd_ros.geometry.colorize import colorize_depth
    with pytest.raises(ValueError, match='out'):
        colorize_depth(np.ones((4, 5)), out=np.zeros((5, 4, 3), np.uint8))
    with pytest.raises(ValueError, match='out'):
        colorize_depth(np.ones((4, 5)), out=np.zeros((4, 5, 3), np.uint8)[:, ::-1])


def _reference_depth_payload(depth_m, encoding):
    depth_m = np.asarray(depth_m, dtype=np.float32)
    if encoding == '32FC1':
        out = depth_m.astype('<f4', copy=False)
    else:
        mm = np.rint(np.nan_to_num(depth_m, nan=0.0, posinf=0.0, neginf=0.0) * 1000.0)
        mm[(mm < 0) | (mm > 65535)] = 0
        out = mm.astype('<u2')
    out = np.ascontiguousarray(out)
    return out.shape[1] * out.itemsize, out.tobytes()


def test_image_payload_encoders_match_reference():
    from ppd_ros.messages.image_encoding import (depth_m_to_array, depth_m_to_payload,
                                                 rgb_to_array, rgb_to_payload)
    depth = _awkward_depth(21, 34, seed=9)
    depth[0, :4] = [65.535, 65.5355, 70.0, -0.0001]
    for encoding in ('32FC1', '16UC1'):
        for d in (depth, depth.astype(np.float64), depth[::2, 1::3]):
            step, expected = _reference_depth_payload(d, encoding)
            assert depth_m_to_payload(d, encoding) == (step, expected)
            got_step, got = depth_m_to_array(d, encoding)
            assert got_step == step and got.typecode == 'B' and got.tobytes() == expected
    rgb = np.random.default_rng(1).integers(0, 256, (21, 34, 3), dtype=np.uint8)
    for view in (rgb, rgb[::2, ::3], rgb[:, ::-1]):
        for encoding, expected in (('rgb8', view), ('bgr8', view[..., ::-1])):
            want = (3 * view.shape[1], np.ascontiguousarray(expected).tobytes())
            assert rgb_to_payload(view, encoding) == want
            step, got = rgb_to_array(view, encoding)
            assert (step, got.tobytes()) == want and got.typecode == 'B'


def test_bgr_image_message_takes_payload_without_copy():
    pytest.importorskip('sensor_msgs.msg')
    from std_msgs.msg import Header

    from ppd_ros.geometry.colorize import colorize_depth
    from ppd_ros.node import message_builders as build
    depth = _awkward_depth(6, 8, seed=1)
    image = build.new_image_buffer(6, 8)
    colorize_depth(depth, bgr=True, out=image)
    msg = build.bgr_image_message(Header(frame_id='f'), image)
    assert msg.data is build.owning_payload(image)
    assert (msg.encoding, msg.step, msg.height, msg.width) == ('bgr8', 24, 6, 8)
    rgb = colorize_depth(depth)
    assert msg.data.tobytes() == build.color_image_message(Header(), rgb, 'bgr8').data.tobytes()
    # any other array is copied
    plain = np.ascontiguousarray(rgb[..., ::-1])
    assert build.owning_payload(plain) is None and build.owning_payload(image[1:]) is None
    assert build.bgr_image_message(Header(), plain).data.tobytes() == msg.data.tobytes()


@pytest.mark.parametrize('stride', [1, 2])
def test_hd_cloud_and_colorize_match_reference(stride):
    """1280 x 720: many row blocks at the default block size."""
    from ppd_ros.geometry.colorize import colorize_depth
    from ppd_ros.geometry.unproject import unproject_to_cloud
    h, w = 720, 1280
    cam = camera_from_horizontal_fov(w, h, 70.0)
    depth = _awkward_depth(h, w, seed=stride)
    rgb = np.random.default_rng(stride).integers(0, 256, (h, w, 3), dtype=np.uint8)
    expected = _reference_cloud_bytes(_reference_unproject(depth, cam, stride),
                                      rgb[::stride, ::stride])
    np.testing.assert_array_equal(unproject_to_cloud(depth, cam, stride, rgb).data, expected)
    buf = CloudBuffer(*decimated_shape(h, w, stride), with_rgb=True)
    unproject(depth, cam, stride, out=buf.xyz)
    buf.set_rgb(rgb[::stride, ::stride])
    np.testing.assert_array_equal(buf.data, expected)
    np.testing.assert_array_equal(colorize_depth(depth), _reference_colorize(depth))


def test_cloud_buffer_pool_recycles_a_payload_only_once_it_is_released():
    from ppd_ros.geometry.pointcloud_layout import CloudBufferPool
    from ppd_ros.geometry.unproject import unproject_to_cloud
    camera = camera_from_horizontal_fov(8, 6, 60.0)
    rgb = np.arange(8 * 6 * 3, dtype=np.uint8).reshape(6, 8, 3)
    pool = CloudBufferPool(max_buffers=2)
    first = unproject_to_cloud(np.full((6, 8), 1.0, np.float32), camera, 1, rgb, pool)
    first_id, first_bytes = id(first.payload), bytes(first.payload)  # no extra reference
    held = unproject_to_cloud(np.full((6, 8), 2.0, np.float32), camera, 1, rgb, pool)
    assert id(held.payload) != first_id                      # `first` still holds its buffer
    assert bytes(first.payload) == first_bytes
    del first
    reused = unproject_to_cloud(np.full((6, 8), 3.0, np.float32), camera, 1, rgb, pool)
    assert id(reused.payload) == first_id                    # released: recycled
    fresh = unproject_to_cloud(np.full((6, 8), 3.0, np.float32), camera, 1, rgb)
    assert bytes(reused.payload) == bytes(fresh.payload)     # padding still zero, all rewritten
    view = reused.data                                       # a numpy view also holds it
    del reused
    again = unproject_to_cloud(np.full((6, 8), 4.0, np.float32), camera, 1, rgb, pool)
    assert id(again.payload) != first_id
    assert view.tobytes() == bytes(fresh.payload)            # the viewed cloud is untouched
    other = unproject_to_cloud(np.full((6, 8), 4.0, np.float32), camera, 2, rgb, pool)
    assert (other.height, other.width) == (3, 4)             # another shape: its own buffer
    with pytest.raises(ValueError):
        CloudBufferPool(max_buffers=0)


def test_sane_intrinsics_bounds_are_wide():
    """A 170-degree wide angle and a 1-degree telephoto, a principal point off a crop, and an
    all-zero K beside a valid P (some drivers) are all accepted."""
    for hfov in (170.0, 1.0):
        f = (W / 2) / math.tan(math.radians(hfov) / 2)
        _camera([f, 0, 31.5, 0, f, 23.5, 0, 0, 1], [0.0] * 12)
    _camera([50.0, 0, -30.0, 0, 52.0, 90.0, 0, 0, 1], [0.0] * 12)
    assert _camera([0.0] * 9, P).fx == 50.0


def test_quaternions_round_trip_every_rotation_branch():
    from ppd_ros.geometry.rigid_transform import matrix_from_quaternion, quaternion_from_matrix
    from ppd_ros.synthetic.camera import body_rotation
    rng = np.random.default_rng(0)
    rotations = [np.eye(3), np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, 1.0, -1.0]),
                 np.diag([-1.0, -1.0, 1.0])]
    rotations += [body_rotation(*rng.uniform(-math.pi, math.pi, 3)) for _ in range(50)]
    for rotation in rotations:
        q = quaternion_from_matrix(rotation)
        assert np.linalg.norm(q) == pytest.approx(1.0) and q[3] >= 0
        np.testing.assert_allclose(matrix_from_quaternion(q), rotation, atol=1e-12)
    # 90 degrees about z: (0, 0, sin 45, cos 45)
    np.testing.assert_allclose(quaternion_from_matrix(body_rotation(math.pi / 2, 0, 0)),
                               [0, 0, math.sqrt(0.5), math.sqrt(0.5)], atol=1e-12)
