"""ppd-export and the exported-engine backends against the PyTorch predictor.

The ONNX graphs are exported once per module (tiny, and Large with random full-size weights,
both at network size 320x256 = h 256 x w 320) and run in onnxruntime on the CPU; the final
depth after 4 steps must match PyTorch fp32 within 1e-5 (tiny) and 1e-4 (Large). TensorRT
and onnxruntime's CUDA provider need a GPU and packages this machine does not have: those
tests skip and say so.
"""
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ppd_ros.model import DepthPredictor, build_model, load_predictor, save_checkpoint
from ppd_ros.model.checkpoint import convert_official_state_dicts, load_state_dict_strict
from ppd_ros.model.exported_engines import (ExportUnusableError, OnnxRuntimeEngine, read_export,
                                            run_in_chunks)
from ppd_ros.model.onnx_export import SHAPE_OPS, ExportError, export_model

sys.path.insert(0, str(Path(__file__).parent))
import spec_reference_impl as ref  # noqa: E402
from test_model_predictor import randomized_tiny  # noqa: E402

onnx = pytest.importorskip('onnx')
onnxruntime = pytest.importorskip('onnxruntime')

H, W = 256, 320
STEPS = 4


def random_large():
    """Large with random full-size weights (adaLN and final layer live)."""
    state, unexpected = convert_official_state_dicts(
        ref.random_state(ref.official_dit_shapes(), seed=1),
        ref.random_state(ref.official_encoder_shapes(), seed=2))
    model = build_model('large', device='meta')
    load_state_dict_strict(model, state, extra_unexpected=unexpected, assign=True)
    return model


