"""Inference precision: which dtype the networks run in, and which pieces stay float32.

``precision='auto'`` runs bf16 where the device has fast bf16 arithmetic (a CUDA GPU that
supports it; a CPU with AMX or AVX512-BF16) and fp32 elsewhere. 'fp16' and 'bf16' can be
asked for explicitly.

Reduced precision casts the weights once (``cast_for_inference``) instead of re-casting them
under torch.autocast at every step. The heavy matrices (transformer blocks, fusion MLP) run in
the low dtype; float32 stays where it is cheap and the numbers are sensitive:

* the DiT stem (patch embedding of [x_t, I - 0.5]: the noise the DiT must predict is its
  input), the encoder's patch embedding and position embedding;
* the timestep embedding and every adaLN modulation (computed once per step schedule);
* the final layer (the velocity) and the Euler update (the sampler's x stays float32);
* LayerNorm weights; LayerNorm statistics and the attention softmax are accumulated in
  float32 by torch's CPU and CUDA kernels for bf16 / fp16 inputs anyway.

Patch embeddings are matrix products over unfolded patches rather than convolutions (the
same operation): torch 2.13's oneDNN bf16 convolution returns wrong results for the DiT's
4 -> 1024 16 x 16 stride-16 stem on CPUs with AMX.
"""
from __future__ import annotations

import torch
from torch import nn

PRECISIONS = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}
PRECISION_NAMES = ('auto', *PRECISIONS)


def has_fast_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bf16 matrix products natively (CUDA bf16; CPU AMX / AVX512-BF16)."""
    if device.type == 'cuda':
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == 'cpu':
        probes = ('_is_amx_tile_supported', '_is_avx512_bf16_supported')
        return any(getattr(torch.cpu, name, lambda: False)() for name in probes)
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' -> 'bf16' or 'fp32' for ``device``; other names unchanged (ValueError if unknown)."""
    if precision not in PRECISION_NAMES:
        raise ValueError(f'precision must be one of {list(PRECISION_NAMES)}, got {precision!r}')
    if precision == 'auto':
        return 'bf16' if has_fast_bf16(device) else 'fp32'
    return precision


def compute_dtype_of(module: nn.Module) -> torch.dtype:
    """The dtype a transformer's blocks hold their matrices in."""
    return module.blocks[0].mlp.fc1.weight.dtype


def to_compute_dtype(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """x in ``dtype``, unless torch.autocast manages dtypes (training)."""
    if x.dtype == dtype or torch.is_autocast_enabled(x.device.type):
        return x
    return x.to(dtype)


def cast_matrices(modules, dtype: torch.dtype) -> None:
    """Parameters of the modules to dtype in place, except LayerNorm weights."""
    for module in modules:
        for child in module.modules():
            if isinstance(child, nn.LayerNorm):
                continue
            for param in child.parameters(recurse=False):
                param.data = param.data.to(dtype)


def cast_for_inference(model: nn.Module, dtype: torch.dtype) -> bool:
    """Cast a PixelPerfectDepth's heavy weights to ``dtype`` in place (see the module doc).

    A network opts in with ``inference_cast_modules()``, the modules it runs in the low dtype;
    one without it (an encoder type that does not) stays float32. Returns whether the
    semantics encoder was cast.
    """
    if dtype == torch.float32:
        return False
    cast = {}
    for name in ('dit', 'encoder'):
        network = getattr(model, name, None)
        cast[name] = hasattr(network, 'inference_cast_modules')
        if cast[name]:
            cast_matrices(network.inference_cast_modules(), dtype)
    return cast['encoder']
