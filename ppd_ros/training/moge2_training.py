"""Training and evaluating a small MoGe-2 (metric depth + intrinsics) on the synthetic scenes.

Data: the procedural rooms, each seed seen through a camera whose horizontal field of view is
drawn per seed from FOV_RANGE_DEG (the scenes' default is a fixed 70 degrees, from which a
focal length could not be learned). The scenes carry exact metric depth and intrinsics.

Network: MoGe-2's architecture ('moge2_tiny'): the DINOv2 backbone is the semantics encoder of
a trained PPD checkpoint (tiny_ppd.safetensors), so that the shipped file can read it from
there; projections, neck, points / mask heads and the scale head are trained, and optionally
the backbone's last blocks (``backbone_blocks``: a frozen backbone trained for PPD at one
field of view hardly tells fields of view apart; the shipped file then stores those blocks).

Loss (MoGe-2's training recipe is not reproduced; this is a small one with the same split of
relative geometry and metric scale). With p the predicted points, g the true camera-frame
points (metres), m the valid mask and w = m / g_z:

    alpha    = sum w p.g / sum w p.p                     scale aligning p to g (per image)
    points   = sum m |alpha p - g|_1 / g_z / sum m        scale-invariant, relative L1
    gradient = multi-scale gradient loss of log(alpha p_z) against log g_z (losses.py)
    scale    = |log metric_scale - log alpha|             alpha held fixed (no gradient)
    mask     = binary cross-entropy of the mask against m

infer's focal / shift recovery then reads the focal from p's x / z and y / z.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ppd_ros.model.checkpoint import (load_checkpoint, read_safetensors, restore_int8,
                                      safetensors_metadata)
from ppd_ros.model.moge2 import MoGe2Model, build_moge2
from ppd_ros.model.moge2_checkpoint import (MOGE2_FORMAT, PPD_ENCODER, load_moge2,
                                            ppd_encoder_to_backbone, save_moge2)
from ppd_ros.model.moge2_config import BACKBONE_FIELDS, get_moge2_config
from ppd_ros.model.shared_weights import weights_digest

from .checkpoint_export import stored_tensors, with_storage_metadata
from .datasets import DepthBatch, SyntheticDepthDataset
from .losses import multiscale_gradient_loss

#: Horizontal field of view of the training and evaluation cameras, drawn per seed (degrees).
FOV_RANGE_DEG = (45.0, 95.0)
LOSS_WEIGHTS = {'points': 1.0, 'gradient': 0.2, 'scale': 0.5, 'mask': 0.1}


def fov_for_seed(seed: int, fov_range: tuple[float, float] = FOV_RANGE_DEG) -> float:
    """The horizontal field of view (degrees) of seed's camera; fixed per seed."""
    return float(np.random.default_rng([int(seed), 0xF0F]).uniform(*fov_range))


def focal_px(fov_deg: float, width: int) -> float:
    """Focal length in pixels of a width-pixel image with horizontal field of view fov_deg."""
    return (width / 2.0) / math.tan(math.radians(fov_deg) / 2.0)


@dataclass
class GeometryBatch(DepthBatch):
    fx: torch.Tensor = None  # (B,) focal length in pixels (square pixels, centred camera)

    def to(self, device) -> 'GeometryBatch':
        return GeometryBatch(self.rgb.to(device), self.depth.to(device), self.valid.to(device),
                             self.fx.to(device))


class SyntheticGeometryDataset(SyntheticDepthDataset):
    """Synthetic scenes, one camera field of view per seed (fov_for_seed)."""

    def __init__(self, seeds: Sequence[int], width: int = 128, height: int = 96, **kwargs):
        super().__init__(seeds, width, height, **kwargs)
        self.fovs = np.array([fov_for_seed(s) for s in self.seeds])

    def _load(self, index: int):
        from ppd_ros.synthetic import generate_frame

        from .datasets import to_sample
        frame = generate_frame(self.seeds[index], self.width, self.height,
                               hfov_deg=self.fovs[index])
        return to_sample(frame.rgb, frame.depth, frame.valid)

    def _cache_path(self, cache_dir: str | Path) -> Path:
        path = super()._cache_path(cache_dir)
        low, high = FOV_RANGE_DEG
        return path.with_name(f'{path.name}_fov{low:g}-{high:g}')

    def make_batch(self, indices: Sequence[int], flips: Sequence[bool] | None = None
                   ) -> GeometryBatch:
        """Samples and their focal lengths (a horizontal flip keeps a centred camera's K)."""
        batch = super().make_batch(indices, flips)
        fx = torch.tensor([focal_px(self.fovs[int(i)], self.width) for i in indices],
                          dtype=torch.float32)
        return GeometryBatch(batch.rgb, batch.depth, batch.valid, fx)


