"""Offline evaluation: every selected frame of a bag through the model, in order, resumable.

    bag --(bag_frames)--> frame --(DepthPipeline)--> relative depth --(frame_metrics)-->
        metrics + aligned metres (+ flicker against the previous frame, with camera poses)
        --(frame_results)--> frames/<index>.npz + frames.csv row
    with a reference depth topic (a depth sensor), also --(fusion_comparison)--> the scores
        of the sensor, ppd_ros fused, fused with inpainting, PPD aligned (depth.mode fusion /
        reference, the node's code; one fit per frame)
    finally, from the store only: frames.csv, summary.json, depth_bag/, pictures/,
    metrics_over_time.png

Frames already in the store are skipped, so re-running an interrupted command resumes it and
ends with the same outputs (except that temporal smoothing restarts where a run resumes).
No rclpy here.
"""
from __future__ import annotations

import bisect
import json
import logging
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ppd_ros.evaluation.alignment_eval import align_log_least_squares
from ppd_ros.evaluation.bag_frames import (FrameDecodeError, SourceFrame, decode_gt,
                                           decode_reference, decode_rgb, iter_frames)
from ppd_ros.evaluation.eval_input import EvalInput, open_input
from ppd_ros.evaluation.eval_settings import OfflineSettings, resolve_storage
from ppd_ros.evaluation.flicker import frame_flicker
from ppd_ros.evaluation.frame_camera import camera_at_size
from ppd_ros.evaluation.frame_metrics import METRIC_COLUMNS, EdgeMetricParams, evaluate_frame
from ppd_ros.evaluation.frame_results import FailedFrame, FrameResult, FrameStore
from ppd_ros.evaluation.frame_selection import picture_indices
from ppd_ros.evaluation.fusion_comparison import (COMPARISON_COLUMNS, COMPARISON_COUNT_COLUMNS,
                                                  comparison_depths, comparison_table,
                                                  score_comparison)
from ppd_ros.evaluation.model_options import load_model
from ppd_ros.evaluation.output_bag import (METRIC_MEANING, RELATIVE_MEANING, OutputTopics,
                                           write_output_bag)
from ppd_ros.evaluation.report_figures import (Panel, metric_panels, plot_over_time,
                                               plot_sparsification, plot_title,
                                               side_by_side_picture)
from ppd_ros.evaluation.summary import metric_means, timing_stats, write_json
from ppd_ros.evaluation.uncertainty import confidence_scores
from ppd_ros.geometry.camera_model import CameraModelError
from ppd_ros.messages.image_encoding import ImageEncodingError
from ppd_ros.pipeline.depth_pipeline import resize_nearest

log = logging.getLogger('ppd_ros.evaluation')

SUMMARY_FILE = 'summary.json'
OUTPUT_BAG = 'depth_bag'
PICTURES_DIR = 'pictures'
PLOT_FILE = 'metrics_over_time.png'
SPARSIFICATION_PLOT = 'sparsification.png'
MODEL_INFO_FILE = 'model.json'
#: Per-frame problems that skip the frame instead of ending the run.
FRAME_ERRORS = (FrameDecodeError, ImageEncodingError, CameraModelError, ValueError)


#: How the user sets each store_fingerprint entry (named in a refused resume).
FINGERPRINT_OPTIONS = {
    'bag': 'the input bag', 'image_topic': '--image-topic', 'gt_topic': '--depth-topic',
    'camera_info_topic': '--camera-info-topic', 'gt_max_dt_s': '--gt-max-dt',
    'model.weights': 'the weight files (--checkpoint / --variant)', 'model.variant': '--variant',
    'model.device': '--device', 'model.precision': '--precision', 'model.steps': '--steps',
    'model.seed': '--seed', 'model.upsampling': '--upsampling',
    'edge_band_px': '--edge-band-px', 'flying_tau_rel': '--flying-tau',
    'ransac_seed': '--ransac-seed', 'reference_topic': '--reference-topic',
    'comparison': 'the fusion comparison of this ppd_ros version'}


def store_fingerprint(settings: OfflineSettings, source: EvalInput) -> dict:
    """Everything that changes a frame's stored result (not the frame range or outputs)."""
    spec = settings.input
    return {'bag': str(source.bag), 'image_topic': source.topics.image,
            'gt_topic': source.topics.gt, 'camera_info_topic': source.topics.info,
            'gt_max_dt_s': spec.gt_max_dt_s, 'model': settings.model.fingerprint(),
            'edge_band_px': settings.edge.band_px, 'flying_tau_rel': settings.edge.flying_tau_rel,
            'ransac_seed': settings.edge.ransac_seed, 'pose_topic': source.topics.pose,
            'temporal': asdict(settings.temporal),
            **({'reference_topic': source.topics.reference,
                'comparison': 'fusion_comparison v1'} if source.topics.reference else {})}


