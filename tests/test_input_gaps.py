"""Frames lost before the node, estimated from the gaps between image stamps."""
from ppd_ros.node.input_gaps import InputGapEstimator

MS = 1_000_000


def test_missing_frames_are_estimated_from_stamp_gaps():
    gaps = InputGapEstimator()
    stamp = 1_000 * MS
    for i in range(60):
        if i not in (20, 21, 22, 40):  # 3 lost in a row, then 1
            gaps.add(stamp + round(i * 33.3 * MS) + (i % 3) * MS)  # 30 Hz with jitter
    status = gaps.status()
    assert status.missing == 4 and status.restarts == 0 and status.steady
    assert abs(status.period_s - 0.0333) < 0.002


def test_irregular_stamps_are_not_read_as_losses():
    """A publisher that stamps when it sends, in bursts: intervals of 1 ms and 65 ms."""
    gaps = InputGapEstimator()
    stamp = 0
    for i in range(200):
        stamp += (1 if i % 2 else 65) * MS
        gaps.add(stamp)
    status = gaps.status()
    assert status.missing == 0 and not status.steady


def test_restarts_are_not_counted_as_losses():
    gaps = InputGapEstimator()
    for i in range(10):
        gaps.add(i * 100 * MS)
    gaps.add(60_000 * MS)        # a pause of a minute: a restart, not 599 lost frames
    gaps.add(60_000 * MS)        # the same frame again
    gaps.add(500 * MS)           # time went back (bag loop)
    for i in range(1, 5):
        gaps.add(500 * MS + i * 100 * MS)
    status = gaps.status()
    assert status.missing == 0 and status.restarts == 2
    assert InputGapEstimator().status().period_s is None
