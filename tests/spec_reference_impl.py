"""Independent functional re-implementation of PPD inference, written from the spec text only.

It must not import ppd_ros.model: the parity test compares the two. Everything works on flat
state dicts with the *official* key names (``dit.*`` from ppd.pth, ``pretrained.*`` from the
DA2 file) and is spelled out with explicit formulas: manual LayerNorm and softmax, einsum
linears, matmul patch embedding, per-element RoPE indices, strided token expansion and a
hand-written separable bicubic kernel. Only cv2.resize (the spec's own resizer) and bilinear
F.interpolate for the final upsampling are taken from libraries.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch

# Spec section 2 table (torch 2.13 CPU float32 arange).
TIMESTEP_TABLE = {
    1: [1000],
    2: [1000, 500],
    3: [1000, 666, 333],
    4: [1000, 750, 500, 249],
    5: [1000, 800, 600, 399, 199],
    8: [1000, 875, 750, 625, 500, 374, 249, 124],
    10: [1000, 900, 800, 700, 600, 500, 399, 299, 199, 99],
    20: [1000, 950, 900, 850, 800, 750, 700, 650, 600, 550, 499, 449, 399, 349, 299, 249, 199,
         149, 99, 49],
}

T_TRAIN = 1000


# ----------------------------------------------------------------------------- key tables

def official_dit_shapes(D=1024, depth=24, head_dim=64, mlp=4096, fusion=4096, sem=1024,
                        in_ch=4, out_ch=1, patch=8, stem=16, freq=256):
    """Key -> shape of ppd.pth from the spec table (section 5)."""
    s = {
        'dit.x_embedder.proj.weight': (D, in_ch, stem, stem), 'dit.x_embedder.proj.bias': (D,),
        'dit.t_embedder.mlp.0.weight': (D, freq), 'dit.t_embedder.mlp.0.bias': (D,),
        'dit.t_embedder.mlp.2.weight': (D, D), 'dit.t_embedder.mlp.2.bias': (D,),
    }
    for i in range(depth):
        b = f'dit.blocks.{i}.'
        s.update({
            b + 'attn.qkv.weight': (3 * D, D), b + 'attn.qkv.bias': (3 * D,),
            b + 'attn.q_norm.weight': (head_dim,), b + 'attn.q_norm.bias': (head_dim,),
            b + 'attn.k_norm.weight': (head_dim,), b + 'attn.k_norm.bias': (head_dim,),
            b + 'attn.proj.weight': (D, D), b + 'attn.proj.bias': (D,),
            b + 'mlp.fc1.weight': (mlp, D), b + 'mlp.fc1.bias': (mlp,),
            b + 'mlp.fc2.weight': (D, mlp), b + 'mlp.fc2.bias': (D,),
            b + 'adaLN_modulation.1.weight': (6 * D, D), b + 'adaLN_modulation.1.bias': (6 * D,),
        })
    s.update({
        'dit.proj_fusion.0.weight': (fusion, D + sem), 'dit.proj_fusion.0.bias': (fusion,),
        'dit.proj_fusion.2.weight': (fusion, fusion), 'dit.proj_fusion.2.bias': (fusion,),
        'dit.proj_fusion.4.weight': (4 * D, fusion), 'dit.proj_fusion.4.bias': (4 * D,),
        'dit.final_layer.linear.weight': (patch * patch * out_ch, D),
        'dit.final_layer.linear.bias': (patch * patch * out_ch,),
        'dit.final_layer.adaLN_modulation.1.weight': (2 * D, D),
        'dit.final_layer.adaLN_modulation.1.bias': (2 * D,),
    })
    return s


def official_encoder_shapes(E=1024, depth=24, mlp=4096, patch=14, grid=37):
    """Key -> shape of the used part of depth_anything_v2_vitl.pth (section 5)."""
    s = {
        'pretrained.cls_token': (1, 1, E), 'pretrained.pos_embed': (1, 1 + grid * grid, E),
        'pretrained.mask_token': (1, E),
        'pretrained.patch_embed.proj.weight': (E, 3, patch, patch),
        'pretrained.patch_embed.proj.bias': (E,),
    }
    for i in range(depth):
        b = f'pretrained.blocks.{i}.'
        s.update({
            b + 'norm1.weight': (E,), b + 'norm1.bias': (E,),
            b + 'norm2.weight': (E,), b + 'norm2.bias': (E,),
            b + 'attn.qkv.weight': (3 * E, E), b + 'attn.qkv.bias': (3 * E,),
            b + 'attn.proj.weight': (E, E), b + 'attn.proj.bias': (E,),
            b + 'ls1.gamma': (E,), b + 'ls2.gamma': (E,),
            b + 'mlp.fc1.weight': (mlp, E), b + 'mlp.fc1.bias': (mlp,),
            b + 'mlp.fc2.weight': (E, mlp), b + 'mlp.fc2.bias': (E,),
        })
    s.update({'pretrained.norm.weight': (E,), 'pretrained.norm.bias': (E,)})
    return s


def random_state(shapes, seed=0):
    """Random tensors for a key table: weights ~0.02 N(0,1), norm weights near 1, gammas near 0.5.

    Nothing is zero, so the adaLN gates and the final layer are active (v != 0). To make
    full-size states cheap (800M parameters), every tensor is a view into a shared random
    pool at a random offset: a few hundred MB and well under a second instead of 3.2 GB.
    """
    g = torch.Generator().manual_seed(seed)
    largest = max(math.prod(shape) for shape in shapes.values())
    n = min(largest + 1009, sum(math.prod(shape) for shape in shapes.values()))
    base = torch.randn(n, generator=g)
    pools = {
        'matrix': torch.cat([base, base]) * 0.02,
        'vector': torch.cat([base[:65536], base[:65536]]) * 0.05,
        'norm': 1.0 + 0.1 * torch.cat([base[-65536:], base[-65536:]]),
        'gamma': 0.5 + 0.1 * torch.cat([base[1:65537], base[1:65537]]),
    }
    out = {}
    for key, shape in shapes.items():
        if key.endswith('gamma'):
            pool = pools['gamma']
        elif len(shape) == 1 and key.endswith('weight'):
            pool = pools['norm']
        else:
            pool = pools['matrix'] if len(shape) > 1 else pools['vector']
        size = math.prod(shape)
        # 64-byte aligned start in the first half of the doubled pool
        start = 16 * int(torch.randint(0, pool.numel() // 32, (1,), generator=g))
        out[key] = pool[start:start + size].view(shape)
    return out


# ----------------------------------------------------------------------------- primitives

def layer_norm(x, eps, weight=None, bias=None):
    mu = x.mean(dim=-1, keepdim=True)
    var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)
    y = (x - mu) / torch.sqrt(var + eps)
    if weight is not None:
        y = y * weight + bias
    return y


def linear(x, sd, name):
    return torch.einsum('...i,oi->...o', x, sd[name + '.weight']) + sd[name + '.bias']


def silu(x):
    return x * torch.sigmoid(x)


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def gelu_erf(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def softmax_attention(q, k, v):
    """q, k, v (heads, N, d): explicit softmax(q k^T / sqrt(d)) v."""
    scores = torch.einsum('hnd,hmd->hnm', q, k) / math.sqrt(q.shape[-1])
    scores = scores - scores.max(dim=-1, keepdim=True).values
    p = torch.exp(scores)
    p = p / p.sum(dim=-1, keepdim=True)
    return torch.einsum('hnm,hmd->hnd', p, v)


def patchify_linear(img, weight, bias):
    """Conv with kernel = stride = p as a matmul over flattened patches: (C, H, W) -> (N, D)."""
    D, C, p, _ = weight.shape
    _, H, W = img.shape
    patches = img.reshape(C, H // p, p, W // p, p).permute(1, 3, 0, 2, 4).reshape(-1, C * p * p)
    return patches @ weight.reshape(D, -1).T + bias


def cubic_weight(x, a=-0.75):
    """Keys cubic convolution kernel, evaluated in float32 like PyTorch's fp32 kernel."""
    f = np.float32
    x, a = f(abs(x)), f(a)
    if x <= 1:
        return f(f(f(f(a + 2) * x) - f(a + 3)) * x * x + 1)
    if x < 2:
        return f(f(f(f(a * x) - f(5 * a)) * x + f(8 * a)) * x - f(4 * a))
    return f(0.0)