def camera_points(depth: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) optical-frame points of depth (B, 1, H, W) for centred square-pixel cameras
    with focal lengths fx (B,) in pixels (integer pixel centres, cx = (W - 1) / 2)."""
    b, _, height, width = depth.shape
    u = torch.arange(width, dtype=depth.dtype, device=depth.device) - (width - 1) / 2
    v = torch.arange(height, dtype=depth.dtype, device=depth.device) - (height - 1) / 2
    z = depth[:, 0]
    f = fx.view(b, 1, 1)
    return torch.stack((u.view(1, 1, -1) / f * z, v.view(1, -1, 1) / f * z, z), dim=-1)


def geometry_losses(outputs: dict[str, torch.Tensor], batch: GeometryBatch
                    ) -> dict[str, torch.Tensor]:
    """The loss terms of the module docstring (unweighted)."""
    points = outputs['points'].float()
    truth = camera_points(batch.depth, batch.fx)
    m = batch.valid[:, 0].to(points.dtype)
    gz = torch.where(batch.valid[:, 0], truth[..., 2], torch.ones_like(truth[..., 2]))
    w = m / gz
    alpha = ((w * (points * truth).sum(-1)).sum((1, 2))
             / (w * (points * points).sum(-1)).sum((1, 2)).clamp_min(1e-12))
    aligned = alpha.view(-1, 1, 1, 1) * points
    count = m.sum().clamp_min(1.0)
    terms = {'points': (m * (aligned - truth).abs().sum(-1) / gz).sum() / count}
    log_z = torch.log(aligned[..., 2].clamp_min(1e-6))
    terms['gradient'] = multiscale_gradient_loss(log_z[:, None], torch.log(gz)[:, None],
                                                 batch.valid)
    if 'metric_scale' in outputs:
        log_alpha = torch.log(alpha.detach().clamp_min(1e-12))
        terms['scale'] = (torch.log(outputs['metric_scale'].float()) - log_alpha).abs().mean()
    if 'mask' in outputs:
        prob = outputs['mask'].float().clamp(1e-6, 1 - 1e-6)
        terms['mask'] = F.binary_cross_entropy(prob, m)
    return terms


class MoGe2Task:
    """Training task for the Trainer: the MoGe-2 decoder and heads, and the last
    ``backbone_blocks`` backbone blocks with the final norm (0: the backbone stays frozen)."""

    final_name = 'final.safetensors'

    def __init__(self, model: MoGe2Model, weights: dict[str, float] | None = None,
                 backbone_blocks: int = 0):
        self.model = model
        self.weights = {**LOSS_WEIGHTS, **(weights or {})}
        backbone = model.encoder.backbone
        if not 0 <= backbone_blocks <= len(backbone.blocks):
            raise ValueError(f'backbone_blocks must be in [0, {len(backbone.blocks)}]')
        self.backbone_blocks = backbone_blocks
        backbone.requires_grad_(False)
        self.trained_backbone = [] if not backbone_blocks else [
            *backbone.blocks[len(backbone.blocks) - backbone_blocks:], backbone.norm]
        for module in self.trained_backbone:
            module.requires_grad_(True)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def set_train_mode(self) -> None:
        self.model.train()
        self.model.encoder.backbone.eval()   # no dropout anywhere; kept explicit

    def loss(self, batch: GeometryBatch, generator: torch.Generator
             ) -> tuple[torch.Tensor, dict[str, float]]:
        height, width = batch.rgb.shape[-2:]
        outputs = self.model(batch.rgb, grid=self.model.token_grid(height, width))
        terms = geometry_losses(outputs, batch)
        loss = sum(self.weights[k] * v for k, v in terms.items())
        return loss, {k: float(v.detach()) for k, v in terms.items()}

    def save_final(self, path: Path, metadata: dict[str, Any]) -> Path:
        return save_moge2(self.model, path, metadata)


def moge2_with_ppd_backbone(ppd_checkpoint: str | os.PathLike,
                            variant: str = 'moge2_tiny') -> MoGe2Model:
    """A fresh MoGe-2 of ``variant`` whose backbone is a PPD checkpoint's semantics encoder."""
    ppd = load_checkpoint(ppd_checkpoint)
    if ppd.encoder is None:
        raise ValueError(f'{ppd_checkpoint} has no semantics encoder')
    data = get_moge2_config(variant).to_model_config()
    backbone = {k: getattr(ppd.config.encoder, k) for k in BACKBONE_FIELDS}
    data['encoder']['backbone'] = backbone
    depth = backbone['depth']   # the last block of each quarter, as 5/11/17/23 of ViT-L's 24
    data['encoder']['intermediate_layers'] = sorted({max(0, depth * k // 4 - 1) for k in (1, 2, 3, 4)})
    data['scale_head']['dims'][0] = backbone['embed_dim']
    config = get_moge2_config(data)
    config = dataclasses.replace(config, name=variant)
    model = build_moge2(config)
    state = {ppd_encoder_to_backbone(PPD_ENCODER + k): v
             for k, v in ppd.encoder.state_dict().items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) != {k for k in model.state_dict()
                                      if not k.startswith('encoder.backbone.')
                                      or k == 'encoder.backbone.mask_token'}:
        raise RuntimeError(f'backbone transfer mismatch: missing {missing}, unexpected {unexpected}')
    return model


def moge2_training_run(args) -> tuple[MoGe2Task, SyntheticGeometryDataset]:
    """Task and data of ``ppd-train moge2`` (see cli.py for the arguments)."""
    from .seed_splits import train_seeds
    if args.data != 'synthetic':
        raise SystemExit('ppd-train moge2: only --data synthetic carries intrinsics')
    if args.init is not None:
        model = load_moge2(args.init)
    else:
        model = moge2_with_ppd_backbone(args.backbone)
    dataset = SyntheticGeometryDataset(train_seeds(args.train_frames), args.width, args.height)
    dataset.preload(progress=not args.no_progress, cache_dir=args.cache_dir)
    task = MoGe2Task(model, {'gradient': args.gradient_weight}, args.backbone_blocks)
    return task, dataset


def export_moge2(source: str | os.PathLike, target: str | os.PathLike,
                 storage: str = 'float16', int8_prefixes: Sequence[str] = (),
                 backbone_from: str | os.PathLike | None = None) -> Path:
    """A compact copy of a MoGe-2 file (checkpoint_export's storage rules). With
    ``backbone_from`` (the PPD checkpoint whose encoder the backbone started from) the copy
    borrows the backbone from there and stores only the backbone tensors training changed."""
    from safetensors.torch import load_file, save_file
    source, target = Path(source), Path(target)
    metadata = safetensors_metadata(source)
    if metadata.get('format') != MOGE2_FORMAT:
        raise ValueError(f'{source} is not a ppd_ros MoGe-2 checkpoint')
    tensors = read_safetensors(source)
    metadata = with_storage_metadata(metadata, storage, int8_prefixes)
    metadata.pop('backbone_file', None)
    metadata.pop('backbone_digest', None)
    if backbone_from is not None:
        backbone_from = Path(backbone_from)
        shared = {k: v for k, v in load_file(str(backbone_from)).items()
                  if k.startswith(PPD_ENCODER)}
        restored = {ppd_encoder_to_backbone(k): v
                    for k, v in restore_int8(shared, backbone_from).items()}
        if any(k not in tensors or tensors[k].shape != v.shape for k, v in restored.items()):
            raise ValueError(f'{backbone_from} does not hold a backbone of {source}\'s shape')
        unchanged = [k for k, v in restored.items() if torch.equal(tensors[k], v.float())]
        if not unchanged:
            raise ValueError(f'{source} shares no backbone tensor with {backbone_from}')
        for key in unchanged:
            del tensors[key]
        metadata.update(backbone_file=os.path.relpath(backbone_from.resolve(),
                                                      target.parent.resolve()),
                        backbone_digest=weights_digest(shared, PPD_ENCODER))
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file(stored_tensors(tensors, storage, int8_prefixes), str(target), metadata=metadata)
    return target


# ----------------------------------------------------------------------------- evaluation

def evaluate_geometry(model: MoGe2Model, n_frames: int = 200, width: int = 128, height: int = 96,
                      progress: bool = False, known_intrinsics: bool = False) -> dict:
    """Metric depth and focal accuracy of ``model`` on held-out seeds (>= 1,000,000).

    Per frame: MoGe-2's infer (fp32) on the frame; AbsRel / delta1 of its metric depth against
    the exact depth over the valid pixels (without the predicted mask, so a pixel the mask
    drops still counts), the focal's relative error, and the predicted mask's agreement with
    the valid pixels. ``known_intrinsics`` gives infer the true camera (shift solved only).
    """
    from tqdm import tqdm

    from ppd_ros.evaluation.metrics import depth_metrics
    from ppd_ros.model.moge2_geometry import KnownIntrinsics, infer
    from ppd_ros.model.preprocess import image_to_tensor
    from ppd_ros.synthetic import generate_frame

    from .seed_splits import eval_seeds
    frames = []
    for seed in tqdm(eval_seeds(n_frames), disable=not progress, mininterval=5, desc='MoGe-2'):
        fov = fov_for_seed(seed)
        frame = generate_frame(seed, width, height, hfov_deg=fov)
        intr = frame.intrinsics
        camera = KnownIntrinsics(intr.fx, intr.fy, intr.cx, intr.cy) if known_intrinsics else None
        out = infer(model, image_to_tensor(frame.rgb), camera=camera, apply_mask=False)
        depth = out.depth[0].cpu().numpy()
        fx = float(out.intrinsics[0, 0, 0]) * width
        valid = frame.valid
        metrics = depth_metrics(np.where(depth > 0, depth, 0.0), frame.depth, valid)
        mask = out.mask[0].cpu().numpy()
        frames.append({'seed': seed, 'fov_deg': fov, 'abs_rel': metrics['abs_rel'],
                       'd1': metrics['d1'], 'focal_rel_error': abs(fx - intr.fx) / intr.fx,
                       'mask_accuracy': float((mask == valid).mean()),
                       'metric_scale': float(out.metric_scale[0]) if out.metric_scale is not None
                       else float('nan')})
    keys = ('abs_rel', 'd1', 'focal_rel_error', 'mask_accuracy')
    summary = {k: float(np.mean([f[k] for f in frames])) for k in keys}
    summary['focal_rel_error_median'] = float(np.median([f['focal_rel_error'] for f in frames]))
    summary['n_frames'] = len(frames)
    return {'summary': summary, 'frames': frames}


def format_geometry_summary(name: str, summary: dict) -> str:
    return (f"{name}: metric AbsRel {summary['abs_rel']:.4f}, delta1 {summary['d1']:.4f}, "
            f"focal error {100 * summary['focal_rel_error']:.2f} % (median "
            f"{100 * summary['focal_rel_error_median']:.2f} %), mask accuracy "
            f"{summary['mask_accuracy']:.4f} on {summary['n_frames']} held-out frames")


def write_report(path: str | os.PathLike, report: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=1))


def evaluate_moge2_checkpoints(paths: Sequence[str | os.PathLike], n_frames: int = 200,
                               known_intrinsics: bool = False,
                               json_path: str | os.PathLike | None = None) -> dict:
    """``evaluate_geometry`` of every checkpoint, printed; all frames in the JSON report."""
    report = {'n_frames': n_frames, 'fov_range_deg': list(FOV_RANGE_DEG),
              'known_intrinsics': known_intrinsics, 'models': {}}
    for path in paths:
        result = evaluate_geometry(load_moge2(path), n_frames, progress=True,
                                   known_intrinsics=known_intrinsics)
        report['models'][Path(path).stem] = {'checkpoint': str(path), **result}
        print(format_geometry_summary(Path(path).stem, result['summary']))
    if json_path is not None:
        write_report(json_path, report)
    return report
