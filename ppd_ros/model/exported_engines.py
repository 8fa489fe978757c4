"""Engines that run an export folder (onnx_export.py) instead of the PyTorch model.

    engine = OnnxRuntimeEngine('exports/tiny_256x320')      # or TensorRTEngine (tensorrt_engine.py)
    predictor = DepthPredictor(engine, network_area=engine.network_area)

An export is made for one network resolution h x w and a few step counts. The predictor
resizes each frame to ``network_size(H, W, network_area)`` as always, with the export's area
by default; a frame whose network size is not the exported one (another aspect ratio) is a
ValueError that names the size to export, and so is a step count without exported
conditioning. Nothing is exported on demand: ``ppd-export`` makes the folder once, before the
robot runs (exporting Large takes minutes and needs the PyTorch weights).

A DiT batch of N rows (several noise draws, several cameras) runs in chunks of the exported
batch size; the last chunk is padded with copies of its first row.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .configs import ModelConfig
from .onnx_export import FORMAT_NAME, FORMAT_VERSION, MANIFEST, file_digest, source_record

BACKENDS = ('torch', 'onnxruntime', 'tensorrt')


class ExportUnusableError(ValueError):
    """The export folder is missing, damaged, or does not fit the request."""


@dataclass(frozen=True)
class ExportedModel:
    """A checked export folder: its manifest and the paths of its files."""

    folder: Path
    manifest: dict[str, Any]
    config: ModelConfig

    @property
    def network_size(self) -> tuple[int, int]:
        h, w = self.manifest['network_size']
        return int(h), int(w)

    @property
    def network_area(self) -> int:
        return int(self.manifest['network_area'])

    @property
    def batch(self) -> int:
        return int(self.manifest['batch'])

    @property
    def step_counts(self) -> list[int]:
        return sorted(int(s) for s in self.manifest['steps'])

    def path(self, key: str) -> Path | None:
        name = self.manifest.get(key)
        return None if name is None else self.folder / name

    def describe(self) -> str:
        h, w = self.network_size
        return f'export {self.folder} ({self.config.name}, {w}x{h}, steps ' \
               f'{", ".join(map(str, self.step_counts))})'

    def check_size(self, height: int, width: int) -> None:
        if (height, width) != self.network_size:
            h, w = self.network_size
            raise ValueError(
                f'the {self.describe()} runs {w}x{h} (width x height) network inputs only, '
                f'this frame needs {width}x{height} (another aspect ratio or network area): '
                f'make an export for it with `ppd-export --network-size {width}x{height}`')

    def check_steps(self, schedule: Sequence[int]) -> str:
        """The conditioning key prefix of a schedule, or ValueError when it was not exported."""
        for count, listed in self.manifest['steps'].items():
            if list(listed) == list(schedule):
                return f'steps{count}'
        raise ValueError(
            f'the {self.describe()} has no conditioning for {len(schedule)} steps: add it with '
            f'`ppd-export --steps {len(schedule)} ...` or use one of the exported step counts')

    def check_sources(self, paths: Sequence[str | os.PathLike]) -> None:
        """ValueError unless ``paths`` are the weight files the export was made from."""
        recorded = {s['sha256'] for s in self.manifest.get('sources', [])}
        for path in paths:
            if source_record(path)['sha256'] not in recorded:
                raise ExportUnusableError(
                    f'the {self.describe()} was not made from {path} (its digest is not among '
                    f'the export\'s sources): re-export with `ppd-export`')


def read_export(folder: str | os.PathLike, verify: bool = True) -> ExportedModel:
    """The export in ``folder``; ExportUnusableError (one line) for anything wrong with it.

    verify=True checks every file against its sha256 in the manifest.
    """
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise ExportUnusableError(f'{folder} holds no export ({MANIFEST} missing): make one '
                                  f'with `ppd-export`')
    try:
        manifest = json.loads(manifest_path.read_text())
        if manifest.get('format') != FORMAT_NAME:
            raise ValueError(f'not a {FORMAT_NAME} manifest')
        if manifest.get('format_version') != FORMAT_VERSION:
            raise ValueError(f'format version {manifest.get("format_version")!r}, this ppd_ros '
                             f'reads {FORMAT_VERSION}')
        config = ModelConfig.from_dict(manifest['model_config'])
        h, w = (int(v) for v in manifest['network_size'])
        int(manifest['network_area']), int(manifest['batch'])
        steps = {int(k): [int(t) for t in v] for k, v in manifest['steps'].items()}
        files = dict(manifest['files'])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ExportUnusableError(f'{manifest_path} is unusable: {error}') from None
    if not steps:
        raise ExportUnusableError(f'{manifest_path} lists no step counts')
    for name, digest in files.items():
        path = folder / name
        if not path.is_file():
            raise ExportUnusableError(f'{path} is missing from the export')
        if verify and file_digest(path) != digest:
            raise ExportUnusableError(f'{path} does not match its digest in {MANIFEST} '
                                      f'(changed or damaged): re-export with `ppd-export`')
    return ExportedModel(folder, manifest, config)


def read_conditioning(export: ExportedModel) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file
    return load_file(str(export.path('conditioning')))


def run_in_chunks(run: Callable[..., Any], arrays: Sequence[Any], batch: int) -> Any:
    """``run(*chunk)`` over row chunks of exactly ``batch`` rows, concatenated.

    ``arrays`` are numpy arrays or torch tensors (None passes through as None); the last
    chunk is padded with copies of its first row and the padding is dropped from the result.
    """
    rows = next(a for a in arrays if a is not None).shape[0]
    outputs = []
    for start in range(0, rows, batch):
        stop = min(start + batch, rows)
        pad = [0] * (batch - (stop - start))
        chunk = [None if a is None else a[start:stop] if not pad
                 else a[list(range(start, stop)) + [start + p for p in pad]] for a in arrays]
        outputs.append(run(*chunk)[:stop - start])
    if isinstance(outputs[0], torch.Tensor):
        return torch.cat(outputs)
    return np.concatenate(outputs)


def onnxruntime_providers(requested: Sequence[str] | None = None) -> list[str]:
    """Execution providers to use: ``requested``, or the best available of TensorRT, CUDA and
    CPU (CPU last, so any operator a GPU provider lacks still runs)."""
    import onnxruntime
    available = onnxruntime.get_available_providers()
    if requested:
        missing = [p for p in requested if p not in available]
        if missing:
            raise ValueError(f'onnxruntime has no {", ".join(missing)} here; available: '
                             f'{", ".join(available)}')
        return list(requested)
    preferred = ('TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider')
    return [p for p in preferred if p in available]


class ExportEngine:
    """What every engine of an export does (``Engine`` protocol); subclasses run the graphs.

    A subclass sets ``export``, ``device`` and ``precision`` and provides ``_feed`` (torch
    tensor -> its runtime's input), ``_result`` (its output -> torch tensor), ``_encode``
    (pixels -> semantics) and ``_step`` (DiT inputs by name -> velocity).
    """

    export: ExportedModel
    device: torch.device
    precision: str

    def _load_conditioning(self) -> dict[str, Any]:
        return {k: self._feed(v) for k, v in read_conditioning(self.export).items()}

    @property
    def config(self) -> ModelConfig:
        return self.export.config

    @property
    def network_area(self) -> int:
        return self.export.network_area

    def prepare(self, height: int, width: int, steps: int, batch: int = 1) -> None:
        from .flow_matching import timesteps
        self.export.check_size(height, width)
        self.export.check_steps(timesteps(steps, self.config.num_train_timesteps).tolist())

    def clear_cache(self) -> None:
        """Nothing is cached beyond what the export holds."""

    def synchronize(self) -> None:
        """Runs return when their outputs are ready unless a subclass says otherwise."""

    def semantics(self, image: torch.Tensor) -> torch.Tensor | None:
        self.export.check_size(*image.shape[-2:])
        if self.export.path('encoder') is None:
            return None
        return self._result(run_in_chunks(self._encode, [self._feed(image)],
                                          self.export.batch))

    def velocity(self, x_t: torch.Tensor, image: torch.Tensor, semantics: torch.Tensor | None,
                 schedule: torch.Tensor, index: int) -> torch.Tensor:
        self.export.check_size(*x_t.shape[-2:])
        key = self.export.check_steps(schedule.tolist())
        blocks = self._conditioning[f'{key}.block_modulation'][index]
        final = self._conditioning[f'{key}.final_modulation'][index]

        def run(x, pixels, tokens):
            feeds = {'x_t': x, 'image': pixels, 'block_modulation': blocks,
                     'final_modulation': final}
            if tokens is not None:
                feeds['semantics'] = tokens
            return self._step(feeds)
        rows = [self._feed(x_t), self._feed(image),
                None if semantics is None else self._feed(semantics)]
        return self._result(run_in_chunks(run, rows, self.export.batch))


class OnnxRuntimeEngine(ExportEngine):
    """Runs an export through onnxruntime (tensors in and out on the CPU).

    ``providers``: onnxruntime execution provider names (default: TensorRT, CUDA, CPU, those
    available). ``threads``: intra-op threads (0: torch's thread count, so that both backends
    use the same cores).
    """

    precision = 'fp32'

    def __init__(self, folder: str | os.PathLike, *, providers: Sequence[str] | None = None,
                 threads: int = 0, verify: bool = True):
        import onnxruntime
        self.export = read_export(folder, verify=verify)
        self.device = torch.device('cpu')
        self.providers = onnxruntime_providers(providers)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.log_severity_level = 3  # errors only

        def session(key: str):
            path = self.export.path(key)
            if path is None:
                return None
            try:
                return onnxruntime.InferenceSession(str(path), options,
                                                    providers=self._provider_options(path))
            except Exception as error:  # onnxruntime raises its own exception classes
                raise ExportUnusableError(f'onnxruntime cannot load {path}: '
                                          f'{str(error).splitlines()[0]}') from None
        self._encoder = session('encoder')
        self._dit = session('dit_step')
        self._conditioning = self._load_conditioning()

    def _provider_options(self, path: Path) -> list:
        """TensorRT builds its engines from the fp32 graph and caches them beside it."""
        providers = []
        for name in self.providers:
            if name == 'TensorrtExecutionProvider':
                providers.append((name, {'trt_engine_cache_enable': True,
                                         'trt_engine_cache_path': str(path.parent)}))
            else:
                providers.append(name)
        return providers

    def _feed(self, tensor: torch.Tensor) -> np.ndarray:
        return tensor.detach().to('cpu', torch.float32).contiguous().numpy()

    def _result(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array)

    def _encode(self, pixels: np.ndarray) -> np.ndarray:
        return self._encoder.run(None, {'image': np.ascontiguousarray(pixels)})[0]

    def _step(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self._dit.run(None, {k: np.ascontiguousarray(v) for k, v in feeds.items()})[0]


def make_engine(backend: str, export_dir: str | os.PathLike | None, *,
                precision: str = 'fp32', device: str = 'auto',
                sources: Sequence[str | os.PathLike] = ()):
    """The engine of a non-torch backend for an export folder; ``sources`` (weight files the
    user named) must be those the export was made from."""
    if backend not in BACKENDS or backend == 'torch':
        raise ValueError(f'backend must be one of {", ".join(BACKENDS[1:])} here, got '
                         f'{backend!r}')
    if not export_dir:
        raise ValueError(f'backend {backend} runs an export folder: give export_dir (made '
                         f'with `ppd-export`)')
    if backend == 'onnxruntime':
        if precision not in ('fp32', 'auto'):
            raise ValueError(f'backend onnxruntime runs the fp32 export; precision '
                             f'{precision!r} needs backend torch or tensorrt')
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise ValueError('backend onnxruntime needs the onnxruntime package (pip install '
                             '-r requirements.txt)') from None
        providers = ['CPUExecutionProvider'] if str(device) == 'cpu' else None
        engine = OnnxRuntimeEngine(export_dir, providers=providers)
    else:
        from .tensorrt_engine import TensorRTEngine
        engine = TensorRTEngine(export_dir, precision=precision, device=device)
    engine.export.check_sources(sources)
    return engine