def bicubic_matrix(n_in, n_out, coord_scale):
    """(n_out, n_in) matrix: dst i samples src = (i + 0.5) * coord_scale - 0.5, taps clamped.

    Coordinates and weights are computed in float32, as PyTorch does for fp32 tensors; in
    float64 they would differ from it by ~5e-6 per unit of signal.
    """
    f = np.float32
    scale = f(coord_scale)
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    for i in range(n_out):
        src = f(f(f(i) + f(0.5)) * scale - f(0.5))
        i0 = math.floor(src)
        frac = f(src - f(i0))
        for tap in range(-1, 3):
            m[i, min(max(i0 + tap, 0), n_in - 1)] += float(cubic_weight(f(f(tap) - frac)))
    return m


def bicubic(x, rows_out, cols_out, row_scale, col_scale):
    """Separable bicubic (a = -0.75) of (C, H, W) with explicit coordinate scales."""
    mh = bicubic_matrix(x.shape[-2], rows_out, row_scale)
    mw = bicubic_matrix(x.shape[-1], cols_out, col_scale)
    return torch.einsum('oh,chw,pw->cop', mh, x.double(), mw).float()


# ----------------------------------------------------------------------------- encoder

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def pos_embed_for_grid(pos, gh, gw, offset=0.1):
    """Spec 4.4: unchanged for the stored square grid, else bicubic by scale_factor (gh+0.1)/G."""
    G = int(round(math.sqrt(pos.shape[1] - 1)))
    if gh == G and gw == G:
        return pos[0]
    grid = pos[0, 1:].reshape(G, G, -1).permute(2, 0, 1)
    sf_h, sf_w = (gh + offset) / G, (gw + offset) / G
    assert math.floor(G * sf_h) == gh and math.floor(G * sf_w) == gw
    grid = bicubic(grid, gh, gw, 1.0 / sf_h, 1.0 / sf_w)
    return torch.cat([pos[0, :1], grid.permute(1, 2, 0).reshape(gh * gw, -1)], dim=0)


