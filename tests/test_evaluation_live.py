"""ppd-eval live: play a synthetic bag into a spawned depth_node (tiny model) and check the
latency / drop report, the recorded bag, and that its accuracy equals offline evaluation."""
from __future__ import annotations

import pytest

from eval_helpers import (HEIGHT, N_FRAMES, WIDTH, bag_stamps, eval_args, make_tiny_checkpoint,
                          read_csv, read_json)
from ppd_ros.bag import write_synthetic_bag
from ppd_ros.evaluation.cli import main
from ppd_ros.evaluation.frame_metrics import METRIC_COLUMNS

STRIDE = 2


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp('model') / 'tiny.safetensors')


@pytest.fixture(scope='module')
def bag(tmp_path_factory):
    return write_synthetic_bag(tmp_path_factory.mktemp('bag') / 'sqlite3', N_FRAMES, WIDTH,
                               HEIGHT, seed=3, storage='sqlite3')


def test_live_mode_reports_latency_drops_and_accuracy(bag, checkpoint, tmp_path, capsys):
    live_out, offline_out = tmp_path / 'live', tmp_path / 'offline'
    assert main(eval_args(bag.path, live_out, checkpoint, '--mode', 'live', '--launch-node',
                          '--rate', '5', '--stride', str(STRIDE))) == 0
    assert 'latency p50' in capsys.readouterr().out
    summary = read_json(live_out / 'live_summary.json')

    frames = summary['frames']
    assert frames['published'] == N_FRAMES // STRIDE
    assert frames['received'] >= 1
    assert frames['received'] + frames['dropped'] == frames['published']
    assert len(frames['dropped_indices']) == frames['dropped']
    latency = summary['latency']
    assert latency['count'] == frames['received']
    assert 0 < latency['p50_s'] <= latency['p95_s'] <= latency['max_s'] < 10
    assert summary['rates']['input_hz'] == pytest.approx(5.0, rel=0.2)
    assert summary['node']['launched'] and (live_out / 'live_node.log').exists()
    # the command records what the node ran: the checkpoint, not the ignored official files
    command = ' '.join(summary['node']['command'])
    assert f"checkpoint:='{checkpoint.resolve()}'" in command
    assert 'variant:=' not in command and 'dit_checkpoint:=' not in command

    rows = read_csv(live_out / 'live_frames.csv')
    received = [r for r in rows if r['received'] == '1']
    assert len(received) == frames['received']
    assert all(float(r['latency_s']) > 0 for r in received)
    stamps = bag_stamps(live_out / 'live_bag')
    assert stamps['/ppd_eval/depth/relative'] == [int(r['stamp_ns']) for r in received]
    assert (live_out / 'live_metrics.png').stat().st_size > 10_000

    # the node's depth, scored live, equals the offline evaluation of the same frames
    assert main(eval_args(bag.path, offline_out, checkpoint, '--stride', str(STRIDE),
                          '--pictures', 'none')) == 0
    offline = {r['index']: r for r in read_csv(offline_out / 'frames.csv')}
    for row in received:
        for key in METRIC_COLUMNS:
            assert float(row[key]) == pytest.approx(float(offline[row['index']][key]),
                                                    rel=1e-5, nan_ok=True), key


def test_live_mode_without_a_node_fails_clearly(bag, checkpoint, tmp_path, capsys):
    args = eval_args(bag.path, tmp_path, checkpoint, '--mode', 'live', '--node-timeout', '1',
                     '--node-namespace', '/nobody_here', '--end', '2')
    assert main(args) == 1
    assert 'no depth node connected' in capsys.readouterr().err
