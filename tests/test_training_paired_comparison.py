"""Paired per-frame comparison of two evaluated models (ppd-train compare)."""
import json

import numpy as np
import pytest

from ppd_ros.training.cli import main
from ppd_ros.training.paired_comparison import compare_models, paired_difference


def frames(values, start=1_000_000, key='abs_rel'):
    return [{'seed': start + i, key: v} for i, v in enumerate(values)]


def test_constant_offset_gives_that_offset_with_a_zero_width_interval():
    a = np.linspace(0.1, 0.3, 40)
    d = paired_difference(frames(a), frames(a + 0.05), 'abs_rel')
    assert d.mean == pytest.approx(-0.05) and d.ci_low == pytest.approx(-0.05)
    assert d.ci_high == pytest.approx(-0.05) and d.share_lower == 1.0 and d.n_frames == 40


def test_pairing_removes_the_between_frame_spread():
    rng = np.random.default_rng(1)
    scene = rng.uniform(0.05, 0.6, 200)            # frames differ a lot from one another
    a = scene + rng.normal(0, 0.005, 200)
    b = scene + 0.01 + rng.normal(0, 0.005, 200)   # B is a little worse on nearly every frame
    d = paired_difference(frames(a), frames(b), 'abs_rel')
    assert d.ci_low < d.mean < d.ci_high < 0
    assert d.mean == pytest.approx(np.mean(a - b))
    assert d.share_lower > 0.8


def test_only_shared_finite_frames_are_paired():
    a = frames([0.1, 0.2, float('nan'), 0.4])
    b = frames([0.3, 0.1, 0.2], start=1_000_001)    # seeds 1..3; seed 2 is NaN in A
    d = paired_difference(a, b, 'abs_rel')
    assert d.n_frames == 2 and d.mean == pytest.approx(((0.2 - 0.3) + (0.4 - 0.2)) / 2)
    with pytest.raises(ValueError, match='finite'):
        paired_difference(frames([float('nan')]), frames([0.1]), 'abs_rel')


def test_same_seed_same_interval():
    rng = np.random.default_rng(2)
    a, b = frames(rng.random(50)), frames(rng.random(50))
    assert paired_difference(a, b, 'abs_rel', seed=3) == paired_difference(a, b, 'abs_rel', seed=3)


def test_compare_cli_prints_a_table_per_metric(tmp_path, capsys):
    keys = ('abs_rel', 'd1', 'edge_chamfer_m', 'flying_pixel_ratio')
    def model(offset):
        return {'frames': [{'seed': 1_000_000 + i, **{k: 0.1 * i + offset for k in keys}}
                           for i in range(10)]}
    report = {'models': {'sp': model(0.0), 'stage1': model(0.02)}}
    path = tmp_path / 'eval.json'
    path.write_text(json.dumps(report))
    assert main(['compare', str(path), 'sp', 'stage1', '--boot', '200']) == 0
    table = capsys.readouterr().out
    for key in keys:
        assert f'| {key} | -0.0200 |' in table
    assert [d.share_lower for d in compare_models(report, 'sp', 'stage1')] == [1.0] * 4
    assert main(['compare', str(path), 'sp', 'vanilla']) == 2
    assert "'vanilla' is not in the report" in capsys.readouterr().err
    assert main(['compare', str(tmp_path / 'missing.json'), 'sp', 'stage1']) == 2
    assert 'no report at' in capsys.readouterr().err
