"""Losses of PPD training (spec section 6.3).

velocity_loss:  sum mask (v_hat - (eps - x0))^2 / (sum mask + 1e-6)
gradient_loss:  for scales k = 0..3 (subsampling [::2^k] in both axes), r = mask (x0_hat - x0),
                term_k = (sum |dx r| m_x + sum |dy r| m_y) / sum mask_k   (whole batch),
                with forward differences and m_x, m_y the products of neighbouring mask values;
                the loss is the sum of the four terms. Finetuning adds it with weight 0.2.
"""
from __future__ import annotations

import torch

GRADIENT_LOSS_SCALES = 4
FINETUNE_GRADIENT_WEIGHT = 0.2


def velocity_loss(v_pred: torch.Tensor, noise: torch.Tensor, x0: torch.Tensor,
                  mask: torch.Tensor) -> torch.Tensor:
    """Masked MSE of the predicted velocity against the target eps - x0."""
    mask = mask.to(v_pred.dtype)
    return (mask * (v_pred - (noise - x0)) ** 2).sum() / (mask.sum() + 1e-6)


def gradient_loss_single_scale(pred: torch.Tensor, target: torch.Tensor,
                               mask: torch.Tensor) -> torch.Tensor:
    """(sum |dx r| m_x + sum |dy r| m_y) / sum mask with r = mask (pred - target)."""
    mask = mask.to(pred.dtype)
    residual = mask * (pred - target)
    grad_x = (residual[..., :, 1:] - residual[..., :, :-1]).abs() * (mask[..., :, 1:] * mask[..., :, :-1])
    grad_y = (residual[..., 1:, :] - residual[..., :-1, :]).abs() * (mask[..., 1:, :] * mask[..., :-1, :])
    count = mask.sum()
    if count == 0:
        return pred.sum() * 0
    return (grad_x.sum() + grad_y.sum()) / count


def multiscale_gradient_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                             scales: int = GRADIENT_LOSS_SCALES) -> torch.Tensor:
    """Sum over k < scales of the single-scale term on [::2^k, ::2^k] subsampled maps."""
    total = pred.new_zeros(())
    for k in range(scales):
        step = 2 ** k
        total = total + gradient_loss_single_scale(
            pred[..., ::step, ::step], target[..., ::step, ::step], mask[..., ::step, ::step])
    return total


def flow_matching_loss(v_pred: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
                       noise: torch.Tensor, x0: torch.Tensor, mask: torch.Tensor,
                       gradient_weight: float = FINETUNE_GRADIENT_WEIGHT,
                       num_train_timesteps: int = 1000) -> tuple[torch.Tensor, dict[str, float]]:
    """velocity_loss + gradient_weight * gradient loss on x0_hat = x_t - (t/T) v_pred."""
    loss_v = velocity_loss(v_pred, noise, x0, mask)
    parts = {'velocity': float(loss_v.detach())}
    loss = loss_v
    if gradient_weight:
        b = (t.to(v_pred.dtype) / num_train_timesteps).view(-1, *([1] * (v_pred.dim() - 1)))
        x0_hat = x_t - b * v_pred
        loss_g = multiscale_gradient_loss(x0_hat, x0, mask)
        parts['gradient'] = float(loss_g.detach())
        loss = loss + gradient_weight * loss_g
    return loss, parts
