"""A 30 Hz camera into a slower model: the node drops frames instead of queueing them.

Over 20 s, the latency (receive time - image stamp) of the depth output must not grow, and
the dropped frames must show in /diagnostics.
"""
import statistics

import pytest

from ros_helpers import (NAMESPACE, NodeProcess, last_diagnostics, run_probe,
                         tiny_checkpoint)  # noqa: F401 (fixture)

DEPTH = f'{NAMESPACE}/depth/relative'
RATE_HZ, DURATION_S = 30.0, 20.0


@pytest.fixture(scope='module')
def session(tiny_checkpoint, tmp_path_factory):
    work = tmp_path_factory.mktemp('no_backlog')
    # 12 sampling steps of the tiny model take ~0.1 s per frame on one thread: well under 30 Hz
    with NodeProcess(work / 'node.log', params={'checkpoint': str(tiny_checkpoint),
                                                'num_threads': 1, 'steps': 12}) as node:
        node.wait_ready()
        result = run_probe({'rate_hz': RATE_HZ,
                            'phases': [{'kind': 'good', 'count': int(RATE_HZ * DURATION_S)}],
                            'record': [DEPTH, '/diagnostics'], 'settle_s': 1.5},
                           work, timeout=90)
    return result


def test_latency_stays_bounded(session):
    outputs = sorted(session['topics'][DEPTH], key=lambda m: m['recv'])
    assert len(outputs) >= 20, 'the node produced too few depth images'
    latencies = [(m['recv'] - m['stamp']) * 1e-9 for m in outputs]
    third = len(latencies) // 3
    first, last = statistics.median(latencies[:third]), statistics.median(latencies[-third:])
    print(f'outputs {len(outputs)}, median latency first third {first * 1e3:.0f} ms, '
          f'last third {last * 1e3:.0f} ms, max {max(latencies) * 1e3:.0f} ms')
    # A backlog would add ~(1 - output rate / 30 Hz) s of latency per second of input, i.e.
    # many seconds by the end; CPU load from other processes only adds a little jitter.
    assert last < first + 0.5
    assert max(latencies) < 2.0


def test_drops_reported_in_diagnostics(session):
    values = last_diagnostics(session)['values']
    received, processed = int(values['frames received']), int(values['frames processed'])
    dropped = int(values['frames dropped'])
    print(f'received {received}, processed {processed}, dropped {dropped}, '
          f'rate {values["rate (Hz)"]} Hz')
    assert dropped > 0.3 * received
    assert processed + dropped + int(values['frames failed']) <= received
    assert float(values['rate (Hz)']) < RATE_HZ
