"""PNG figures of an evaluation (matplotlib, Agg backend: no display needed).

side_by_side_picture: RGB | prediction | ground truth | relative error, with colour bars.
plot_sparsification: the mean sparsification curves of a confidence map (evaluation.uncertainty).
plot_over_time: stacked line plots of per-frame values against the frame stamps
(metric_panels: the accuracy panels of per-frame metric rows; metric_depth_panels: those of
metric depth scored without alignment). Every PNG is marked as ppd_ros's (is_ppd_ros_picture),
so that tools reading a folder of images can leave their own pictures out.
"""
from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DEPTH_CMAP = 'Spectral'   # near = red, as ppd_ros.geometry.colorize
ERROR_CMAP = 'inferno'
MAX_SHOWN_ERROR = 0.5     # |pred - gt| / gt shown saturated above this
PNG_SOFTWARE = 'ppd_ros'  # the PNG 'Software' text of every picture written here


def is_ppd_ros_picture(path: Path) -> bool:
    """The file is a PNG whose 'Software' text (a tEXt chunk before the image data) says it
    was written here."""
    wanted = b'Software\0' + PNG_SOFTWARE.encode()
    try:
        with open(path, 'rb') as handle:
            if handle.read(8) != b'\x89PNG\r\n\x1a\n':
                return False
            while True:
                head = handle.read(8)
                if len(head) < 8 or head[4:] in (b'IDAT', b'IEND'):
                    return False
                length = int.from_bytes(head[:4], 'big')
                body = handle.read(length)
                if head[4:] == b'tEXt' and body == wanted:
                    return True
                handle.seek(4, 1)  # CRC
    except OSError:
        return False


def _pyplot():
    import matplotlib
    matplotlib.use('Agg', force=True)
    import matplotlib.pyplot as plt
    return plt


def _finite_range(*arrays: np.ndarray) -> tuple[float, float]:
    values = np.concatenate([a[np.isfinite(a)].ravel() for a in arrays if a is not None])
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(values, [1, 99])
    return float(lo), float(hi if hi > lo else lo + 1e-6)


def _cmap(plt, name: str):
    return plt.get_cmap(name).with_extremes(bad=(0.5, 0.5, 0.5))  # invalid pixels: grey


def _save_image_figure(plt, fig, axes, title: str, path: Path) -> Path:
    """Image panels without ticks, the title above them, saved as a ppd_ros picture."""
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=150, metadata={'Software': PNG_SOFTWARE})
    plt.close(fig)
    return path


def side_by_side_picture(path: Path, rgb: np.ndarray, prediction: np.ndarray,
                         gt: np.ndarray | None, title: str, metric: bool) -> Path:
    """Write the picture; without GT only RGB | prediction. ``prediction`` is metres when
    ``metric`` (else relative depth, larger = farther)."""
    plt = _pyplot()
    panels = 4 if gt is not None else 2
    aspect = rgb.shape[1] / rgb.shape[0]
    fig, axes = plt.subplots(1, panels, figsize=(panels * 2.6 * aspect + 0.4, 3.2),
                             squeeze=False, layout='constrained')
    axes = axes[0]
    axes[0].imshow(rgb)
    axes[0].set_title('RGB input')
    depth_cmap = _cmap(plt, DEPTH_CMAP)
    if gt is not None:
        lo, hi = _finite_range(gt)
        gt_shown = np.where(np.isfinite(gt) & (gt > 0), gt, np.nan)
        image = axes[1].imshow(prediction, cmap=depth_cmap, vmin=lo, vmax=hi)
        axes[1].set_title('prediction (aligned)' if metric else 'prediction')
        fig.colorbar(image, ax=axes[1], orientation='horizontal', label='depth [m]')
        image = axes[2].imshow(gt_shown, cmap=depth_cmap, vmin=lo, vmax=hi)
        axes[2].set_title('ground truth')
        fig.colorbar(image, ax=axes[2], orientation='horizontal', label='depth [m]')
        error = np.abs(prediction - gt_shown) / gt_shown
        image = axes[3].imshow(error, cmap=_cmap(plt, ERROR_CMAP), vmin=0.0,
                               vmax=MAX_SHOWN_ERROR)
        axes[3].set_title('|pred - GT| / GT')
        fig.colorbar(image, ax=axes[3], orientation='horizontal', extend='max',
                     label='relative error (grey: no GT)')
    else:
        lo, hi = _finite_range(prediction)
        image = axes[1].imshow(prediction, cmap=depth_cmap, vmin=lo, vmax=hi)
        axes[1].set_title('prediction')
        fig.colorbar(image, ax=axes[1], orientation='horizontal',
                     label='depth [m]' if metric else 'relative depth (larger = farther)')
    return _save_image_figure(plt, fig, axes, title, path)


@dataclass
class Panel:
    ylabel: str
    series: dict[str, list[float]] = field(default_factory=dict)  # label -> one value per frame


