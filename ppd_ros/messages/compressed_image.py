"""sensor_msgs/CompressedImage (jpeg / png) payloads -> numpy arrays via OpenCV, bounded.

Accepted `format` strings (exactly, case-insensitive, surrounding spaces ignored):

    'jpeg', 'jpg', 'png'                         plain formats
    '<encoding>; jpeg compressed [<encoding>]'   image_transport's compressed publisher
    '<encoding>; png compressed [<encoding>]'    (e.g. 'rgb8; jpeg compressed bgr8')
    ''                                           decided by the payload's signature

Everything else (compressedDepth, 'JPEG2000', TIFF, BMP, WebP, PNM, ...) is refused, and the
payload must start with the signature of the format it is labelled with. Before decoding,
the size its header declares is checked against an ImageLimits (image_limits), so a few
hundred bytes claiming 30000 x 30000 pixels cost microseconds, not gigabytes. What the
decoders print to stderr is captured (native_stderr) and handed to `warn`, if given.
"""
from __future__ import annotations

import re
from typing import Callable

import cv2
import numpy as np

from ppd_ros.messages.image_encoding import ImageEncodingError
from ppd_ros.messages.image_header import declared_size, describe_start, sniff_container
from ppd_ros.messages.image_limits import ImageLimits
from ppd_ros.messages.native_stderr import call_capturing_stderr
from ppd_ros.untrusted_text import one_line, quoted

_PLAIN_FORMATS = {'jpeg': 'jpeg', 'jpg': 'jpeg', 'png': 'png'}
# the target encoding is left out for mono images ('mono8; jpeg compressed ')
_TRANSPORT_FORMAT = re.compile(r'([a-z0-9_]{1,32}); (jpeg|png) compressed(?: ([a-z0-9_]{1,32}))?')
DEFAULT_LIMITS = ImageLimits()


def compressed_container(fmt: str) -> str | None:
    """'jpeg' or 'png' for an accepted format string, None for an empty one (decided by the
    payload); ImageEncodingError for anything else."""
    text = (fmt or '').strip().lower()
    if not text:
        return None
    if text in _PLAIN_FORMATS:
        return _PLAIN_FORMATS[text]
    match = _TRANSPORT_FORMAT.fullmatch(text)
    if match:
        return match.group(2)
    raise ImageEncodingError(
        f'unsupported CompressedImage format {quoted(fmt)}; expected jpeg, png or '
        "image_transport's '<encoding>; jpeg|png compressed <encoding>'")


def decode_compressed(fmt: str, data, flags: int = cv2.IMREAD_COLOR,
                      limits: ImageLimits = DEFAULT_LIMITS,
                      warn: Callable[[str], None] | None = None) -> np.ndarray:
    """cv2.imdecode of a checked payload (module doc): format, signature and declared size
    first; the decoded image must have the declared size."""
    container = compressed_container(fmt)
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size == 0:
        raise ImageEncodingError('CompressedImage has no data')
    view = memoryview(buf)
    found = sniff_container(view)
    if found is None or (container is not None and found != container):
        label = container or 'jpeg or png'
        raise ImageEncodingError(f'CompressedImage labelled {quoted(fmt or label)} holds '
                                 f'{describe_start(view)}, not {label}')
    width, height = declared_size(found, view)
    limits.check(width, height)
    try:
        image, printed = call_capturing_stderr(cv2.imdecode, buf, flags)
    except cv2.error:
        image, printed = None, ''
    if printed.strip() and warn is not None:
        warn(f'{found} decoder: {one_line(printed, 200)}')
    if image is None or image.size == 0:
        raise ImageEncodingError(
            f'could not decode the {found} image ({buf.size} bytes): corrupt data')
    if image.shape[:2] not in ((height, width), (width, height)):  # EXIF may rotate a JPEG
        raise ImageEncodingError(f'{found} image decoded to {image.shape[1]}x{image.shape[0]} '
                                 f'but its header declares {width}x{height}: corrupt data')
    return image


def compressed_to_rgb(fmt: str, data, limits: ImageLimits = DEFAULT_LIMITS,
                      warn: Callable[[str], None] | None = None) -> np.ndarray:
    """Decode a CompressedImage payload into H x W x 3 uint8 RGB (module doc)."""
    bgr = decode_compressed(fmt, data, cv2.IMREAD_COLOR, limits, warn)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
