"""Per-frame result store that makes offline evaluation resumable.

Layout under the output folder:
    frames/store.json          what produced the results (a re-run must match it)
    frames/<index>.npz         one evaluated frame: arrays + metrics (written atomically:
                               temporary file, then rename)
    frames/<index>.failed.json a frame that could not be used, with the reason
    frames.csv                 one row per evaluated frame, appended and flushed as frames
                               complete; rebuilt from the .npz files at the start and the
                               end of every run (so a row cut off by a kill never survives)

A frame with a .npz or .failed.json is done: a re-run skips it. Final outputs are built from
the store only, so an interrupted and resumed run ends with the same results as an
uninterrupted one.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ppd_ros.evaluation.frame_metrics import COUNT_COLUMNS, METRIC_COLUMNS
from ppd_ros.synthetic.camera import CameraInfoFields

STORE_VERSION = 2
CSV_COLUMNS = ('index', 'stamp_ns', 'has_gt') + METRIC_COLUMNS + ('inference_s',)


class StoreMismatchError(RuntimeError):
    """The output folder holds results of a different configuration."""


def fingerprint_differences(old: dict, new: dict, names: dict[str, str], prefix: str = ''
                            ) -> list[str]:
    """What differs between two fingerprints, one phrase per setting; nested dicts are
    compared key by key unless ``names`` (dotted key -> how the user sets it) names them."""
    phrases = []
    for key in sorted(set(old) | set(new)):
        dotted = prefix + key
        before, now = old.get(key), new.get(key)
        if before == now:
            continue
        if dotted not in names and isinstance(before, dict) and isinstance(now, dict):
            phrases += fingerprint_differences(before, now, names, dotted + '.')
            continue
        name = names.get(dotted, dotted)
        if isinstance(before, (dict, list)) or isinstance(now, (dict, list)):
            phrases.append(f'{name} changed')
        else:
            phrases.append(f'{name} was {before}, now {now}')
    return phrases


@dataclass(eq=False)
class FrameResult:
    index: int
    stamp_ns: int
    frame_id: str
    metrics: dict[str, float]
    inference_s: float
    relative: np.ndarray               #: float32 prediction at output size (GT size with GT)
    metres: np.ndarray | None          #: float32 RANSAC-log aligned metres, None without GT
    gt: np.ndarray | None              #: float32 GT metres (NaN invalid)
    rgb: np.ndarray                    #: uint8 input image
    camera: CameraInfoFields | None    #: intrinsics of the output size
    pose: np.ndarray | None = None     #: 4 x 4 camera (optical) frame -> world_frame_id
    world_frame_id: str = ''
    confidence: np.ndarray | None = None  #: float32 spread of the K draws (relative), GT size

    @property
    def has_gt(self) -> bool:
        return self.gt is not None


@dataclass(frozen=True)
class FailedFrame:
    index: int
    stamp_ns: int
    reason: str


def format_value(key: str, value, counts=COUNT_COLUMNS) -> str:
    if isinstance(value, bool):
        return '1' if value else '0'
    if key in counts or key in ('index', 'stamp_ns'):
        return 'nan' if isinstance(value, float) and math.isnan(value) else str(int(value))
    return repr(float(value))


def csv_line(row: dict, columns=CSV_COLUMNS, counts=COUNT_COLUMNS) -> str:
    return ','.join(format_value(key, row.get(key, math.nan), counts) for key in columns) + '\n'


def _camera_to_json(camera: CameraInfoFields | None):
    if camera is None:
        return None
    return {'width': camera.width, 'height': camera.height, 'k': list(map(float, camera.k)),
            'p': list(map(float, camera.p)), 'd': list(map(float, camera.d)),
            'r': list(map(float, camera.r)), 'distortion_model': camera.distortion_model}


def _camera_from_json(data) -> CameraInfoFields | None:
    if data is None:
        return None
    return CameraInfoFields(width=data['width'], height=data['height'], k=np.array(data['k']),
                            p=np.array(data['p']), d=np.array(data['d']), r=np.array(data['r']),
                            distortion_model=data['distortion_model'])


def _write_atomically(path: Path, write) -> None:
    tmp = path.with_name(path.name + '.tmp')
    with open(tmp, 'wb') as handle:
        write(handle)
    os.replace(tmp, path)


class FrameStore:
    def __init__(self, out_dir: str | Path, extra_columns: tuple[str, ...] = (),
                 extra_counts: tuple[str, ...] = ()):
        """``extra_columns`` (of which ``extra_counts`` are pixel counts) follow the metric
        columns in frames.csv."""
        self.columns = CSV_COLUMNS[:-1] + tuple(extra_columns) + CSV_COLUMNS[-1:]
        self.counts = COUNT_COLUMNS + tuple(extra_counts)
        self.out_dir = Path(out_dir)
        self.frames_dir = self.out_dir / 'frames'
        self.csv_path = self.out_dir / 'frames.csv'
        self._manifest = self.frames_dir / 'store.json'

    # --- opening ---

    def open(self, fingerprint: dict, fresh: bool = False,
             names: dict[str, str] | None = None) -> None:
        """Use the folder for results of ``fingerprint``; StoreMismatchError when it holds
        other results (``fresh`` deletes them instead). ``names`` maps fingerprint keys to the
        options that set them, for the message."""
        self.frames_dir.mkdir(parents=True, exist_ok=True)
        if self._manifest.exists() and not fresh:
            stored = json.loads(self._manifest.read_text())
            if stored.get('version') != STORE_VERSION or stored.get('fingerprint') != fingerprint:
                differing = (fingerprint_differences(stored.get('fingerprint', {}), fingerprint,
                                                     names or {})
                             if stored.get('version') == STORE_VERSION else [])
                raise StoreMismatchError(
                    f'{self.frames_dir} holds results made with other settings '
                    f'({"; ".join(differing) or "an older ppd_ros version"}); pass --fresh to '
                    'discard them and start over, or choose another --out')
            return
        for item in self.frames_dir.iterdir():
            if item.suffix in ('.npz', '.json', '.tmp'):
                item.unlink()
        _write_atomically(self._manifest, lambda h: h.write(json.dumps(
            {'version': STORE_VERSION, 'fingerprint': fingerprint}, indent=1,
            sort_keys=True).encode()))

    # --- what is done ---

    def _npz(self, index: int) -> Path:
        return self.frames_dir / f'{index:06d}.npz'

    def _failed(self, index: int) -> Path:
        return self.frames_dir / f'{index:06d}.failed.json'

    def completed(self) -> set[int]:
        return {int(p.name[:6]) for p in self.frames_dir.glob('[0-9]*.npz')}

    def failures(self) -> dict[int, FailedFrame]:
        out = {}
        for path in self.frames_dir.glob('[0-9]*.failed.json'):
            data = json.loads(path.read_text())
            out[data['index']] = FailedFrame(data['index'], data['stamp_ns'], data['reason'])
        return out

    def done(self) -> set[int]:
        return self.completed() | set(self.failures())

    def result_path(self, index: int) -> Path:
        return self._npz(index)

    # --- writing ---

    def save(self, result: FrameResult) -> None:
        meta = {'index': result.index, 'stamp_ns': result.stamp_ns,
                'frame_id': result.frame_id, 'metrics': result.metrics,
                'inference_s': result.inference_s, 'camera': _camera_to_json(result.camera),
                'pose': None if result.pose is None else np.asarray(result.pose).tolist(),
                'world_frame_id': result.world_frame_id}
        arrays = {'meta': np.array(json.dumps(meta)), 'relative': result.relative,
                  'rgb': result.rgb}
        if result.metres is not None:
            arrays['metres'] = result.metres
        if result.gt is not None:
            arrays['gt'] = result.gt
        if result.confidence is not None:
            arrays['confidence'] = result.confidence
        _write_atomically(self._npz(result.index), lambda h: np.savez_compressed(h, **arrays))
        self._append_csv(self._row(meta, result.has_gt))

    def save_failure(self, failed: FailedFrame) -> None:
        text = json.dumps({'index': failed.index, 'stamp_ns': failed.stamp_ns,
                           'reason': failed.reason})
        _write_atomically(self._failed(failed.index), lambda h: h.write(text.encode()))

    def _append_csv(self, row: dict) -> None:
        new = not self.csv_path.exists()
        with open(self.csv_path, 'a') as handle:
            if new:
                handle.write(','.join(self.columns) + '\n')
            handle.write(csv_line(row, self.columns, self.counts))  # one write per row
            handle.flush()

    def rewrite_csv(self, indices) -> None:
        """frames.csv = the stored rows of ``indices`` that are complete, in index order."""
        done = self.completed()
        lines = [','.join(self.columns) + '\n']
        lines += [csv_line(self.row(i), self.columns, self.counts)
                  for i in sorted(set(indices) & done)]
        _write_atomically(self.csv_path, lambda h: h.write(''.join(lines).encode()))

    # --- reading ---

    def _meta(self, index: int) -> tuple[dict, bool]:
        with np.load(self._npz(index), allow_pickle=False) as data:
            return json.loads(str(data['meta'])), 'gt' in data.files

    @staticmethod
    def _row(meta: dict, has_gt: bool) -> dict:
        return {'index': meta['index'], 'stamp_ns': meta['stamp_ns'], 'has_gt': has_gt,
                **meta['metrics'], 'inference_s': meta['inference_s']}

    def row(self, index: int) -> dict:
        """The CSV row of a stored frame (no image arrays are read)."""
        return self._row(*self._meta(index))

    def load(self, index: int) -> FrameResult:
        with np.load(self._npz(index), allow_pickle=False) as data:
            meta = json.loads(str(data['meta']))
            return FrameResult(
                index=meta['index'], stamp_ns=meta['stamp_ns'], frame_id=meta['frame_id'],
                metrics=meta['metrics'], inference_s=meta['inference_s'],
                relative=data['relative'], metres=data['metres'] if 'metres' in data.files
                else None, gt=data['gt'] if 'gt' in data.files else None, rgb=data['rgb'],
                camera=_camera_from_json(meta['camera']),
                pose=None if meta.get('pose') is None else np.array(meta['pose']),
                world_frame_id=meta.get('world_frame_id', ''),
                confidence=data['confidence'] if 'confidence' in data.files else None)
