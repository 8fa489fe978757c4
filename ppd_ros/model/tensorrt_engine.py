"""TensorRT engine for an export folder (onnx_export.py): needs the ``tensorrt`` package and CUDA.

The fp32 ONNX graphs are built into TensorRT engines at ``precision`` fp32, fp16 or bf16.
At fp16 / bf16 the numerically sensitive layers stay fp32 islands (``FP32_LAYERS``: the
LayerNorm statistics, softmax and the reductions of the L2 normalisation); the timestep
embedding and adaLN vectors are not in the graph at all (the export feeds them in fp32).
fp32 builds turn TF32 off so that they match PyTorch fp32.

A built engine is cached beside its graph as ``<graph>.<precision>.<gpu>.trt<version>.plan``
(the first start builds it, which takes minutes for Large); a folder that cannot be written
keeps the engine in memory only.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import torch

from .exported_engines import ExportEngine, ExportUnusableError, read_export

LOG = logging.getLogger(__name__)
PRECISIONS = ('fp32', 'fp16', 'bf16')


def _tensorrt():
    try:
        import tensorrt
    except ImportError:
        raise ValueError('backend tensorrt needs the tensorrt Python package, which is not '
                         'importable here; use backend onnxruntime or torch') from None
    return tensorrt


def resolve_tensorrt_precision(precision: str) -> str:
    """'auto' -> bf16 on a GPU that has it, else fp16; other names must be in PRECISIONS."""
    if precision == 'auto':
        return 'bf16' if torch.cuda.is_bf16_supported() else 'fp16'
    if precision not in PRECISIONS:
        raise ValueError(f'TensorRT precision must be one of auto, {", ".join(PRECISIONS)}, '
                         f'got {precision!r}')
    return precision


def fp32_layer_types(trt) -> tuple:
    """Layer types kept in fp32 at reduced precision."""
    return (trt.LayerType.NORMALIZATION, trt.LayerType.SOFTMAX, trt.LayerType.REDUCE)


def build_engine(onnx_path: Path, precision: str, plan_path: Path | None = None):
    """A deserialised TensorRT engine for ``onnx_path`` (from ``plan_path`` when cached)."""
    trt = _tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    runtime = trt.Runtime(logger)
    if plan_path is not None and plan_path.is_file():
        engine = runtime.deserialize_cuda_engine(plan_path.read_bytes())
        if engine is not None:
            return engine
        LOG.warning('cached TensorRT engine %s is unusable; rebuilding it', plan_path)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportUnusableError(f'TensorRT cannot parse {onnx_path}: {errors}')
    config = builder.create_builder_config()
    if precision == 'fp32':
        config.clear_flag(trt.BuilderFlag.TF32)
    else:
        config.set_flag(trt.BuilderFlag.FP16 if precision == 'fp16' else trt.BuilderFlag.BF16)
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        islands = fp32_layer_types(trt)
        for i in range(network.num_layers):
            layer = network.get_layer(i)
            if layer.type in islands:
                layer.precision = trt.float32
                for j in range(layer.num_outputs):
                    layer.set_output_type(j, trt.float32)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ExportUnusableError(f'TensorRT could not build an engine for {onnx_path}')
    if plan_path is not None:
        try:
            plan_path.write_bytes(bytes(plan))
        except OSError as error:
            LOG.warning('cannot cache the TensorRT engine in %s (%s); it is rebuilt next '
                        'start', plan_path, error)
    return runtime.deserialize_cuda_engine(plan)


class _Graph:
    """One TensorRT engine with its execution context; runs on torch CUDA tensors."""

    def __init__(self, engine, device: torch.device):
        self.engine = engine
        self.context = engine.create_execution_context()
        self.device = device
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        trt = _tensorrt()
        self.outputs = [n for n in names
                        if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]

    def __call__(self, **inputs: torch.Tensor) -> torch.Tensor:
        keep = []
        for name, tensor in inputs.items():
            tensor = tensor.to(self.device, torch.float32).contiguous()
            keep.append(tensor)
            self.context.set_tensor_address(name, tensor.data_ptr())
        (name,) = self.outputs
        out = torch.empty(tuple(self.engine.get_tensor_shape(name)), device=self.device,
                          dtype=torch.float32)
        self.context.set_tensor_address(name, out.data_ptr())
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError('TensorRT execution failed')
        return out


class TensorRTEngine(ExportEngine):
    """Runs an export with TensorRT on a CUDA device (tensors in and out on that device)."""

    def __init__(self, folder: str | os.PathLike, *, precision: str = 'auto',
                 device: str | torch.device = 'auto', verify: bool = True):
        _tensorrt()
        if str(device) == 'auto':
            device = 'cuda'
        self.device = torch.device(device)
        if self.device.type != 'cuda' or not torch.cuda.is_available():
            raise ValueError('backend tensorrt needs a CUDA device, and torch sees none')
        self.precision = resolve_tensorrt_precision(precision)
        self.export = read_export(folder, verify=verify)
        self._encoder = self._load('encoder')
        self._dit = self._load('dit_step')
        self._conditioning = self._load_conditioning()

    def _load(self, key: str) -> _Graph | None:
        path = self.export.path(key)
        if path is None:
            return None
        trt = _tensorrt()
        gpu = re.sub(r'[^A-Za-z0-9]+', '-', torch.cuda.get_device_name(self.device)).strip('-')
        plan = path.with_name(f'{path.stem}.{self.precision}.{gpu}.trt{trt.__version__}.plan')
        with torch.cuda.device(self.device):
            return _Graph(build_engine(path, self.precision, plan), self.device)

    def synchronize(self) -> None:
        torch.cuda.synchronize(self.device)

    def _feed(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(self.device, torch.float32).contiguous()

    def _result(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def _encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return self._encoder(image=pixels)

    def _step(self, feeds: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._dit(**feeds)
