"""Load PPD plus MoGe-2 for depth mode 'moge' from parameter-style paths (one clear error).

    variant large_moge, checkpoint empty   ppd_moge.pth + MoGe-2's model.pt (dit_checkpoint,
                                          encoder_checkpoint): one file gives the semantics
                                          encoder and the geometry; moge_checkpoint unused
    otherwise                             the PPD model as predictor_loading loads it, and
                                          MoGe-2 from moge_checkpoint (an official model.pt
                                          or a ppd_ros MoGe-2 file such as the shipped tiny one)
"""
from __future__ import annotations

from ppd_ros.pipeline.predictor_loading import (ModelUnavailableError, load_predictor_from_paths,
                                                official_files, require_weight_file)

GRID_CHOICES = ('auto', 'exact')
DEFAULT_MOGE_CHECKPOINT = 'models/tiny_moge2.safetensors'


def shares_moge_encoder(checkpoint: str, variant: str) -> bool:
    """Whether these settings load PPD-MoGe from the release files (one shared encoder)."""
    from ppd_ros.model.configs import get_config
    return not checkpoint and get_config(variant).encoder.type == 'moge2'


def load_metric_predictor_from_paths(checkpoint: str, dit_checkpoint: str,
                                     encoder_checkpoint: str, moge_checkpoint: str,
                                     variant: str = 'large', device: str = 'auto',
                                     precision: str = 'fp32', num_threads: int = 0,
                                     network_area: int = 0, grid: str = 'auto',
                                     resolution_level: int = 9, upsampling: str = 'edge_aware'):
    """A MetricDepthPredictor (model.metric_predictor); ``grid`` 'auto' shares the encoder pass
    when the models share an encoder, 'exact' always runs MoGe-2's own infer."""
    if grid not in GRID_CHOICES:
        raise ValueError(f'grid must be one of {GRID_CHOICES}, got {grid!r}')
    from ppd_ros.model import CheckpointError
    from ppd_ros.model.metric_predictor import metric_predictor
    grid_choice = None if grid == 'auto' else 'exact'
    if shares_moge_encoder(checkpoint, variant):
        dit_checkpoint, encoder_checkpoint = official_files(dit_checkpoint, encoder_checkpoint,
                                                            variant)
        paths = [require_weight_file(dit_checkpoint, 'dit_checkpoint'),
                 require_weight_file(encoder_checkpoint, 'encoder_checkpoint')]
        try:
            import torch

            from ppd_ros.model.ppd_moge import load_official_ppd_moge
            if num_threads > 0:
                torch.set_num_threads(num_threads)
            ppd, moge = load_official_ppd_moge(*paths, variant)
        except (CheckpointError, OSError, ValueError) as err:
            raise ModelUnavailableError(f'cannot load PPD-MoGe from {paths[0]}, {paths[1]}: '
                                        f'{err}') from err
    else:
        path = require_weight_file(moge_checkpoint, 'moge_checkpoint')  # before the slow part
        ppd = load_predictor_from_paths(checkpoint, dit_checkpoint, encoder_checkpoint, variant,
                                        'cpu', 'fp32', num_threads, network_area).model
        try:
            from ppd_ros.model.moge2_checkpoint import load_any_moge2
            moge = load_any_moge2(path)
        except (CheckpointError, OSError, ValueError) as err:
            raise ModelUnavailableError(f'cannot load MoGe-2 from {path}: {err}') from err
    return metric_predictor(ppd, moge, device, precision, grid_choice, network_area or None,
                            resolution_level, upsampling)
