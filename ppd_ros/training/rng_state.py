"""Capture and restore every global RNG (python, numpy, torch CPU, CUDA) for exact resumes,
and the per-step generator that makes a step's randomness depend only on (seed, step)."""
from __future__ import annotations

import random

import numpy as np
import torch


def capture_rng_states() -> dict:
    state = {'python': random.getstate(), 'numpy': np.random.get_state(),
             'torch': torch.get_rng_state()}
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_states(state: dict) -> None:
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def step_generator(seed: int, step: int) -> torch.Generator:
    """CPU generator for training step ``step`` of a run seeded with ``seed``."""
    key = int(np.random.SeedSequence([int(seed), int(step)]).generate_state(1, np.uint64)[0])
    return torch.Generator().manual_seed(key)
