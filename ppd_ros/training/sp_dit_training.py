"""Stage 2 of the tiny recipe: flow-matching training of the cascade DiT (spec section 6.3).

Per sample: x0 = normalise_depth(d), t ~ logit-normal, eps ~ N(0, 1), x_t = (1 - t/T) x0 +
(t/T) eps, v_hat = DiT([x_t, I - 0.5], t, semantics); loss = velocity MSE + gradient_weight *
multi-scale gradient loss on x0_hat = x_t - (t/T) v_hat. The SP-DiT's semantics come from the
frozen stage-1 encoder (eval mode, no gradients); the vanilla ablation has no encoder.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ppd_ros.model.checkpoint import save_checkpoint
from ppd_ros.model.configs import get_config
from ppd_ros.model.flow_matching import noisy_sample
from ppd_ros.model.pixel_perfect_depth import PixelPerfectDepth, build_model

from .datasets import DepthBatch
from .depth_normalisation import normalise_depth
from .losses import FINETUNE_GRADIENT_WEIGHT, flow_matching_loss
from .recipe_configs import recipe_config
from .stage1_regressor import load_stage1, transfer_encoder
from .timestep_sampling import sample_logit_normal_timesteps, sample_mixed_timesteps


def build_sp_dit(variant: str = 'tiny_ppd', stage1_checkpoint: str | Path | None = None) -> PixelPerfectDepth:
    """SP-DiT of ``variant`` (recipe_config) with the stage-1 encoder (random when no checkpoint).

    The encoder's config is the stage-1 checkpoint's, so a grown (deeper) encoder fits too.
    """
    config = recipe_config(variant)
    if stage1_checkpoint is None:
        return build_model(config)
    stage1 = load_stage1(stage1_checkpoint)
    model = build_model(dataclasses.replace(config, encoder=stage1.config.encoder))
    return transfer_encoder(stage1, model)


def build_vanilla_dit(variant: str = 'tiny_ppd') -> PixelPerfectDepth:
    """The same DiT without semantics (encoder type none): the vanilla ablation."""
    config = recipe_config(variant)
    name = 'tiny_vanilla' if variant == 'tiny_ppd' else f'{config.name}_vanilla'
    return build_model(get_config(config, name=name, encoder={'type': 'none'}))


class FlowMatchingTask:
    """Training task for the Trainer: trains model.dit; model.encoder (if any) stays frozen."""

    final_name = 'final.safetensors'

    def __init__(self, model: PixelPerfectDepth, gradient_weight: float = FINETUNE_GRADIENT_WEIGHT,
                 schedule_steps: int | None = None, schedule_fraction: float = 1.0):
        """`schedule_steps`: draw t from that many Euler steps' timesteps instead of the
        logit-normal (sample_schedule_timesteps; for fine-tuning a fixed-step sampler).
        `schedule_fraction` < 1 draws only that share of t from the schedule and the rest
        logit-normal (sample_mixed_timesteps), keeping other step counts usable."""
        self.model = model
        self.gradient_weight = gradient_weight
        self.schedule_steps = schedule_steps
        self.schedule_fraction = schedule_fraction
        if model.encoder is not None:
            model.encoder.requires_grad_(False)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.model.dit.parameters())

    def set_train_mode(self) -> None:
        self.model.train()
        if self.model.encoder is not None:
            self.model.encoder.eval()

    def loss(self, batch: DepthBatch, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        device = batch.rgb.device
        x0 = normalise_depth(batch.depth, batch.valid)
        if self.schedule_steps is None:
            t = sample_logit_normal_timesteps(x0.shape[0], generator).to(device)
        else:
            t = sample_mixed_timesteps(x0.shape[0], generator, self.schedule_steps,
                                       self.schedule_fraction).to(device)
        noise = torch.randn(x0.shape, generator=generator, dtype=torch.float32).to(device)
        x_t = noisy_sample(x0, noise, t, self.model.config.num_train_timesteps)
        with torch.no_grad():
            semantics = self.model.semantics(batch.rgb)
        v_pred = self.model.velocity(x_t, batch.rgb, t, semantics).float()  # losses in fp32 under autocast
        return flow_matching_loss(v_pred, x_t, t, noise, x0, batch.valid, self.gradient_weight,
                                  self.model.config.num_train_timesteps)

    def save_final(self, path: Path, metadata: dict[str, Any]) -> Path:
        return save_checkpoint(self.model, path, metadata)
