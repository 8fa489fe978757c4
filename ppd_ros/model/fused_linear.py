"""Linear layers with the bias and the activation fused into the matrix product (CPU inference).

On CPU, ``F.linear`` first writes the broadcast bias into its output and then accumulates the
product into it, and an activation after it is one more pass over an output that is often 4x
wider than the input. oneDNN's linear with post-ops (``torch.ops.mkldnn._linear_pointwise``,
the kernel torch.compile itself emits for CPU linears) applies both in the product's epilogue,
with the same results up to rounding. It has no backward, so it is used only while gradients
are off, on CPU tensors outside autocast and outside torch.compile (which fuses by itself);
everywhere else ``linear`` is F.linear plus the activation.

The fused kernel is off unless enabled (``set_fused_linear(True)`` or PPD_FUSED_LINEAR=1 in the
environment): oneDNN keeps state for every input shape it meets, so a node that sees many image
sizes grows by about 3 MB per network size with the tiny model (docs/performance.md).
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F

# activation name -> (oneDNN post-op, its algorithm, the eager function)
ACTIVATIONS = {
    None: ('none', '', lambda y: y),
    'gelu_tanh': ('gelu', 'tanh', lambda y: F.gelu(y, approximate='tanh')),
    'gelu': ('gelu', 'none', F.gelu),
    'silu': ('swish', '', F.silu),
}
_POINTWISE = (getattr(torch.ops.mkldnn, '_linear_pointwise', None)
              if torch.backends.mkldnn.is_available() else None)
_enabled = os.environ.get('PPD_FUSED_LINEAR', '') == '1'


def set_fused_linear(enabled: bool) -> None:
    """Turn oneDNN's fused linear kernel on or off for this process (off by default)."""
    global _enabled
    _enabled = bool(enabled)


def fused_linear_enabled() -> bool:
    """Whether ``set_fused_linear`` (or PPD_FUSED_LINEAR=1) turned the fused kernel on."""
    return _enabled


def fused_kernel_applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether ``linear`` runs oneDNN's fused kernel for these tensors."""
    return (_enabled and _POINTWISE is not None and x.device.type == 'cpu'
            and not torch.is_grad_enabled() and x.dtype == weight.dtype
            and not torch.is_autocast_enabled('cpu') and not torch.compiler.is_compiling())


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
           activation: str | None = None) -> torch.Tensor:
    """activation(x @ weight.T + bias); ``activation`` is a key of ACTIVATIONS."""
    post_op, algorithm, eager = ACTIVATIONS[activation]
    if fused_kernel_applies(x, weight):
        return _POINTWISE(x, weight, bias, post_op, [], algorithm)
    return eager(F.linear(x, weight, bias))


def gelu_name(approximate: str) -> str:
    """ACTIVATIONS key of nn.GELU(approximate=...)."""
    return 'gelu_tanh' if approximate == 'tanh' else 'gelu'
