"""The demo's summary: what it measured (ppd-eval's live summary, and the reference rows of
comparison_rows), as JSON and as a short table for the terminal."""
from __future__ import annotations

import math

#: Scores shown per depth source: (key in the live summary means, column title, format).
SCORES = (('coverage', 'coverage', '{:.1%}'), ('abs_rel', 'AbsRel', '{:.4f}'),
          ('d1', 'δ1', '{:.4f}'), ('flying_pixel_ratio', 'flying px', '{:.1%}'),
          ('edge_chamfer_m', 'edge Chamfer', '{:.1f} mm'),
          ('edge_chamfer_m_sensor_valid', 'Chamfer, sensor px', '{:.1f} mm'))
#: Scores that the live summary lacks: from the reference rows for every source.
SENSOR_VALID_SCORES = ('edge_chamfer_m_sensor_valid',)
#: Depth sources of the live run: (live summary column prefix, name in the demo summary,
#: row label).
SOURCES = (('reference', 'rgbd_sensor', 'RGB-D sensor depth (input)'),
           ('node', 'ppd_ros', 'ppd_ros fused (node output)'))
#: Their rows in the reference rows' means (comparison_rows scores them too).
SOURCE_ROWS = {'rgbd_sensor': 'sensor', 'ppd_ros': 'fused'}
#: Reference rows computed after the run (comparison_rows): (row, name, label).
REFERENCE_SOURCES = (('fused_inpainting', 'fused_inpainting',
                      'same fusion, inpainting instead of PPD'),
                     ('ppd_aligned', 'ppd_aligned', 'PPD alone, aligned to the sensor'))
ACCURACY_MEANING = ('means over the frames the node answered, metric depth scored against '
                    'the exact depth as published (no alignment). Rows: the RGB-D sensor as '
                    'played; ppd_ros fused: the node (depth.mode fusion); the same fusion with '
                    'PPD replaced by plain inpainting of the sensor (what fusion gives without '
                    'the model); PPD alone, aligned to the sensor (depth.mode reference). '
                    'coverage: share of pixels with depth; flying px: share of depth-edge '
                    'pixels off both surfaces; edge Chamfer: 3-D distance of edge points to '
                    'the true ones; Chamfer, sensor px: the same on the pixels where the '
                    'sensor has depth (the sensor\'s own edge Chamfer counts only those, a '
                    'depth that fills its holes also the edges inside them)')


def _finite(value):
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def accuracy_from_live(live: dict, reference_means: dict | None = None) -> dict:
    """{source name: {score: value or None}} from a live summary's metric means, and the
    reference rows' means ('<row>_<score>')."""
    mean, reference_means = live['metrics']['mean'], reference_means or {}
    accuracy = {}
    for prefix, name, _ in SOURCES:
        accuracy[name] = {key: _finite(mean.get(f'{prefix}_{key}')) for key, _, _ in SCORES}
        for key in SENSOR_VALID_SCORES:
            accuracy[name][key] = _finite(reference_means.get(f'{SOURCE_ROWS[name]}_{key}'))
    for row, name, _ in REFERENCE_SOURCES:
        accuracy[name] = {key: _finite(reference_means.get(f'{row}_{key}'))
                          for key, _, _ in SCORES}
    return accuracy


def latency_from_live(live: dict) -> dict:
    latency = live['latency']
    return {key: latency.get(key) for key in ('count', 'p50_s', 'p95_s', 'max_s', 'mean_s')}


def _cell(key: str, fmt: str, value) -> str:
    if value is None:
        return 'n/a'
    return fmt.format(value * 1e3 if key.startswith('edge_chamfer_m') else value)


def format_table(summary: dict) -> str:
    """Accuracy rows per depth source, then latency and frame counts."""
    sources = SOURCES + REFERENCE_SOURCES
    label_width = max(len(label) for _, _, label in sources)
    widths = [max(len(title), 9) for _, title, _ in SCORES]
    lines = [' ' * label_width + '  ' + '  '.join(
        title.rjust(w) for (_, title, _), w in zip(SCORES, widths))]
    for _, name, label in sources:
        values = summary['accuracy'][name]
        lines.append(label.ljust(label_width) + '  ' + '  '.join(
            _cell(key, fmt, values[key]).rjust(w) for (key, _, fmt), w in zip(SCORES, widths)))
    lat, frames = summary['latency'], summary['frames']

    def ms(value):
        return 'n/a' if value is None else f'{value * 1e3:.0f} ms'
    lines.append(f"latency (publish -> depth received) p50 {ms(lat['p50_s'])}, "
                 f"p95 {ms(lat['p95_s'])}; frames {frames['received']}/{frames['published']} "
                 f"answered, {frames['dropped']} dropped")
    return '\n'.join(lines)
