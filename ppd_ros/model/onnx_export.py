"""Export PPD's networks as ONNX graphs for one fixed network resolution.

An export folder holds

    encoder.onnx (+ .data)        image (B, 3, h, w) in [0, 1] -> semantics (B, N0, C)
    dit_step.onnx (+ .data)       one velocity evaluation of the DiT:
                                  x_t (B, 1, h, w), image (B, 3, h, w), semantics (B, N0, C),
                                  block_modulation (depth, 1, 6D), final_modulation (1, 2D)
                                  -> velocity (B, 1, h, w)
    conditioning.safetensors      per step count S: steps{S}.timesteps (S,) int32,
                                  steps{S}.block_modulation (S, depth, 1, 6D),
                                  steps{S}.final_modulation (S, 1, 2D)
    manifest.json                 resolution, batch, steps, model config, sources, digests

Everything that depends only on the resolution (RoPE tables, the encoder's interpolated
position embedding) is a constant of the graphs, and everything that depends only on t (the
timestep embedding and every block's adaLN vectors) is computed here in float32 and fed in
per step, so the graphs have static shapes and no shape arithmetic (2-D RoPE's grid ops are
what ONNX-to-TensorRT parsers reject). The sampler, preprocessing and postprocessing stay in
``DepthPredictor``; ``exported_engines.py`` runs these graphs as an ``Engine``.

Weights are stored as ONNX external data (one ``.data`` file per graph): the Large DiT alone
is 2 GB in float32, protobuf's limit for one file.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

from .dit import Conditioning
from .flow_matching import timesteps
from .network_resolution import check_network_input
from .pixel_perfect_depth import PixelPerfectDepth

FORMAT_NAME = 'ppd_ros-onnx-export'
FORMAT_VERSION = 1
OPSET = 18
MANIFEST = 'manifest.json'
ENCODER_FILE = 'encoder.onnx'
DIT_STEP_FILE = 'dit_step.onnx'
CONDITIONING_FILE = 'conditioning.safetensors'
ENCODER_INPUTS = ('image',)
ENCODER_OUTPUTS = ('semantics',)
DIT_INPUTS = ('x_t', 'image', 'semantics', 'block_modulation', 'final_modulation')
DIT_OUTPUTS = ('velocity',)
# ops that compute shapes at run time; an export with any of them is refused
SHAPE_OPS = frozenset({'Shape', 'Size', 'ConstantOfShape', 'NonZero', 'Range', 'Loop', 'If'})


class ExportError(RuntimeError):
    """The model cannot be exported as asked (the message says why)."""


class SemanticsGraph(nn.Module):
    """The semantics encoder at one resolution, its resolution constants built in."""

    def __init__(self, model: PixelPerfectDepth, height: int, width: int):
        super().__init__()
        stem = model.config.stem_patch_size
        self.model = model
        self.precomputed = model.encoder.precompute(height // stem, width // stem)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model.semantics(image, self.precomputed)


class DitStepGraph(nn.Module):
    """One DiT velocity evaluation at one resolution; RoPE tables built in, conditioning fed."""

    def __init__(self, model: PixelPerfectDepth, height: int, width: int):
        super().__init__()
        self.model = model
        self.rope = model.dit.rope_tables(height, width)

    def forward(self, x_t: torch.Tensor, image: torch.Tensor, semantics: torch.Tensor | None,
                block_modulation: torch.Tensor, final_modulation: torch.Tensor) -> torch.Tensor:
        cond = Conditioning(None, tuple(block_modulation.unbind(0)), final_modulation)
        return self.model.velocity(x_t, image, None, semantics, cond=cond, rope=self.rope)


def conditioning_tables(model: PixelPerfectDepth, steps: int) -> dict[str, torch.Tensor]:
    """float32 conditioning of every step of a ``steps``-step schedule, keyed as in the file."""
    schedule = timesteps(steps, model.config.num_train_timesteps)
    with torch.inference_mode():
        cond = model.dit.condition(schedule)
    blocks = torch.stack([m.float() for m in cond.blocks], dim=1)  # (S, depth, 6D)
    return {f'steps{steps}.timesteps': schedule.to(torch.int32).contiguous(),
            f'steps{steps}.block_modulation': blocks.unsqueeze(2).contiguous(),
            f'steps{steps}.final_modulation': cond.final.float().unsqueeze(1).contiguous()}


def file_digest(path: str | os.PathLike, chunk: int = 1 << 24) -> str:
    """sha256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def source_record(path: str | os.PathLike) -> dict:
    """What identifies a weight file an export was made from."""
    path = Path(path)
    return {'file': path.name, 'bytes': path.stat().st_size, 'sha256': file_digest(path)}


