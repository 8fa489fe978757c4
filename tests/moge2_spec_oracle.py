"""Independent functional MoGe-2 and PPD-MoGe reference, written from the spec text only.

Source of every formula: ../shared/spec/moge2-reference.md (sections cited as "spec 3.2" etc.)
and ppd-reference.md. It must not import ppd_ros: parity tests compare the two. It works on the
*official* layouts: a MoGe-2 checkpoint {'model_config': dict, 'model': state_dict} (a bare
state dict is read with the released configuration) and a flat ``dit.*`` state dict. Images
are single frames: a float tensor (3, H, W) or (1, 3, H, W) of RGB in [0, 1], or an RGB uint8
array (H, W, 3), converted as PPD does (/255 in float64, then float32). Outputs carry no batch
dimension.

The DINOv2 primitives, the DiT and the Euler sampler come from spec_reference_impl.py (the DA2
oracle, equally independent of ppd_ros). Convolutions, resamplers, resizes, the view-plane UV and
the Levenberg-Marquardt solver are spelled out here; only the antialiased encoder resize is
F.interpolate (the test suite checks it against the spec's float32 weight recipe).

Use from a parity test (tests/ is on sys.path under pytest):

    import moge2_spec_oracle as oracle
    moge = oracle.make_official_moge_weights(seed=0)          # {'model_config', 'model'}: 521 tensors
    dit = oracle.make_official_ppd_moge_weights(seed=1)        # {'dit.*'}: 352 tensors
    oracle.write_official_files(tmp_path, seed=0)              # model.pt + ppd_moge.pth (torch.save)
    out = oracle.moge_forward(moge, image, num_tokens=3600)    # points/normal/mask/metric_scale
    res = oracle.moge_infer(moge, image)                       # depth/mask/intrinsics/... (fp32)
    res = oracle.moge_infer(moge, image, fov_x=60.0)           # fixed focal: only the shift solved
    sem = oracle.moge_semantics(moge, image)                   # (N0, 1024) PPD semantics tokens
    d = oracle.ppd_moge_predict(dit, moge, image, noise, steps=4)   # (h, w) = latent + 0.5

moge_forward also returns the stages (token_grid, features F0, cls, neck outputs, raw head maps);
infer_geometry(forward_result, fov_x=None, focal=None) is spec 4 steps 4-10 alone, and
encoder_input, dinov2_layers, moge_encoder, conv_stack, scale_head, recover_focal_shift and
levenberg_marquardt_1d are public, so that a failing parity test can be narrowed down.
Weights are views into a few shared random pools (a few hundred MB for both full-size files);
``materialize=True`` gives each tensor its own storage (real-size files).
``make_official_moge_weights(seed, reduced=True)`` gives a small model of the same layout for
fast tests (its backbone name 'oracle_reduced' is known to this module only).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import spec_reference_impl as ref

# ----------------------------------------------------------------------------- configuration

def _conv_stack_config(dim_in, dim_res_blocks, num_res_blocks, dim_out):
    return {
        'dim_in': list(dim_in), 'dim_out': dim_out, 'dim_res_blocks': list(dim_res_blocks),
        'num_res_blocks': list(num_res_blocks), 'res_block_in_norm': 'none',
        'res_block_hidden_norm': 'none',
        'resamplers': ['conv_transpose', 'conv_transpose', 'conv_transpose', 'bilinear'],
    }


def moge_config(embed=1024, dims=(256, 128, 64, 32), backbone='dinov2_vitl14',
                intermediate_layers=(5, 11, 17, 23), scale_hidden=1024):
    """model_config of moge-2-vitl-normal (spec section 2; MoGe's configs/train/v2.json layout)."""
    levels = [embed, *dims]
    head = dict(dim_in=levels, dim_res_blocks=levels, num_res_blocks=[0, 1, 1, 1, 0])
    return {
        'encoder': {'backbone': backbone, 'intermediate_layers': list(intermediate_layers),
                    'dim_out': embed},
        'neck': _conv_stack_config([embed + 2, 2, 2, 2, 2], levels, [0, 2, 2, 2, 0], None),
        'points_head': _conv_stack_config(**head, dim_out=[None, None, None, None, 3]),
        'normal_head': _conv_stack_config(**head, dim_out=[None, None, None, None, 3]),
        'mask_head': _conv_stack_config(**head, dim_out=[None, None, None, None, 1]),
        'scale_head': {'dims': [embed, scale_hidden, scale_hidden, 1]},
        'remap_output': 'exp',
        'num_tokens_range': [1200, 3600],
    }


OFFICIAL_MOGE_CONFIG = moge_config()
# Backbone sizes the weight builder knows: embed dim, blocks, MLP width, stored pos-embed grid.
BACKBONES = {
    'dinov2_vitl14': dict(E=1024, depth=24, mlp=4096, grid=37),
    'oracle_reduced': dict(E=128, depth=4, mlp=256, grid=6),
}
REDUCED_MOGE_CONFIG = moge_config(embed=128, dims=(32, 16, 8, 8), backbone='oracle_reduced',
                                  intermediate_layers=(0, 1, 2, 3), scale_hidden=64)
HEADS = ('points', 'normal', 'mask')
PATCH = 14
HEAD_DIM = 64            # every DINOv2 size and the DiT use 64-wide heads
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _unpack(moge):
    """(state_dict, model_config) from a model.pt-style dict or a bare state dict."""
    if isinstance(moge, dict) and 'model' in moge and 'model_config' in moge:
        return moge['model'], moge['model_config']
    return moge, OFFICIAL_MOGE_CONFIG


def as_image(image):
    """(3, H, W) float32 RGB in [0, 1] from a tensor (3,H,W)/(1,3,H,W) or RGB uint8 (H,W,3)."""
    if isinstance(image, np.ndarray):
        assert image.dtype == np.uint8 and image.ndim == 3
        return torch.from_numpy((image / 255.0).astype(np.float32)).permute(2, 0, 1)
    image = image.float()
    return image[0] if image.dim() == 4 else image


# ----------------------------------------------------------------------------- spec 3.1, 4.2

def token_grid(num_tokens, height, width):
    """(bh, bw) by truncation (spec 3.1; upstream MoGe rounds instead)."""
    ar = width / height
    return int(math.sqrt(num_tokens / ar)), int(math.sqrt(num_tokens * ar))


def num_tokens_for_level(resolution_level=9, num_tokens_range=(1200, 3600)):
    lo, hi = num_tokens_range
    return int(lo + (resolution_level / 9) * (hi - lo))


# ----------------------------------------------------------------------------- 1-D sampling rules

def linspace_f32(start, end, n):
    """torch.linspace in float32 (spec 3.3): float32 start, end, step; element i is
    start + step*i for i < n//2, else end - step*(n-1-i), each rounded once to float32."""
    f = np.float32
    s, e = f(start), f(end)
    if n == 1:
        return torch.tensor([s])
    step = f(f(e - s) / f(n - 1))
    i = np.arange(n, dtype=np.float64)
    lower = np.float64(s) + np.float64(step) * i
    upper = np.float64(e) - np.float64(step) * (n - 1 - i)
    return torch.from_numpy(np.where(i < n // 2, lower, upper).astype(np.float32))


def view_plane_uv(n_w, n_h, aspect_ratio):
    """(2, n_h, n_w) float32: u along columns, v along rows, half-diagonal = 1 (spec 3.3)."""
    span_x = aspect_ratio / (1 + aspect_ratio ** 2) ** 0.5
    span_y = 1 / (1 + aspect_ratio ** 2) ** 0.5
    u = linspace_f32(-span_x * (n_w - 1) / n_w, span_x * (n_w - 1) / n_w, n_w)
    v = linspace_f32(-span_y * (n_h - 1) / n_h, span_y * (n_h - 1) / n_h, n_h)
    return torch.stack([u[None, :].expand(n_h, n_w), v[:, None].expand(n_h, n_w)])


def antialias_weights(n_in, n_out):
    """(n_out, n_in) float32 weights of antialiased bilinear along one axis (spec 3.2 recipe)."""
    f = np.float32
    s = f(f(n_in) / f(n_out))
    support = s if s >= 1 else f(1)
    inv = f(f(1) / s) if s >= 1 else f(1)
    w = np.zeros((n_out, n_in), dtype=np.float32)
    for i in range(n_out):
        c = f(s * f(f(i) + f(0.5)))
        lo = max(int(f(c - support + f(0.5))), 0)
        hi = min(int(f(c + support + f(0.5))), n_in)
        taps = np.array([max(f(0), f(1) - abs(f(f(f(j) - c + f(0.5)) * inv)))
                         for j in range(lo, hi)], dtype=np.float32)
        total = f(0)
        for t in taps:
            total = f(total + t)
        w[i, lo:hi] = taps / total if total != 0 else taps
    return w


def linear_taps(n_in, n_out, scale):
    """Two-tap bilinear (align_corners=False, no antialias): src = scale*(dst+0.5)-0.5 in
    float32 as one fused multiply-add (torch's CPU kernel; the product is exact in float64),
    clamped at 0; weights 1-lambda, lambda. Returns (i0, i1, w0, w1)."""
    f = np.float32
    dst = np.arange(n_out, dtype=np.float64) + 0.5
    src = np.maximum((np.float64(f(scale)) * dst - 0.5).astype(np.float32), f(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    lam = np.clip(src - i0.astype(np.float32), f(0), f(1))
    i1 = i0 + (i0 < n_in - 1)
    return (torch.from_numpy(i0), torch.from_numpy(i1),
            torch.from_numpy(f(1) - lam), torch.from_numpy(lam))


def _resize_axis(x, axis, n_out, scale):
    i0, i1, w0, w1 = linear_taps(x.shape[axis], n_out, scale)
    shape = [1] * x.dim()
    shape[axis] = n_out
    return (x.index_select(axis, i0) * w0.view(shape)
            + x.index_select(axis, i1) * w1.view(shape))


def bilinear_resize(x, n_h, n_w):
    """(C, h, w) -> (C, n_h, n_w), plain bilinear, scale in/out in float32; columns first."""
    h, w = x.shape[-2:]
    x = _resize_axis(x, -1, n_w, np.float32(w) / np.float32(n_w))
    return _resize_axis(x, -2, n_h, np.float32(h) / np.float32(n_h))


def upsample_x2(x):
    """nn.Upsample(scale_factor=2, bilinear): coordinate scale exactly 1/2."""
    h, w = x.shape[-2:]
    return _resize_axis(_resize_axis(x, -1, 2 * w, 0.5), -2, 2 * h, 0.5)


def nearest_indices(n_in, n_out=64):
    """Source indices of F.interpolate(mode='nearest'): floor(dst * (n_in/n_out)) in float32."""
    scale = np.float32(n_in) / np.float32(n_out)
    idx = np.floor(np.arange(n_out, dtype=np.float32) * scale).astype(np.int64)
    return torch.from_numpy(np.minimum(idx, n_in - 1))


# ----------------------------------------------------------------------------- convolutions

def conv1x1(x, sd, name):
    w = sd[name + '.weight']
    return torch.einsum('oc,chw->ohw', w.reshape(w.shape[0], w.shape[1]), x) \
        + sd[name + '.bias'][:, None, None]


def conv3x3_replicate(x, sd, name):
    """3x3 cross-correlation on the edge-replicated input (padding 1, 'replicate'), with bias."""
    w = sd[name + '.weight']
    _, H, W = x.shape
    rows = torch.arange(-1, H + 1).clamp(0, H - 1)
    cols = torch.arange(-1, W + 1).clamp(0, W - 1)
    xp = x[:, rows][:, :, cols]
    out = sd[name + '.bias'][:, None, None].expand(w.shape[0], H, W).clone()
    for a in range(3):
        for b in range(3):
            out += torch.einsum('oc,chw->ohw', w[:, :, a, b], xp[:, a:a + H, b:b + W])
    return out


def conv_transpose2x2(x, sd, name):
    """out[o, 2i+a, 2j+b] = bias[o] + sum_c x[c,i,j] W[c,o,a,b] (weight (C_in, C_out, 2, 2))."""
    w = sd[name + '.weight']
    _, H, W = x.shape
    out = torch.einsum('chw,coab->ohawb', x, w).reshape(w.shape[1], 2 * H, 2 * W)
    return out + sd[name + '.bias'][:, None, None]


# ----------------------------------------------------------------------------- spec 3.4, 3.5

def residual_block(x, sd, name):
    y = conv3x3_replicate(torch.relu(x), sd, name + '.layers.2')
    return x + conv3x3_replicate(torch.relu(y), sd, name + '.layers.5')


def resample(x, sd, name):
    """conv_transpose (keys .0 and .1) or bilinear x2 (only .1 has weights), then the 3x3 conv."""
    if name + '.0.weight' in sd:
        x = conv_transpose2x2(x, sd, name + '.0')
    else:
        x = upsample_x2(x)
    return conv3x3_replicate(x, sd, name + '.1')


def conv_stack(sd, prefix, inputs, levels=5):
    """ConvStack forward (spec 3.4); absent keys mean identity blocks / zero residual blocks."""
    outs, x = [], None
    for level in range(levels):
        f = inputs[level]
        if f'{prefix}input_blocks.{level}.weight' in sd:
            f = conv1x1(f, sd, f'{prefix}input_blocks.{level}')
        x = f if x is None else x + f
        k = 0
        while f'{prefix}res_blocks.{level}.{k}.layers.2.weight' in sd:
            x = residual_block(x, sd, f'{prefix}res_blocks.{level}.{k}')
            k += 1
        if f'{prefix}output_blocks.{level}.weight' in sd:
            outs.append(conv1x1(x, sd, f'{prefix}output_blocks.{level}'))
        else:
            outs.append(x)
        if level < levels - 1:
            x = resample(x, sd, f'{prefix}resamplers.{level}')
    return outs


def scale_head(sd, cls):
    """Linear, ReLU, Linear, ReLU, Linear on the last taken layer's normed class token."""
    x = cls
    i = 0
    while f'scale_head.{2 * (i + 1)}.weight' in sd:
        x = torch.relu(ref.linear(x, sd, f'scale_head.{2 * i}'))
        i += 1
    return ref.linear(x, sd, f'scale_head.{2 * i}')


# ----------------------------------------------------------------------------- spec 3.2 encoder

def multihead_attention(q, k, v):
    """(heads, N, d) explicit softmax attention, one head at a time to bound memory."""
    return torch.cat([ref.softmax_attention(q[h:h + 1], k[h:h + 1], v[h:h + 1])
                      for h in range(q.shape[0])])


def dinov2_layers(sd, prefix, x, bh, bw, layers):
    """Final-normed outputs (N+1, E) of the listed blocks for a resized, normalised image."""
    tokens = ref.patchify_linear(x, sd[prefix + 'patch_embed.proj.weight'],
                                 sd[prefix + 'patch_embed.proj.bias'])
    tokens = torch.cat([sd[prefix + 'cls_token'][0], tokens], dim=0)
    tokens = tokens + ref.pos_embed_for_grid(sd[prefix + 'pos_embed'], bh, bw)
    E = tokens.shape[-1]
    heads = E // HEAD_DIM
    taken = {}
    for i in range(max(layers) + 1):
        b = f'{prefix}blocks.{i}.'
        y = ref.layer_norm(tokens, 1e-6, sd[b + 'norm1.weight'], sd[b + 'norm1.bias'])
        qkv = ref.linear(y, sd, b + 'attn.qkv').reshape(-1, 3, heads, HEAD_DIM)
        q, k, v = (qkv[:, j].transpose(0, 1) for j in range(3))
        att = multihead_attention(q, k, v).transpose(0, 1).reshape(-1, E)
        tokens = tokens + sd[b + 'ls1.gamma'] * ref.linear(att, sd, b + 'attn.proj')
        y = ref.layer_norm(tokens, 1e-6, sd[b + 'norm2.weight'], sd[b + 'norm2.bias'])
        y = ref.linear(ref.gelu_erf(ref.linear(y, sd, b + 'mlp.fc1')), sd, b + 'mlp.fc2')
        tokens = tokens + sd[b + 'ls2.gamma'] * y
        if i in layers:
            taken[i] = ref.layer_norm(tokens, 1e-6, sd[prefix + 'norm.weight'],
                                      sd[prefix + 'norm.bias'])
    return [taken[i] for i in layers]


def encoder_input(sd, image, bh, bw):
    """Antialiased bilinear resize to (14 bh, 14 bw), then ImageNet normalisation (buffers)."""
    x = F.interpolate(image[None], size=(PATCH * bh, PATCH * bw), mode='bilinear',
                      align_corners=False, antialias=True)[0]
    return (x - sd['encoder.image_mean'][0]) / sd['encoder.image_std'][0]


def moge_encoder(moge, image, bh, bw):
    """Spec 3.2: (F0 (dim_out, bh, bw) = sum of the projected normed layers, cls (E,))."""
    sd, cfg = _unpack(moge)
    layers = list(cfg['encoder']['intermediate_layers'])
    x = encoder_input(sd, as_image(image), bh, bw)
    normed = dinov2_layers(sd, 'encoder.backbone.', x, bh, bw, layers)
    features = None
    for k, t in enumerate(normed):
        grid = t[1:].T.reshape(-1, bh, bw)
        projected = conv1x1(grid, sd, f'encoder.output_projections.{k}')
        features = projected if features is None else features + projected
    return features, normed[-1][0]


# ----------------------------------------------------------------------------- spec 3.6

def remap_points(raw, mode):
    """raw (H, W, 3) -> points (spec 3.6 step 3)."""
    if mode == 'linear':
        return raw
    if mode == 'sinh':
        return torch.sinh(raw)
    if mode == 'exp':
        z = torch.exp(raw[..., 2:])
        return torch.cat([raw[..., :2] * z, z], dim=-1)
    if mode == 'sinh_exp':
        return torch.cat([torch.sinh(raw[..., :2]), torch.exp(raw[..., 2:])], dim=-1)
    raise ValueError(mode)


@torch.no_grad()
def moge_forward(moge, image, num_tokens=3600):
    """MoGeModel.forward in fp32 (spec 3). Returns points (H,W,3), normal (H,W,3), mask (H,W)
    probability, metric_scale (0-d), plus the raw (16bh,16bw) head maps, the neck outputs,
    features F0, cls and the token grid for stage comparisons."""
    sd, cfg = _unpack(moge)
    image = as_image(image)
    H, W = image.shape[-2:]
    ar = W / H
    bh, bw = token_grid(num_tokens, H, W)
    features, cls = moge_encoder(moge, image, bh, bw)
    uv = [view_plane_uv(bw * 2 ** level, bh * 2 ** level, ar) for level in range(5)]
    neck = conv_stack(sd, 'neck.', [torch.cat([features, uv[0]])] + uv[1:])
    raw = {name: conv_stack(sd, f'{name}_head.', neck)[-1] for name in HEADS
           if f'{name}_head.output_blocks.4.weight' in sd}
    out = {'token_grid': (bh, bw), 'features': features, 'cls': cls, 'neck': neck, 'raw': raw}
    full = {name: bilinear_resize(m, H, W).permute(1, 2, 0) for name, m in raw.items()}
    if 'points' in full:
        out['points'] = remap_points(full['points'], cfg.get('remap_output', 'linear'))
    if 'normal' in full:
        n = full['normal']
        out['normal'] = n / torch.linalg.vector_norm(n, dim=-1, keepdim=True).clamp_min(1e-12)
    if 'mask' in full:
        out['mask'] = torch.sigmoid(full['mask'][..., 0])
    if 'scale_head.0.weight' in sd:
        out['metric_scale'] = torch.exp(scale_head(sd, cls))[0]
    return out


# ----------------------------------------------------------------------------- spec 4 step 5

_RDWARF, _RGIANT = 3.834e-20, 1.304e19


def enorm(x):
    """MINPACK's Euclidean norm: sequential sum of squares, scaled for tiny or huge entries."""
    ax = np.abs(np.asarray(x, dtype=np.float64).ravel())
    if ax.size == 0:
        return 0.0
    agiant = _RGIANT / ax.size
    if np.all(((ax > _RDWARF) & (ax < agiant)) | (ax == 0)):
        return math.sqrt(float(np.cumsum(ax * ax)[-1]))     # cumsum adds in order
    s1 = s2 = s3 = x1max = x3max = 0.0
    for xabs in ax:
        if _RDWARF < xabs < agiant:
            s2 += xabs * xabs
        elif xabs <= _RDWARF:
            if xabs > x3max:
                s3, x3max = 1.0 + s3 * (x3max / xabs) ** 2, xabs
            elif xabs != 0:
                s3 += (xabs / x3max) ** 2
        elif xabs > x1max:
            s1, x1max = 1.0 + s1 * (x1max / xabs) ** 2, xabs
        else:
            s1 += (xabs / x1max) ** 2
    if s1 != 0:
        return x1max * math.sqrt(s1 + (s2 / x1max) / x1max)
    if s2 != 0:
        if s2 >= x3max:
            return math.sqrt(s2 * (1.0 + (x3max / s2) * (x3max * s3)))
        return math.sqrt(x3max * ((s2 / x3max) + (x3max * s3)))
    return x3max * math.sqrt(s3)


def _damped_step(r11, qtb, d, delta, par):
    """MINPACK lmpar for one unknown (spec 4 step 5.3): (step q, par, damped).

    In exact arithmetic q = g/(a^2 + par d^2) with g = J.r, a = |J|; the operations follow
    MINPACK's order (R factor r11 = -+|J|, Q^T r entry qtb, Givens rotation for the damping).
    """
    q = qtb / r11
    dxnorm = abs(d * q)
    fp = dxnorm - delta
    if fp <= 0.1 * delta:
        return q, 0.0, False
    tiny = float(np.finfo(np.float64).tiny)
    t = abs(d * ((d * q) / dxnorm) / r11)
    parl = ((fp / delta) / t) / t
    gnorm = abs((r11 * qtb) / d)
    paru = gnorm / delta
    if paru == 0:
        paru = tiny / min(delta, 0.1)
    par = min(max(par, parl), paru)
    if par == 0:
        par = gnorm / dxnorm
    for iteration in range(1, 11):
        if par == 0:
            par = max(tiny, 0.001 * paru)
        damping = math.sqrt(par) * d
        if abs(r11) < abs(damping):                    # Givens rotation of [r11; damping]
            cotan = r11 / damping
            sin = 0.5 / math.sqrt(0.25 + 0.25 * cotan ** 2)
            cos = sin * cotan
        else:
            tan = damping / r11
            cos = 0.5 / math.sqrt(0.25 + 0.25 * tan ** 2)
            sin = cos * tan
        sdiag = cos * r11 + sin * damping
        q = (cos * qtb) / sdiag
        dxnorm = abs(d * q)
        fp_old, fp = fp, dxnorm - delta
        if abs(fp) <= 0.1 * delta or (parl == 0 and fp <= fp_old < 0) or iteration == 10:
            break
        t = abs(d * ((d * q) / dxnorm) / sdiag)
        parc = ((fp / delta) / t) / t
        if fp > 0:
            parl = max(parl, par)
        if fp < 0:
            paru = min(paru, par)
        par = max(parl, par + parc)
    return q, par, True


def levenberg_marquardt_1d(fun, x0=0.0, ftol=1e-3, xtol=1e-8, gtol=1e-8, factor=100.0,
                           flavour='scipy>=1.16'):
    """MINPACK Levenberg-Marquardt for one unknown, the iteration of spec 4 step 5.

    fun(s) -> residual vector (float64). 'scipy>=1.16' = least_squares(method='lm') there:
    lmder with scipy's 2-point Jacobian, d = running max of |J|, at most 100 residual evaluations
    (Jacobian ones not counted); 'scipy<1.16' = lmdif: d = 1, h = sqrt(eps)|s|, Jacobian
    evaluations count towards 200. Norms, the QR of the one-column Jacobian and the damping's
    Givens rotation follow MINPACK's order of operations, which makes the result bit-identical
    to scipy's (the plain formulas of the spec agree to a few float32 ulps).
    Returns (s, info) with info = {nfev, njev, damped, reason}.
    """
    new = flavour == 'scipy>=1.16'
    eps = float(np.finfo(np.float64).eps)
    max_nfev = 100 if new else 200
    s = float(x0)
    r = fun(s)
    rn = enorm(r)
    nfev, njev, par, first, damped = 1, 0, 0.0, True, False
    while True:
        # 1. forward-difference Jacobian J; its QR: R = r11, first entry of Q^T r = qtb
        if new:
            h = math.sqrt(eps) * max(1.0, abs(s)) * (1.0 if s >= 0 else -1.0)
            h = (s + h) - s
        else:
            h = math.sqrt(eps) * abs(s) or math.sqrt(eps)
            nfev += 1
        J = (fun(s + h) - r) / h
        njev += 1
        a = enorm(J)
        if first:
            d = (a or 1.0) if new else 1.0
            xnorm = enorm([d * s])
            delta = factor * xnorm or factor
        r11, qtb = 0.0, 0.0
        if a != 0:
            v = J / (a if J[0] >= 0 else -a)
            v[0] += 1.0
            r11 = -a if J[0] >= 0 else a
            qtb = float(r[0] + v[0] * (-float(np.cumsum(v * r)[-1]) / v[0]))
        # 2. gradient test (cosine of J and r), scaling update
        gnorm = abs((r11 * (qtb / rn)) / a) if (rn != 0 and a != 0) else 0.0
        if gnorm <= gtol:
            return s, dict(nfev=nfev, njev=njev, damped=damped, reason='gtol')
        if new:
            d = max(d, a)
        while True:
            # 3. damped step
            q, par, was_damped = _damped_step(r11, qtb, d, delta, par)
            damped |= was_damped
            # 4. trial point and the reductions
            p = -q
            s_new = s + p
            pnorm = enorm([d * p])
            if first:
                delta = min(delta, pnorm)
            r_new = fun(s_new)
            nfev += 1
            rn_new = enorm(r_new)
            actred = 1.0 - (rn_new / rn) ** 2 if 0.1 * rn_new < rn else -1.0
            t1 = enorm([r11 * p]) / rn
            t2 = (math.sqrt(par) * pnorm) / rn
            prered = t1 ** 2 + t2 ** 2 / 0.5
            dirder = -(t1 ** 2 + t2 ** 2)
            ratio = actred / prered if prered != 0 else 0.0
            # 5. trust region
            if ratio <= 0.25:
                mu = 0.5 if actred >= 0 else 0.5 * dirder / (dirder + 0.5 * actred)
                if 0.1 * rn_new >= rn or mu < 0.1:
                    mu = 0.1
                delta = mu * min(delta, pnorm / 0.1)
                par = par / mu
            elif par == 0 or ratio >= 0.75:
                delta = pnorm / 0.5
                par = 0.5 * par
            # 6. accept
            accepted = ratio >= 1e-4
            if accepted:
                s, r, rn = s_new, r_new, rn_new
                xnorm = enorm([d * s])
                first = False
            # 7. stop
            reason = None
            if abs(actred) <= ftol and prered <= ftol and 0.5 * ratio <= 1:
                reason = 'ftol'
            elif delta <= xtol * xnorm:
                reason = 'xtol'
            elif nfev >= max_nfev:
                reason = 'max_nfev'
            elif (abs(actred) <= eps and prered <= eps and 0.5 * ratio <= 1
                  or delta <= eps * xnorm or gnorm <= eps):
                reason = 'eps'
            if reason:
                return s, dict(nfev=nfev, njev=njev, damped=damped, reason=reason)
            if accepted:
                break


def shift_residual(xy, z, uv, focal=None):
    """Residuals r(s) (2N, float64) of spec 4 step 5; focal None = closed-form optimal focal."""
    xy, z, uv = (np.asarray(a, dtype=np.float64) for a in (xy, z, uv))

    def fun(s):
        p = xy / (z + s)[:, None]
        f = (p * uv).sum() / np.square(p).sum() if focal is None else np.float64(focal)
        return (f * p - uv).ravel()
    return fun


def recover_focal_shift(points, mask, focal=None, flavour='scipy>=1.16'):
    """points (H, W, 3) affine points, mask (H, W) bool -> (focal, shift) float32 0-d tensors.

    Nearest 64x64 subsampling, the LM from s = 0 with ftol 1e-3; focal in half-diagonal units.
    With ``focal`` given only the shift is solved and the given focal is returned.
    """
    H, W = mask.shape
    uv = view_plane_uv(W, H, W / H).permute(1, 2, 0)
    rows, cols = nearest_indices(H), nearest_indices(W)
    pts = points[rows][:, cols]
    uv = uv[rows][:, cols]
    keep = mask.float()[rows][:, cols] > 0
    xy = pts[..., :2][keep].numpy()
    z = pts[..., 2][keep].numpy()
    uv = uv[keep].numpy()
    focal32 = None if focal is None else np.float32(focal)
    if len(z) < 2:
        return (torch.tensor(1.0 if focal32 is None else focal32, dtype=torch.float32),
                torch.tensor(0.0))
    s, _ = levenberg_marquardt_1d(shift_residual(xy, z, uv, focal32), flavour=flavour)
    shift = np.float32(s)
    if focal32 is None:
        p = xy / (z + shift)[:, None]
        focal32 = (p * uv).sum() / np.square(p).sum()
    return torch.tensor(focal32, dtype=torch.float32), torch.tensor(shift, dtype=torch.float32)


def focal_from_fov_x(fov_x, aspect_ratio):
    """Half-diagonal focal for a horizontal field of view in degrees (float32)."""
    half = torch.deg2rad(torch.tensor(fov_x, dtype=torch.float32)) / 2
    span_x = torch.tensor(aspect_ratio / (1 + aspect_ratio ** 2) ** 0.5, dtype=torch.float32)
    return span_x / torch.tan(half)


def focal_from_pixels(f_px, height, width):
    """Half-diagonal focal of a pixel focal length (square pixels, centred principal point)."""
    return 2.0 * f_px / math.sqrt(width ** 2 + height ** 2)


def normalized_intrinsics(focal, aspect_ratio):
    """K (3, 3) float32: fx = (focal/2) c1/ar, fy = (focal/2) c1, c1 = sqrt(1+ar^2), c = 0.5."""
    c1 = (1 + aspect_ratio ** 2) ** 0.5
    fx = focal / 2 * c1 / aspect_ratio
    fy = focal / 2 * c1
    K = torch.zeros(3, 3)
    K[0, 0], K[1, 1], K[0, 2], K[1, 2], K[2, 2] = fx, fy, 0.5, 0.5, 1.0
    return K


def project_depth(depth, K):
    """points = depth * K^-1 [u', v', 1] with pixel-centre u' = (j+0.5)/W, v' = (i+0.5)/H."""
    H, W = depth.shape
    u = linspace_f32(0.5 / W, (W - 0.5) / W, W)
    v = linspace_f32(0.5 / H, (H - 0.5) / H, H)
    pix = torch.stack([u[None].expand(H, W), v[:, None].expand(H, W), torch.ones(H, W)], -1)
    return (pix @ torch.linalg.inv(K).T) * depth[..., None]


@torch.no_grad()
def moge_infer(moge, image, fov_x=None, focal=None, num_tokens=None, resolution_level=9,
               force_projection=True, apply_mask=True, flavour='scipy>=1.16'):
    """MoGeModel.infer with use_fp16=False (spec 4): the forward, then infer_geometry.
    ``focal`` (half-diagonal units) is an alternative to ``fov_x`` for known intrinsics."""
    _, cfg = _unpack(moge)
    if num_tokens is None:
        num_tokens = num_tokens_for_level(resolution_level, cfg['num_tokens_range'])
    out = moge_forward(moge, image, num_tokens)
    result = infer_geometry(out, fov_x, focal, force_projection, apply_mask, flavour)
    result['num_tokens'] = num_tokens
    return result


def infer_geometry(out, fov_x=None, focal=None, force_projection=True, apply_mask=True,
                   flavour='scipy>=1.16'):
    """Spec 4 steps 4-10 on a moge_forward result. Returns depth (H,W) metric with +inf outside
    the mask, mask (H,W) bool, intrinsics (3,3) normalised, points (H,W,3), normal, focal,
    shift, metric_scale, mask_prob and the forward dict under 'forward'."""
    points, mask_prob = out['points'], out['mask']
    H, W = mask_prob.shape
    ar = W / H
    mask = mask_prob > 0.5
    if fov_x is not None:
        focal = focal_from_fov_x(fov_x, ar)
    focal, shift = recover_focal_shift(points, mask, focal, flavour)
    K = normalized_intrinsics(focal, ar)
    depth = points[..., 2] + shift
    mask = mask & (depth > 0)
    if force_projection:
        points = project_depth(depth, K)
    else:
        points = torch.cat([points[..., :2], depth[..., None]], dim=-1)
    scale = out['metric_scale']
    points, depth = points * scale, depth * scale
    normal = out['normal']
    if apply_mask:
        depth = torch.where(mask, depth, torch.tensor(float('inf')))
        points = torch.where(mask[..., None], points, torch.tensor(float('inf')))
        normal = torch.where(mask[..., None], normal, torch.zeros(()))
    return {'depth': depth, 'mask': mask, 'intrinsics': K, 'points': points, 'normal': normal,
            'focal': focal, 'shift': shift, 'metric_scale': scale, 'mask_prob': mask_prob,
            'forward': out}


# ----------------------------------------------------------------------------- spec 5

@torch.no_grad()
def moge_semantics(moge, image):
    """forward_semantics: (N0, dim_out) tokens on the g16 grid, row-major (spec 5)."""
    image = as_image(image)
    h, w = image.shape[-2:]
    features, _ = moge_encoder(moge, image, h // 16, w // 16)
    return features.reshape(features.shape[0], -1).T


def dit_size(dit_state):
    D = dit_state['dit.x_embedder.proj.weight'].shape[0]
    depth = 0
    while f'dit.blocks.{depth}.attn.qkv.weight' in dit_state:
        depth += 1
    return D // HEAD_DIM, depth


@torch.no_grad()
def ppd_moge_predict(dit_state, moge, image, noise, steps=4):
    """PPD with MoGe-2 semantics at network resolution: (h, w) = latent + 0.5 after ``steps``
    Euler steps from ``noise`` (any shape with h*w elements); no resize either way."""
    image = as_image(image)
    h, w = image.shape[-2:]
    sem = moge_semantics(moge, image)
    heads, depth = dit_size(dit_state)
    ts = ref.TIMESTEP_TABLE[steps]
    x = noise.reshape(h, w).float()
    for n, t in enumerate(ts):
        v = ref.dit_velocity(dit_state, torch.cat([x[None], image - 0.5]), sem, t, heads, depth)
        x = ref.euler(x, v, t, ts[n + 1] if n + 1 < len(ts) else -1)
    return x + 0.5


# ----------------------------------------------------------------------------- spec 6

def fill_masked_max(depth, mask):
    """moge_depth[~mask] = max(moge_depth[mask]); an empty mask raises like the reference."""
    if not bool(mask.any()):
        raise ValueError('empty mask')
    out = depth.clone()
    out[~mask] = depth[mask].max()
    return out


def least_squares_line(x, y):
    """Ordinary least squares y = a x + b in float64 (RANSAC's final refit on its inliers)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    xc, yc = x - x.mean(), y - y.mean()
    a = float((xc * yc).sum() / (xc * xc).sum())
    return a, float(y.mean() - a * x.mean())


def log_affine_metric(d, moge_depth, mask, a, b):
    """metric = clip(exp(p) - 1, 1e-3, max(moge_depth[mask])) with p = a d + b if a > 0, else
    d mean(log(moge_depth+1)) / mean(d) over the mask (spec 6 step 6), all pixels."""
    d = torch.as_tensor(d, dtype=torch.float32)
    y = torch.log(moge_depth[mask] + 1)
    if a > 0:
        p = a * d + b
    else:
        p = d * y.mean() / d[mask].mean()
    return torch.clamp(torch.exp(p) - 1, min=1e-3, max=float(moge_depth[mask].max()))


def intrinsics_to_pixels(K, h, w):
    """fx*w, fy*h, cx = 0.5 w, cy = 0.5 h (spec 6 step 7)."""
    Kp = K.clone()
    Kp[0, 0] *= w
    Kp[1, 1] *= h
    Kp[0, 2] = 0.5 * w
    Kp[1, 2] = 0.5 * h
    return Kp


def depth2pcd(depth, K_px, mask, rgb=None):
    """Integer pixel indices: X = (u - cx)/fx Z, Y = (v - cy)/fy Z (u column, v row); mask
    pixels only, row-major; colours rgb/255 (spec 6 step 8)."""
    H, W = depth.shape
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float32),
                          torch.arange(W, dtype=torch.float32), indexing='ij')
    X = (u - K_px[0, 2]) / K_px[0, 0] * depth
    Y = (v - K_px[1, 2]) / K_px[1, 1] * depth
    points = torch.stack([X, Y, depth], dim=-1)[mask]
    colours = None if rgb is None else torch.as_tensor(rgb)[mask].float() / 255.0
    return points, colours


# ----------------------------------------------------------------------------- spec 7 weights

def conv_stack_shapes(prefix, cfg):
    """Key -> shape of one ConvStack from its config (spec 3.4 and the section 7 table)."""
    dims = cfg['dim_res_blocks']
    dim_out = cfg['dim_out'] if isinstance(cfg['dim_out'], list) else [cfg['dim_out']] * 5
    s = {}
    for level in range(5):
        C = dims[level]
        if cfg['dim_in'][level] is not None:
            s[f'{prefix}input_blocks.{level}.weight'] = (C, cfg['dim_in'][level], 1, 1)
            s[f'{prefix}input_blocks.{level}.bias'] = (C,)
        for k in range(cfg['num_res_blocks'][level]):
            for layer in (2, 5):
                s[f'{prefix}res_blocks.{level}.{k}.layers.{layer}.weight'] = (C, C, 3, 3)
                s[f'{prefix}res_blocks.{level}.{k}.layers.{layer}.bias'] = (C,)
        if dim_out[level] is not None:
            s[f'{prefix}output_blocks.{level}.weight'] = (dim_out[level], C, 1, 1)
            s[f'{prefix}output_blocks.{level}.bias'] = (dim_out[level],)
        if level < 4:
            C_next = dims[level + 1]
            r = f'{prefix}resamplers.{level}.'
            if cfg['resamplers'][level] == 'conv_transpose':
                s[r + '0.weight'], s[r + '0.bias'] = (C, C_next, 2, 2), (C_next,)
                s[r + '1.weight'], s[r + '1.bias'] = (C_next, C_next, 3, 3), (C_next,)
            else:
                s[r + '1.weight'], s[r + '1.bias'] = (C_next, C, 3, 3), (C_next,)
    return s


def moge_shapes(cfg=OFFICIAL_MOGE_CONFIG):
    """Key -> shape of the whole MoGe-2 state dict (buffers included)."""
    bb = BACKBONES[cfg['encoder']['backbone']]
    E, dim_out = bb['E'], cfg['encoder']['dim_out']
    s = {'encoder.image_mean': (1, 3, 1, 1), 'encoder.image_std': (1, 3, 1, 1)}
    backbone = ref.official_encoder_shapes(E=E, depth=bb['depth'], mlp=bb['mlp'], patch=PATCH,
                                           grid=bb['grid'])
    s.update({'encoder.backbone.' + k[len('pretrained.'):]: v for k, v in backbone.items()})
    for k in range(len(cfg['encoder']['intermediate_layers'])):
        s[f'encoder.output_projections.{k}.weight'] = (dim_out, E, 1, 1)
        s[f'encoder.output_projections.{k}.bias'] = (dim_out,)
    s.update(conv_stack_shapes('neck.', cfg['neck']))
    for name in ('points', 'mask', 'normal'):
        if cfg.get(f'{name}_head'):
            s.update(conv_stack_shapes(f'{name}_head.', cfg[f'{name}_head']))
    dims = cfg['scale_head']['dims']
    for i in range(len(dims) - 1):
        s[f'scale_head.{2 * i}.weight'] = (dims[i + 1], dims[i])
        s[f'scale_head.{2 * i}.bias'] = (dims[i + 1],)
    return s


def _init_rule(key, shape):
    """(mean, std) of a parameter: fan-in scaled so activations stay O(1) (see module doc)."""
    if key.endswith('gamma'):                                   # LayerScale
        return 0.3, 0.1
    if key.endswith(('cls_token', 'pos_embed')):
        return 0.0, 0.5
    if key.endswith('mask_token'):
        return 0.0, 0.02
    if len(shape) == 1:
        if '.norm' in key and key.endswith('.weight'):          # LayerNorm weights
            return 1.0, 0.1
        return 0.0, 0.05                                        # every bias
    if '.resamplers.' in key and key.endswith('.0.weight'):     # ConvTranspose (Cin, Cout, 2, 2)
        fan_in = shape[0]
    else:
        fan_in = math.prod(shape[1:])
    gains = {
        '.layers.2.weight': math.sqrt(2.0),         # input is ReLU(x)
        '.layers.5.weight': 0.5 * math.sqrt(2.0),   # residual branch kept smaller than x
        'resamplers.3.1.weight': 0.3,               # the finest level: mostly the UV path
        'scale_head.2.weight': math.sqrt(2.0),
        'scale_head.4.weight': 0.2,                 # log metric scale ~ 0.3 +- 0.2
        'output_projections.0.weight': 0.5,         # four of them are summed
        'output_projections.1.weight': 0.5,
        'output_projections.2.weight': 0.5,
        'output_projections.3.weight': 0.5,
    }
    gain = next((v for k, v in gains.items() if key.endswith(k)), 1.0)
    return 0.0, gain / math.sqrt(fan_in)


def _pooled(specs, seed):
    """Tensors for (key, shape, mean, std) specs as views into one pool per (mean, std).

    Each pool is a prefix of one shared N(0,1) draw, scaled; every tensor starts at a distinct
    random 16-aligned offset. Full-size states cost a few hundred MB instead of 1.3-2 GB.
    """
    g = torch.Generator().manual_seed(seed)
    sizes = {}
    for key, shape, mean, std in specs:
        sizes[(mean, std)] = max(sizes.get((mean, std), 0), math.prod(shape))
    base = torch.randn(2 * max(sizes.values()) + 64, generator=g)
    pools = {ms: base[:2 * n + 64] * ms[1] + ms[0] for ms, n in sizes.items()}
    used, out = {}, {}
    for key, shape, mean, std in specs:
        pool, n = pools[(mean, std)], math.prod(shape)
        taken = used.setdefault((mean, std), set())
        while True:
            start = 16 * int(torch.randint(0, (pool.numel() - n) // 16 + 1, (1,), generator=g))
            if start not in taken or len(taken) > (pool.numel() - n) // 16:
                break
        taken.add(start)
        out[key] = pool[start:start + n].view(shape)
    return out


def _uv_path_weights(sd, head, target, g, noise_std):
    """Output weights of a head whose direct level-4 path from (u, v) is exactly ``target``.

    The level-4 chain neck.input_blocks.4 (uv) -> head.input_blocks.4 -> output_blocks.4 is
    linear (no norms, no residual blocks), so W_out = R + (T - R M) pinv(M), M = W_h W_n, gives
    W_out M = T while the deeper paths still reach the output through W_out.
    """
    W_n = sd['neck.input_blocks.4.weight'][:, :, 0, 0].double()
    W_h = sd[f'{head}_head.input_blocks.4.weight'][:, :, 0, 0].double()
    M = W_h @ W_n
    T = torch.tensor(target, dtype=torch.float64)
    R = torch.randn(T.shape[0], M.shape[0], generator=g, dtype=torch.float64) * noise_std
    W = R + (T - R @ M) @ torch.linalg.pinv(M)
    return W.float()[:, :, None, None]


def make_official_moge_weights(seed=0, reduced=False, materialize=False):
    """Deterministic random MoGe-2 checkpoint {'model_config', 'model'} in the official layout.

    Full size: 521 tensors, 330,901,550 values (spec 7), fp32, buffers = ImageNet mean/std.
    Scales are fan-in based; the points head sees x = u, y = v directly (plus O(0.3) deeper
    terms) and log-depth 0.5 + 0.4 v + noise, so the focal recovery meets a sensible problem
    (focal ~1, positive varied depths); mask logits are 3 (u + v/2) + noise, so the mask is mixed
    with a noisy boundary; metric scale ~exp(0.3). ``materialize`` gives every tensor its own
    storage (a file the size of the real one) instead of views into shared pools.
    """
    cfg = REDUCED_MOGE_CONFIG if reduced else OFFICIAL_MOGE_CONFIG
    shapes = moge_shapes(cfg)
    specs = [(k, s, *_init_rule(k, s)) for k, s in shapes.items()
             if not k.startswith('encoder.image_')]
    sd = {'encoder.image_mean': torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
          'encoder.image_std': torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)}
    sd.update(_pooled(specs, seed))
    g = torch.Generator().manual_seed(seed + 7919)
    # neck level 0: the two UV columns strong enough to matter next to 1024 feature channels
    w0 = sd['neck.input_blocks.0.weight'].clone()
    w0[:, -2:] = torch.randn(w0.shape[0], 2, 1, 1, generator=g)
    sd['neck.input_blocks.0.weight'] = w0
    sd['neck.input_blocks.4.weight'] = 2.0 * torch.randn(
        sd['neck.input_blocks.4.weight'].shape, generator=g)
    sd['points_head.output_blocks.4.weight'] = _uv_path_weights(
        sd, 'points', [[1.0, 0.0], [0.0, 1.0], [0.2, -1.0]], g, 0.05)
    sd['points_head.output_blocks.4.bias'] = torch.tensor([0.0, 0.0, 0.5])
    sd['mask_head.output_blocks.4.weight'] = _uv_path_weights(sd, 'mask', [[3.0, 1.5]], g, 0.1)
    sd['mask_head.output_blocks.4.bias'] = torch.zeros(1)
    sd['scale_head.4.bias'] = torch.tensor([0.3])
    sd = {k: sd[k] for k in shapes}
    if materialize:
        sd = {k: v.clone() for k, v in sd.items()}
    return {'model_config': _copy_config(cfg), 'model': sd}


def _copy_config(cfg):
    return {k: (_copy_config(v) if isinstance(v, dict) else
                list(v) if isinstance(v, list) else v) for k, v in cfg.items()}


def make_official_ppd_moge_weights(seed=1, reduced=False, materialize=False, sem=None):
    """Deterministic random ppd_moge.pth: flat ``dit.*`` state dict (352 tensors, 499,842,112
    values at full size), live adaLN and final layers (spec_reference_impl.random_state scales).
    ``reduced`` matches the reduced MoGe (semantics width 128) unless ``sem`` says otherwise."""
    if reduced:
        shapes = ref.official_dit_shapes(D=128, depth=2, mlp=256, fusion=256, sem=sem or 128)
    else:
        shapes = ref.official_dit_shapes(sem=sem or 1024)
    sd = ref.random_state(shapes, seed=seed)
    return {k: v.clone() for k, v in sd.items()} if materialize else sd


def write_official_files(directory, seed=0, reduced=False, materialize=False):
    """torch.save model.pt and ppd_moge.pth into ``directory``; returns their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    moge_path, dit_path = directory / 'model.pt', directory / 'ppd_moge.pth'
    torch.save(make_official_moge_weights(seed, reduced, materialize), moge_path)
    torch.save(make_official_ppd_moge_weights(seed + 1, reduced, materialize), dit_path)
    return moge_path, dit_path
