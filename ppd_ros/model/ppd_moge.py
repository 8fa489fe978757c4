"""PPD with MoGe-2 semantics from the release files: ``ppd_moge.pth`` + MoGe-2's ``model.pt``.

``ppd_moge.pth`` holds the same DiT keys as ``ppd.pth`` (``dit.*``, 352 tensors); the semantics
encoder is the encoder of MoGe-2's model.pt (moge2-reference.md sections 1 and 5). Both load
strictly. The PPD model and the MoGe-2 model share one encoder module, so the weights are held
once and one encoder pass per frame can serve the DiT's semantics and MoGe-2's geometry.

The reference loads ppd_moge.pth with strict=False over its whole PixelPerfectDepth, whose
semantics encoder is a complete MoGe-2 (``sem_encoder.*``). Should the file carry such keys,
``sem_encoder.encoder.*`` replace the semantics encoder's weights as they would there (the
geometry keeps model.pt's own encoder, as run_point_cloud's separate MoGe-2 instance does, so the
two are then not shared), and the unused rest (``sem_encoder.neck.*``, heads) is ignored.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

import torch

from .checkpoint import (CheckpointError, load_state_dict_strict, models_dir, read_state_dict,
                         require_file)
from .configs import ModelConfig, get_config
from .moge2 import MoGe2Model, moge2_encoder_config, same_encoder
from .moge2_checkpoint import load_official_moge2
from .pixel_perfect_depth import PixelPerfectDepth, build_model

OFFICIAL_PPD_MOGE_FILE = 'ppd_moge.pth'
SEMANTICS_PREFIX = 'sem_encoder.'
SEMANTICS_ENCODER_PREFIX = 'sem_encoder.encoder.'


def split_ppd_moge_state(state: Mapping[str, torch.Tensor]
                         ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], list[str]]:
    """(dit.* tensors, semantics-encoder overrides keyed like the model's encoder.*, keys that
    fit nowhere) of a ppd_moge.pth state dict."""
    dit, encoder, unexpected = {}, {}, []
    for key, tensor in state.items():
        if key.startswith('dit.'):
            dit[key] = tensor
        elif key.startswith(SEMANTICS_ENCODER_PREFIX):
            encoder['encoder.' + key[len(SEMANTICS_ENCODER_PREFIX):]] = tensor
        elif not key.startswith(SEMANTICS_PREFIX):
            unexpected.append(key)
    return dit, encoder, unexpected


def load_official_ppd_moge(dit_checkpoint: str | os.PathLike | None = None,
                           moge_checkpoint: str | os.PathLike | None = None,
                           config: str | Mapping[str, Any] | ModelConfig = 'large_moge'
                           ) -> tuple[PixelPerfectDepth, MoGe2Model]:
    """(PPD, MoGe-2), CPU float32, from ppd_moge.pth and model.pt (default: under models/)."""
    config = get_config(config)
    if config.encoder.type != 'moge2':
        raise ValueError(f'{config.name!r} has a {config.encoder.type!r} encoder, not moge2')
    moge = load_official_moge2(moge_checkpoint)
    dit_path = require_file(dit_checkpoint or models_dir() / OFFICIAL_PPD_MOGE_FILE)
    if not same_encoder(moge2_encoder_config(config.encoder), moge.config.encoder):
        raise CheckpointError(f'the MoGe-2 file has another encoder than {config.name!r} '
                              f'expects: {moge.config.encoder}', path=moge_checkpoint)
    dit, overrides, unexpected = split_ppd_moge_state(read_state_dict(dit_path))
    encoder_state = {'encoder.' + k: v for k, v in moge.encoder.state_dict().items()}
    model = build_model(config, device='meta')
    load_state_dict_strict(model, {**dit, **encoder_state, **overrides},
                           source=f'{dit_path} + the MoGe-2 encoder', extra_unexpected=unexpected,
                           assign=True)
    if not overrides:
        model.encoder = moge.encoder   # one module (and one copy of the weights) for both
    return model, moge
