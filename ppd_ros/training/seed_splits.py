"""Synthetic-scene seeds reserved for training and for held-out evaluation (never overlapping).

Training uses seeds [0, 1_000_000); evaluation uses seeds >= 1_000_000.
"""
from __future__ import annotations

EVAL_SEED_START = 1_000_000


def train_seeds(count: int, start: int = 0) -> range:
    """``count`` training seeds from ``start``; raises if they would reach the held-out range."""
    if count < 1 or start < 0 or start + count > EVAL_SEED_START:
        raise ValueError(f'training seeds must lie in [0, {EVAL_SEED_START}), '
                         f'got start={start} count={count}')
    return range(start, start + count)


def eval_seeds(count: int, start: int = EVAL_SEED_START) -> range:
    """``count`` held-out seeds from ``start`` (>= EVAL_SEED_START)."""
    if count < 1:
        raise ValueError(f'need at least one held-out frame, got {count}')
    if start < EVAL_SEED_START:
        raise ValueError(f'held-out seeds start at {EVAL_SEED_START}, got start={start}')
    return range(start, start + count)


def is_eval_seed(seed: int) -> bool:
    return seed >= EVAL_SEED_START
