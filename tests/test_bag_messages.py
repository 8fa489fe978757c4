"""rosbags message objects <-> numpy, through CDR serialisation like a real bag."""
import cv2
import numpy as np
import pytest

from ppd_ros.bag import (camera_info_msg, compressed_image_msg, decode_camera_info,
                         decode_compressed_image, decode_image, decode_pointcloud2,
                         depth_image_msg, header_msg, image_msg, pointcloud2_msg,
                         pointcloud2_xyz, stamp_ns, unpack_rgb)
from ppd_ros.bag.typestore import COMPRESSED_IMAGE, HEADER, typestore
from ppd_ros.messages.image_encoding import ImageEncodingError
from ppd_ros.synthetic import CameraIntrinsics

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (6, 8, 3), dtype=np.uint8)
STAMP = 1_700_000_123_456_789_012


def cdr_roundtrip(msg):
    store = typestore()
    return store.deserialize_cdr(store.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)


def test_header_carries_stamp_and_frame():
    h = cdr_roundtrip(header_msg(STAMP, 'cam'))
    assert h.__msgtype__ == HEADER
    assert (h.stamp.sec, h.stamp.nanosec, h.frame_id) == (1_700_000_123, 456_789_012, 'cam')
    assert stamp_ns(h.stamp) == STAMP


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8'])
def test_colour_image_roundtrip(encoding):
    msg = cdr_roundtrip(image_msg(RGB, STAMP, 'cam', encoding))
    assert (msg.encoding, msg.height, msg.width, msg.step) == (encoding, 6, 8, 24)
    np.testing.assert_array_equal(decode_image(msg), RGB)
    if encoding == 'bgr8':
        np.testing.assert_array_equal(msg.data[:3], RGB[0, 0, ::-1])


def test_depth_image_roundtrip_keeps_nan_pattern():
    depth = RNG.uniform(0.3, 12.0, (6, 8)).astype(np.float32)
    depth[1, 2] = depth[4, 7] = np.nan
    msg = cdr_roundtrip(depth_image_msg(depth, STAMP, 'cam'))
    assert (msg.encoding, msg.step) == ('32FC1', 32)
    np.testing.assert_array_equal(decode_image(msg), depth)
    mm = cdr_roundtrip(depth_image_msg(depth, STAMP, 'cam', '16UC1'))
    out = decode_image(mm)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(depth))
    np.testing.assert_allclose(out, depth, atol=5e-4)


def test_compressed_png_is_lossless_and_jpeg_is_close():
    red, green = np.meshgrid(np.arange(32) * 8, np.arange(24) * 10)
    smooth = np.dstack([red, green, np.full((24, 32), 128)]).astype(np.uint8)
    png = cdr_roundtrip(compressed_image_msg(smooth, STAMP, 'cam', 'png'))
    assert png.__msgtype__ == COMPRESSED_IMAGE and png.format == 'rgb8; png compressed bgr8'
    np.testing.assert_array_equal(decode_compressed_image(png), smooth)
    jpeg = cdr_roundtrip(compressed_image_msg(smooth, STAMP, 'cam', 'jpeg', jpeg_quality=95))
    assert jpeg.format == 'rgb8; jpeg compressed bgr8'
    out = decode_compressed_image(jpeg)
    assert out.shape == smooth.shape
    assert np.abs(out.astype(int) - smooth).mean() < 3.0  # close, and channels not swapped
    with pytest.raises(ValueError):
        compressed_image_msg(smooth, STAMP, 'cam', 'webp')


def test_compressed_16bit_png_depth_decodes_to_metres():
    mm = np.array([[0, 1000], [2500, 65535]], dtype=np.uint16)
    ok, buf = cv2.imencode('.png', mm)
    msg = typestore().types[COMPRESSED_IMAGE](header=header_msg(STAMP, 'cam'),
                                              format='16UC1; png compressed', data=buf.ravel())
    out = decode_compressed_image(msg)
    np.testing.assert_allclose(out, [[np.nan, 1.0], [2.5, 65.535]], rtol=1e-6)
    msg.format = '32FC1; compressedDepth png'
    with pytest.raises(ImageEncodingError, match='compressedDepth'):
        decode_compressed_image(msg)
    msg.format = 'rgb8; compressedDepth png'
    with pytest.raises(ImageEncodingError):
        decode_compressed_image(msg)


def test_camera_info_roundtrip():
    info = CameraIntrinsics(64, 48, 50.0, 51.0, 31.5, 23.5).camera_info()
    msg = cdr_roundtrip(camera_info_msg(info, STAMP, 'cam'))
    assert msg.header.frame_id == 'cam' and msg.distortion_model == 'plumb_bob'
    assert decode_camera_info(msg) == info


@pytest.mark.parametrize('organised', [False, True])
def test_pointcloud2_roundtrip(organised):
    xyz = RNG.normal(size=(4, 5, 3)).astype(np.float32)
    xyz[0, 0] = np.nan
    rgb = RNG.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    if not organised:
        xyz, rgb = xyz.reshape(-1, 3), rgb.reshape(-1, 3)
    msg = cdr_roundtrip(pointcloud2_msg(xyz, STAMP, 'cam', rgb))
    assert (msg.height, msg.width) == ((4, 5) if organised else (1, 20))
    assert msg.point_step == 32 and not msg.is_dense   # depth_node's xyz+rgb layout
    assert [(f.name, f.offset) for f in msg.fields] == [('x', 0), ('y', 4), ('z', 8), ('rgb', 16)]
    np.testing.assert_array_equal(pointcloud2_xyz(msg), xyz.reshape(-1, 3))
    cloud = decode_pointcloud2(msg)
    np.testing.assert_array_equal(unpack_rgb(cloud['rgb']).reshape(-1, 3), rgb.reshape(-1, 3))
    plain = cdr_roundtrip(pointcloud2_msg(np.zeros((3, 3)), STAMP, 'cam'))
    assert plain.point_step == 16 and not plain.is_dense
