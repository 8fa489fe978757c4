"""Load the depth predictor from parameter-style paths, with one clear error when impossible.

MODEL_DEFAULTS are the model options shared by depth_node's parameters and the command-line
tools (ppd-eval), so both load the same model unless told otherwise.
"""
from __future__ import annotations

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
    'steps': 4,
    'seed': 0,
}
VARIANT_CHOICES = ('tiny', 'small', 'large')
PRECISION_CHOICES = ('fp32', 'fp16', 'bf16')


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


def load_predictor_from_paths(checkpoint: str, dit_checkpoint: str, encoder_checkpoint: str,
                              variant: str = 'large', device: str = 'auto',
                              precision: str = 'fp32', num_threads: int = 0):
    """A DepthPredictor from a ppd_ros checkpoint, or (checkpoint empty) the official files.

    Relative paths resolve as in package_paths. num_threads > 0 caps torch's CPU threads.
    """
    if checkpoint:
        paths = {'checkpoint': require_weight_file(checkpoint, 'checkpoint')}
    else:
        paths = {'dit_checkpoint': require_weight_file(dit_checkpoint, 'dit_checkpoint'),
                 'encoder_checkpoint': require_weight_file(encoder_checkpoint, 'encoder_checkpoint')}
    import torch

    from ppd_ros.model import CheckpointError, load_predictor
    if num_threads > 0:
        torch.set_num_threads(num_threads)
    try:
        if checkpoint:
            return load_predictor(str(paths['checkpoint']), device=device, precision=precision)
        return load_predictor(dit_checkpoint=str(paths['dit_checkpoint']),
                              encoder_checkpoint=str(paths['encoder_checkpoint']),
                              variant=variant, device=device, precision=precision)
    except (CheckpointError, OSError, ValueError) as err:
        files = ', '.join(str(p) for p in paths.values())
        raise ModelUnavailableError(f'cannot load the depth model from {files}: {err}') from err
