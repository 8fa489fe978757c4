"""Training losses (spec 6.3): masked velocity MSE and the multi-scale gradient loss."""
import numpy as np
import pytest
import torch

from ppd_ros.training.losses import (flow_matching_loss, gradient_loss_single_scale,
                                     multiscale_gradient_loss, velocity_loss)


def _direct_gradient_loss(pred, target, mask):
    """Loop transcription of the spec: per scale sum |forward diff of r| * m_pair / sum mask."""
    pred, target, mask = (np.asarray(a, dtype=np.float64) for a in (pred, target, mask))
    total = 0.0
    for k in range(4):
        s = 2 ** k
        p, t, m = pred[..., ::s, ::s], target[..., ::s, ::s], mask[..., ::s, ::s]
        r = m * (p - t)
        acc = 0.0
        for idx in np.ndindex(*r.shape[:-2]):
            rr, mm = r[idx], m[idx]
            h, w = rr.shape
            for i in range(h):
                for j in range(w):
                    if j + 1 < w:
                        acc += abs(rr[i, j + 1] - rr[i, j]) * mm[i, j + 1] * mm[i, j]
                    if i + 1 < h:
                        acc += abs(rr[i + 1, j] - rr[i, j]) * mm[i + 1, j] * mm[i, j]
        total += acc / m.sum()
    return total


def test_gradient_loss_zero_for_perfect_prediction():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(2, 1, 16, 16, generator=g)
    mask = torch.rand(2, 1, 16, 16, generator=g) > 0.2
    assert float(multiscale_gradient_loss(target.clone(), target, mask)) == 0.0


def test_gradient_loss_ignores_constant_offset_but_not_structure():
    target = torch.zeros(1, 1, 8, 8)
    mask = torch.ones(1, 1, 8, 8, dtype=torch.bool)
    assert float(multiscale_gradient_loss(target + 0.3, target, mask)) == 0.0
    bumped = target.clone()
    bumped[..., 3, 4] = 1.0
    assert float(multiscale_gradient_loss(bumped, target, mask)) > 0.0


def test_gradient_loss_equals_direct_implementation():
    g = torch.Generator().manual_seed(1)
    pred = torch.randn(2, 1, 13, 10, generator=g)
    target = torch.randn(2, 1, 13, 10, generator=g)
    mask = torch.rand(2, 1, 13, 10, generator=g) > 0.3
    got = float(multiscale_gradient_loss(pred, target, mask))
    assert got == pytest.approx(_direct_gradient_loss(pred, target, mask), rel=1e-5)


def test_gradient_loss_single_scale_hand_example():
    # r = [[1, 0], [0, 0]] with the full mask: |dx| = 1 (row 0), |dy| = 1 (col 0) -> 2 / 4
    pred = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    mask = torch.ones_like(pred, dtype=torch.bool)
    assert float(gradient_loss_single_scale(pred, torch.zeros_like(pred), mask)) == pytest.approx(0.5)
    # masking the bottom-left pixel removes the dy pair and one pixel: 1 / 3
    mask[0, 0, 1, 0] = False
    assert float(gradient_loss_single_scale(pred, torch.zeros_like(pred), mask)) == pytest.approx(1 / 3)


def test_velocity_loss_respects_mask():
    g = torch.Generator().manual_seed(2)
    x0 = torch.randn(2, 1, 8, 8, generator=g)
    noise = torch.randn(2, 1, 8, 8, generator=g)
    mask = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    mask[:, :, :4] = True
    v = noise - x0
    assert float(velocity_loss(v, noise, x0, mask)) == pytest.approx(0.0)
    corrupted = v.clone()
    corrupted[:, :, 4:] += 100.0                       # errors only where masked out
    assert float(velocity_loss(corrupted, noise, x0, mask)) == pytest.approx(0.0)
    corrupted[:, :, :4] += 2.0                         # error 2 on every valid pixel
    assert float(velocity_loss(corrupted, noise, x0, mask)) == pytest.approx(4.0, rel=1e-5)


def test_flow_matching_loss_combines_velocity_and_gradient_terms():
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(2, 1, 16, 16, generator=g)
    noise = torch.randn(2, 1, 16, 16, generator=g)
    t = torch.tensor([250, 750])
    b = (t / 1000).view(-1, 1, 1, 1)
    x_t = (1 - b) * x0 + b * noise
    mask = torch.ones_like(x0, dtype=torch.bool)
    v = noise - x0 + 0.1 * torch.randn(2, 1, 16, 16, generator=g)
    loss, parts = flow_matching_loss(v, x_t, t, noise, x0, mask, gradient_weight=0.2)
    x0_hat = x_t - b * v
    expected = velocity_loss(v, noise, x0, mask) + 0.2 * multiscale_gradient_loss(x0_hat, x0, mask)
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)
    assert set(parts) == {'velocity', 'gradient'}
    loss0, parts0 = flow_matching_loss(v, x_t, t, noise, x0, mask, gradient_weight=0.0)
    assert float(loss0) == pytest.approx(parts0['velocity']) and 'gradient' not in parts0