def _permutation_of(equation: str) -> list[int] | None:
    """The axis order of an einsum that only permutes one operand ('abc->cab'), else None."""
    equation = equation.replace(' ', '')
    if '->' not in equation or ',' in equation or '.' in equation:
        return None
    source, target = equation.split('->')
    if sorted(source) != sorted(target) or len(set(source)) != len(source):
        return None
    return [source.index(axis) for axis in target]


def simplify_graph(model_proto) -> None:
    """In place: pure-permutation Einsums become Transposes (wider runtime support); then
    ExportError if any run-time shape op is left."""
    from onnx import helper
    for node in model_proto.graph.node:
        if node.op_type != 'Einsum':
            continue
        equation = next(helper.get_attribute_value(a) for a in node.attribute
                        if a.name == 'equation')
        permutation = _permutation_of(equation.decode() if isinstance(equation, bytes)
                                      else equation)
        if permutation is None:
            continue
        node.op_type = 'Transpose'
        del node.attribute[:]
        node.attribute.append(helper.make_attribute('perm', permutation))
    left = sorted({n.op_type for n in model_proto.graph.node if n.op_type in SHAPE_OPS})
    if left:
        raise ExportError(f'the exported graph still computes shapes ({", ".join(left)})')


def export_graph(module: nn.Module, args: tuple, path: Path, input_names: Sequence[str],
                 output_names: Sequence[str]) -> None:
    """``module(*args)`` as an ONNX graph with static shapes; weights in ``path`` + '.data'."""
    import onnx
    quiet = logging.getLogger('torch.onnx')  # notes on torchvision ops the model never uses
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter('ignore')
            program = torch.onnx.export(module, args, dynamo=True, opset_version=OPSET,
                                        input_names=list(input_names),
                                        output_names=list(output_names), verbose=False)
    finally:
        quiet.setLevel(level)
    if program is None:
        raise ExportError('torch.onnx.export returned no program')
    program.save(str(path), external_data=True)
    proto = onnx.load(str(path), load_external_data=False)
    simplify_graph(proto)
    onnx.save(proto, str(path))


def _check_steps(steps: Iterable[int]) -> list[int]:
    steps = sorted(set(int(s) for s in steps))
    if not steps or steps[0] < 1:
        raise ExportError(f'step counts must be >= 1, got {steps}')
    return steps


