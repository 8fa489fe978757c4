"""Metric alignment of relative PPD predictions for the robot (pure numpy, no rclpy).

reference_sampling: pairs prediction and reference pixels (any reference resolution);
log_affine_fit: robust fit of log(1 + d_ref) ~ a * pred + b; log_affine_apply: metric depth
from (a, b); temporal_filter: smoothing / outlier rejection / hold of (a, b) across frames;
range_scale: the 'range' mode (near/far metres for the prediction's 2nd/98th percentiles).
"""
from ppd_ros.alignment.log_affine_apply import apply_log_affine
from ppd_ros.alignment.log_affine_fit import LogAffineFit, fit_log_affine, fit_log_affine_samples
from ppd_ros.alignment.range_scale import RangeScale
from ppd_ros.alignment.reference_sampling import resample_reference_to, sample_reference_pairs
from ppd_ros.alignment.temporal_filter import FilterOutput, TemporalScaleFilter

__all__ = ['FilterOutput', 'LogAffineFit', 'RangeScale', 'TemporalScaleFilter',
           'apply_log_affine', 'fit_log_affine', 'fit_log_affine_samples',
           'resample_reference_to', 'sample_reference_pairs']
