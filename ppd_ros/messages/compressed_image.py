"""sensor_msgs/CompressedImage (jpeg / png) payloads -> RGB numpy arrays via OpenCV."""
from __future__ import annotations

import cv2
import numpy as np

from ppd_ros.messages.image_encoding import ImageEncodingError

_SUPPORTED = ('jpeg', 'jpg', 'png')


def compressed_to_rgb(fmt: str, data) -> np.ndarray:
    """Decode a CompressedImage payload into H x W x 3 uint8 RGB.

    `fmt` is the message's format field: 'jpeg', 'png', or image_transport's
    '<encoding>; jpeg compressed <encoding>' form; an empty format is decoded by content.
    compressedDepth and other formats are rejected.
    """
    lowered = (fmt or '').lower()
    if lowered and ('compresseddepth' in lowered or not any(s in lowered for s in _SUPPORTED)):
        raise ImageEncodingError(
            f"unsupported CompressedImage format '{fmt}'; expected jpeg or png")
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size == 0:
        raise ImageEncodingError('CompressedImage has no data')
    try:
        bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error:
        bgr = None
    if bgr is None or bgr.size == 0:
        raise ImageEncodingError(
            f"could not decode the {fmt or 'compressed'} image ({buf.size} bytes): corrupt data")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
