"""depth_node's statistics and metric-scale state -> diagnostic_msgs/DiagnosticStatus."""
from __future__ import annotations

import math

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from ppd_ros.node.frame_statistics import StatisticsSnapshot
from ppd_ros.node.input_gaps import InputGapStatus
from ppd_ros.pipeline.metric_scaler import ScaleStatus
from ppd_ros.pipeline.reference_pairing import ReferenceStreamStatus
from ppd_ros.pipeline.temporal_smoothing import TemporalStatus

#: No input frame for this long makes the status STALE.
STALE_AFTER_S = 5.0


def _number(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ''
    return f'{value:.{digits}g}'


def depth_node_status(name: str, hardware_id: str, stats: StatisticsSnapshot, idle: bool,
                      depth_mode: str = 'relative', scale: ScaleStatus | None = None,
                      reference: ReferenceStreamStatus | None = None,
                      gaps: InputGapStatus | None = None,
                      intrinsics: str = '',
                      temporal: TemporalStatus | None = None,
                      published: dict[str, int] | None = None) -> DiagnosticStatus:
    """Level: STALE without recent input; ERROR when the last frame failed or (metric mode)
    got no metric scale; WARN when it was published without something (e.g. no usable
    CameraInfo) or with a held scale; else OK. ``intrinsics`` says where the published
    intrinsics come from when that is not simply the CameraInfo (depth.mode 'moge')."""
    if stats.last_frame_age_s is None or stats.last_frame_age_s > STALE_AFTER_S:
        level, message = DiagnosticStatus.STALE, 'no input images'
    elif stats.last_problem is not None and stats.last_failed:
        level, message = DiagnosticStatus.ERROR, stats.last_problem
    elif idle:
        level, message = DiagnosticStatus.OK, 'idle: no subscribers (lazy)'
    elif scale is not None and not scale.available:
        level, message = DiagnosticStatus.ERROR, f'no metric output: {scale.reason}'
    elif stats.last_problem is not None:
        level, message = DiagnosticStatus.WARN, stats.last_problem
    elif scale is not None and scale.held_for > 0:
        level, message = DiagnosticStatus.WARN, scale.reason
    else:
        level, message = DiagnosticStatus.OK, f'running at {stats.rate_hz:.1f} Hz'
    if intrinsics and level == DiagnosticStatus.OK:
        message += f'; intrinsics: {intrinsics}'
    values = {
        'depth mode': depth_mode,
        'rate (Hz)': f'{stats.rate_hz:.2f}',
        'frames received': str(stats.received),
        'frames processed': str(stats.processed),
        'frames dropped': str(stats.dropped),
        'frames skipped (no subscribers)': str(stats.skipped_idle),
        'frames failed': str(stats.failed),
        'last frame age (s)': _number(stats.last_frame_age_s),
        'latency (s)': _number(stats.last_latency_s),
    }
    if intrinsics:
        values['intrinsics'] = intrinsics
    if gaps is not None:
        values.update({
            'input frames missing (estimated from stamp gaps)': str(gaps.missing),
            'input period from stamps (s)': _number(gaps.period_s),
            'input stamps steady': str(gaps.steady).lower(),
            'input stamp restarts': str(gaps.restarts),
        })
    if scale is not None:
        values.update(_scale_values(scale))
    if reference is not None:
        values.update({
            'references received': str(reference.received),
            'last reference age (s)': _number(reference.last_arrival_age_s),
            'reference stamp offset (s)': _number(reference.last_dt_s),
        })
    if temporal is not None:
        values.update({
            'scene change score': _number(temporal.scene_score, 3),
            'scene changed': str(temporal.scene_changed).lower(),
            'smoothed pixels (share)': _number(temporal.blended_fraction, 3),
        })
    for topic, count in (published or {}).items():
        values[f'published on {topic}'] = str(count)
    for stage, seconds in stats.stage_seconds.items():
        values[f'{stage} (ms)'] = f'{seconds * 1e3:.2f}'
    return DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                            values=[KeyValue(key=k, value=v) for k, v in values.items()])


def _scale_values(scale: ScaleStatus) -> dict[str, str]:
    """Applied scale (log(1 + d) = a * pred + b) and the last frame's own fit."""
    fit = scale.fit
    return {
        'metric scale': scale.state,
        'scale reason': scale.reason,
        'scale a': _number(scale.a, 6),
        'scale b': _number(scale.b, 6),
        'scale held for (frames)': str(scale.held_for),
        'fit ok': '' if fit is None else str(fit.ok).lower(),
        'fit a': '' if fit is None else _number(fit.a, 6),
        'fit b': '' if fit is None else _number(fit.b, 6),
        'fit inlier ratio': '' if fit is None else _number(fit.inlier_ratio, 3),
        'fit residual (log)': '' if fit is None else _number(fit.residual, 3),
        'fit points': '' if fit is None else str(fit.n_points),
    }
