"""Property-based fuzzing of everything that reads outside input: image decoders, CameraInfo
validation, reference pairing and the weight-file reader.

Property: a clear error (the module's own error class, one line of at most 300 characters)
or a correct output; never another exception; never more pixels than the budget. Derandomized
(the same few hundred cases on every run) so CI stays fast and repeatable.
"""
from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ppd_ros.geometry.camera_model import CameraModelError, camera_from_info_fields
from ppd_ros.geometry.unproject import unproject
from ppd_ros.messages.compressed_image import compressed_to_rgb
from ppd_ros.messages.image_encoding import ImageEncodingError, image_to_rgb
from ppd_ros.messages.image_limits import ImageLimits
from ppd_ros.model import CheckpointError, build_model, get_config, save_checkpoint
from ppd_ros.model.checkpoint import load_checkpoint, read_state_dict
from ppd_ros.pipeline.reference_pairing import ReferencePairing

FUZZ = settings(max_examples=60, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])
LIMITS = ImageLimits(max_pixels=1 << 20, max_aspect_ratio=10.0)


def clear_error(error: BaseException) -> None:
    text = str(error)
    assert text and '\n' not in text and len(text) <= 300, text


def _seed_images() -> list[bytes]:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    return [cv2.imencode('.jpg', rgb)[1].tobytes(), cv2.imencode('.png', rgb)[1].tobytes(),
            cv2.imencode('.png', rgb[:, :, 0])[1].tobytes()]


SEEDS = _seed_images()


@st.composite
def mutated_images(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(['size', 'size', 'flip', 'truncate', 'insert']))
        if kind == 'flip' and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
        elif kind == 'truncate':
            data = data[:draw(st.integers(0, len(data)))]
        elif kind == 'size':  # make the header claim another size, often beyond the budget
            sizes = st.one_of(st.integers(0, 70000), st.integers(900, 3000),
                              st.sampled_from([0, 1, 16, 1025, 65535]))
            w, h = draw(sizes), draw(sizes)
            if data[:4] == b'\x89PNG' and len(data) >= 24:
                data[16:24] = struct.pack('>II', w, h)
            elif b'\xff\xc0' in data:
                sof = data.index(b'\xff\xc0')
                data[sof + 5:sof + 9] = struct.pack('>HH', min(h, 65535), min(w, 65535))
        else:
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.binary(max_size=16))
    return bytes(data)


FORMATS = st.one_of(st.sampled_from(['jpeg', 'png', '', 'rgb8; jpeg compressed bgr8',
                                     'mono8; png compressed ', 'JPEG2000', 'tiff']),
                    st.text(max_size=40))


def _label(data: bytes) -> str:
    return 'png' if data.startswith(b'\x89PNG') else 'jpeg'


@FUZZ
@given(case=st.data())
def test_compressed_decoder(case):
    data = case.draw(st.one_of(mutated_images(), mutated_images(), st.binary(max_size=200)))
    fmt = case.draw(st.one_of(st.just(_label(data)), st.just(''), FORMATS))
    try:
        rgb = compressed_to_rgb(fmt, data, LIMITS)
    except ImageEncodingError as error:
        clear_error(error)
        return
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    assert rgb.shape[0] * rgb.shape[1] <= LIMITS.max_pixels
    LIMITS.check(rgb.shape[1], rgb.shape[0])


@FUZZ
@given(encoding=st.one_of(st.sampled_from(['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8']),
                          st.text(max_size=30)),
       width=st.integers(-2, 5000), height=st.integers(-2, 5000),
       step=st.integers(-4, 20000), size=st.integers(0, 4096), bigendian=st.booleans())
def test_raw_image_decoder(encoding, width, height, step, size, bigendian):
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    try:
        LIMITS.check(width, height)
        rgb = image_to_rgb(encoding, height, width, step, data, bigendian)
    except ImageEncodingError as error:
        clear_error(error)
        return
    assert rgb.shape == (height, width, 3) and rgb.dtype == np.uint8
    assert rgb.flags.c_contiguous


FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.floats(-2000.0, 2000.0), st.sampled_from([0.0, 1e-300, 1e300, -1.0]))


@FUZZ
@given(fx=FLOATS, fy=FLOATS, cx=FLOATS, cy=FLOATS, width=st.integers(-1, 4000),
       height=st.integers(-1, 4000), use_p=st.booleans(), depth=st.floats(0.1, 1e4))
def test_camera_info_validation(fx, fy, cx, cy, width, height, use_p, depth):
    k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0] if use_p else [0.0] * 12
    try:
        camera = camera_from_info_fields(k, p, width, height)
    except CameraModelError as error:
        clear_error(error)
        return
    small = camera.scaled_to(min(camera.width, 64), min(camera.height, 48))
    xyz = unproject(np.full((small.height, small.width), depth, np.float32), small)
    assert np.isfinite(xyz).all()  # sane intrinsics: every cloud coordinate is finite


@FUZZ
@given(stamps=st.lists(st.integers(-2**62, 2**62), max_size=40),
       queries=st.lists(st.integers(-2**62, 2**62), min_size=1, max_size=10),
       capacity=st.integers(1, 8), max_dt=st.floats(0.0, 1.0))
def test_reference_pairing(stamps, queries, capacity, max_dt):
    pairing = ReferencePairing(capacity, clock=lambda: 0.0)
    for stamp in stamps:
        pairing.add(stamp, stamp)
    for query in queries:
        match = pairing.match(query, max_dt)
        if match.reference is None:
            assert match.problem and '\n' not in match.problem
        else:
            assert abs(match.reference - query) <= round(max_dt * 1e9)
            assert match.problem == ''
    assert len(pairing._stamps) <= capacity


@pytest.fixture(scope='module')
def micro_files(tmp_path_factory):
    root = tmp_path_factory.mktemp('micro')
    config = get_config('tiny', name='micro', hidden_size=32, num_heads=2, depth=2,
                        fusion_hidden_size=64, train_width=32, train_height=32,
                        encoder={'type': 'none'})
    torch.manual_seed(0)
    model = build_model(config)
    checkpoint = save_checkpoint(model, root / 'micro.safetensors')
    pth = root / 'micro.pth'
    torch.save({k: v.clone() for k, v in list(model.state_dict().items())[:6]}, pth)
    return root, checkpoint.read_bytes(), pth.read_bytes()


@st.composite
def mutated_bytes(draw, original: bytes) -> bytes:
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(['flip', 'truncate', 'header', 'insert']))
        if kind == 'flip':
            i = draw(st.integers(0, len(data) - 1)) if draw(st.booleans()) else \
                draw(st.integers(0, min(len(data) - 1, 600)))  # often in the header
            data[i] = draw(st.integers(0, 255))
        elif kind == 'truncate':
            data = data[:draw(st.integers(0, len(data)))]
        elif kind == 'header' and len(data) >= 8:
            data[:8] = struct.pack('<Q', draw(st.one_of(st.integers(0, 2**64 - 1),
                                                        st.integers(0, 2000))))
        else:
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.binary(max_size=32))
        if not data:
            break
    return bytes(data)


@FUZZ
@given(data=st.data())
def test_checkpoint_reader(micro_files, data):
    root, checkpoint, pth = micro_files
    use_pth = data.draw(st.booleans())
    blob = data.draw(mutated_bytes(pth if use_pth else checkpoint))
    assume(blob != (pth if use_pth else checkpoint))
    path = root / ('fuzzed.pth' if use_pth else 'fuzzed.safetensors')
    path.write_bytes(blob)
    try:
        if use_pth:
            state = read_state_dict(path)
            assert all(isinstance(k, str) and isinstance(v, torch.Tensor)
                       for k, v in state.items())
        else:
            load_checkpoint(path)  # consistent enough to build the model strictly
    except CheckpointError as error:
        message = str(error)
        assert '\n' not in message and str(path) in message, message
