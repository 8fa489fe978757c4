"""Compressed frames: exact formats, signatures, declared sizes checked before decoding, and
decoder stderr output handed to the caller instead of the terminal."""
import json
import struct
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest

from ppd_ros.messages.compressed_image import compressed_container, compressed_to_rgb
from ppd_ros.messages.image_encoding import ImageEncodingError
from ppd_ros.messages.image_header import jpeg_size, png_size
from ppd_ros.messages.image_limits import ImageLimitError, ImageLimits


def jpeg_bytes(width=16, height=12, quality=50) -> bytes:
    rgb = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return cv2.imencode('.jpg', rgb, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def png_bytes(width=16, height=12) -> bytes:
    return cv2.imencode('.png', np.zeros((height, width, 3), np.uint8))[1].tobytes()


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header claims width x height."""
    data = bytearray(jpeg_bytes(8, 8, 10))
    sof = data.index(b'\xff\xc0')
    data[sof + 5:sof + 9] = struct.pack('>HH', height, width)
    return bytes(data)


def png_1bit(width: int, height: int) -> bytes:
    """A valid 1-bit grey PNG of width x height (all black): small on disk, huge decoded."""
    def chunk(kind, body):
        return (struct.pack('>I', len(body)) + kind + body
                + struct.pack('>I', zlib.crc32(kind + body)))
    row = b'\x00' * (1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    idat = b''.join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack('>IIBBBBB', width, height, 1, 0, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', idat)
            + chunk(b'IEND', b''))


def test_headers_declare_the_size():
    assert jpeg_size(memoryview(jpeg_bytes(16, 12))) == (16, 12)
    assert png_size(memoryview(png_bytes(16, 12))) == (16, 12)
    assert jpeg_size(memoryview(jpeg_claiming(30000, 30000))) == (30000, 30000)
    assert png_size(memoryview(png_1bit(40, 30))) == (40, 30)
    assert compressed_to_rgb('png', png_1bit(40, 30)).shape == (30, 40, 3)


@pytest.mark.parametrize('fmt, kind', [
    ('jpeg', 'jpeg'), ('JPG', 'jpeg'), ('png', 'png'), (' png ', 'png'),
    ('rgb8; jpeg compressed bgr8', 'jpeg'), ('bgr8; png compressed bgr8', 'png'),
    ('mono8; jpeg compressed ', 'jpeg'), ('16UC1; png compressed mono16', 'png'), ('', None),
])
def test_accepted_formats(fmt, kind):
    assert compressed_container(fmt) == kind


@pytest.mark.parametrize('fmt', ['JPEG2000', 'notapng', 'jpeg xl', 'png8', 'tiff', 'bmp',
                                 '16UC1; compressedDepth png', 'rgb8; jpeg compressed bgr8 x',
                                 'jpeg\n[INFO] [0.0] [fake]: injected', 'x' * 10_000])
def test_other_formats_are_refused_in_one_short_line(fmt):
    with pytest.raises(ImageEncodingError, match='unsupported CompressedImage format') as info:
        compressed_to_rgb(fmt, jpeg_bytes())
    assert '\n' not in str(info.value) and len(str(info.value)) < 300


@pytest.mark.parametrize('encode_as, name', [('.tiff', 'TIFF'), ('.bmp', 'BMP'),
                                             ('.webp', 'WebP'), ('.ppm', 'PNM')])
@pytest.mark.parametrize('label', ['jpeg', 'png', ''])
def test_other_containers_are_refused_whatever_the_label(encode_as, name, label):
    data = cv2.imencode(encode_as, np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    with pytest.raises(ImageEncodingError, match=f'holds {name} data'):
        compressed_to_rgb(label, data)


def test_label_and_signature_must_agree():
    with pytest.raises(ImageEncodingError, match="labelled 'jpeg' holds data"):
        compressed_to_rgb('jpeg', png_bytes())
    assert compressed_to_rgb('', png_bytes()).shape == (12, 16, 3)


def test_limits_refuse_budget_and_aspect_ratio():
    limits = ImageLimits(max_pixels=1000, max_aspect_ratio=4.0)
    limits.check(40, 10)
    with pytest.raises(ImageLimitError, match='pixel budget of 1000') as info:
        limits.check(40, 26)
    assert info.value.setting == 'max_pixels'
    with pytest.raises(ImageLimitError, match='aspect ratio of 5:1') as info:
        limits.check(5, 25)
    assert info.value.setting == 'max_aspect_ratio'
    with pytest.raises(ImageEncodingError, match=r'no pixels \(0x5\)'):
        limits.check(0, 5)
    with pytest.raises(ImageLimitError, match='aspect ratio'):
        compressed_to_rgb('jpeg', jpeg_claiming(1_000_000 // 16, 1))


def test_decoder_warnings_go_to_the_caller_not_stderr(capfd):
    data = jpeg_bytes(64, 64, 90)
    sos = data.index(b'\xff\xda')
    corrupt = data[:sos] + b'\x00\x01\x02' * 20 + data[sos:]  # extraneous bytes before a marker
    warnings = []
    rgb = compressed_to_rgb('jpeg', corrupt, warn=warnings.append)
    assert rgb.shape == (64, 64, 3)
    assert len(warnings) == 1 and 'Corrupt JPEG data' in warnings[0]
    assert '\n' not in warnings[0] and len(warnings[0]) < 300
    broken = bytearray(png_bytes(32, 32))
    broken[37:45] = b'\xff' * 8  # damage the IDAT stream
    with pytest.raises(ImageEncodingError, match='could not decode the png'):
        compressed_to_rgb('png', bytes(broken))
    assert compressed_to_rgb('jpeg', corrupt).shape == (64, 64, 3)  # no warn: silenced
    captured = capfd.readouterr()
    assert captured.err == '' and captured.out == ''


BOMB_SCRIPT = '''
import json, resource, sys, time
from ppd_ros.messages.compressed_image import compressed_to_rgb
from ppd_ros.messages.image_encoding import ImageEncodingError
result = {}
for name, label in (('jpeg', 'jpeg'), ('png', 'png')):
    data = open(sys.argv[1] + '.' + name, 'rb').read()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    try:
        compressed_to_rgb(label, data)
        error = None
    except ImageEncodingError as err:
        error = str(err)
    result[name] = {'bytes': len(data), 'error': error, 's': time.perf_counter() - start,
                    'peak_mb': (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024}
print(json.dumps(result))
'''


def test_decompression_bombs_are_refused_fast_and_small(tmp_path):
    """The 629-byte JPEG claiming 30000 x 30000 and a 16384^2 PNG, in a fresh process so that
    its peak RSS shows any decoding."""
    bomb = tmp_path / 'bomb'
    (tmp_path / 'bomb.jpeg').write_bytes(jpeg_claiming(30000, 30000))
    (tmp_path / 'bomb.png').write_bytes(png_1bit(16384, 16384))
    proc = subprocess.run([sys.executable, '-c', BOMB_SCRIPT, str(bomb)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    for name, size in (('jpeg', '30000x30000'), ('png', '16384x16384')):
        r = result[name]
        assert r['error'] and f'image of {size}' in r['error'] and 'pixel budget' in r['error']
        assert r['s'] < 1.0 and r['peak_mb'] < 100, r
    assert result['jpeg']['bytes'] < 700 and result['png']['bytes'] < 300_000
