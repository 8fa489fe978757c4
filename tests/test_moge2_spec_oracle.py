"""The independent MoGe-2 / PPD-MoGe oracle (tests/moge2_spec_oracle.py) against the facts that
../shared/spec/moge2-reference.md states, and its spelled-out primitives against the library
functions whose rules the spec gives. Small inputs and the reduced model keep this fast; the
full-size weights are only counted and run once at a tiny token budget.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import moge2_spec_oracle as oracle
import spec_reference_impl as ref


@pytest.fixture(scope='module')
def reduced():
    return oracle.make_official_moge_weights(seed=3, reduced=True)


@pytest.fixture(scope='module')
def reduced_forward(reduced):
    return oracle.moge_forward(reduced, random_image(40, 64, seed=5), num_tokens=60)


@pytest.fixture(scope='module')
def full_moge():
    return oracle.make_official_moge_weights(seed=0)


def random_image(h, w, seed=0):
    return torch.rand(3, h, w, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- spec 3.1, 4.2

@pytest.mark.parametrize('size, grid', [
    ((768, 1024), (51, 69)), ((672, 1184), (45, 79)), ((720, 1088), (48, 73)),
    ((880, 880), (60, 60)), ((48, 80), (46, 77)), ((64, 64), (60, 60)),
])
def test_token_grid_truncates(size, grid):
    assert oracle.token_grid(3600, *size) == grid


def test_token_grid_truncation_differs_from_upstream_rounding():
    bh, bw = oracle.token_grid(3600, 768, 1024)
    assert (14 * bh, 14 * bw, bh * bw) == (714, 966, 3519)
    assert round(math.sqrt(3600 / (1024 / 768))) == 52     # upstream MoGe's grid would be 52 x 69


def test_num_tokens_per_resolution_level():
    assert [oracle.num_tokens_for_level(level) for level in range(10)] == [
        1200, 1466, 1733, 2000, 2266, 2533, 2800, 3066, 3333, 3600]


# ----------------------------------------------------------------------------- spec 7 layouts

SPEC7_GROUPS = {                         # prefix: (tensors, values)
    'encoder.image_': (2, 6),
    'encoder.backbone.': (343, 304_368_640),
    'encoder.output_projections.': (8, 4_198_400),
    'neck.': (48, 6_157_376),
    'points_head.': (38, 4_692_323),
    'mask_head.': (38, 4_692_257),
    'normal_head.': (38, 4_692_323),
    'scale_head.': (6, 2_100_225),
}

SPEC7_SHAPES = {
    'encoder.image_mean': (1, 3, 1, 1), 'encoder.backbone.cls_token': (1, 1, 1024),
    'encoder.backbone.pos_embed': (1, 1370, 1024), 'encoder.backbone.mask_token': (1, 1024),
    'encoder.backbone.patch_embed.proj.weight': (1024, 3, 14, 14),
    'encoder.backbone.blocks.23.attn.qkv.weight': (3072, 1024),
    'encoder.backbone.blocks.0.mlp.fc2.weight': (1024, 4096),
    'encoder.backbone.blocks.7.ls2.gamma': (1024,),
    'encoder.output_projections.3.weight': (1024, 1024, 1, 1),
    'neck.input_blocks.0.weight': (1024, 1026, 1, 1),
    'neck.input_blocks.1.weight': (256, 2, 1, 1), 'neck.input_blocks.4.weight': (32, 2, 1, 1),
    'neck.resamplers.0.0.weight': (1024, 256, 2, 2), 'neck.resamplers.2.0.weight': (128, 64, 2, 2),
    'neck.resamplers.1.1.weight': (128, 128, 3, 3), 'neck.resamplers.3.1.weight': (32, 64, 3, 3),
    'neck.res_blocks.3.1.layers.5.weight': (64, 64, 3, 3),
    'points_head.input_blocks.0.weight': (1024, 1024, 1, 1),
    'mask_head.input_blocks.4.weight': (32, 32, 1, 1),
    'normal_head.res_blocks.1.0.layers.2.weight': (256, 256, 3, 3),
    'points_head.output_blocks.4.weight': (3, 32, 1, 1),
    'mask_head.output_blocks.4.weight': (1, 32, 1, 1),
    'normal_head.output_blocks.4.bias': (3,),
    'scale_head.0.weight': (1024, 1024), 'scale_head.4.weight': (1, 1024),
    'scale_head.4.bias': (1,),
}


def test_official_moge_weights_match_the_spec_key_table(full_moge):
    sd = full_moge['model']
    assert len(sd) == 521
    assert sum(t.numel() for t in sd.values()) == 330_901_550
    params = {k: t for k, t in sd.items() if not k.startswith('encoder.image_')}
    assert (len(params), sum(t.numel() for t in params.values())) == (519, 330_901_544)
    for prefix, expected in SPEC7_GROUPS.items():
        group = [t for k, t in sd.items() if k.startswith(prefix)]
        assert (len(group), sum(t.numel() for t in group)) == expected, prefix
    semantics = [t for k, t in sd.items() if k.startswith(('encoder.backbone.',
                 'encoder.output_projections.')) and not k.endswith('mask_token')]
    assert sum(t.numel() for t in semantics) == 308_566_016
    for key, shape in SPEC7_SHAPES.items():
        assert tuple(sd[key].shape) == shape, key
    for absent in ['neck.res_blocks.0.0.layers.2.weight', 'points_head.res_blocks.4.0.layers.2.weight',
                   'neck.output_blocks.4.weight', 'mask_head.output_blocks.3.weight',
                   'neck.resamplers.3.0.weight', 'points_head.resamplers.3.0.weight']:
        assert absent not in sd
    assert all(t.dtype == torch.float32 for t in sd.values())
    assert torch.equal(sd['encoder.image_mean'].flatten(), torch.tensor([0.485, 0.456, 0.406]))
    assert torch.equal(sd['encoder.image_std'].flatten(), torch.tensor([0.229, 0.224, 0.225]))
    cfg = full_moge['model_config']
    assert cfg['encoder'] == {'backbone': 'dinov2_vitl14', 'intermediate_layers': [5, 11, 17, 23],
                              'dim_out': 1024}
    assert cfg['remap_output'] == 'exp' and cfg['num_tokens_range'] == [1200, 3600]
    assert cfg['neck']['num_res_blocks'] == [0, 2, 2, 2, 0]
    assert cfg['mask_head']['dim_out'] == [None, None, None, None, 1]


def test_official_ppd_moge_weights_match_the_dit_table():
    sd = oracle.make_official_ppd_moge_weights(seed=1)
    assert len(sd) == 352 and all(k.startswith('dit.') for k in sd)
    assert sum(t.numel() for t in sd.values()) == 499_842_112
    assert tuple(sd['dit.proj_fusion.0.weight'].shape) == (4096, 2048)   # 1024 DiT + 1024 MoGe
    for key in ['dit.blocks.0.adaLN_modulation.1.weight', 'dit.final_layer.linear.weight',
                'dit.final_layer.adaLN_modulation.1.weight']:
        assert sd[key].abs().mean() > 1e-3, key      # live adaLN-Zero layers


def test_weights_are_deterministic_per_seed():
    a = oracle.make_official_moge_weights(seed=5, reduced=True)['model']
    b = oracle.make_official_moge_weights(seed=5, reduced=True)['model']
    c = oracle.make_official_moge_weights(seed=6, reduced=True)['model']
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a['neck.input_blocks.0.weight'], c['neck.input_blocks.0.weight'])
    projections = [a[f'encoder.output_projections.{k}.weight'] for k in range(4)]
    assert all(not torch.equal(projections[0], p) for p in projections[1:])


def test_written_files_load_with_weights_only(tmp_path):
    moge_path, dit_path = oracle.write_official_files(tmp_path, seed=2, reduced=True)
    moge = torch.load(moge_path, weights_only=True)
    dit = torch.load(dit_path, weights_only=True)
    expected = oracle.make_official_moge_weights(seed=2, reduced=True)
    assert moge['model_config'] == expected['model_config']
    assert moge['model'].keys() == expected['model'].keys()
    assert all(torch.equal(moge['model'][k], expected['model'][k]) for k in moge['model'])
    assert dit.keys() == oracle.make_official_ppd_moge_weights(seed=3, reduced=True).keys()


# ----------------------------------------------------------------------------- sampling rules

def test_linspace_rule_is_bitwise_torch():
    rng = np.random.default_rng(0)
    cases = [(0.5 / w, (w - 0.5) / w, w) for w in (1, 2, 3, 48, 80, 1078)]
    for n_h, n_w in [(46, 77), (60, 60), (51, 69), (45, 79)]:
        for level in range(5):
            for n, span in ((n_w * 2 ** level, 0.857), (n_h * 2 ** level, 0.514)):
                cases.append((-span * (n - 1) / n, span * (n - 1) / n, n))
    cases += [(float(rng.uniform(-3, 0)), float(rng.uniform(0, 3)), int(rng.integers(2, 500)))
              for _ in range(300)]
    for start, end, n in cases:
        ours = oracle.linspace_f32(start, end, n)
        assert torch.equal(ours.view(torch.int32), torch.linspace(start, end, n).view(torch.int32))


def test_view_plane_uv_uses_the_image_aspect_ratio():
    ar = 80 / 48
    uv = oracle.view_plane_uv(77, 46, ar)
    assert uv.shape == (2, 46, 77)
    assert torch.equal(uv[0], uv[0, :1].expand(46, 77)) and torch.equal(uv[1], uv[1, :, :1].expand(46, 77))
    span_x = float(uv[0, 0, -1]) * 77 / 76
    span_y = float(uv[1, -1, 0]) * 46 / 45
    assert span_x == pytest.approx(ar * span_y, rel=1e-6)      # not the grid's 77/46
    assert span_x ** 2 + span_y ** 2 == pytest.approx(1.0, rel=1e-6)
    assert float(uv[0, 0, 0]) == -float(uv[0, 0, -1])


def torch_axis_weights(n_in, n_out, antialias):
    """The weights F.interpolate applies along one axis: it resamples one-hot rows."""
    eye = torch.eye(n_in).reshape(n_in, 1, 1, n_in)
    out = F.interpolate(eye, size=(1, n_out), mode='bilinear', align_corners=False,
                        antialias=antialias)
    return out.reshape(n_in, n_out).T.numpy()


@pytest.mark.parametrize('n_in, n_out', [(48, 42), (80, 70), (64, 56), (480, 420), (640, 560),
                                         (100, 37), (1024, 966), (48, 644), (80, 1078)])
def test_antialias_recipe_reproduces_torch_weights(n_in, n_out):
    assert np.array_equal(oracle.antialias_weights(n_in, n_out),
                          torch_axis_weights(n_in, n_out, antialias=True))


def test_antialiased_encoder_resize_matches_the_recipe():
    for (h, w), (bh, bw) in [((64, 112), (3, 7)), ((48, 80), (46, 77)), ((480, 640), (30, 40))]:
        image = random_image(h, w)
        torch_resized = F.interpolate(image[None], size=(14 * bh, 14 * bw), mode='bilinear',
                                      align_corners=False, antialias=True)[0]
        rows = torch.from_numpy(oracle.antialias_weights(h, 14 * bh)).double()
        cols = torch.from_numpy(oracle.antialias_weights(w, 14 * bw)).double()
        recipe = torch.einsum('oh,chw,pw->cop', rows, image.double(), cols)
        assert (torch_resized.double() - recipe).abs().max() <= 1e-6
        plain = F.interpolate(image[None], size=(14 * bh, 14 * bw), mode='bilinear',
                              align_corners=False)[0]
        if 14 * bh > h:
            assert (plain - torch_resized).abs().max() <= 2e-5       # upsampling: plain bilinear
        else:
            assert (plain - torch_resized).abs().max() > 0.05        # downsampling: wider filter


@pytest.mark.parametrize('src, dst', [((736, 1232), (48, 80)), ((960, 960), (64, 64)),
                                      ((96, 144), (40, 64)), ((12, 18), (40, 64))])
def test_bilinear_rule_matches_torch(src, dst):
    x = torch.randn(2, *src, generator=torch.Generator().manual_seed(1))
    theirs = F.interpolate(x[None], size=dst, mode='bilinear', align_corners=False)[0]
    assert (oracle.bilinear_resize(x, *dst) - theirs).abs().max() <= 1e-6


def test_bilinear_x2_matches_torch_upsample():
    x = torch.randn(3, 7, 11, generator=torch.Generator().manual_seed(2))
    theirs = F.interpolate(x[None], scale_factor=2, mode='bilinear', align_corners=False)[0]
    assert (oracle.upsample_x2(x) - theirs).abs().max() <= 1e-6


def test_nearest_rule_matches_torch():
    for n in [1, 2, 5, 37, 48, 63, 64, 65, 80, 100, 128, 480, 1232]:
        x = torch.arange(n, dtype=torch.float32).view(1, 1, 1, n)
        theirs = F.interpolate(x, size=(1, 64), mode='nearest')[0, 0, 0].long()
        assert torch.equal(oracle.nearest_indices(n), theirs), n


def test_convolution_rules_match_torch():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(6, 9, 13, generator=g)
    sd = {'c3.weight': torch.randn(5, 6, 3, 3, generator=g), 'c3.bias': torch.randn(5, generator=g),
          'ct.weight': torch.randn(6, 4, 2, 2, generator=g), 'ct.bias': torch.randn(4, generator=g),
          'c1.weight': torch.randn(5, 6, 1, 1, generator=g), 'c1.bias': torch.randn(5, generator=g)}
    padded = F.pad(x[None], (1, 1, 1, 1), mode='replicate')
    assert (oracle.conv3x3_replicate(x, sd, 'c3')
            - F.conv2d(padded, sd['c3.weight'], sd['c3.bias'])[0]).abs().max() <= 1e-5
    assert (oracle.conv_transpose2x2(x, sd, 'ct')
            - F.conv_transpose2d(x[None], sd['ct.weight'], sd['ct.bias'], stride=2)[0]
            ).abs().max() <= 1e-5
    assert (oracle.conv1x1(x, sd, 'c1')
            - F.conv2d(x[None], sd['c1.weight'], sd['c1.bias'])[0]).abs().max() <= 1e-5


# ----------------------------------------------------------------------------- forward (spec 3, 5)

def test_reduced_forward_stages_and_output_rules(reduced_forward):
    out = reduced_forward
    bh, bw = out['token_grid']
    assert (bh, bw) == (6, 9)
    assert out['features'].shape == (128, 6, 9) and out['cls'].shape == (128,)
    assert [tuple(x.shape) for x in out['neck']] == [
        (128, 6, 9), (32, 12, 18), (16, 24, 36), (8, 48, 72), (8, 96, 144)]
    assert {k: tuple(v.shape) for k, v in out['raw'].items()} == {
        'points': (3, 96, 144), 'normal': (3, 96, 144), 'mask': (1, 96, 144)}
    # resize (no antialias) first, then the remap
    raw_points = F.interpolate(out['raw']['points'][None], size=(40, 64), mode='bilinear',
                               align_corners=False)[0].permute(1, 2, 0)
    z = torch.exp(raw_points[..., 2])
    expected = torch.stack([raw_points[..., 0] * z, raw_points[..., 1] * z, z], dim=-1)
    assert torch.allclose(out['points'], expected, rtol=1e-5, atol=1e-6)
    z_resized_after = F.interpolate(torch.exp(out['raw']['points'][2])[None, None], size=(40, 64),
                                    mode='bilinear', align_corners=False)[0, 0]
    assert (z_resized_after - z).abs().max() > 1e-3
    assert torch.allclose(out['normal'].norm(dim=-1), torch.ones(40, 64), atol=1e-5)
    mask_logit = F.interpolate(out['raw']['mask'][None], size=(40, 64), mode='bilinear',
                               align_corners=False)[0, 0]
    assert torch.allclose(out['mask'], torch.sigmoid(mask_logit), atol=1e-6)
    assert 0.1 < float((out['mask'] > 0.5).float().mean()) < 0.9
    assert out['metric_scale'].shape == () and float(out['metric_scale']) > 0


def test_forward_features_are_the_sum_of_projected_normed_layers(reduced):
    sd = reduced['model']
    image = random_image(40, 64, seed=1)
    x = oracle.encoder_input(sd, image, 3, 4)
    assert x.shape == (3, 42, 56)
    layers = oracle.dinov2_layers(sd, 'encoder.backbone.', x, 3, 4, [0, 1, 2, 3])
    features, cls = oracle.moge_encoder(reduced, image, 3, 4)
    only_last = oracle.conv1x1(layers[3][1:].T.reshape(-1, 3, 4), sd, 'encoder.output_projections.3')
    assert (features - only_last).abs().max() > 0.1
    assert torch.equal(cls, layers[3][0])
    for t in layers:                       # each taken layer went through the final LayerNorm
        assert torch.allclose(t.mean(-1), sd['encoder.backbone.norm.bias'].mean().expand(13), atol=0.05)


def test_semantics_tokens_live_on_the_g16_grid(reduced):
    image = random_image(48, 80, seed=2)
    sem = oracle.moge_semantics(reduced, image)
    assert sem.shape == (15, 128)
    features, _ = oracle.moge_encoder(reduced, image, 3, 5)
    assert torch.equal(sem[1 * 5 + 2], features[:, 1, 2])


def test_ppd_moge_sampling_uses_the_moge_semantics(reduced):
    dit = oracle.make_official_ppd_moge_weights(seed=4, reduced=True)
    image = random_image(32, 48, seed=3)
    noise = torch.randn(1, 1, 32, 48, generator=torch.Generator().manual_seed(5))
    depth = oracle.ppd_moge_predict(dit, reduced, image, noise, steps=4)
    assert depth.shape == (32, 48)
    assert (depth - (noise[0, 0] + 0.5)).abs().max() > 0.1
    other = oracle.make_official_moge_weights(seed=9, reduced=True)
    assert (oracle.ppd_moge_predict(dit, other, image, noise, steps=4) - depth).abs().max() > 1e-3


# ----------------------------------------------------------------------------- infer (spec 4)

def synthetic_problems(count, seed=0):
    """Shift problems in the spec's form: xy = uv z_true / f0 (+ noise), z = z_true - s0."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        n = int(rng.integers(2, 300))
        uv = rng.uniform(-0.8, 0.8, (n, 2)).astype(np.float32)
        f0, s0 = rng.uniform(0.3, 3), rng.normal(0, [0.05, 0.5, 2][i % 3])
        z_true = rng.uniform(0.2, [1.5, 5, 50][i % 3], n)
        noise = [0, 0.01, 0.3][(i // 3) % 3]
        xy = (uv * z_true[:, None] / f0 + rng.normal(0, noise, (n, 2))).astype(np.float32)
        focal = None if i % 2 == 0 else np.float32(rng.uniform(0.3, 3))
        yield xy, (z_true - s0).astype(np.float32), uv, focal


def test_levenberg_marquardt_is_bitwise_scipy():
    optimize = pytest.importorskip('scipy.optimize')
    damped = undamped = 0
    for xy, z, uv, focal in synthetic_problems(60):
        fun = oracle.shift_residual(xy, z, uv, focal)
        ours, info = oracle.levenberg_marquardt_1d(fun)
        theirs = optimize.least_squares(lambda s: fun(s[0]), x0=0, method='lm', ftol=1e-3)
        assert ours == theirs.x[0] and info['nfev'] == theirs.nfev
        damped += info['damped']
        undamped += not info['damped']
        old, _ = oracle.levenberg_marquardt_1d(fun, flavour='scipy<1.16')
        lmdif = optimize.leastsq(lambda s: fun(s[0]), x0=[0.0], ftol=1e-3, xtol=1e-8, gtol=1e-8,
                                 maxfev=200, diag=[1.0])   # what least_squares called before 1.16
        assert old == lmdif[0][0]
    assert damped >= 10 and undamped >= 10


def test_loose_ftol_stops_short_of_the_minimum():
    optimize = pytest.importorskip('scipy.optimize')
    gaps = []
    for xy, z, uv, focal in synthetic_problems(30, seed=1):
        fun = oracle.shift_residual(xy, z, uv, focal)
        ours, _ = oracle.levenberg_marquardt_1d(fun)
        converged = optimize.least_squares(lambda s: fun(s[0]), x0=0, method='lm', ftol=1e-15,
                                           xtol=1e-15, gtol=1e-15).x[0]
        gaps.append(abs(ours - converged))
    assert max(gaps) > 1e-4


def test_recover_focal_shift_matches_scipy_on_the_64x64_samples(reduced_forward):
    optimize = pytest.importorskip('scipy.optimize')
    out = reduced_forward
    mask = out['mask'] > 0.5
    focal, shift = oracle.recover_focal_shift(out['points'], mask)
    rows, cols = oracle.nearest_indices(40), oracle.nearest_indices(64)
    keep = mask[rows][:, cols]
    pts = out['points'][rows][:, cols][keep].numpy()
    uv = oracle.view_plane_uv(64, 40, 64 / 40).permute(1, 2, 0)[rows][:, cols][keep].numpy()
    fun = oracle.shift_residual(pts[:, :2], pts[:, 2], uv)
    s = np.float32(optimize.least_squares(lambda x: fun(x[0]), x0=0, method='lm', ftol=1e-3).x[0])
    p = pts[:, :2] / (pts[:, 2] + s)[:, None]
    assert float(shift) == s and float(focal) == (p * uv).sum() / np.square(p).sum()


def planted_points(H, W, f0, s0):
    """Affine points of a camera with focal f0 (half-diagonal units) whose z is off by -s0."""
    uv = oracle.view_plane_uv(W, H, W / H).permute(1, 2, 0)
    z_true = 1.0 + 2.0 * torch.rand(H, W, generator=torch.Generator().manual_seed(6))
    return torch.cat([uv * z_true[..., None] / f0, (z_true - s0)[..., None]], dim=-1)


def test_recover_focal_shift_finds_a_planted_camera():
    points = planted_points(48, 80, f0=1.3, s0=0.2)
    mask = torch.ones(48, 80, dtype=torch.bool)
    focal, shift = oracle.recover_focal_shift(points, mask)
    assert float(focal) == pytest.approx(1.3, rel=1e-3) and float(shift) == pytest.approx(0.2, abs=1e-3)
    given, shift = oracle.recover_focal_shift(points, mask, focal=1.3)
    assert float(given) == np.float32(1.3) and float(shift) == pytest.approx(0.2, abs=1e-3)
    one = torch.zeros(48, 80, dtype=torch.bool)
    one[10, 10] = True
    assert [float(v) for v in oracle.recover_focal_shift(points, one)] == [1.0, 0.0]


def test_infer_geometry_rules(reduced, reduced_forward):
    res = oracle.moge_infer(reduced, random_image(40, 64, seed=5), num_tokens=60)
    fwd = res['forward']
    assert torch.equal(fwd['points'], reduced_forward['points'])
    K, depth, mask, scale = res['intrinsics'], res['depth'], res['mask'], res['metric_scale']
    ar = 64 / 40
    assert float(K[1, 1] / K[0, 0]) == pytest.approx(ar, rel=1e-6)
    assert float(K[0, 0]) == pytest.approx(float(res['focal']) / 2 * math.sqrt(1 + ar ** 2) / ar, rel=1e-6)
    assert K[0, 2] == 0.5 and K[1, 2] == 0.5 and K[2, 2] == 1 and K[0, 1] == 0
    shifted = fwd['points'][..., 2] + res['shift']
    assert torch.equal(mask, (fwd['mask'] > 0.5) & (shifted > 0))
    assert 0 < int(mask.sum()) < mask.numel()
    assert torch.isinf(depth[~mask]).all() and torch.isinf(res['points'][~mask]).all()
    assert torch.allclose(depth[mask], (shifted * scale)[mask], rtol=1e-6)
    u = (torch.arange(64) + 0.5) / 64
    v = (torch.arange(40) + 0.5) / 40
    X = (u[None, :] - 0.5) / K[0, 0] * depth
    Y = (v[:, None] - 0.5) / K[1, 1] * depth
    assert torch.allclose(res['points'][mask], torch.stack([X, Y, depth], -1)[mask], rtol=1e-5, atol=1e-6)


def test_infer_with_known_field_of_view_solves_only_the_shift(reduced_forward):
    fov = 70.0
    res = oracle.infer_geometry(reduced_forward, fov_x=fov)
    assert float(res['intrinsics'][0, 0]) * 2 * math.tan(math.radians(fov) / 2) == pytest.approx(1, rel=1e-6)
    f_px = 64 / (2 * math.tan(math.radians(fov) / 2))
    assert oracle.focal_from_pixels(f_px, 40, 64) == pytest.approx(float(res['focal']), rel=1e-6)
    by_focal = oracle.infer_geometry(reduced_forward, focal=float(res['focal']))
    assert torch.equal(by_focal['shift'], res['shift'])
    free = oracle.infer_geometry(reduced_forward)
    assert float(free['shift']) != float(res['shift'])


def test_full_size_random_weights_give_a_sensible_scene(full_moge):
    res = oracle.moge_infer(full_moge, random_image(28, 42, seed=7), num_tokens=40)
    fwd = res['forward']
    assert fwd['token_grid'] == (5, 7)
    assert float(fwd['features'].std()) < 10 and all(float(x.std()) < 10 for x in fwd['neck'])
    assert 0.1 < float(res['mask'].float().mean()) < 0.9
    depth = res['depth'][res['mask']]
    assert float(depth.min()) > 0 and float(depth.max() / depth.min()) > 1.5
    assert 0.2 < float(res['focal']) < 5 and 0.3 < float(res['metric_scale']) < 5


# ----------------------------------------------------------------------------- spec 6

def test_point_cloud_steps():
    moge_depth = torch.tensor([[1.0, float('inf')], [3.0, 2.0]])
    mask = torch.tensor([[True, False], [True, True]])
    filled = oracle.fill_masked_max(moge_depth, mask)
    assert filled[0, 1] == 3.0
    with pytest.raises(ValueError):
        oracle.fill_masked_max(moge_depth, torch.zeros(2, 2, dtype=torch.bool))
    d = torch.tensor([[0.1, 0.9], [0.5, 0.3]])
    metric = oracle.log_affine_metric(d, filled, mask, a=2.0, b=0.1)
    assert torch.allclose(metric, torch.clamp(torch.exp(2 * d + 0.1) - 1, 1e-3, 3.0))
    flat = oracle.log_affine_metric(d, filled, mask, a=-1.0, b=0.0)
    y = torch.log(filled[mask] + 1)
    assert torch.allclose(flat, torch.clamp(torch.exp(d * y.mean() / d[mask].mean()) - 1, 1e-3, 3.0))
    x = np.array([0.0, 1.0, 2.0, 3.0])
    assert oracle.least_squares_line(x, 0.5 * x + 2) == pytest.approx((0.5, 2.0))
    K = torch.tensor([[0.6, 0, 0.5], [0, 0.9, 0.5], [0, 0, 1]])
    Kp = oracle.intrinsics_to_pixels(K, 40, 64)
    assert torch.allclose(Kp, torch.tensor([[38.4, 0, 32], [0, 36, 20], [0, 0, 1]]))
    depth = torch.full((40, 64), 2.0)
    keep = torch.zeros(40, 64, dtype=torch.bool)
    keep[0, 0] = keep[20, 32] = True
    points, colours = oracle.depth2pcd(depth, Kp, keep, np.full((40, 64, 3), 255, np.uint8))
    assert torch.allclose(points, torch.tensor([[-32 / 38.4 * 2, -20 / 36 * 2, 2], [0, 0, 2]]))
    assert colours.tolist() == [[1.0, 1.0, 1.0]] * 2
