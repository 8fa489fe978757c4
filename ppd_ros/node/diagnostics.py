"""depth_node's statistics -> diagnostic_msgs/DiagnosticStatus."""
from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from ppd_ros.node.frame_statistics import StatisticsSnapshot

#: No input frame for this long makes the status STALE.
STALE_AFTER_S = 5.0


def depth_node_status(name: str, hardware_id: str, stats: StatisticsSnapshot,
                      idle: bool) -> DiagnosticStatus:
    """Level: STALE without recent input, ERROR when the last frame failed, WARN when it
    was published without something (e.g. no usable CameraInfo), else OK."""
    if stats.last_frame_age_s is None or stats.last_frame_age_s > STALE_AFTER_S:
        level, message = DiagnosticStatus.STALE, 'no input images'
    elif stats.last_problem is not None:
        level = DiagnosticStatus.ERROR if stats.last_failed else DiagnosticStatus.WARN
        message = stats.last_problem
    elif idle:
        level, message = DiagnosticStatus.OK, 'idle: no subscribers (lazy)'
    else:
        level, message = DiagnosticStatus.OK, f'running at {stats.rate_hz:.1f} Hz'
    values = {
        'rate (Hz)': f'{stats.rate_hz:.2f}',
        'frames received': str(stats.received),
        'frames processed': str(stats.processed),
        'frames dropped': str(stats.dropped),
        'frames skipped (no subscribers)': str(stats.skipped_idle),
        'frames failed': str(stats.failed),
        'last frame age (s)': '' if stats.last_frame_age_s is None
        else f'{stats.last_frame_age_s:.3f}',
        'latency (s)': '' if stats.last_latency_s is None else f'{stats.last_latency_s:.3f}',
    }
    for stage, seconds in stats.stage_seconds.items():
        values[f'{stage} (ms)'] = f'{seconds * 1e3:.2f}'
    return DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                            values=[KeyValue(key=k, value=v) for k, v in values.items()])
