"""Stage 1 of the tiny recipe: a discriminative depth regressor (Depth Anything at toy scale).

    tokens = DINOv2-style ViT(encoder_input(I))            (B, N0, D) on the g16 grid
    feat   = pixel_shuffle(Linear(tokens), 4)              (B, C, h/4, w/4)
    p      = bilinear_upsample(conv3 GELU conv3 GELU conv3 (feat)) to (h, w)

Like DA-V2's DPT head, the head sees only ViT tokens (no image skip) and its output is
interpolated to full resolution, so depth edges are smooth: it is the "discriminative"
baseline of the paper's edge / flying-pixel comparison.

Target and loss (choice): p regresses the PPD latent x0 directly (normalised log(1 + d),
depth_normalisation), the very target the DiT learns, with a masked MSE plus
``gradient_weight`` times the same multi-scale gradient loss. (A scale-and-shift-invariant
MSE with a differentiable least-squares fit was tried first: it stalls at a saddle where p is
uncorrelated with x0 and the gradient vanishes.) The evaluation aligns log depth affinely, so
the per-image normalisation costs the baseline nothing there.

After training, ``transfer_encoder`` copies encoder.* into a PixelPerfectDepth, whose SP-DiT
then uses it as its frozen semantics encoder (the same encoder_input path in both models).
``grow_encoder`` deepens a trained encoder, ``reprompt`` hands it to a trained DiT, and
``save_stage1_head`` writes a file that reads its encoder from the SP-DiT's file.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ppd_ros.model.checkpoint import (CheckpointError, config_from_metadata,
                                       load_state_dict_strict, read_safetensors, require_file,
                                       restore_int8, safetensors_metadata)
from ppd_ros.model.configs import ModelConfig, get_config
from ppd_ros.model.pixel_perfect_depth import PixelPerfectDepth
from ppd_ros.model.shared_weights import read_shared_tensors, shared_file, weights_digest
from ppd_ros.model.predictor import Prediction, resolve_device
from ppd_ros.model.preprocess import encoder_input, image_to_tensor, resize_keep_aspect, upsample_depth
from ppd_ros.model.vit_encoder import DinoV2Encoder

from .datasets import DepthBatch
from .depth_normalisation import normalise_depth
from .losses import multiscale_gradient_loss

STAGE1_FORMAT = 'ppd_ros_stage1'
STAGE1_FORMAT_VERSION = '1'
DEFAULT_HEAD = {'channels': 64, 'upsample': 4}
#: Bounds of the head config fields a stage-1 file may carry.
HEAD_BOUNDS = {'channels': (1, 4096), 'upsample': (1, 16)}


class PatchUpsampleHead(nn.Module):
    """Tokens on the g16 grid -> one channel at (h, w): linear sub-patch features, convs, bilinear."""

    def __init__(self, dim: int, channels: int = 64, upsample: int = 4):
        super().__init__()
        self.upsample = upsample
        self.proj = nn.Linear(dim, channels * upsample * upsample)
        self.refine = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.GELU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.GELU(),
            nn.Conv2d(channels, 1, 3, padding=1))

    def forward(self, tokens: torch.Tensor, grid_h: int, grid_w: int,
                height: int, width: int) -> torch.Tensor:
        b = tokens.shape[0]
        x = self.proj(tokens).transpose(1, 2).reshape(b, -1, grid_h, grid_w)
        x = self.refine(F.pixel_shuffle(x, self.upsample))
        return F.interpolate(x, size=(height, width), mode='bilinear', align_corners=False)


class Stage1Regressor(nn.Module):
    """Encoder (the PPD config's semantics encoder) + PatchUpsampleHead; keys encoder.*, head.*."""

    def __init__(self, config: ModelConfig | str = 'tiny', head: dict[str, int] | None = None):
        super().__init__()
        self.config = get_config(config)
        if not self.config.encoder.enabled:
            raise ValueError('stage 1 needs a config with an encoder')
        self.head_config = {**DEFAULT_HEAD, **(head or {})}
        self.encoder = DinoV2Encoder(self.config.encoder)
        self.head = PatchUpsampleHead(self.config.encoder.embed_dim, **self.head_config)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Predicted latent x0 (B, 1, h, w), nominally in [-1, 0.5], for image (B, 3, h, w) in [0, 1]."""
        height, width = image.shape[-2:]
        stem = self.config.stem_patch_size
        if height % stem or width % stem:
            raise ValueError(f'input {height}x{width} is not a multiple of {stem}')
        tokens = self.encoder(encoder_input(image, self.config.encoder.patch_size, stem))
        return self.head(tokens, height // stem, width // stem, height, width)


class Stage1Task:
    """Training task for the Trainer: masked MSE (+ gradient loss) on the normalised log depth."""

    final_name = 'final.safetensors'

    def __init__(self, model: Stage1Regressor, gradient_weight: float = 0.2):
        self.model = model
        self.gradient_weight = gradient_weight

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.model.parameters())

    def set_train_mode(self) -> None:
        self.model.train()

    def loss(self, batch: DepthBatch, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        x0 = normalise_depth(batch.depth, batch.valid)
        pred = self.model(batch.rgb).float()  # losses in fp32 under autocast
        m = batch.valid.to(pred.dtype)
        mse = (m * (pred - x0) ** 2).sum() / (m.sum() + 1e-6)
        parts = {'mse': float(mse.detach())}
        loss = mse
        if self.gradient_weight:
            grad = multiscale_gradient_loss(pred, x0, batch.valid)
            parts['gradient'] = float(grad.detach())
            loss = loss + self.gradient_weight * grad
        return loss, parts

    def save_final(self, path: Path, metadata: dict[str, Any]) -> Path:
        return save_stage1(self.model, path, metadata)


# ----------------------------------------------------------------------------- files

def save_stage1(model: Stage1Regressor, path: str | os.PathLike,
                extra_metadata: dict[str, Any] | None = None, dtype: torch.dtype = torch.float32) -> Path:
    """One .safetensors (encoder.*, head.*) with the PPD config and head config as metadata."""
    from safetensors.torch import save_file
    path = Path(path)
    metadata = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in (extra_metadata or {}).items()}
    metadata.update(format=STAGE1_FORMAT, format_version=STAGE1_FORMAT_VERSION,
                    config=model.config.to_json(), head=json.dumps(model.head_config))
    tensors = {k: v.detach().to('cpu', dtype).contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    return path


def is_stage1_checkpoint(path: str | os.PathLike) -> bool:
    if Path(path).suffix != '.safetensors' or not Path(path).is_file():
        return False
    return safetensors_metadata(path).get('format') == STAGE1_FORMAT


def encoder_digest(tensors: dict[str, torch.Tensor]) -> str:
    """``weights_digest`` of the encoder.* tensors (names, dtypes, shapes, bytes)."""
    return weights_digest(tensors, 'encoder.')


def save_stage1_head(source: str | os.PathLike, target: str | os.PathLike,
                     encoder_file: str | os.PathLike, storage: str = 'float16',
                     int8_prefixes: Sequence[str] = ()) -> Path:
    """Write ``source``'s head.* with ``storage``, taking its encoder from ``encoder_file``.

    ``encoder_file`` (any .safetensors with the same encoder.* tensors, e.g. the shipped SP-DiT)
    must hold exactly ``source``'s encoder as ``stored_tensors`` writes it; the target records
    its name, relative to the target's folder, and the digest of those stored tensors, which
    ``load_stage1`` checks.
    """
    from safetensors.torch import save_file

    from .checkpoint_export import stored_tensors, with_storage_metadata
    source, target, encoder_file = Path(source), Path(target), Path(encoder_file)
    metadata = safetensors_metadata(source)
    if metadata.get('format') != STAGE1_FORMAT:
        raise ValueError(f'{source} is not a stage-1 regressor checkpoint')
    tensors = stored_tensors(read_safetensors(source), storage, int8_prefixes)
    shared = read_safetensors(encoder_file, dequantize=False)
    ours = {k: v for k, v in tensors.items() if k.startswith('encoder.')}
    if ({k for k in shared if k.startswith('encoder.')} != ours.keys()
            or any(shared[k].dtype != v.dtype or not torch.equal(shared[k], v)
                   for k, v in ours.items())):
        raise ValueError(f'{encoder_file} does not hold the encoder of {source} stored as '
                         f'{storage} with int8 prefixes {list(int8_prefixes)}')
    metadata = with_storage_metadata(metadata, storage, int8_prefixes)
    metadata.update(encoder_file=os.path.relpath(encoder_file.resolve(), target.parent.resolve()),
                    encoder_digest=encoder_digest(ours))
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v for k, v in tensors.items() if not k.startswith('encoder.')}, str(target),
              metadata=metadata)
    return target


def require_stage1_files(path: str | os.PathLike) -> Path | None:
    """The encoder file a stage-1 head reads (None if it holds its encoder); raises if missing."""
    path = require_file(path)
    name = safetensors_metadata(path).get('encoder_file')
    return None if name is None else shared_file(path, name)


def head_config_from_metadata(metadata: dict[str, str], path: str | os.PathLike) -> dict[str, int]:
    """The checked head config of a stage-1 file (CheckpointError if absent or out of bounds)."""
    try:
        head = json.loads(metadata['head'])
    except (KeyError, ValueError, RecursionError):
        raise CheckpointError(f'{path}: no valid head config in the metadata', path=path) from None
    if not isinstance(head, dict) or set(head) - set(HEAD_BOUNDS):
        raise CheckpointError(f'{path}: the head config must be an object with keys '
                              f'{sorted(HEAD_BOUNDS)}', path=path)
    for key, value in head.items():
        low, high = HEAD_BOUNDS[key]
        if type(value) is not int or not low <= value <= high:
            raise CheckpointError(f'{path}: head {key} must be an integer in [{low}, {high}]',
                                  path=path)
    return head


def load_stage1(path: str | os.PathLike) -> Stage1Regressor:
    """Stage1Regressor (CPU, fp32) from save_stage1's or save_stage1_head's file (strict)."""
    path = Path(path)
    metadata = safetensors_metadata(path)
    if metadata.get('format') != STAGE1_FORMAT:
        raise CheckpointError(f'{path} is not a stage-1 regressor checkpoint', path=path)
    config = config_from_metadata(metadata, path)
    if not config.encoder.enabled:
        raise CheckpointError(f'{path}: a stage-1 config needs an encoder', path=path)
    model = Stage1Regressor(config, head_config_from_metadata(metadata, path))
    tensors = read_safetensors(path, dequantize=False)
    if 'encoder_file' in metadata:  # digest over the stored tensors
        tensors.update(read_shared_tensors(path, metadata['encoder_file'], 'encoder.',
                                           metadata.get('encoder_digest', ''), 'encoder'))
    tensors = restore_int8(tensors, path)
    load_state_dict_strict(model, tensors, source=str(path))
    return model


def transfer_encoder(stage1: Stage1Regressor, target: PixelPerfectDepth) -> PixelPerfectDepth:
    """Copy the trained encoder into a PixelPerfectDepth (encoder configs must be equal)."""
    if target.encoder is None:
        raise ValueError('the target model has no encoder (vanilla DiT)')
    if stage1.config.encoder != target.config.encoder:
        raise ValueError(f'encoder configs differ: {stage1.config.encoder} vs {target.config.encoder}')
    target.encoder.load_state_dict(stage1.encoder.state_dict(), strict=True)
    return target


def reprompt(model: PixelPerfectDepth, stage1: Stage1Regressor) -> PixelPerfectDepth:
    """``model``'s DiT with ``stage1``'s encoder, which may be deeper (same token width).

    The DiT weights are kept as they are; only the config's encoder entry changes.
    """
    if model.encoder is None:
        raise ValueError('the target model has no encoder (vanilla DiT)')
    if stage1.config.encoder == model.config.encoder:
        return transfer_encoder(stage1, model)
    if stage1.config.encoder.semantic_dim != model.config.encoder.semantic_dim:
        raise ValueError(f'the DiT fuses {model.config.encoder.semantic_dim}-channel semantics; '
                         f'the stage-1 encoder gives {stage1.config.encoder.semantic_dim}')
    config = dataclasses.replace(model.config, encoder=stage1.config.encoder)
    target = PixelPerfectDepth(config)
    target.dit.load_state_dict(model.dit.state_dict(), strict=True)
    return transfer_encoder(stage1, target)


def grow_encoder(model: Stage1Regressor, depth: int) -> Stage1Regressor:
    """A copy of ``model`` whose encoder has ``depth`` blocks: the trained ones, then new ones.

    The new blocks' LayerScale gammas start at zero, so each is the identity and the grown
    model predicts exactly what ``model`` did; training then opens them up.
    """
    old_depth = model.config.encoder.depth
    if depth < old_depth:
        raise ValueError(f'cannot shrink the encoder from {old_depth} to {depth} blocks')
    encoder = dataclasses.replace(model.config.encoder, depth=depth)
    grown = Stage1Regressor(dataclasses.replace(model.config, encoder=encoder), model.head_config)
    new_prefixes = tuple(f'encoder.blocks.{i}.' for i in range(old_depth, depth))
    new_keys = {k for k in grown.state_dict() if k.startswith(new_prefixes)}
    missing, unexpected = grown.load_state_dict(model.state_dict(), strict=False)
    if unexpected or set(missing) != new_keys:  # only the new blocks may be left unloaded
        raise RuntimeError(f'key mismatch: missing {missing}, unexpected {unexpected}')
    with torch.no_grad():
        for block in grown.encoder.blocks[old_depth:]:
            block.ls1.gamma.zero_()
            block.ls2.gamma.zero_()
    return grown


# ----------------------------------------------------------------------------- inference

class Stage1Predictor:
    """Predictor with DepthPredictor's interface (``steps`` and ``seed`` are ignored)."""

    def __init__(self, model: Stage1Regressor, device: str | torch.device = 'auto'):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval().requires_grad_(False)
        self.config = model.config

    @torch.inference_mode()
    def predict(self, rgb: np.ndarray, steps: int | None = None, seed: int | None = None,
                noise=None, resize: bool = True) -> Prediction:
        start = time.perf_counter()
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f'expected an H x W x 3 uint8 RGB image, got {rgb.dtype} {rgb.shape}')
        height, width = rgb.shape[:2]
        resized = resize_keep_aspect(rgb, self.config.train_area) if resize else rgb
        image = image_to_tensor(resized).to(self.device)
        t_pre = time.perf_counter()
        network_depth = self.model(image).float() + 0.5  # x0 + 0.5, as PPD
        t_net = time.perf_counter()
        depth = upsample_depth(network_depth, height, width)[0, 0].cpu().numpy().astype(np.float32)
        end = time.perf_counter()
        timings = {'preprocess': t_pre - start, 'semantics': 0.0, 'dit': t_net - t_pre,
                   'postprocess': end - t_net, 'total': end - start}
        return Prediction(depth, network_depth[0, 0].cpu().numpy().astype(np.float32), timings, ())