def rgb_image(h=H, w=W, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture(scope='module')
def tiny_export(tmp_path_factory):
    folder = tmp_path_factory.mktemp('export') / 'tiny'
    checkpoint = save_checkpoint(randomized_tiny(), folder.parent / 'tiny.safetensors')
    model = randomized_tiny()
    manifest = export_model(model, folder, H, W, steps=[1, STEPS], batch=2,
                            sources=[checkpoint])
    return model, folder, manifest, checkpoint


def compare_backends(model, engine, samples=1, steps=STEPS):
    rgb = rgb_image()
    torch_pred = DepthPredictor(model, device='cpu', precision='fp32').predict(
        rgb, steps=steps, seed=3, resize=False, samples=samples)
    onnx_pred = DepthPredictor(engine).predict(rgb, steps=steps, seed=3, resize=False,
                                               samples=samples)
    noise = torch.randn(1, 1, H, W, generator=torch.Generator().manual_seed(3))[0, 0] + 0.5
    moved = np.abs(torch_pred.network_samples[0] - noise.numpy()).max()
    return torch_pred, onnx_pred, moved


def test_tiny_export_runs_in_onnxruntime_like_pytorch(tiny_export):
    model, folder, _, _ = tiny_export
    torch_pred, onnx_pred, moved = compare_backends(model, OnnxRuntimeEngine(folder))
    assert moved > 0.1  # the network really changed the noise
    diff = np.abs(onnx_pred.depth - torch_pred.depth)
    print(f'tiny onnxruntime vs torch fp32: max {diff.max():.3g} mean {diff.mean():.3g}')
    assert diff.max() <= 1e-5
    assert onnx_pred.timesteps == torch_pred.timesteps == (1000, 750, 500, 249)


def test_several_samples_run_in_chunks_of_the_exported_batch(tiny_export):
    model, folder, _, _ = tiny_export  # exported with batch 2: 3 samples = 2 + 1 padded
    torch_pred, onnx_pred, _ = compare_backends(model, OnnxRuntimeEngine(folder), samples=3,
                                                steps=1)
    assert onnx_pred.network_samples.shape == (3, H, W)
    assert np.abs(onnx_pred.network_samples - torch_pred.network_samples).max() <= 1e-5


def test_graphs_have_static_shapes_and_no_shape_logic(tiny_export):
    _, folder, manifest, _ = tiny_export
    for name in ('encoder.onnx', 'dit_step.onnx'):
        graph = onnx.load(str(folder / name), load_external_data=False).graph
        ops = {node.op_type for node in graph.node}
        assert not ops & (SHAPE_OPS | {'Einsum'}), name
        for value in list(graph.input) + list(graph.output):
            dims = value.type.tensor_type.shape.dim
            assert dims and all(d.HasField('dim_value') for d in dims), (name, value.name)
    dit = onnx.load(str(folder / 'dit_step.onnx'), load_external_data=False).graph
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in dit.input}
    assert shapes == {'x_t': [2, 1, H, W], 'image': [2, 3, H, W],
                      'semantics': [2, (H // 16) * (W // 16), 128],
                      'block_modulation': [2, 1, 6 * 256], 'final_modulation': [1, 2 * 256]}


def test_manifest_describes_the_export(tiny_export):
    _, folder, manifest, checkpoint = tiny_export
    assert json.loads((folder / 'manifest.json').read_text()) == manifest
    assert manifest['network_size'] == [H, W] and manifest['network_area'] == H * W
    assert manifest['steps'] == {'1': [1000], '4': [1000, 750, 500, 249]}
    assert manifest['precision'] == 'fp32' and manifest['batch'] == 2
    assert manifest['model_config']['name'] == 'tiny'
    assert set(manifest['files']) == {'encoder.onnx', 'encoder.onnx.data', 'dit_step.onnx',
                                      'dit_step.onnx.data', 'conditioning.safetensors'}
    assert manifest['sources'][0]['file'] == checkpoint.name
    export = read_export(folder)
    assert export.network_size == (H, W) and export.step_counts == [1, 4]


def test_frames_of_another_network_size_or_step_count_are_refused(tiny_export):
    _, folder, _, _ = tiny_export
    predictor = DepthPredictor(OnnxRuntimeEngine(folder), network_area=H * W)
    predictor.predict(rgb_image(2 * H, 2 * W), steps=1)  # same aspect: resized to 320x256
    with pytest.raises(ValueError, match=r'ppd-export --network-size 336x240'):
        predictor.predict(rgb_image(480, 640), steps=STEPS)  # 4:3 needs 336x240 at this area
    with pytest.raises(ValueError, match='no conditioning for 2 steps'):
        predictor.predict(rgb_image(), steps=2)
    with pytest.raises(ValueError, match='no conditioning for 2 steps'):
        predictor.prepare(H, W, steps=2)


def test_load_predictor_checks_the_export_was_made_from_the_weights(tiny_export, tmp_path):
    model, folder, _, checkpoint = tiny_export
    predictor = load_predictor(str(checkpoint), backend='onnxruntime', export_dir=folder)
    assert predictor.network_area == H * W and predictor.model is None
    other = save_checkpoint(randomized_tiny(seed=1), tmp_path / 'other.safetensors')
    with pytest.raises(ExportUnusableError, match='was not made from'):
        load_predictor(str(other), backend='onnxruntime', export_dir=folder)
    with pytest.raises(ValueError, match='export_dir'):
        load_predictor(str(checkpoint), backend='onnxruntime')
    with pytest.raises(ValueError, match='precision'):
        load_predictor(str(checkpoint), backend='onnxruntime', export_dir=folder,
                       precision='bf16')


def test_damaged_or_missing_exports_give_one_line_errors(tiny_export, tmp_path):
    _, folder, _, _ = tiny_export
    copy = tmp_path / 'copy'
    copy.mkdir()
    for path in folder.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    data = bytearray((copy / 'dit_step.onnx.data').read_bytes())
    data[100] ^= 1
    (copy / 'dit_step.onnx.data').write_bytes(bytes(data))
    with pytest.raises(ExportUnusableError, match='does not match its digest') as error:
        read_export(copy)
    assert '\n' not in str(error.value)
    with pytest.raises(ExportUnusableError, match='holds no export'):
        read_export(tmp_path / 'nowhere')


def test_an_existing_export_is_never_overwritten(tiny_export):
    model, folder, _, _ = tiny_export
    before = (folder / 'manifest.json').read_bytes()
    with pytest.raises(ExportError, match='already holds an export'):
        export_model(model, folder, H, W)
    assert (folder / 'manifest.json').read_bytes() == before
    with pytest.raises(ExportError, match='multiple of 16'):
        export_model(model, folder.parent / 'odd', H + 8, W)


def test_run_in_chunks_pads_the_last_chunk_and_drops_the_padding():
    calls = []

    def run(a, b):
        calls.append((a.shape[0], None if b is None else b.shape[0]))
        return a * 2
    rows = np.arange(5, dtype=np.float32)[:, None]
    out = run_in_chunks(run, [rows, None], batch=2)
    assert np.array_equal(out, rows * 2) and calls == [(2, None)] * 3
    out = run_in_chunks(lambda a: a + 1, [torch.arange(3.0)], batch=4)
    assert torch.equal(out, torch.arange(3.0) + 1)


def test_ppd_export_command(tiny_export, tmp_path, capsys):
    from ppd_ros.cli.export import main
    _, _, _, checkpoint = tiny_export
    out = tmp_path / 'cli'
    # a 640x480 camera at 128x96 network area runs at 128x96
    assert main([str(out), '--checkpoint', str(checkpoint), '--image-size', '640x480',
                 '--network-area', '128x96', '--steps', '2']) == 0
    log = capsys.readouterr().err
    assert 'exporting tiny at 128x96' in log and 'done:' in log
    manifest = json.loads((out / 'manifest.json').read_text())
    assert manifest['network_size'] == [96, 128] and manifest['network_area'] == 128 * 96
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    for argv, message in [
            ([str(out), '--checkpoint', str(checkpoint), '--network-size', '128x96'],
             'already holds an export'),
            ([str(tmp_path / 'x'), '--checkpoint', str(checkpoint), '--network-size', '130x96'],
             'multiple of 16'),
            ([str(tmp_path / 'x'), '--checkpoint', str(tmp_path / 'none.safetensors'),
              '--network-size', '128x96'], 'none.safetensors'),
            ([str(tmp_path / 'x'), '--checkpoint', str(checkpoint)], 'exactly one of')]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith('ppd-export: error:') and message in err
        assert err.count('\n') == 1 and 'Traceback' not in err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


@pytest.mark.skipif('CUDAExecutionProvider' not in onnxruntime.get_available_providers()
                    or not torch.cuda.is_available(),
                    reason="onnxruntime's CUDA provider needs onnxruntime-gpu and a CUDA GPU; "
                           'this machine has the CPU wheel and no GPU')
def test_onnxruntime_cuda_provider_matches_pytorch(tiny_export):
    model, folder, _, _ = tiny_export
    engine = OnnxRuntimeEngine(folder, providers=['CUDAExecutionProvider',
                                                  'CPUExecutionProvider'])
    torch_pred, onnx_pred, _ = compare_backends(model, engine)
    assert np.abs(onnx_pred.depth - torch_pred.depth).max() <= 1e-3


def _tensorrt_available():
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.skipif(not _tensorrt_available(),
                    reason='TensorRT needs the tensorrt package and a CUDA GPU; this machine '
                           'has neither')
@pytest.mark.parametrize('precision, tolerance', [('fp32', 1e-3), ('fp16', 5e-2),
                                                  ('bf16', 1e-1)])
def test_tensorrt_engine_matches_pytorch(tiny_export, precision, tolerance):
    from ppd_ros.model.tensorrt_engine import TensorRTEngine
    model, folder, _, _ = tiny_export
    engine = TensorRTEngine(folder, precision=precision, device='cuda')
    torch_pred, trt_pred, _ = compare_backends(model, engine)
    assert np.abs(trt_pred.depth - torch_pred.depth).max() <= tolerance


def test_tensorrt_backend_without_tensorrt_is_a_clear_error(tiny_export):
    if _tensorrt_available():
        pytest.skip('tensorrt and CUDA are available here')
    _, folder, _, checkpoint = tiny_export
    with pytest.raises(ValueError, match='tensorrt|CUDA'):
        load_predictor(str(checkpoint), backend='tensorrt', export_dir=folder)


def test_large_random_full_size_weights_match_pytorch_in_onnxruntime(tmp_path_factory):
    """Large (800M parameters) exported at 320x256 and run for 4 steps in onnxruntime."""
    start = time.perf_counter()
    model = random_large()
    folder = tmp_path_factory.mktemp('export') / 'large'
    try:
        export_model(model, folder, H, W, steps=[STEPS])
        exported = time.perf_counter()
        engine = OnnxRuntimeEngine(folder, verify=False)
        torch_pred, onnx_pred, moved = compare_backends(model, engine)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # 3.3 GB
    diff = np.abs(onnx_pred.depth - torch_pred.depth)
    print(f'large onnxruntime vs torch fp32 at {W}x{H}: max {diff.max():.3g} mean '
          f'{diff.mean():.3g}; export {exported - start:.0f} s, both predictions '
          f'{time.perf_counter() - exported:.0f} s')
    assert moved > 0.1
    assert diff.max() <= 1e-4
