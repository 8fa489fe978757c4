"""ppd-eval offline: outputs, output bag read back with rosbags, resume after a real kill,
corrupt frames, and the clear failures (missing topic / checkpoint)."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from eval_helpers import (DEPTH_TOPIC, HEIGHT, IMAGE_TOPIC, N_FRAMES, WIDTH, bag_stamps,
                          eval_args, make_tiny_checkpoint, read_csv, read_json,
                          write_bag_with_corrupt_frames)
from ppd_ros.bag import BagReader, write_synthetic_bag
from ppd_ros.evaluation.cli import main
from ppd_ros.evaluation.frame_selection import FrameSelection, picture_indices

#: Columns that hold measured time, which legitimately differs between two runs.
TIMING_COLUMNS = ('inference_s',)
#: Summary sections that describe one invocation (timing, what it computed) or its input bag.
PER_RUN_SECTIONS = ('run', 'inference', 'input')


def output_depths(out) -> list[np.ndarray]:
    with BagReader(out / 'depth_bag') as reader:
        return [m.data for m in reader.messages(['/ppd/depth/image'])]


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp('model') / 'tiny.safetensors')


@pytest.fixture(scope='module')
def bags(tmp_path_factory):
    root = tmp_path_factory.mktemp('bags')
    return {storage: write_synthetic_bag(root / storage, N_FRAMES, WIDTH, HEIGHT, seed=3,
                                         storage=storage)
            for storage in ('sqlite3', 'mcap')}


@pytest.fixture(scope='module')
def uninterrupted(bags, checkpoint, tmp_path_factory):
    """A complete run on the sqlite3 bag, in one go."""
    out = tmp_path_factory.mktemp('uninterrupted')
    assert main(eval_args(bags['sqlite3'].path, out, checkpoint)) == 0
    return out


@pytest.fixture(scope='module')
def resumed(bags, checkpoint, tmp_path_factory):
    """A run on the mcap bag killed (SIGTERM) once >= 10 frames are done, then run again."""
    out = tmp_path_factory.mktemp('resumed')
    args = eval_args(bags['mcap'].path, out, checkpoint)
    log = out.parent / 'interrupted_run.log'
    with open(log, 'w') as handle:
        proc = subprocess.Popen([sys.executable, '-m', 'ppd_ros.evaluation.cli', *args],
                                stdout=handle, stderr=subprocess.STDOUT)
    csv_path, deadline = out / 'frames.csv', time.monotonic() + 120
    while not (csv_path.exists() and len(csv_path.read_text().splitlines()) - 1 >= 10):
        assert proc.poll() is None, f'run ended before it could be interrupted:\n{log.read_text()}'
        assert time.monotonic() < deadline, 'no 10 frames within 120 s'
        time.sleep(0.05)
    proc.terminate()
    proc.wait(30)
    stored = sorted((out / 'frames').glob('*.npz'))
    before = {path.name: path.stat().st_mtime_ns for path in stored}
    assert 10 <= len(before) < N_FRAMES, 'the kill must leave a partial run'
    assert main(args) == 0
    return out, before


def test_offline_run_writes_csv_summary_pictures_and_plot(uninterrupted, bags):
    rows = read_csv(uninterrupted / 'frames.csv')
    assert [int(r['index']) for r in rows] == list(range(N_FRAMES))
    assert [int(r['stamp_ns']) for r in rows] == list(bags['sqlite3'].stamps_ns)
    for key in ('ransac_log_abs_rel', 'ransac_log_d05', 'ransac_log_d1', 'ransac_log_d2',
                'ransac_log_d3', 'lsq_abs_rel', 'lsq_d1', 'edge_chamfer_m',
                'flying_pixel_ratio', 'inference_s'):
        assert all(np.isfinite(float(r[key])) for r in rows), key
    assert all(0.0 <= float(r['ransac_log_d1']) <= 1.0 for r in rows)

    summary = read_json(uninterrupted / 'summary.json')
    assert summary['counts'] == {'selected': N_FRAMES, 'evaluated': N_FRAMES,
                                 'with_gt': N_FRAMES, 'without_gt': 0, 'corrupt': 0,
                                 'corrupt_frames': []}
    mean_abs_rel = np.mean([float(r['ransac_log_abs_rel']) for r in rows])
    assert summary['metrics']['mean']['ransac_log_abs_rel'] == pytest.approx(mean_abs_rel)
    assert summary['model']['name'] == 'tiny' and summary['model']['steps'] == 4
    assert summary['run']['frames_processed'] == N_FRAMES
    assert summary['inference']['fps'] > 0
    assert summary['sparsification'] is None       # one noise draw: no confidence map

    pictures = summary['outputs']['pictures']
    assert pictures == [f'pictures/frame_{i:06d}.png' for i in (0, 6, 13, 19)]
    for name in pictures + [summary['outputs']['plot']]:
        image = cv2.imread(str(uninterrupted / name))
        assert image is not None and image.shape[1] > 4 * WIDTH and image.std() > 20, name
        assert (uninterrupted / name).stat().st_size > 20_000, name


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_output_bag_has_every_input_stamp(storage, bags, uninterrupted, resumed):
    out = uninterrupted if storage == 'sqlite3' else resumed[0]
    bag_dir = out / 'depth_bag'
    suffix = {'sqlite3': '.db3', 'mcap': '.mcap'}[storage]
    assert any(p.suffix == suffix for p in bag_dir.iterdir())
    stamps = bag_stamps(bag_dir)
    expected = list(bags[storage].stamps_ns)
    assert stamps['/ppd/depth/image'] == expected
    assert stamps['/ppd/depth/camera_info'] == expected
    assert stamps['/ppd/points'] == expected  # metric: GT was given


def test_output_bag_points_use_the_node_cloud_layout(uninterrupted):
    from rosbags.rosbag2 import Reader

    from ppd_ros.bag.typestore import typestore
    from ppd_ros.geometry.pointcloud_layout import XYZRGB_LAYOUT
    with Reader(uninterrupted / 'depth_bag') as reader:
        conn = next(c for c in reader.connections if c.topic == '/ppd/points')
        _, _, raw = next(reader.messages([conn]))
    cloud = typestore().deserialize_cdr(raw, conn.msgtype)
    assert cloud.point_step == XYZRGB_LAYOUT.point_step == 32 and not cloud.is_dense
    assert [(f.name, f.offset, f.datatype) for f in cloud.fields] == \
        [f[:3] for f in XYZRGB_LAYOUT.fields]
    assert (cloud.height, cloud.width) == (HEIGHT, WIDTH)


def test_plot_titles_name_the_model_and_the_images():
    from ppd_ros.evaluation.report_figures import plot_title
    title = plot_title('ppd-eval offline', 'tiny_ppd', 4, '/camera/image_raw', Path('out/bag'))
    assert title == 'ppd-eval offline: tiny_ppd, 4 steps, on /camera/image_raw of out/bag'


def test_resume_skips_finished_frames(resumed):
    out, before = resumed
    summary = read_json(out / 'summary.json')
    assert summary['run']['frames_reused'] == len(before)
    assert summary['run']['frames_processed'] == N_FRAMES - len(before)
    for name, mtime in before.items():
        assert (out / 'frames' / name).stat().st_mtime_ns == mtime, f'{name} was recomputed'
    assert len(list((out / 'frames').glob('*.npz'))) == N_FRAMES


def test_resumed_run_equals_uninterrupted_run(uninterrupted, resumed):
    """Same synthetic content in both storages, seeded model: identical results."""
    out = resumed[0]
    rows_a, rows_b = read_csv(uninterrupted / 'frames.csv'), read_csv(out / 'frames.csv')
    assert len(rows_b) == N_FRAMES
    for a, b in zip(rows_a, rows_b):
        assert {k: v for k, v in a.items() if k not in TIMING_COLUMNS} == \
               {k: v for k, v in b.items() if k not in TIMING_COLUMNS}
    summary_a = read_json(uninterrupted / 'summary.json')
    summary_b = read_json(out / 'summary.json')
    for section in set(summary_a) - set(PER_RUN_SECTIONS) - {'outputs'}:
        assert summary_a[section] == summary_b[section], section
    outputs_a, outputs_b = summary_a['outputs'], summary_b['outputs']
    assert outputs_a.pop('bag_storage') == 'sqlite3' and outputs_b.pop('bag_storage') == 'mcap'
    assert outputs_a == outputs_b
    depth_a, depth_b = output_depths(uninterrupted), output_depths(out)
    assert len(depth_a) == len(depth_b) == N_FRAMES
    for a, b in zip(depth_a, depth_b):
        np.testing.assert_array_equal(a, b)


def test_rerun_with_other_model_settings_refuses_to_mix_results(uninterrupted, bags,
                                                                checkpoint, capsys):
    args = eval_args(bags['sqlite3'].path, uninterrupted, checkpoint, '--steps', '2')
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and '--steps was 4, now 2' in err and '--fresh' in err


def test_corrupt_frames_are_skipped_and_counted(checkpoint, tmp_path, capsys):
    stamps = write_bag_with_corrupt_frames(tmp_path / 'bag')
    out = tmp_path / 'out'
    assert main(eval_args(tmp_path / 'bag', out, checkpoint, '--pictures', 'none')) == 0
    summary = read_json(out / 'summary.json')
    assert summary['counts']['evaluated'] == 2 and summary['counts']['corrupt'] == 2
    reasons = {f['index']: f['reason'] for f in summary['counts']['corrupt_frames']}
    assert set(reasons) == {1, 2}
    assert 'payload' in reasons[1] and 'deserialise' in reasons[2]
    assert [int(r['index']) for r in read_csv(out / 'frames.csv')] == [0, 3]
    assert bag_stamps(out / 'depth_bag')['/ppd/depth/image'] == [stamps[0], stamps[3]]
    assert 'frame 1 skipped' in capsys.readouterr().err


def test_missing_topic_lists_available_topics(bags, checkpoint, tmp_path, capsys):
    args = eval_args(bags['sqlite3'].path, tmp_path, checkpoint)
    args[args.index(IMAGE_TOPIC)] = '/no/such/image'
    assert main(args) == 2
    err = capsys.readouterr().err
    assert '/no/such/image' in err and 'available topics' in err
    assert IMAGE_TOPIC in err and DEPTH_TOPIC in err


def test_missing_checkpoint_is_one_clear_message(bags, tmp_path):
    missing = tmp_path / 'nowhere' / 'ppd.safetensors'
    args = eval_args(bags['sqlite3'].path, tmp_path / 'out', missing)
    proc = subprocess.run([sys.executable, '-m', 'ppd_ros.evaluation.cli', *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert str(missing) in proc.stderr and 'ppd-fetch' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / 'out' / 'frames').exists()


def test_offline_code_path_never_imports_rclpy():
    code = ('import sys\n'
            'from ppd_ros.evaluation import cli, offline\n'
            'cli.build_parser()\n'
            'ros = ("rclpy", "rcl_interfaces")\n'
            'bad = sorted(m for m in sys.modules if m.split(".")[0] in ros)\n'
            'assert not bad, bad\n')
    subprocess.run([sys.executable, '-c', code], check=True, timeout=60)


def test_model_option_defaults_match_the_node_parameters():
    from ppd_ros.evaluation.model_options import DEFAULTS
    from ppd_ros.node.node_parameters import PARAMETERS
    node_defaults = {spec.name: spec.default for spec in PARAMETERS}
    assert {name: node_defaults[name] for name in DEFAULTS} == DEFAULTS


def test_frame_selection_and_picture_choice():
    selected = FrameSelection(start=2, end=15, stride=3).indices(20)
    assert selected == [2, 5, 8, 11, 14]
    assert FrameSelection(start=5).indices(3) == []
    assert picture_indices('4', list(range(20))) == [0, 6, 13, 19]
    assert picture_indices('3', selected) == [2, 8, 14]
    assert picture_indices('5,8,9', selected) == [5, 8]
    assert picture_indices('none', selected) == []
    with pytest.raises(ValueError):
        FrameSelection(stride=0)


def test_flicker_from_camera_poses_and_temporal_smoothing(tmp_path, capsys):
    """The shipped tiny model on a held-out walk: smoothing (node defaults) against none."""
    from ppd_ros.pipeline.package_paths import resolve_package_path
    checkpoint = resolve_package_path('models/tiny_ppd.safetensors')
    bag = write_synthetic_bag(tmp_path / 'walk', 6, WIDTH, HEIGHT, seed=1_000_003,
                              storage='mcap', depth_topic=DEPTH_TOPIC,
                              pose_topic='/camera/pose').path
    runs = {}
    for name, extra in (('default', ()), ('still', ('--temporal-smoothing', '0')),
                        ('no_poses', ('--pose-topic', 'none'))):
        assert main(eval_args(bag, tmp_path / name, checkpoint, '--pictures', 'none',
                              *extra)) == 0
        runs[name] = read_csv(tmp_path / name / 'frames.csv')
    printed = capsys.readouterr().out
    flicker = [float(r['flicker']) for r in runs['default']]
    assert np.isnan(flicker[0]) and all(np.isfinite(flicker[1:]))   # needs a previous frame
    assert all(int(r['flicker_points']) > 0.5 * WIDTH * HEIGHT for r in runs['default'][1:])
    assert all(np.isnan(float(r['flicker'])) for r in runs['no_poses'])
    summary = read_json(tmp_path / 'default' / 'summary.json')
    assert summary['metrics']['mean']['flicker'] == pytest.approx(np.mean(flicker[1:]))
    assert summary['input']['pose_topic'] == '/camera/pose' and summary['input']['poses'] == 6
    assert 'flicker' in printed
    # smoothing (the default) changes every frame but the first, and steadies the depth
    depths = {name: output_depths(tmp_path / name) for name in ('default', 'still')}
    np.testing.assert_array_equal(depths['default'][0], depths['still'][0])
    assert not any(np.array_equal(a, b) for a, b in zip(depths['default'][1:],
                                                        depths['still'][1:]))
    still = np.mean([float(r['flicker']) for r in runs['still'][1:]])
    assert np.mean(flicker[1:]) < still


def test_samples_are_scored_as_a_confidence_map(bags, checkpoint, tmp_path, capsys):
    out = tmp_path / 'ensemble'
    assert main(eval_args(bags['sqlite3'].path, out, checkpoint, '--samples', '3',
                          '--end', '3', '--pictures', 'none')) == 0
    rows = read_csv(out / 'frames.csv')
    for key in ('confidence_spearman', 'confidence_ause', 'confidence_ause_random'):
        assert all(np.isfinite(float(r[key])) for r in rows), key
    assert all(-1 <= float(r['confidence_spearman']) <= 1 for r in rows)
    summary = read_json(out / 'summary.json')
    curves = summary['sparsification']
    assert curves['frames'] == 3 and len(curves['fractions']) == len(curves['oracle']) == 50
    assert curves['by_confidence'][0] == pytest.approx(curves['random'])
    assert all(o <= c + 1e-12 for o, c in zip(curves['oracle'], curves['by_confidence']))
    assert summary['model']['samples'] == 3
    image = cv2.imread(str(out / summary['outputs']['sparsification_plot']))
    assert image is not None and image.std() > 20
    assert 'confidence: Spearman' in capsys.readouterr().out
