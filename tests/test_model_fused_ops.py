"""The fused inference paths compute what their unfused definitions do."""
import pytest
import torch
import torch.nn.functional as F

from ppd_ros.model.dit import gated_residual, modulate, modulated_norm, rope_heads_first
from ppd_ros.model.fused_linear import (ACTIVATIONS, fused_kernel_applies, fused_linear_enabled,
                                        linear, set_fused_linear)
from ppd_ros.model.rope import RopeTables, apply_rope, rope_tables


@pytest.fixture
def g():
    return torch.Generator().manual_seed(0)


@pytest.fixture
def fused_on():
    before = fused_linear_enabled()
    set_fused_linear(True)
    yield
    set_fused_linear(before)


def test_fused_kernel_is_off_unless_enabled(g):
    x, w = torch.randn(2, 5, 8, generator=g), torch.randn(4, 8, generator=g)
    before = fused_linear_enabled()
    try:
        set_fused_linear(False)
        with torch.inference_mode():
            assert not fused_kernel_applies(x, w)
            torch.testing.assert_close(linear(x, w, None, 'silu'), F.silu(F.linear(x, w)))
    finally:
        set_fused_linear(before)


@pytest.mark.parametrize('activation', sorted(ACTIVATIONS, key=str))
def test_linear_with_fused_activation_matches_eager(g, activation, fused_on):
    x = torch.randn(2, 37, 64, generator=g)
    w, b = 0.1 * torch.randn(96, 64, generator=g), torch.randn(96, generator=g)
    expected = ACTIVATIONS[activation][2](F.linear(x, w, b))
    with torch.inference_mode():
        got = linear(x, w, b, activation)
        assert fused_kernel_applies(x, w) == torch.backends.mkldnn.is_available()
        strided = linear(x.transpose(0, 1).contiguous().transpose(0, 1), w[:48], b[:48],
                         activation)
    torch.testing.assert_close(got, expected, atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(strided, expected[..., :48], atol=2e-6, rtol=1e-5)


def test_linear_keeps_autograd_when_gradients_are_on(g, fused_on):
    x = torch.randn(3, 8, generator=g)
    w = torch.randn(4, 8, generator=g).requires_grad_()
    assert not fused_kernel_applies(x, w)
    linear(x, w, None, 'gelu_tanh').sum().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0


def test_modulated_norm_is_layer_norm_then_modulate(g):
    x = torch.randn(2, 10, 32, generator=g)
    shift, scale = torch.randn(1, 32, generator=g), torch.randn(1, 32, generator=g)
    reference = modulate(F.layer_norm(x, (32,), eps=1e-6), shift, scale)
    torch.testing.assert_close(modulated_norm(x, shift, scale, 1e-6), reference)
    shifts, scales = torch.randn(2, 32, generator=g), torch.randn(2, 32, generator=g)  # per row
    torch.testing.assert_close(modulated_norm(x, shifts, scales, 1e-6),
                               modulate(F.layer_norm(x, (32,), eps=1e-6), shifts, scales))
    gate, branch = torch.randn(2, 32, generator=g), torch.randn(2, 10, 32, generator=g)
    torch.testing.assert_close(gated_residual(x, gate, branch), x + gate[:, None] * branch)


def test_rope_written_head_major_equals_rope_then_transpose(g):
    u = torch.randn(2, 12, 3, 64, generator=g)             # (B, N, heads, d)
    tables = rope_tables(3, 4, 64, 100.0)
    per_token = RopeTables(tables.cos[:, None], tables.sin[:, None])
    expected = apply_rope(u.transpose(1, 2), tables)      # (B, heads, N, d)
    with torch.no_grad():
        got = rope_heads_first(u, per_token)
    assert got.is_contiguous()
    torch.testing.assert_close(got, expected)
    grad_u = u.clone().requires_grad_()
    torch.testing.assert_close(rope_heads_first(grad_u, per_token), expected)