def plot_title(tool: str, model: str, steps: int, image_topic: str, bag: Path) -> str:
    """The title of a per-frame plot: which model ran on which images."""
    return f'{tool}: {model}, {steps} steps, on {image_topic} of {bag}'


def plot_over_time(path: Path, times_s: list[float], panels: list[Panel], title: str) -> Path:
    """One row per panel sharing the x axis (seconds since the first frame)."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 1.9 * len(panels) + 0.6),
                             sharex=True, squeeze=False, layout='constrained')
    for ax, panel in zip(axes[:, 0], panels):
        for label, values in panel.series.items():
            values = [math.nan if v is None else float(v) for v in values]
            ax.plot(times_s, values, marker='.', markersize=4, linewidth=1, label=label)
        ax.set_ylabel(panel.ylabel, fontsize=8)
        ax.grid(True, alpha=0.3)
        if len(panel.series) > 1:
            ax.legend(fontsize=7, loc='best')
    axes[-1, 0].set_xlabel('time since first frame [s]')
    fig.suptitle('\n'.join(textwrap.wrap(title, 100)), fontsize=10)
    fig.savefig(path, dpi=110, metadata={'Software': PNG_SOFTWARE})
    plt.close(fig)
    return path


def metric_panels(rows: list[dict]) -> list[Panel]:
    """AbsRel, delta1, edge Chamfer and flying-pixel panels of per-frame metric rows, and
    flicker when some frame has it."""
    def column(key):
        return [r[key] for r in rows]
    panels = [
        Panel('AbsRel', {'RANSAC-log': column('ransac_log_abs_rel'), 'LSQ': column('lsq_abs_rel')}),
        Panel('δ1 (1.25)', {'RANSAC-log': column('ransac_log_d1'), 'LSQ': column('lsq_d1')}),
        Panel('edge Chamfer [m]', {'edge Chamfer': column('edge_chamfer_m')}),
        Panel('flying-pixel ratio', {'flying pixels': column('flying_pixel_ratio')}),
    ]
    for key, label, scale in (('flicker', 'flicker [%]', 100.0),
                              ('confidence_spearman', 'Spearman(spread, error)', 1.0)):
        values = [float(r.get(key, math.nan)) for r in rows]
        if any(math.isfinite(v) for v in values):
            panels.append(Panel(label, {key.replace('_', ' '): [scale * v for v in values]}))
    return panels


def plot_sparsification(path: Path, curves: dict, title: str) -> Path:
    """Mean error left after removing the least confident pixels, against the oracle and a
    random order (curves: ppd_ros.evaluation.offline.sparsification_summary)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), layout='constrained')
    removed = 100 * np.asarray(curves['fractions'])
    ax.plot(removed, curves['by_confidence'], label='removing the largest spread first')
    ax.plot(removed, curves['oracle'], label='oracle (largest error first)', linestyle='--')
    ax.axhline(curves['random'], color='grey', linestyle=':', label='random order')
    ax.set_xlabel('pixels removed [%]')
    ax.set_ylabel('AbsRel of the remaining pixels')
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.savefig(path, dpi=110, metadata={'Software': PNG_SOFTWARE})
    plt.close(fig)
    return path


def metric_depth_panels(rows: list[dict], sources: dict[str, str]) -> list[Panel]:
    """AbsRel, delta1, coverage, edge Chamfer and flying-pixel panels of metric depth scored
    as is (metric_depth_metrics); ``sources`` maps a column prefix to its legend label."""
    def series(key):
        return {label: [r.get(f'{prefix}_{key}') for r in rows]
                for prefix, label in sources.items()}
    return [
        Panel('AbsRel', series('abs_rel')),
        Panel('δ1 (1.25)', series('d1')),
        Panel('coverage of GT', series('coverage')),
        Panel('edge Chamfer [m]', series('edge_chamfer_m')),
        Panel('flying-pixel ratio', series('flying_pixel_ratio')),
    ]


def spread_picture(path: Path, rgb: np.ndarray, spread: np.ndarray, title: str) -> Path:
    """RGB | per-pixel spread of K depth draws (inferno, bright = less sure), colour bar."""
    plt = _pyplot()
    aspect = rgb.shape[1] / rgb.shape[0]
    fig, axes = plt.subplots(1, 2, figsize=(2 * 2.6 * aspect + 0.4, 3.2), layout='constrained')
    axes[0].imshow(rgb)
    axes[0].set_title('RGB input')
    image = axes[1].imshow(spread, cmap=_cmap(plt, 'inferno'), vmin=0.0,
                           vmax=max(float(np.nanpercentile(spread, 99)), 1e-9))
    axes[1].set_title('spread of the draws')
    fig.colorbar(image, ax=axes[1], orientation='horizontal', extend='max',
                 label='relative depth units (larger = less sure)')
    return _save_image_figure(plt, fig, axes, title, path)