def comparison_store(out: Path, source: EvalInput) -> FrameStore:
    """The frame store; with a reference topic its rows hold the comparison columns too."""
    if source.topics.reference is None:
        return FrameStore(out)
    return FrameStore(out, COMPARISON_COLUMNS, COMPARISON_COUNT_COLUMNS)


def evaluate_source_frame(frame: SourceFrame, pipeline, options, edge: EdgeMetricParams
                          ) -> FrameResult:
    """Decode, predict and score one frame; FRAME_ERRORS when the frame is unusable."""
    rgb = decode_rgb(frame)
    gt = decode_gt(frame)
    prediction = pipeline.process(rgb, None, options)
    height, width = gt.shape if gt is not None else rgb.shape[:2]
    info = frame.camera_info.fields if frame.camera_info is not None else None
    try:
        camera = camera_at_size(info, width, height)
    except CameraModelError as err:
        log.warning('frame %d: camera info unusable (%s); no edge metrics or points',
                    frame.index, err)
        camera = None
    evaluation = evaluate_frame(prediction.relative, gt, camera.model if camera else None, edge)
    metrics = dict(evaluation.metrics)
    confidence = prediction.confidence
    if confidence is not None:
        confidence = resize_nearest(confidence, width, height)
        if evaluation.metres is not None:
            metrics.update(confidence_scores(confidence, evaluation.metres, gt)[0])
    reference = decode_reference(frame)
    if reference is not None and gt is not None:
        depths = comparison_depths(prediction.relative, reference, rgb)
        metrics.update(score_comparison(depths, gt, camera.model if camera else None, edge))
    return FrameResult(
        index=frame.index, stamp_ns=frame.stamp_ns, frame_id=frame.frame_id,
        metrics=metrics, inference_s=float(prediction.timings['total']),
        relative=evaluation.relative.astype(np.float32), metres=evaluation.metres, gt=gt,
        rgb=rgb, camera=camera.info if camera else None,
        pose=frame.pose.world_from_camera if frame.pose else None,
        world_frame_id=frame.pose.world_frame_id if frame.pose else '', confidence=confidence)


def add_flicker(result: FrameResult, before: FrameResult | None) -> None:
    """result.metrics['flicker'] (and its point count) against the frame before it, when both
    have GT, camera intrinsics of one size and poses in one fixed frame. Each relative
    prediction is made metric by its own least-squares fit in log(1 + d) (evaluation.flicker)."""
    if (before is None or result.metres is None or before.metres is None
            or result.pose is None or before.pose is None or result.camera is None
            or before.world_frame_id != result.world_frame_id
            or before.camera != result.camera):
        return
    k = result.camera.K
    flicker = frame_flicker(align_log_least_squares(before.relative, before.gt).depth,
                            before.gt, before.pose,
                            align_log_least_squares(result.relative, result.gt).depth,
                            result.gt, result.pose, (k[0, 0], k[1, 1], k[0, 2], k[1, 2]))
    result.metrics.update(flicker=flicker.flicker, flicker_points=flicker.n_points)


def _previous_selected(index: int, selected: list[int]) -> int | None:
    """The selected frame before ``index`` (``selected`` is in increasing order)."""
    position = bisect.bisect_left(selected, index)
    return selected[position - 1] if position > 0 else None


def _frame_before(index: int, selected: list[int], store: FrameStore,
                  last: FrameResult | None) -> FrameResult | None:
    """The evaluated result of the selected frame just before ``index``, if there is one."""
    wanted = _previous_selected(index, selected)
    if wanted is None:
        return None
    if last is not None and last.index == wanted:
        return last
    return store.load(wanted) if wanted in store.completed() else None


def _continue_stream(pipeline, options, index: int, selected: list[int], store: FrameStore,
                     last: FrameResult | None) -> None:
    """Give the pipeline's temporal stage the frame it would have seen last in one
    uninterrupted run: the latest evaluated frame before ``index`` (from the store when this
    run did not compute it), so a resumed run smooths exactly as an uninterrupted one."""
    if last is not None and last.index == _previous_selected(index, selected):
        return  # the usual case: the pipeline has just processed it
    completed = store.completed()
    before = [i for i in selected[:bisect.bisect_left(selected, index)] if i in completed]
    if last is not None and before and before[-1] == last.index:
        return
    if not before:
        pipeline.continue_stream(options=options)
        return
    earlier = store.load(before[-1])
    pipeline.continue_stream(earlier.rgb, earlier.relative, options)


