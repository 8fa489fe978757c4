"""ReferencePairing: the colour frame gets the depth reference nearest in stamp, within max_dt."""
import threading
import time

import pytest

from ppd_ros.pipeline.reference_pairing import LIVE_WINDOW_S, ReferencePairing

MS = 1_000_000  # nanoseconds
T0 = 1_700_000_000 * 1_000_000_000


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def filled(stamps_ms, capacity=30, clock=None):
    pairing = ReferencePairing(capacity, name='/cam/depth_reference', clock=clock or FakeClock())
    for ms in stamps_ms:
        pairing.add(T0 + ms * MS, f'ref@{ms}')
    return pairing


def test_nearest_reference_within_tolerance_is_paired():
    pairing = filled([0, 33, 66, 100])
    match = pairing.match(T0 + 40 * MS, max_dt_s=0.02)
    assert match.reference == 'ref@33' and match.dt_s == pytest.approx(-0.007)
    assert match.problem == ''
    assert pairing.match(T0 + 60 * MS, 0.02).reference == 'ref@66'  # newer is nearer
    assert pairing.match(T0 + 100 * MS, 0.0).reference == 'ref@100'  # exact stamp, zero tolerance
    assert pairing.status().last_dt_s == 0.0


def test_no_reference_outside_tolerance_says_why():
    pairing = filled([0, 100])
    match = pairing.match(T0 + 50 * MS, max_dt_s=0.02)
    assert match.reference is None and match.dt_s == pytest.approx(-0.05)
    assert 'no /cam/depth_reference within 0.02 s of the image stamp' in match.problem
    assert 'nearest is 0.050 s older' in match.problem
    late = pairing.match(T0 + 500 * MS, max_dt_s=0.02)
    assert late.reference is None and 'nearest is 0.400 s older' in late.problem


def test_nothing_received_yet():
    match = ReferencePairing(name='depth_reference', clock=FakeClock()).match(T0, 0.02)
    assert match.reference is None and match.problem == 'no depth_reference received yet'


def test_ring_buffer_keeps_the_newest_references_in_stamp_order():
    pairing = filled([0, 10, 20, 30, 25], capacity=3)  # 25 arrives late: sorted in
    assert pairing.match(T0 + 0 * MS, 0.005).reference is None  # evicted
    assert pairing.match(T0 + 24 * MS, 0.002).reference == 'ref@25'
    assert pairing.status().received == 5


def test_time_going_back_clears_the_buffer():
    pairing = filled([5000, 5033])
    pairing.add(T0, 'after loop')
    assert pairing.match(T0 + 5033 * MS, 0.02).reference is None
    assert pairing.match(T0, 0.02).reference == 'after loop'


def test_match_waits_for_a_reference_still_on_its_way():
    pairing = ReferencePairing(name='depth_reference')
    pairing.add(T0, 'previous')  # the stream is live
    later = threading.Timer(0.05, pairing.add, (T0 + 100 * MS, 'late'))
    later.start()
    start = time.monotonic()
    match = pairing.match(T0 + 100 * MS, 0.02, max_wait_s=2.0)
    assert match.reference == 'late' and time.monotonic() - start < 1.0
    later.join()


def test_match_does_not_wait_when_no_match_can_come():
    clock = FakeClock()
    pairing = filled([0, 100], clock=clock)
    start = time.monotonic()
    # a newer reference than stamp + max_dt is already there: the gap is not filled later
    assert pairing.match(T0 + 50 * MS, 0.02, max_wait_s=5.0).reference is None
    # the stream is silent: waiting is pointless
    clock.now += LIVE_WINDOW_S + 1.0
    assert pairing.match(T0 + 500 * MS, 0.02, max_wait_s=5.0).reference is None
    assert time.monotonic() - start < 0.5
    assert 'last one arrived 2.0 s ago' in pairing.match(T0 + 500 * MS, 0.02).problem
