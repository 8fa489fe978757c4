"""DiT pieces: timestep embedding, qk-norm, fusion/expansion order, unpatchify, adaLN-Zero init."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import spec_reference_impl as ref
from ppd_ros.model import DepthPredictor, build_model, get_config
from ppd_ros.model.dit import Attention
from ppd_ros.model.rope import rope_tables
from ppd_ros.model.timestep_embedding import sinusoidal_embedding
from ppd_ros.model.token_expansion import expand_tokens, fusion_input


@pytest.fixture(scope='module')
def tiny():
    torch.manual_seed(0)
    return build_model('tiny').eval()


def randomize_(module, seed=0):
    """Fill every parameter with non-zero values (so adaLN gates and final layer are live)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            offset = 1.0 if p.dim() == 1 and p.shape[0] == 64 else 0.0   # qk-norm weights ~1
            p.copy_(torch.randn(p.shape, generator=g) * 0.05 + offset)
    return module


def test_timestep_embedding_is_cos_then_sin():
    e0 = sinusoidal_embedding(torch.tensor(0), 256)[0]
    assert torch.equal(e0[:128], torch.ones(128)) and torch.equal(e0[128:], torch.zeros(128))
    e = sinusoidal_embedding(torch.tensor(750, dtype=torch.int32), 256)[0]
    k = torch.arange(128, dtype=torch.float64)
    a = 750 * torch.exp(-math.log(10000) * k / 128)
    expected = torch.cat([torch.cos(a), torch.sin(a)]).float()
    torch.testing.assert_close(e, expected, atol=2e-4, rtol=0)


def test_qk_norm_is_affine_layernorm_eps_1e5_shared_across_heads():
    attn = Attention(128, 2)
    for norm in (attn.q_norm, attn.k_norm):
        assert norm.eps == 1e-5 and norm.elementwise_affine
        assert norm.weight.shape == (64,) and norm.bias.shape == (64,)
    randomize_(attn, seed=3)
    g = torch.Generator().manual_seed(4)
    small = 3e-3 * torch.randn(2, 5, 64, generator=g)   # variance ~1e-5: the eps matters
    with torch.no_grad():
        normed = attn.q_norm(small)
    w, b = attn.q_norm.weight, attn.q_norm.bias
    torch.testing.assert_close(normed, ref.layer_norm(small, 1e-5, w, b))
    assert (normed - ref.layer_norm(small, 1e-6, w, b)).abs().max() > 0.1

    # Whole attention: per-head LN (shared affine) on q and k, then RoPE, softmax, proj.
    x = torch.randn(1, 6, 128, generator=g)
    ys, xs = ref.grid_yx(2, 3)
    qkv = F.linear(x[0], attn.qkv.weight, attn.qkv.bias)
    q, k, v = (qkv[:, i * 128:(i + 1) * 128].reshape(6, 2, 64).transpose(0, 1) for i in range(3))
    q = ref.rope_elementwise(ref.layer_norm(q, 1e-5, attn.q_norm.weight, attn.q_norm.bias), ys, xs)
    k = ref.rope_elementwise(ref.layer_norm(k, 1e-5, attn.k_norm.weight, attn.k_norm.bias), ys, xs)
    out = ref.softmax_attention(q, k, v).transpose(0, 1).reshape(6, 128)
    expected = F.linear(out, attn.proj.weight, attn.proj.bias)
    with torch.no_grad():
        got = attn(x, rope_tables(2, 3, 64, 100.0))[0]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_fusion_input_puts_x_first_and_l2_normalises_semantics():
    x, sem = torch.randn(1, 6, 8), 10 * torch.randn(1, 6, 5)
    fused = fusion_input(x, sem)
    assert torch.equal(fused[..., :8], x)
    torch.testing.assert_close(fused[..., 8:], sem / sem.norm(dim=-1, keepdim=True))
    assert fusion_input(x, None) is x


def test_token_expansion_places_children_nhwpqc_to_nchpwq():
    gh, gw, d = 2, 3, 4
    z = torch.zeros(1, gh * gw, 4 * d)
    for i in range(gh * gw):
        for child in range(4):
            for c in range(d):
                z[0, i, child * d + c] = 1000 * i + 10 * child + c
    fine = expand_tokens(z, gh, gw)
    assert fine.shape == (1, 4 * gh * gw, d)
    for a in range(gh):
        for b in range(gw):
            for p in range(2):
                for q in range(2):
                    token = (2 * a + p) * (2 * gw) + (2 * b + q)   # row-major on the g8 grid
                    expected = [1000 * (a * gw + b) + 10 * (p * 2 + q) + c for c in range(d)]
                    assert fine[0, token].tolist() == expected