def _compute_missing(settings: OfflineSettings, source: EvalInput, store: FrameStore,
                     todo: list[int], done_before: int) -> tuple[dict, float]:
    """Run the model on the frames ``todo``; returns the model info and the seconds spent
    on the frames (model loading excluded)."""
    from tqdm import tqdm

    from ppd_ros.pipeline.depth_pipeline import DepthPipeline, PipelineOptions
    notice = settings.model.notice()
    if notice:
        log.info(notice)
    predictor, model_info = load_model(settings.model)
    _write_model_info(store.frames_dir / MODEL_INFO_FILE, model_info)
    pipeline = DepthPipeline(predictor, overlap=False)  # no clouds: no helper thread
    seed = settings.model.seed
    options = PipelineOptions(steps=settings.model.steps, seed=None if seed < 0 else seed,
                              cloud=False, colorize=False, temporal=settings.temporal,
                              samples=settings.model.samples)
    last = None
    started = time.monotonic()
    with tqdm(total=len(source.selected), initial=done_before, desc='ppd-eval', unit='frame',
              disable=not settings.progress, dynamic_ncols=True) as progress:
        for frame in iter_frames(source.bag, source.topics, source.index, todo):
            _continue_stream(pipeline, options, frame.index, source.selected, store, last)
            try:
                result = evaluate_source_frame(frame, pipeline, options, settings.edge)
            except FRAME_ERRORS as err:
                log.warning('frame %d skipped: %s', frame.index, err)
                store.save_failure(FailedFrame(frame.index, frame.stamp_ns, str(err)))
            else:
                add_flicker(result, _frame_before(result.index, source.selected, store, last))
                store.save(result)
                last = result
            progress.update()
    return model_info, time.monotonic() - started


def _write_model_info(path: Path, info: dict) -> None:
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(json.dumps(info, indent=1))
    tmp.replace(path)


def _picture_title(result: FrameResult) -> str:
    title = f'frame {result.index}   stamp {result.stamp_ns / 1e9:.3f} s'
    m = result.metrics
    if result.has_gt and np.isfinite(m['ransac_log_abs_rel']):
        title += (f"   RANSAC-log: AbsRel {m['ransac_log_abs_rel']:.3f}  "
                  f"δ1 {m['ransac_log_d1']:.3f}")
    return title


def _write_reports(settings: OfflineSettings, source: EvalInput, store: FrameStore,
                   completed: list[int], rows: list[dict], model_info: dict,
                   curves: dict | None) -> dict:
    out = settings.output.out_dir
    metric = source.topics.gt is not None
    storage = resolve_storage(settings.output.storage, source.storage)
    counts = write_output_bag(out / OUTPUT_BAG, storage, (store.load(i) for i in completed),
                              OutputTopics.under(settings.output.namespace, metric), metric)
    pictures = []
    (out / PICTURES_DIR).mkdir(exist_ok=True)
    for i in picture_indices(settings.output.pictures, source.selected):
        if i not in completed:
            continue
        result = store.load(i)
        shown = result.metres if metric and result.metres is not None else result.relative
        path = out / PICTURES_DIR / f'frame_{i:06d}.png'
        side_by_side_picture(path, result.rgb, shown, result.gt, _picture_title(result),
                             metric=shown is result.metres)
        pictures.append(str(path.relative_to(out)))
    plot = None
    if rows:
        start = rows[0]['stamp_ns']
        times = [(r['stamp_ns'] - start) / 1e9 for r in rows]
        panels = metric_panels(rows) if metric else []
        inference_ms = [r['inference_s'] * 1e3 for r in rows]
        panels.append(Panel('inference [ms]', {'inference': inference_ms}))
        plot_over_time(out / PLOT_FILE, times, panels,
                       plot_title('ppd-eval offline', model_info['name'], settings.model.steps,
                                  source.topics.image, settings.input.bag))
        plot = PLOT_FILE
    sparsification_plot = None
    if curves is not None:
        plot_sparsification(out / SPARSIFICATION_PLOT, curves,
                            f'ppd-eval: {source.bag.name}: spread of {settings.model.samples} '
                            f'noise draws as confidence ({curves["frames"]} frames)')
        sparsification_plot = SPARSIFICATION_PLOT
    return {'csv': store.csv_path.name, 'bag': OUTPUT_BAG, 'bag_storage': storage,
            'bag_topics': counts, 'depth_meaning': METRIC_MEANING if metric else RELATIVE_MEANING,
            'pictures': pictures, 'plot': plot, 'sparsification_plot': sparsification_plot}


