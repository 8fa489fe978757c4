"""RGB-D training samples at the model's training area: synthetic scenes or a rosbag2 bag.

A sample is (rgb (3, h, w) float32 in [0, 1], depth (1, h, w) float32 metres with 0 where
invalid, valid (1, h, w) bool). Datasets are map-style with an in-memory cache, so the data of
a training step depends only on the indices drawn for it (``make_batch``), which keeps resumed
runs identical to straight ones.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from ppd_ros.model.preprocess import network_size, resize_keep_aspect

from .seed_splits import is_eval_seed

DEFAULT_TRAIN_WIDTH = 128
DEFAULT_TRAIN_HEIGHT = 96


@dataclass
class DepthBatch:
    rgb: torch.Tensor    # (B, 3, h, w) float32 in [0, 1]
    depth: torch.Tensor  # (B, 1, h, w) float32 metres, 0 where invalid
    valid: torch.Tensor  # (B, 1, h, w) bool

    def to(self, device) -> 'DepthBatch':
        return DepthBatch(self.rgb.to(device), self.depth.to(device), self.valid.to(device))


def to_sample(rgb: np.ndarray, depth: np.ndarray, valid: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 (h, w, 3) RGB, float depth (h, w), optional mask -> the compact cached sample."""
    depth = np.asarray(depth, dtype=np.float32)
    ok = np.isfinite(depth) & (depth > 0)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    return (np.ascontiguousarray(rgb, dtype=np.uint8), np.where(ok, depth, 0).astype(np.float32), ok)


