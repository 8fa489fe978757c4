"""Image payload decoders: raw 32FC1 values versus metric depth with invalid pixels."""
import numpy as np
import pytest

from ppd_ros.messages.image_encoding import (ImageEncodingError, image_to_depth_m,
                                             image_to_float32)

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