def encoder_semantics(sd, image, heads, patch=14):
    """image (3, h, w) in [0, 1] -> (N0, E) final-norm patch tokens."""
    h, w = image.shape[-2:]
    gh, gw = h // 16, w // 16
    x = (image - IMAGENET_MEAN) / IMAGENET_STD
    x = bicubic(x, gh * patch, gw * patch, h / (gh * patch), w / (gw * patch))
    tokens = patchify_linear(x, sd['pretrained.patch_embed.proj.weight'],
                             sd['pretrained.patch_embed.proj.bias'])
    tokens = torch.cat([sd['pretrained.cls_token'][0], tokens], dim=0)
    tokens = tokens + pos_embed_for_grid(sd['pretrained.pos_embed'], gh, gw)
    E = tokens.shape[-1]
    i = 0
    while f'pretrained.blocks.{i}.norm1.weight' in sd:
        b = f'pretrained.blocks.{i}.'
        y = layer_norm(tokens, 1e-6, sd[b + 'norm1.weight'], sd[b + 'norm1.bias'])
        qkv = linear(y, sd, b + 'attn.qkv').reshape(-1, 3, heads, E // heads)
        q, k, v = (qkv[:, j].transpose(0, 1) for j in range(3))
        att = softmax_attention(q, k, v).transpose(0, 1).reshape(-1, E)
        tokens = tokens + sd[b + 'ls1.gamma'] * linear(att, sd, b + 'attn.proj')
        y = layer_norm(tokens, 1e-6, sd[b + 'norm2.weight'], sd[b + 'norm2.bias'])
        y = linear(gelu_erf(linear(y, sd, b + 'mlp.fc1')), sd, b + 'mlp.fc2')
        tokens = tokens + sd[b + 'ls2.gamma'] * y
        i += 1
    tokens = layer_norm(tokens, 1e-6, sd['pretrained.norm.weight'], sd['pretrained.norm.bias'])
    return tokens[1:]


# ----------------------------------------------------------------------------- DiT

def timestep_features(t, dim=256):
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    a = float(t) * freqs
    return torch.cat([torch.cos(a), torch.sin(a)])


def rope_elementwise(u, ys, xs, base=100.0):
    """u (heads, N, d); element j of the y-half uses angle y * base^(-2 (j mod d/4) / (d/2))."""
    d = u.shape[-1]
    half, quarter = d // 2, d // 4
    out = torch.empty_like(u)
    for j in range(d):
        pos = ys if j < half else xs
        jj = j % half
        k = jj % quarter
        inv = 1.0 / (base ** (2 * k / half))
        theta = pos.float() * inv
        partner = j + quarter if jj < quarter else j - quarter
        sign = -1.0 if jj < quarter else 1.0
        out[..., j] = u[..., j] * torch.cos(theta) + sign * u[..., partner] * torch.sin(theta)
    return out


def grid_yx(gh, gw):
    ys = torch.arange(gh).repeat_interleave(gw)
    xs = torch.arange(gw).repeat(gh)
    return ys, xs


def dit_block(sd, i, x, c, ys, xs, heads):
    b = f'dit.blocks.{i}.'
    D = x.shape[-1]
    hd = D // heads
    m = linear(silu(c), sd, b + 'adaLN_modulation.1')
    sh1, sc1, g1, sh2, sc2, g2 = (m[j * D:(j + 1) * D] for j in range(6))
    y = layer_norm(x, 1e-6) * (1 + sc1) + sh1
    qkv = linear(y, sd, b + 'attn.qkv')
    q = qkv[:, 0:D].reshape(-1, heads, hd).transpose(0, 1)
    k = qkv[:, D:2 * D].reshape(-1, heads, hd).transpose(0, 1)
    v = qkv[:, 2 * D:].reshape(-1, heads, hd).transpose(0, 1)
    q = layer_norm(q, 1e-5, sd[b + 'attn.q_norm.weight'], sd[b + 'attn.q_norm.bias'])
    k = layer_norm(k, 1e-5, sd[b + 'attn.k_norm.weight'], sd[b + 'attn.k_norm.bias'])
    q, k = rope_elementwise(q, ys, xs), rope_elementwise(k, ys, xs)
    att = softmax_attention(q, k, v).transpose(0, 1).reshape(-1, D)
    x = x + g1 * linear(att, sd, b + 'attn.proj')
    y = layer_norm(x, 1e-6) * (1 + sc2) + sh2
    x = x + g2 * linear(gelu_tanh(linear(y, sd, b + 'mlp.fc1')), sd, b + 'mlp.fc2')
    return x


def dit_velocity(sd, x_in, sem, t, heads, depth):
    """x_in (4, h, w), sem (N0, E) or None, integer t -> velocity (h, w)."""
    _, h, w = x_in.shape
    gh, gw = h // 16, w // 16
    x = patchify_linear(x_in, sd['dit.x_embedder.proj.weight'], sd['dit.x_embedder.proj.bias'])
    c = linear(timestep_features(t), sd, 'dit.t_embedder.mlp.0')
    c = linear(silu(c), sd, 'dit.t_embedder.mlp.2')
    ys, xs = grid_yx(gh, gw)
    for i in range(depth // 2):
        x = dit_block(sd, i, x, c, ys, xs, heads)
    D = x.shape[-1]
    if sem is not None:
        sem = sem / sem.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        x = torch.cat([x, sem], dim=-1)
    z = linear(x, sd, 'dit.proj_fusion.0')
    z = linear(silu(z), sd, 'dit.proj_fusion.2')
    z = linear(silu(z), sd, 'dit.proj_fusion.4')
    zg = z.reshape(gh, gw, 4 * D)
    fine = torch.empty(2 * gh, 2 * gw, D)
    for p in range(2):
        for q in range(2):
            fine[p::2, q::2] = zg[..., (2 * p + q) * D:(2 * p + q + 1) * D]
    x = fine.reshape(4 * gh * gw, D)
    ys, xs = grid_yx(2 * gh, 2 * gw)
    for i in range(depth // 2, depth):
        x = dit_block(sd, i, x, c, ys, xs, heads)
    m = linear(silu(c), sd, 'dit.final_layer.adaLN_modulation.1')
    y = layer_norm(x, 1e-6) * (1 + m[D:]) + m[:D]
    y = linear(y, sd, 'dit.final_layer.linear').reshape(2 * gh, 2 * gw, 64)
    out = torch.empty(h, w)
    for u in range(8):
        for v in range(8):
            out[u::8, v::8] = y[..., u * 8 + v]
    return out


def euler(x, v, t, s):
    t = torch.tensor(t, dtype=torch.int32)
    s = torch.tensor(s, dtype=torch.int32)
    A = 1 - t / T_TRAIN
    B = t / T_TRAIN
    x0 = x - B * v
    xT = x + A * v
    sc = s.clamp(0, T_TRAIN)
    xs = (1 - sc / T_TRAIN) * x0 + (sc / T_TRAIN) * xT
    if s < 0:
        return x0
    if s > T_TRAIN:
        return xT
    return xs


def network_size(H, W, area=1024 * 768):
    s = math.sqrt(area / (H * W))
    return max(16, 16 * round(H * s / 16)), max(16, 16 * round(W * s / 16)), s


@torch.no_grad()
def reference_predict(dit_sd, enc_sd, rgb, noise, steps, heads, depth, enc_heads=16,
                      resize=False, area=1024 * 768, enc_patch=14):
    """RGB uint8 (H, W, 3) + noise (h, w) -> depth (H, W) float32 tensor."""
    H, W = rgb.shape[:2]
    if resize:
        h, w, s = network_size(H, W, area)
        rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    image = torch.from_numpy((rgb / 255.0).astype(np.float32)).permute(2, 0, 1)
    sem = encoder_semantics(enc_sd, image, enc_heads, enc_patch) if enc_sd is not None else None
    ts = TIMESTEP_TABLE[steps]
    x = noise.reshape(image.shape[-2:]).float()
    for n, t in enumerate(ts):
        v = dit_velocity(dit_sd, torch.cat([x[None], image - 0.5]), sem, t, heads, depth)
        x = euler(x, v, t, ts[n + 1] if n + 1 < len(ts) else -1)
    out = (x + 0.5)[None, None]
    out = torch.nn.functional.interpolate(out, size=(H, W), mode='bilinear', align_corners=False)
    return out[0, 0]