def sparsification_summary(store: FrameStore, completed: list[int]) -> dict | None:
    """Mean sparsification curves over the frames with a confidence map and GT (None when
    there are none): 'fractions', 'by_confidence', 'oracle', 'random' (E(0)), and 'frames'."""
    curves = []
    for index in completed:
        result = store.load(index)
        if result.confidence is not None and result.metres is not None:
            curve = confidence_scores(result.confidence, result.metres, result.gt)[1]
            if curve.n_pixels:
                curves.append(curve)
    if not curves:
        return None
    return {'frames': len(curves), 'fractions': curves[0].fractions.tolist(),
            'by_confidence': np.mean([c.by_uncertainty for c in curves], axis=0).tolist(),
            'oracle': np.mean([c.oracle for c in curves], axis=0).tolist(),
            'random': float(np.mean([c.by_uncertainty[0] for c in curves]))}


def _comparison_summary(source: EvalInput, rows: list[dict]) -> dict:
    """The 'fusion_comparison' part of the summary (with a reference topic only)."""
    if source.topics.reference is None:
        return {}
    columns = [c for c in COMPARISON_COLUMNS if c not in COMPARISON_COUNT_COLUMNS]
    scored = [r for r in rows if math.isfinite(float(r.get('sensor_coverage', math.nan)))]
    means = metric_means(scored, columns)
    return {'fusion_comparison': {
        'reference_topic': source.topics.reference, 'frames_scored': len(scored), **means,
        'table': comparison_table(means['mean'], len(scored)),
        'definition': ('metres scored against GT without alignment; one fit to the reference '
                       'per frame (the node also smooths it over time); flying px '
                       '(sensor-valid): on the GT edge pixels where the reference has depth')}}


def run_offline(settings: OfflineSettings) -> dict:
    """Evaluate, write every output, return the summary (also written to summary.json)."""
    started = time.monotonic()
    source = open_input(settings.input)
    settings.model.resolved_weight_files()  # a missing checkpoint fails before any work
    out = settings.output.out_dir
    out.mkdir(parents=True, exist_ok=True)
    store = comparison_store(out, source)
    store.open(store_fingerprint(settings, source), fresh=settings.fresh,
               names=FINGERPRINT_OPTIONS)
    selected = set(source.selected)
    done = store.done() & selected
    todo = [i for i in source.selected if i not in done]
    store.rewrite_csv(selected)
    if done:
        log.info('resuming: %d of %d frames already evaluated in %s', len(done),
                 len(selected), store.frames_dir)
    model_info_path = store.frames_dir / MODEL_INFO_FILE
    frames_s = 0.0
    if todo or not model_info_path.exists():
        model_info, frames_s = _compute_missing(settings, source, store, todo, len(done))
    else:
        model_info = json.loads(model_info_path.read_text())

    store.rewrite_csv(selected)
    completed = sorted(store.completed() & selected)
    failures = [f for i, f in sorted(store.failures().items()) if i in selected]
    rows = [store.row(i) for i in completed]
    with_gt = [r for r in rows if r['has_gt']]
    curves = sparsification_summary(store, completed)
    outputs = _write_reports(settings, source, store, completed, rows, model_info, curves)
    summary = {
        'tool': 'ppd-eval', 'mode': 'offline',
        **source.describe(settings.input),
        'counts': {'selected': len(selected), 'evaluated': len(completed),
                   'with_gt': len(with_gt), 'without_gt': len(completed) - len(with_gt),
                   'corrupt': len(failures),
                   'corrupt_frames': [{'index': f.index, 'stamp_ns': f.stamp_ns,
                                       'reason': f.reason} for f in failures]},
        'metrics': metric_means(with_gt, METRIC_COLUMNS),
        **_comparison_summary(source, with_gt),
        'inference': timing_stats(r['inference_s'] for r in rows),
        'model': model_info,
        'settings': {'edge_band_px': settings.edge.band_px,
                     'flying_tau_rel': settings.edge.flying_tau_rel,
                     'ransac_seed': settings.edge.ransac_seed,
                     'output_namespace': settings.output.namespace,
                     'pictures': settings.output.pictures},
        'sparsification': curves,
        'outputs': outputs,
        'run': {'frames_processed': len(todo), 'frames_reused': len(done),
                'frames_s': frames_s,
                'frames_per_s': len(todo) / frames_s if todo and frames_s > 0 else None,
                'wall_s': time.monotonic() - started},
    }
    write_json(out / SUMMARY_FILE, summary)
    return summary
