"""Load the depth predictor from parameter-style paths, with one clear error when impossible.

MODEL_DEFAULTS are the model options shared by depth_node's parameters and the command-line
tools (ppd-eval, ppd-predict, ppd-demo), so all load the same model unless told otherwise.
Which files a configuration loads (weight_files):
  checkpoint set       -> that ppd_ros .safetensors (it carries its config; variant ignored)
  variant 'tiny'       -> the shipped tiny model, TINY_CHECKPOINT
  variant large/small  -> the official files dit_checkpoint + encoder_checkpoint
  variant large_moge   -> the same settings; left at their defaults they name that variant's
                          release files (official_files: ppd_moge.pth + MoGe-2's model.pt)
The default is the tiny model: it ships with the package and runs on any CPU, but it was
trained only on synthetic rooms (synthetic_model_notice says so whenever one is loaded).
"""
from __future__ import annotations

import re
from pathlib import Path

from ppd_ros.pipeline.package_paths import candidate_paths, resolve_package_path

TINY_CHECKPOINT = 'models/tiny_ppd.safetensors'
MODEL_DEFAULTS = {
    'checkpoint': '',
    'dit_checkpoint': 'models/ppd.pth',
    'encoder_checkpoint': 'models/depth_anything_v2_vitl.pth',
    'variant': 'tiny',
    'device': 'auto',
    'precision': 'fp32',    # 'auto': bf16 where the device runs it fast (docs/performance.md)
    'num_threads': 0,
    'network_area': 0,      # pixels; 0: the model's training area
    'upsampling': 'edge_aware',  # network output -> image size (geometry.depth_upsampling)
    'backend': 'torch',
    'export_dir': '',       # ppd-export folder, for backends other than torch
    'compile': False,       # torch.compile the networks (slow start, see docs/performance.md)
    'steps': 4,
    'seed': 0,
    'samples': 1,           # noise draws per frame (one batch); > 1 adds a confidence map
}
VARIANT_CHOICES = ('tiny', 'small', 'large', 'large_moge')
#: (dit_checkpoint, encoder_checkpoint) a variant loads while both settings keep their defaults
#: (which name the Depth-Anything-v2 pair of large and small).
VARIANT_RELEASE_FILES = {'large_moge': ('models/ppd_moge.pth', 'models/moge-2-vitl-normal.pt')}
#: Torch devices a setting may name.
DEVICE_PATTERN = re.compile(r'^(auto|cpu|cuda(:\d+)?|mps)$')
DEVICE_CHOICES = 'auto, cpu, cuda, cuda:N or mps'


def device_problem(device: str) -> str | None:
    """Why ``device`` is not a usable device setting, or None."""
    if DEVICE_PATTERN.match(device):
        return None
    return f"device '{device}' is not one of {DEVICE_CHOICES}"


PRECISION_CHOICES = ('auto', 'fp32', 'fp16', 'bf16')
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


def parse_image_size(text: str) -> tuple[int, int] | None:
    """'640x480' (width x height) -> (640, 480); '' -> None."""
    text = str(text).strip().lower()
    if not text:
        return None
    match = re.fullmatch(r'(\d+)\s*x\s*(\d+)', text)
    if not match or min(int(match.group(1)), int(match.group(2))) < 1:
        raise ValueError(f'image size must be WIDTHxHEIGHT (e.g. 640x480), got {text!r}')
    return int(match.group(1)), int(match.group(2))


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
        if Path(path) == Path(TINY_CHECKPOINT):
            get = ('The tiny model ships with ppd_ros (restore it with `git checkout -- '
                   f'{TINY_CHECKPOINT}`)')
        else:
            from ppd_ros.model.fetch import WEIGHT_FILES
            known = [(name, spec) for name, spec in WEIGHT_FILES.items()
                     if spec.filename == Path(path).name]
            if not known:
                get = ('Download the official weights with `ppd-fetch` (they go to models/; '
                       'models/README.md lists every file and where it comes from), or place '
                       'the file there by hand')
            elif known[0][1].repo_id or known[0][1].direct_url:
                get = (f'Download it with `ppd-fetch {known[0][0]}` (into models/), or place '
                       'the file there by hand')
            else:
                get = (f'It is not on the hub: `ppd-fetch {known[0][0]}` says where to get it '
                       'by hand (it goes into models/)')
        raise ModelUnavailableError(f"{what} '{path}' not found (looked in: {looked}). {get}, "
                                    f'or {hint}.')
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


