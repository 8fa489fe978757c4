"""Container type and declared size of JPEG / PNG payloads, read from their headers only.

    PNG   8-byte signature 89 50 4E 47 0D 0A 1A 0A, then the IHDR chunk: length 13, 'IHDR',
          width and height as big-endian uint32
    JPEG  FF D8 (SOI), then marker segments FF xx + big-endian length; the first frame
          header (SOF0-3, 5-7, 9-11, 13-15) holds precision, height, width (big-endian
          uint16). A height of 0 (defined later by a DNL marker) is not supported.

Nothing is decoded and the walk is bounded (MAX_JPEG_SEGMENTS), so a hostile payload costs
microseconds.
"""
from __future__ import annotations

from ppd_ros.messages.image_encoding import ImageEncodingError

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
JPEG_SIGNATURE = b'\xff\xd8\xff'
#: Marker segments looked at before the frame header (real files have about 5 to 20).
MAX_JPEG_SEGMENTS = 256
#: 0xFF fill bytes allowed before one marker.
MAX_FILL_BYTES = 64
_JPEG_FRAME_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB,
                                 0xCD, 0xCE, 0xCF})
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


def sniff_container(data: memoryview) -> str | None:
    """'jpeg', 'png' or None from the payload's first bytes."""
    if bytes(data[:8]) == PNG_SIGNATURE:
        return 'png'
    if bytes(data[:3]) == JPEG_SIGNATURE:
        return 'jpeg'
    return None


def describe_start(data: memoryview) -> str:
    """What the first bytes of a payload look like, for error messages."""
    head = bytes(data[:12])
    known = ((b'II*\x00', 'TIFF'), (b'MM\x00*', 'TIFF'), (b'BM', 'BMP'), (b'GIF8', 'GIF'),
             (b'\x00\x00\x00\x0cjP  ', 'JPEG 2000'), (b'\xff\x4f\xff\x51', 'JPEG 2000'),
             (b'P1', 'PNM'), (b'P2', 'PNM'), (b'P3', 'PNM'), (b'P4', 'PNM'), (b'P5', 'PNM'),
             (b'P6', 'PNM'), (b'\x76\x2f\x31\x01', 'OpenEXR'), (b'#?RADIANCE', 'HDR'))
    if head[:4] == b'RIFF' and head[8:12] == b'WEBP':
        return 'WebP data'
    for magic, name in known:
        if head.startswith(magic):
            return f'{name} data'
    return f'data starting with {head[:8]!r}'


def png_size(data: memoryview) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    ihdr = bytes(data[8:24])
    if len(ihdr) < 16 or ihdr[:8] != b'\x00\x00\x00\x0dIHDR':
        raise ImageEncodingError('PNG has no IHDR header chunk after its signature: corrupt data')
    return int.from_bytes(ihdr[8:12], 'big'), int.from_bytes(ihdr[12:16], 'big')


def jpeg_size(data: memoryview) -> tuple[int, int]:
    """(width, height) from a JPEG's first frame header (SOFn)."""
    n, i = len(data), 2
    for _ in range(MAX_JPEG_SEGMENTS):
        if i >= n or data[i] != 0xFF:
            break
        start = i
        while i < n and data[i] == 0xFF and i - start < MAX_FILL_BYTES:  # fill before a marker
            i += 1
        if i >= n or data[i] == 0xFF:
            break
        marker = data[i]
        i += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (0xD9, 0xDA) or i + 2 > n:  # end of image / scan before any frame header
            break
        length = data[i] << 8 | data[i + 1]
        if marker in _JPEG_FRAME_MARKERS:
            if length < 8 or i + 7 > n:
                break
            height, width = data[i + 3] << 8 | data[i + 4], data[i + 5] << 8 | data[i + 6]
            if height == 0:
                raise ImageEncodingError('JPEG declares its height later (DNL marker): '
                                         'not supported')
            return width, height
        if length < 2:
            break
        i += length
    raise ImageEncodingError('JPEG has no readable frame header (SOF) within its first '
                             f'{MAX_JPEG_SEGMENTS} segments: corrupt data')


def declared_size(container: str, data: memoryview) -> tuple[int, int]:
    """(width, height) a 'jpeg' or 'png' payload declares."""
    return png_size(data) if container == 'png' else jpeg_size(data)
