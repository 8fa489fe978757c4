"""The demo's reference rows: what the same frames give without the model, and with the model
but without the sensor's own depth.

For every frame the node answered, the demo runs the same model in this process (same
checkpoint, steps and seed) and ppd_ros.evaluation.fusion_comparison on the bag's colour
image, sensor depth and exact depth:
  fused_inpainting  the node's fusion with PPD replaced by plain inpainting of the sensor
  ppd_aligned       PPD alone aligned to the sensor (what depth.mode reference publishes)
(one fit per frame; the node itself also smooths the fit over time). The sensor and ppd_ros
fused rows of the demo are the live run's: the sensor as played, the node as published;
they are scored here too ('sensor', 'fused'), for the scores the live run does not give.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ppd_ros.bag.reader import BagReader
from ppd_ros.evaluation.fusion_comparison import (COMPARISON_COUNT_COLUMNS, comparison_depths,
                                                  score_comparison)
from ppd_ros.evaluation.summary import metric_means
from ppd_ros.geometry.camera_model import camera_from_info_fields

#: The rows computed here.
OFFLINE_ROWS = ('fused_inpainting', 'ppd_aligned')


@dataclass(eq=False)
class ReferenceRows:
    means: dict[str, float]                   #: '<row>_<score>' means over the frames
    frames: int                               #: frames scored
    shown: dict[str, np.ndarray] = field(default_factory=dict)  #: row -> depth of one frame
    shown_scores: dict[str, float] = field(default_factory=dict)  #: that frame's scores


def reference_rows(bag: Path, topics: dict[str, str], node_depths: dict[int, np.ndarray],
                   shown_stamp: int, predictor, steps: int, seed: int) -> ReferenceRows:
    """Score OFFLINE_ROWS, the sensor and the node's depths (``node_depths``: stamp -> metres)
    on the frames the node answered; ``topics`` names the bag's 'image', 'info', 'sensor'
    and 'gt' topics; keeps the depths of ``shown_stamp``."""
    wanted = set(node_depths)
    frames: dict[int, dict] = {}
    with BagReader(bag) as reader:
        for message in reader.messages(list(topics.values())):
            if message.stamp_ns in wanted:
                name = next(k for k, t in topics.items() if t == message.topic)
                frames.setdefault(message.stamp_ns, {})[name] = message.data
    rows, shown, shown_scores = [], {}, {}
    for stamp in sorted(frames):
        frame = frames[stamp]
        info = frame['info']
        camera = camera_from_info_fields(info.k, info.p, info.width, info.height)
        relative = predictor.predict(frame['image'], steps=steps, seed=seed).depth
        depths = comparison_depths(relative, frame['sensor'], frame['image'])
        depths['fused'] = node_depths[stamp]            # as the node published it
        rows.append(score_comparison(depths, frame['gt'], camera))
        if stamp == shown_stamp:
            shown, shown_scores = {row: depths[row] for row in OFFLINE_ROWS}, rows[-1]
    columns = [c for c in rows[0] if c not in COMPARISON_COUNT_COLUMNS] if rows else []
    return ReferenceRows(metric_means(rows, columns)['mean'], len(rows), shown, shown_scores)
