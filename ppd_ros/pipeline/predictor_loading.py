"""Load the depth predictor from parameter-style paths, with one clear error when impossible.

MODEL_DEFAULTS are the model options shared by depth_node's parameters and the command-line
tools (ppd-eval), so both load the same model unless told otherwise.
"""
from __future__ import annotations

import re
from pathlib import Path

from ppd_ros.pipeline.package_paths import candidate_paths, resolve_package_path

MODEL_DEFAULTS = {
    'checkpoint': 'models/tiny_ppd.safetensors',
    'dit_checkpoint': 'models/ppd.pth',
    'encoder_checkpoint': 'models/depth_anything_v2_vitl.pth',
    'variant': 'large',
    'device': 'auto',
    'precision': 'fp32',
    'num_threads': 0,
    'network_area': 0,      # pixels; 0: the model's training area
    'upsampling': 'edge_aware',  # network output -> image size (geometry.depth_upsampling)
    'backend': 'torch',
    'export_dir': '',       # ppd-export folder, for backends other than torch
    'steps': 4,
    'seed': 0,
}
VARIANT_CHOICES = ('tiny', 'small', 'large', 'large_moge')
PRECISION_CHOICES = ('fp32', 'fp16', 'bf16')
UPSAMPLING_CHOICES = ('edge_aware', 'nearest', 'bilinear')
BACKEND_CHOICES = ('torch', 'onnxruntime', 'tensorrt')


def parse_network_area(text: str | int) -> int:
    """'768x576' (width x height) or '442368' -> pixels; '' or '0' -> 0 (the training area).

    Only the form is checked here; the model checks the range
    (ppd_ros.model.network_resolution.check_network_area).
    """
    text = str(text).strip().lower()
    match = re.fullmatch(r'(\d+)\s*[x*]\s*(\d+)', text)
    if match:
        return int(match.group(1)) * int(match.group(2))
    if text.isdigit() or text == '':
        return int(text or 0)
    raise ValueError(f'network area must be WIDTHxHEIGHT (e.g. 768x576) or a pixel count, '
                     f'got {text!r}')


def check_network_area_setting(area: int) -> str | None:
    """Why a network_area setting (0: training area) is out of range, or None."""
    if area == 0:
        return None
    from ppd_ros.model.network_resolution import check_network_area
    try:
        check_network_area(area)
    except ValueError as err:
        return str(err)
    return None


class ModelUnavailableError(RuntimeError):
    """The weights are missing or unusable; the message says which file and how to get it."""


def require_weight_file(path: str, what: str, how_to_override: str | None = None) -> Path:
    """The existing file `path` resolves to, or ModelUnavailableError naming it and ppd-fetch.

    `what` names the setting (e.g. 'checkpoint'); `how_to_override` replaces the default hint
    "point the '<what>' parameter at an existing file".
    """
    resolved = resolve_package_path(path)
    if resolved is None:
        looked = ', '.join(str(p) for p in candidate_paths(path))
        hint = how_to_override or f"point the '{what}' parameter at an existing file"
        raise ModelUnavailableError(
            f"{what} '{path}' not found (looked in: {looked}). Download the weights with the "
            f"`ppd-fetch` helper (they go to models/), or {hint}.")
    return resolved


def require_export_dir(export_dir: str, backend: str) -> Path:
    """The export folder (holding manifest.json) that `export_dir` resolves to, or
    ModelUnavailableError saying how to make one."""
    if not export_dir:
        raise ModelUnavailableError(f"backend '{backend}' runs an exported model: set "
                                    f"'export_dir' to a folder made by `ppd-export`")
    manifest = require_weight_file(str(Path(export_dir) / 'manifest.json'), 'export_dir',
                                   "make the export with `ppd-export` or point 'export_dir' "
                                   "at one")
    return manifest.parent


def load_predictor_from_paths(checkpoint: str, dit_checkpoint: str, encoder_checkpoint: str,
                              variant: str = 'large', device: str = 'auto',
                              precision: str = 'fp32', num_threads: int = 0,
                              network_area: int = 0, upsampling: str = 'edge_aware',
                              backend: str = 'torch', export_dir: str = ''):
    """A DepthPredictor from a ppd_ros checkpoint, or (checkpoint empty) the official files.

    Relative paths resolve as in package_paths. num_threads > 0 caps torch's CPU threads.
    network_area > 0 sets the network resolution's area in pixels (0: the training area).
    upsampling: how the network output reaches the image size (UPSAMPLING_CHOICES).
    backend other than 'torch' runs the export in export_dir, made from these weight files.
    """
    if checkpoint:
        paths = {'checkpoint': require_weight_file(checkpoint, 'checkpoint')}
    else:
        paths = {'dit_checkpoint': require_weight_file(dit_checkpoint, 'dit_checkpoint'),
                 'encoder_checkpoint': require_weight_file(encoder_checkpoint, 'encoder_checkpoint')}
    exported = {}
    if backend != 'torch':
        exported = {'backend': backend, 'export_dir': str(require_export_dir(export_dir, backend))}
    import torch

    from ppd_ros.model import CheckpointError, load_predictor
    if num_threads > 0:
        torch.set_num_threads(num_threads)
    area = network_area or None
    try:
        if checkpoint:
            return load_predictor(str(paths['checkpoint']), device=device, precision=precision,
                                  network_area=area, upsampling=upsampling, **exported)
        return load_predictor(dit_checkpoint=str(paths['dit_checkpoint']),
                              encoder_checkpoint=str(paths['encoder_checkpoint']),
                              variant=variant, device=device, precision=precision,
                              network_area=area, upsampling=upsampling, **exported)
    except (CheckpointError, OSError, ValueError) as err:
        files = ', '.join(str(p) for p in paths.values())
        if exported:
            files += f" with the export {exported['export_dir']}"
        raise ModelUnavailableError(f'cannot load the depth model from {files}: {err}') from err