def weight_files(checkpoint: str, dit_checkpoint: str, encoder_checkpoint: str,
                 variant: str) -> dict[str, str]:
    """{setting: path as given} of the files a model configuration loads (see above)."""
    if checkpoint:
        return {'checkpoint': checkpoint}
    if variant == 'tiny':
        return {'checkpoint': TINY_CHECKPOINT}
    dit_checkpoint, encoder_checkpoint = official_files(dit_checkpoint, encoder_checkpoint,
                                                        variant)
    return {'dit_checkpoint': dit_checkpoint, 'encoder_checkpoint': encoder_checkpoint}


def official_files(dit_checkpoint: str, encoder_checkpoint: str, variant: str) -> tuple[str, str]:
    """The (DiT, encoder) release files ``variant`` loads: a setting left at its default names
    the variant's own file (VARIANT_RELEASE_FILES), one the user set is kept."""
    release = VARIANT_RELEASE_FILES.get(variant)
    if release is None:
        return dit_checkpoint, encoder_checkpoint
    if dit_checkpoint == MODEL_DEFAULTS['dit_checkpoint']:
        dit_checkpoint = release[0]
    if encoder_checkpoint == MODEL_DEFAULTS['encoder_checkpoint']:
        encoder_checkpoint = release[1]
    return dit_checkpoint, encoder_checkpoint


def synthetic_model_notice(checkpoint: str | Path) -> str | None:
    """One line when ``checkpoint`` is a ppd_ros model trained only on synthetic scenes
    (such as the shipped tiny model), else None."""
    from ppd_ros.model.checkpoint import CheckpointError, read_checkpoint_metadata
    try:
        trained_on = read_checkpoint_metadata(checkpoint).get('data')
    except (CheckpointError, OSError, ValueError):
        return None
    if trained_on != 'synthetic':
        return None
    return (f'model {Path(checkpoint).name} was trained only on synthetic rooms: it is for demos, '
            'tests and CPU smoke runs, and its depth of real images is rough; for real depth '
            'use the official weights (`ppd-fetch`, then variant large)')


def model_notice(checkpoint: str, dit_checkpoint: str, encoder_checkpoint: str,
                 variant: str) -> str | None:
    """synthetic_model_notice for the files these settings load (None for official files)."""
    path = weight_files(checkpoint, dit_checkpoint, encoder_checkpoint, variant).get('checkpoint')
    found = resolve_package_path(path) if path else None
    return synthetic_model_notice(found) if found is not None else None


def load_predictor_from_paths(checkpoint: str, dit_checkpoint: str, encoder_checkpoint: str,
                              variant: str = MODEL_DEFAULTS['variant'], device: str = 'auto',
                              precision: str = 'fp32', num_threads: int = 0,
                              network_area: int = 0, upsampling: str = 'edge_aware',
                              backend: str = 'torch', export_dir: str = '',
                              compile: bool = False):
    """A DepthPredictor from the files weight_files() names for these settings.

    Relative paths resolve as in package_paths. num_threads > 0 caps torch's CPU threads.
    network_area > 0 sets the network resolution's area in pixels (0: the training area).
    upsampling: how the network output reaches the image size (UPSAMPLING_CHOICES).
    backend other than 'torch' runs the export in export_dir, made from these weight files.
    compile runs the torch networks through torch.compile.
    """
    paths = {name: require_weight_file(path, name) for name, path in
             weight_files(checkpoint, dit_checkpoint, encoder_checkpoint, variant).items()}
    exported = {}
    if backend != 'torch':
        exported = {'backend': backend, 'export_dir': str(require_export_dir(export_dir, backend))}
    import torch

    from ppd_ros.model import CheckpointError, load_predictor
    if num_threads > 0:
        torch.set_num_threads(num_threads)
    area = network_area or None
    try:
        if 'checkpoint' in paths:
            return load_predictor(str(paths['checkpoint']), device=device, precision=precision,
                                  network_area=area, upsampling=upsampling, compile=compile,
                                  **exported)
        return load_predictor(dit_checkpoint=str(paths['dit_checkpoint']),
                              encoder_checkpoint=str(paths['encoder_checkpoint']),
                              variant=variant, device=device, precision=precision,
                              network_area=area, upsampling=upsampling, compile=compile,
                              **exported)
    except (CheckpointError, OSError, ValueError) as err:
        files = ', '.join(str(p) for p in paths.values())
        if exported:
            files += f" with the export {exported['export_dir']}"
        raise ModelUnavailableError(f'cannot load the depth model from {files}: {err}') from err