def export_model(model: PixelPerfectDepth, outdir: str | os.PathLike, height: int, width: int,
                 *, steps: Iterable[int] = (4,), batch: int = 1,
                 network_area: int | None = None,
                 sources: Sequence[str | os.PathLike] = (),
                 log: Callable[[str], None] = lambda message: None) -> dict:
    """Write an export folder (see the module docstring) for network input ``height`` x
    ``width``; returns the manifest. ``network_area`` (default h * w) is the area the
    predictor resizes frames to; ``sources`` are the weight files (recorded by digest).

    ``outdir`` must not hold an export already (nothing is overwritten).
    """
    try:
        check_network_input(height, width)
    except ValueError as error:
        raise ExportError(str(error)) from None
    if batch < 1:
        raise ExportError(f'batch must be >= 1, got {batch}')
    steps = _check_steps(steps)
    outdir = Path(outdir)
    names = [MANIFEST, ENCODER_FILE, DIT_STEP_FILE, CONDITIONING_FILE]
    existing = [n for n in names + [n + '.data' for n in names] if (outdir / n).exists()]
    if existing:
        raise ExportError(f'{outdir} already holds an export ({existing[0]}); choose a new '
                          f'folder or remove it first')
    outdir.mkdir(parents=True, exist_ok=True)
    model = model.to('cpu', torch.float32).eval().requires_grad_(False)
    config = model.config

    source_records = [source_record(p) for p in sources]
    generator = torch.Generator().manual_seed(0)
    image = torch.rand((batch, 3, height, width), generator=generator)
    x_t = torch.randn((batch, 1, height, width), generator=generator)
    semantics = None
    files = []
    if model.encoder is not None:
        log(f'exporting the semantics encoder at {width}x{height} ...')
        encoder = SemanticsGraph(model, height, width)
        export_graph(encoder, (image,), outdir / ENCODER_FILE, ENCODER_INPUTS, ENCODER_OUTPUTS)
        files.append(ENCODER_FILE)
        with torch.inference_mode():
            semantics = encoder(image)

    log(f'exporting one DiT step at {width}x{height} ...')
    tables = {}
    for count in steps:
        tables.update(conditioning_tables(model, count))
    first = tables[f'steps{steps[0]}.block_modulation'][0]
    final = tables[f'steps{steps[0]}.final_modulation'][0]
    dit_inputs = DIT_INPUTS if semantics is not None else tuple(
        n for n in DIT_INPUTS if n != 'semantics')
    step = DitStepGraph(model, height, width)
    export_graph(_without_none(step, semantics is None), tuple(
        a for a in (x_t, image, semantics, first, final) if a is not None),
        outdir / DIT_STEP_FILE, dit_inputs, DIT_OUTPUTS)
    files.append(DIT_STEP_FILE)

    from safetensors.torch import save
    (outdir / CONDITIONING_FILE).write_bytes(save(tables))  # file mode as the graphs'
    files.append(CONDITIONING_FILE)

    log('writing digests and the manifest ...')
    digests = {}
    for name in files:
        for part in (name, name + '.data'):
            if (outdir / part).exists():
                digests[part] = file_digest(outdir / part)
    import onnx
    manifest = {
        'format': FORMAT_NAME, 'format_version': FORMAT_VERSION,
        'network_size': [height, width],
        'network_area': int(network_area or height * width),
        'batch': batch,
        'steps': {str(s): tables[f'steps{s}.timesteps'].tolist() for s in steps},
        'precision': 'fp32', 'opset': OPSET,
        'model_config': config.to_dict(),
        'encoder': ENCODER_FILE if semantics is not None else None,
        'dit_step': DIT_STEP_FILE,
        'conditioning': CONDITIONING_FILE,
        'inputs': {'encoder': list(ENCODER_INPUTS) if semantics is not None else [],
                   'dit_step': list(dit_inputs)},
        'sources': source_records,
        'files': digests,
        'created_with': {'torch': torch.__version__, 'onnx': onnx.__version__},
        'created': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
    }
    text = json.dumps(manifest, indent=2)
    (outdir / MANIFEST).write_text(text + '\n')
    return json.loads(text)


class _NoSemantics(nn.Module):
    """A DiT step without the semantics input (vanilla DiT, no encoder)."""

    def __init__(self, step: DitStepGraph):
        super().__init__()
        self.step = step

    def forward(self, x_t, image, block_modulation, final_modulation):
        return self.step(x_t, image, None, block_modulation, final_modulation)


def _without_none(step: DitStepGraph, no_semantics: bool) -> nn.Module:
    return _NoSemantics(step) if no_semantics else step


__all__ = ['DitStepGraph', 'ExportError', 'SemanticsGraph', 'conditioning_tables',
           'export_model', 'file_digest', 'simplify_graph', 'source_record']