def test_unpatchify_pixel_order(tiny):
    h, w = 16, 32
    y = torch.arange((h // 8) * (w // 8) * 64, dtype=torch.float32).reshape(1, -1, 64)
    img = tiny.dit.unpatchify(y, h, w)[0, 0]
    for a, b, u, v in [(0, 0, 0, 0), (1, 2, 3, 5), (1, 3, 7, 7), (0, 1, 6, 2)]:
        assert img[8 * a + u, 8 * b + v] == y[0, a * (w // 8) + b, u * 8 + v]


def test_fresh_model_outputs_zero_velocity_so_depth_is_noise_plus_half(tiny):
    predictor = DepthPredictor(tiny, device='cpu')
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    noise = torch.randn(1, 1, 48, 64)
    with torch.no_grad():
        v = tiny.velocity(noise, torch.rand(1, 3, 48, 64), torch.tensor(750, dtype=torch.int32),
                          tiny.semantics(torch.rand(1, 3, 48, 64)))
    assert torch.equal(v, torch.zeros_like(v))
    pred = predictor.predict(rgb, noise=noise, resize=False)
    # Euler with v = 0 keeps x up to fp32 rounding of (1 - s/T) x + (s/T) x.
    np.testing.assert_allclose(pred.network_depth, (noise + 0.5)[0, 0].numpy(), rtol=0, atol=1e-6)


def test_predictor_feeds_raw_integer_t_to_the_dit(tiny):
    seen = []
    handle = tiny.dit.t_embedder.register_forward_hook(
        lambda module, args, out: seen.append(args[0].clone()))
    try:
        predictor = DepthPredictor(tiny, device='cpu')
        rgb = np.zeros((32, 32, 3), dtype=np.uint8)
        predictor.predict(rgb, steps=4, seed=0, resize=False)
        predictor.predict(rgb, steps=4, seed=1, resize=False)   # cached: no second embedding
    finally:
        handle.remove()
    assert len(seen) == 1
    assert seen[0].dtype == torch.int32 and seen[0].tolist() == [1000, 750, 500, 249]


def test_precomputed_conditioning_and_rope_equal_direct_call(tiny):
    dit = randomize_(build_model('tiny').dit, seed=5).eval()
    g = torch.Generator().manual_seed(6)
    x, sem = torch.randn(1, 4, 32, 48, generator=g), torch.randn(1, 6, 128, generator=g)
    schedule = torch.tensor([1000, 750], dtype=torch.int32)
    with torch.no_grad():
        cond = dit.condition(schedule)
        direct = dit(x, schedule[1], sem)
        cached = dit(x, None, sem, cond=cond.select(1), rope=dit.rope_tables(32, 48))
        other_t = dit(x, schedule[0], sem)
    torch.testing.assert_close(cached, direct)
    assert (direct - other_t).abs().max() > 1e-4
    assert direct.abs().max() > 1e-3


def test_dit_requires_semantics_exactly_when_configured(tiny):
    x = torch.zeros(1, 4, 32, 32)
    with pytest.raises(ValueError, match='semantics'):
        tiny.dit(x, torch.tensor(1000))
    vanilla = build_model(get_config('tiny', encoder={'type': 'none'}))
    with pytest.raises(ValueError, match='semantics'):
        vanilla.dit(x, torch.tensor(1000), torch.zeros(1, 4, 128))
    assert vanilla.dit(x, torch.tensor(1000)).shape == (1, 1, 32, 32)
    with pytest.raises(ValueError, match='multiple of 16'):
        tiny.dit(torch.zeros(1, 4, 24, 32), torch.tensor(1000), torch.zeros(1, 2, 128))


def test_vanilla_variant_predicts_end_to_end():
    torch.manual_seed(0)
    config = get_config('tiny', name='tiny_vanilla', encoder={'type': 'none'})
    model = randomize_(build_model(config))
    pred = DepthPredictor(model, device='cpu').predict(
        np.full((40, 50, 3), 128, dtype=np.uint8), seed=0)
    assert pred.depth.shape == (40, 50) and np.isfinite(pred.depth).all()