def resize_to_training_area(rgb: np.ndarray, depth: np.ndarray, area: int
                            ) -> tuple[np.ndarray, np.ndarray]:
    """RGB with the inference resize (cv2 area / cubic); depth with nearest (no mixed edges)."""
    h, w = network_size(rgb.shape[0], rgb.shape[1], area)
    rgb_out = resize_keep_aspect(rgb, area)
    depth_out = cv2.resize(np.asarray(depth, np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
    return rgb_out, depth_out


class CachedDepthDataset:
    """Base: samples computed once by ``_load(i)`` and kept in memory."""

    def __init__(self, cache: bool = True):
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._use_cache = cache

    def __len__(self) -> int:
        raise NotImplementedError

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def raw(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rgb uint8 (h, w, 3), depth float32 (h, w), valid bool (h, w))."""
        if index < 0 or index >= len(self):
            raise IndexError(index)
        if index in self._cache:
            return self._cache[index]
        sample = self._load(index)
        if self._use_cache:
            self._cache[index] = sample
        return sample

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rgb, depth, valid = self.raw(index)
        return (torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0,
                torch.from_numpy(depth)[None], torch.from_numpy(valid)[None])

    def make_batch(self, indices: Sequence[int], flips: Sequence[bool] | None = None) -> DepthBatch:
        """Stack samples; ``flips[i]`` mirrors sample i horizontally (augmentation)."""
        rgbs, depths, valids = [], [], []
        for k, index in enumerate(indices):
            rgb, depth, valid = self[int(index)]
            if flips is not None and flips[k]:
                rgb, depth, valid = rgb.flip(-1), depth.flip(-1), valid.flip(-1)
            rgbs.append(rgb)
            depths.append(depth)
            valids.append(valid)
        return DepthBatch(torch.stack(rgbs), torch.stack(depths), torch.stack(valids))

    def sample_batch(self, batch_size: int, generator: torch.Generator,
                     flip_probability: float = 0.5) -> DepthBatch:
        """Random indices (with replacement) and random horizontal flips from ``generator``."""
        indices = torch.randint(len(self), (batch_size,), generator=generator).tolist()
        flips = (torch.rand(batch_size, generator=generator) < flip_probability).tolist()
        return self.make_batch(indices, flips)


class SyntheticDepthDataset(CachedDepthDataset):
    """Procedural scenes ``ppd_ros.synthetic.generate_frame(seed)``, one frame per seed."""

    def __init__(self, seeds: Sequence[int], width: int = DEFAULT_TRAIN_WIDTH,
                 height: int = DEFAULT_TRAIN_HEIGHT, *, allow_eval_seeds: bool = False,
                 cache: bool = True):
        super().__init__(cache)
        self.seeds = list(seeds)
        if not allow_eval_seeds and any(is_eval_seed(s) for s in self.seeds):
            raise ValueError('training datasets must not use held-out evaluation seeds')
        self.width, self.height = width, height

    def __len__(self) -> int:
        return len(self.seeds)

    def _load(self, index: int):
        from ppd_ros.synthetic import generate_frame
        frame = generate_frame(self.seeds[index], self.width, self.height)
        return to_sample(frame.rgb, frame.depth, frame.valid)

    def preload(self, progress: bool = False, cache_dir: str | Path | None = None) -> None:
        """Render every frame now (about 300 frames/s at 128 x 96 on one core).

        With ``cache_dir``, the rendered frames are stored there as .npy files (about 100 kB
        per frame) keyed by size and seeds, and loaded instead of rendered next time. A cache
        whose first frame no longer matches a fresh render (generator changed) is rebuilt.
        """
        cache = self._cache_path(cache_dir) if cache_dir is not None else None
        if cache is not None and cache.with_suffix('.rgb.npy').is_file():
            rgb, depth = (np.load(cache.with_suffix(f'.{k}.npy'), mmap_mode='r')
                          for k in ('rgb', 'depth'))
            fresh = self._load(0)
            if (len(rgb) == len(self) and np.array_equal(rgb[0], fresh[0])
                    and np.array_equal(depth[0], fresh[1])):
                for i in range(len(self)):
                    d = np.array(depth[i])
                    self._cache[i] = (np.array(rgb[i]), d, d > 0)
                return
        from tqdm import tqdm
        for i in tqdm(range(len(self)), desc='rendering scenes', disable=not progress,
                      mininterval=5):
            self.raw(i)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            for key, k in (('rgb', 0), ('depth', 1)):
                tmp = cache.with_suffix(f'.{key}.tmp.npy')
                np.save(tmp, np.stack([self._cache[i][k] for i in range(len(self))]))
                tmp.replace(cache.with_suffix(f'.{key}.npy'))

    def _cache_path(self, cache_dir: str | Path) -> Path:
        seeds = self.seeds
        contiguous = seeds == list(range(seeds[0], seeds[0] + len(seeds)))
        if contiguous:
            key = f'{seeds[0]}-{seeds[-1]}'
        else:
            key = f'{len(seeds)}_' + hashlib.sha1(np.asarray(seeds, np.int64).tobytes()).hexdigest()[:12]
        from ppd_ros.synthetic.room_sampler import SCENE_VERSION
        return Path(cache_dir) / f'synthetic_v{SCENE_VERSION}_{self.width}x{self.height}_seeds{key}'


class BagDepthDataset(CachedDepthDataset):
    """RGB-D frames of a rosbag2 bag (colour + depth topics), resized to the training area."""

    def __init__(self, path: str | Path, image_topic: str = '/camera/image_raw',
                 depth_topic: str = '/camera/depth/image_raw', area: int = 128 * 96,
                 every_nth: int = 1, max_frames: int | None = None):
        super().__init__(cache=True)
        from ppd_ros.bag.rgbd_frames import read_rgbd_frames
        samples = []
        for k, frame in enumerate(read_rgbd_frames(path, image_topic, depth_topic, None)):
            if k % every_nth:
                continue
            rgb, depth = frame.rgb, frame.depth
            if depth.shape != rgb.shape[:2]:
                depth = cv2.resize(depth, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_NEAREST)
            samples.append(to_sample(*resize_to_training_area(rgb, depth, area)))
            if max_frames is not None and len(samples) >= max_frames:
                break
        if not samples:
            raise ValueError(f'no RGB-D frames with {image_topic} and {depth_topic} in {path}')
        self._samples = samples

    def __len__(self) -> int:
        return len(self._samples)

    def _load(self, index: int):
        return self._samples[index]
