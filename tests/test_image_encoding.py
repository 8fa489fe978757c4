"""Image payload decoders: raw 32FC1 values versus metric depth with invalid pixels; colour
input in every encoding the node accepts, against known conversions."""
import numpy as np
import pytest

from ppd_ros.messages.image_encoding import (ImageEncodingError, image_to_depth_m,
                                             image_to_float32, image_to_rgb)

VALUES = np.array([[-0.4, 0.0, 0.7], [1.2, np.nan, 3.5]], dtype=np.float32)


def _padded_payload(values: np.ndarray, dtype: str, pad: int = 4) -> tuple[int, bytes]:
    rows = values.astype(dtype)
    step = rows.shape[1] * rows.itemsize + pad
    data = b''.join(r.tobytes() + b'\xaa' * pad for r in rows)
    return step, data


@pytest.mark.parametrize('dtype,bigendian', [('<f4', False), ('>f4', True)])
def test_float32_keeps_every_value_including_non_positive(dtype, bigendian):
    step, data = _padded_payload(VALUES, dtype)
    out = image_to_float32('32FC1', 2, 3, step, data, bigendian)
    assert out.dtype == np.float32 and out.shape == (2, 3)
    np.testing.assert_array_equal(out, VALUES)  # NaN positions equal too


def test_depth_in_metres_marks_non_positive_and_nan_invalid():
    step, data = _padded_payload(VALUES, '<f4')
    depth = image_to_depth_m('32FC1', 2, 3, step, data)
    np.testing.assert_array_equal(np.isnan(depth), [[True, True, False], [False, True, False]])
    np.testing.assert_array_equal(depth[~np.isnan(depth)], np.float32([0.7, 1.2, 3.5]))


def test_float32_rejects_other_encodings_and_short_payloads():
    with pytest.raises(ImageEncodingError, match='32FC1'):
        image_to_float32('16UC1', 2, 3, 6, bytes(12))
    with pytest.raises(ImageEncodingError, match='payload'):
        image_to_float32('32FC1', 2, 3, 12, bytes(20))


# --- colour input: packed YUV 4:2:2 and Bayer mosaics ---

#: BT.601 video-range Y, Cb, Cr of pure colours, and the RGB they stand for
YCBCR = {(235, 128, 128): (255, 255, 255), (16, 128, 128): (0, 0, 0),
         (81, 90, 240): (255, 0, 0), (145, 54, 34): (0, 255, 0), (41, 240, 110): (0, 0, 255)}


def _packed_422(pairs, order: str) -> bytes:
    """One row of pixel pairs ((y0, y1), (u, v)) in byte order 'uyvy' or 'yuyv'."""
    out = bytearray()
    for (y0, y1), (u, v) in pairs:
        out += bytes((u, y0, v, y1) if order == 'uyvy' else (y0, u, y1, v))
    return bytes(out)


@pytest.mark.parametrize('encoding, order', [('uyvy', 'uyvy'), ('yuv422', 'uyvy'),
                                             ('yuyv', 'yuyv'), ('yuv422_yuy2', 'yuyv')])
def test_yuv422_decodes_known_colours_in_ros_byte_order(encoding, order):
    for (y, cb, cr), expected in YCBCR.items():
        rgb = image_to_rgb(encoding, 1, 2, 4, _packed_422([((y, y), (cb, cr))], order))
        assert rgb.shape == (1, 2, 3) and rgb.dtype == np.uint8
        np.testing.assert_allclose(rgb[0, 0], expected, atol=2)
    # two pixels sharing U and V: each keeps its own Y (white | black), with a padded step
    row = _packed_422([((235, 16), (128, 128)), ((16, 235), (128, 128))], order)
    rgb = image_to_rgb(encoding, 2, 4, 10, (row + b'\0\0') * 2)
    np.testing.assert_array_equal(rgb[:, :, 0], [[255, 0, 0, 255]] * 2)


def test_yuv422_needs_an_even_width():
    with pytest.raises(ImageEncodingError, match='even width'):
        image_to_rgb('yuyv', 1, 3, 6, bytes(6))


def _mosaic(rgb: np.ndarray, cell: str) -> np.ndarray:
    """Bayer mosaic of `rgb` with the top-left 2 x 2 cell `cell` (e.g. 'rggb'), by definition."""
    channel = {'r': 0, 'g': 1, 'b': 2}
    mosaic = np.empty(rgb.shape[:2], rgb.dtype)
    for index, colour in enumerate(cell):
        row, col = divmod(index, 2)
        mosaic[row::2, col::2] = rgb[row::2, col::2, channel[colour]]
    return mosaic


@pytest.mark.parametrize('cell', ['rggb', 'bggr', 'gbrg', 'grbg'])
@pytest.mark.parametrize('bits', [8, 16])
def test_bayer_mosaics_demosaic_to_the_colours_they_sampled(cell, bits):
    colour = np.array([200, 100, 50])
    dtype, scale = (np.uint8, 1) if bits == 8 else (np.dtype('>u2'), 257)
    rgb = np.broadcast_to(colour * scale, (8, 10, 3)).astype(dtype)
    mosaic = _mosaic(rgb, cell)
    out = image_to_rgb(f'bayer_{cell}{bits}', 8, 10, 10 * mosaic.itemsize, mosaic.tobytes(),
                       is_bigendian=bits == 16)
    assert out.shape == (8, 10, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[2:-2, 2:-2], np.broadcast_to(colour, (4, 6, 3)))


def test_existing_colour_encodings_still_decode():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    np.testing.assert_array_equal(image_to_rgb('rgb8', 2, 3, 9, rgb.tobytes()), rgb)
    np.testing.assert_array_equal(image_to_rgb('bgr8', 2, 3, 9, rgb[:, :, ::-1].tobytes()), rgb)
    with pytest.raises(ImageEncodingError, match="unsupported image encoding 'nv21'"):
        image_to_rgb('nv21', 2, 3, 3, bytes(9))
