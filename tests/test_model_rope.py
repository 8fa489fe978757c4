"""2D RoPE layout (rows first, cos/sin concatenated, rotate-half) and relative positions."""
import math

import torch

from ppd_ros.model.rope import apply_rope, grid_positions, rope_tables


def rope_direct(u, y, x, base=100.0):
    """Per-element spec formula for one head vector u (d,) at grid position (y, x)."""
    d = u.shape[-1]
    half, quarter = d // 2, d // 4
    out = torch.empty_like(u)
    for j in range(d):
        axis_pos = y if j < half else x          # first half: row, second half: column
        jj = j % half
        theta = axis_pos * 100.0 ** (-2 * (jj % quarter) / half)
        rotated = -u[j + quarter] if jj < quarter else u[j - quarter]
        out[j] = u[j] * math.cos(theta) + rotated * math.sin(theta)
    return out


def test_positions_are_row_major_integer_grid():
    pos = grid_positions(2, 3)
    assert pos.tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]


def test_tables_concatenate_theta_not_interleave():
    tables = rope_tables(3, 4, head_dim=64, base=100.0)
    token = 2 * 4 + 3  # (y=2, x=3)
    cos = tables.cos[token]
    inv = 100.0 ** (-torch.arange(16, dtype=torch.float64) * 2 / 32)
    expected_y = torch.cos(2 * inv).float()
    expected_x = torch.cos(3 * inv).float()
    torch.testing.assert_close(cos[:16], expected_y)
    torch.testing.assert_close(cos[16:32], expected_y)   # [theta_0..theta_15, theta_0..theta_15]
    torch.testing.assert_close(cos[32:48], expected_x)
    torch.testing.assert_close(cos[48:], expected_x)


def test_apply_rope_matches_per_element_formula():
    g = torch.Generator().manual_seed(0)
    gh, gw = 3, 5
    u = torch.randn(1, 2, gh * gw, 64, generator=g)
    out = apply_rope(u, rope_tables(gh, gw, 64, 100.0))
    for token, (y, x) in enumerate(grid_positions(gh, gw).tolist()):
        for head in range(2):
            torch.testing.assert_close(out[0, head, token], rope_direct(u[0, head, token], y, x),
                                       atol=1e-5, rtol=1e-5)


def test_row_offset_changes_only_the_first_half():
    u = torch.randn(1, 1, 1, 64).expand(1, 1, 4, 64).contiguous()
    out = apply_rope(u, rope_tables(2, 2, 64, 100.0))  # tokens (0,0), (0,1), (1,0), (1,1)
    torch.testing.assert_close(out[0, 0, 2, 32:], out[0, 0, 0, 32:])  # same column
    assert not torch.allclose(out[0, 0, 2, :32], out[0, 0, 0, :32])   # other row


def test_scores_depend_only_on_relative_position():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(64, generator=g)
    k = torch.randn(64, generator=g)
    gh = gw = 9
    tables = rope_tables(gh, gw, 64, 100.0)
    rq = apply_rope(q.expand(1, 1, gh * gw, 64), tables)[0, 0]
    rk = apply_rope(k.expand(1, 1, gh * gw, 64), tables)[0, 0]

    def score(p1, p2):
        return float(rq[p1[0] * gw + p1[1]] @ rk[p2[0] * gw + p2[1]])

    assert math.isclose(score((1, 2), (3, 1)), score((5, 6), (7, 5)), rel_tol=1e-4, abs_tol=1e-4)
    assert math.isclose(score((0, 0), (2, 3)), score((4, 4), (6, 7)), rel_tol=1e-4, abs_tol=1e-4)
    assert not math.isclose(score((1, 2), (3, 1)), score((1, 2), (1, 3)), abs_tol=1e-3)
