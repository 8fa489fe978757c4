"""Generic training loop: AdamW, gradient clipping, JSONL loss log, checkpoints and exact resume.

Everything random in step s (batch indices, flips, noise, timesteps) is drawn from
``step_generator(seed, s)``, and the learning rate is a function of s, so a run resumed from
its training-state checkpoint (model, optimizer, step, RNG states, log window) continues the
very same loss curve as an uninterrupted one (bit-identical on CPU with the same threads).

Files in ``out_dir``: training_state.pt (latest checkpoint, every ``ckpt_every`` steps and at the
end), loss_log.jsonl (one JSON object per ``log_every`` steps), and the task's final weights.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from .datasets import CachedDepthDataset, DepthBatch
from .rng_state import capture_rng_states, restore_rng_states, seed_everything, step_generator

STATE_FILE = 'training_state.pt'
LOSS_LOG_FILE = 'loss_log.jsonl'


class TrainingTask(Protocol):
    """What the loop trains: a model, its trainable parameters, a loss and a final export."""

    model: nn.Module
    final_name: str

    def trainable_parameters(self) -> list[nn.Parameter]: ...

    def set_train_mode(self) -> None: ...

    def loss(self, batch: DepthBatch,
             generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]: ...

    def save_final(self, path: Path, metadata: dict[str, Any]) -> Path: ...


@dataclass
class TrainerConfig:
    out_dir: Path
    steps: int
    batch_size: int = 8
    lr: float = 1e-4
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    lr_schedule: str = 'constant'   # 'constant' or 'cosine' (decay to min_lr_ratio * lr)
    warmup_steps: int = 0
    min_lr_ratio: float = 0.05
    seed: int = 0
    device: str = 'cpu'
    precision: str = 'fp32'         # 'bf16': autocast the forward (the reference trains bf16-mixed)
    log_every: int = 10
    ckpt_every: int = 500
    progress: bool = True
    extra_metadata: dict[str, Any] = field(default_factory=dict)

    def learning_rate(self, step: int) -> float:
        """LR of (0-based) step ``step``: linear warmup, then constant or cosine decay."""
        if self.warmup_steps and step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if self.lr_schedule == 'constant':
            return self.lr
        if self.lr_schedule != 'cosine':
            raise ValueError(f'unknown lr_schedule {self.lr_schedule!r}')
        span = max(1, self.steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        floor = self.min_lr_ratio * self.lr
        return floor + (self.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass
class TrainResult:
    final_path: Path | None
    steps: int
    wall_time_s: float
    log: list[dict]


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + '.tmp')
    torch.save(obj, tmp)
    os.replace(tmp, path)


def read_loss_log(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _truncate_loss_log(path: Path, last_step: int) -> list[dict]:
    """Keep the entries up to ``last_step`` (a resumed run rewrites what came after)."""
    kept = [e for e in read_loss_log(path) if e['step'] <= last_step]
    path.write_text(''.join(json.dumps(e) + '\n' for e in kept))
    return kept


class Trainer:
    def __init__(self, task: TrainingTask, dataset: CachedDepthDataset, config: TrainerConfig):
        self.task, self.dataset, self.config = task, dataset, config
        self.device = torch.device(config.device)
        self.out_dir = Path(config.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.out_dir / STATE_FILE
        self.log_path = self.out_dir / LOSS_LOG_FILE
        task.model.to(self.device)
        self.parameters = task.trainable_parameters()
        self.optimizer = torch.optim.AdamW(self.parameters, lr=config.lr,
                                           weight_decay=config.weight_decay)
        self.step = 0
        self.elapsed_s = 0.0
        self.window: dict[str, float] = {}
        self.window_count = 0
        self.commands: list[str] = []   # the invocations that made this run (first, then resumes)

    # ------------------------------------------------------------------ checkpoints
    def save_state(self) -> None:
        _atomic_save({
            'step': self.step, 'elapsed_s': self.elapsed_s,
            'model': self.task.model.state_dict(), 'optimizer': self.optimizer.state_dict(),
            'rng': capture_rng_states(), 'window': dict(self.window),
            'window_count': self.window_count, 'commands': list(self.commands),
            'config': {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self.config).items()},
        }, self.state_path)

    def load_state(self, path: Path | None = None) -> None:
        path = Path(path or self.state_path)
        state = torch.load(path, map_location=self.device, weights_only=False)
        self.task.model.load_state_dict(state['model'])
        self.optimizer.load_state_dict(state['optimizer'])
        restore_rng_states(state['rng'])
        self.step = int(state['step'])
        self.elapsed_s = float(state['elapsed_s'])
        self.window = dict(state['window'])
        self.window_count = int(state['window_count'])
        self.commands = list(state.get('commands', []))
        _truncate_loss_log(self.log_path, self.step)

    # ------------------------------------------------------------------ loop
    def _autocast(self):
        if self.config.precision == 'fp32':
            return contextlib.nullcontext()
        if self.config.precision != 'bf16':
            raise ValueError(f'unknown precision {self.config.precision!r}')
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def train_step(self) -> dict[str, float]:
        cfg = self.config
        generator = step_generator(cfg.seed, self.step)
        batch = self.dataset.sample_batch(cfg.batch_size, generator).to(self.device)
        self.task.set_train_mode()
        lr = cfg.learning_rate(self.step)
        for group in self.optimizer.param_groups:
            group['lr'] = lr
        with self._autocast():
            loss, parts = self.task.loss(batch, generator)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.parameters, cfg.grad_clip)
                          if cfg.grad_clip > 0 else 0.0)
        self.optimizer.step()
        self.step += 1
        return {'loss': float(loss.detach()), **parts, 'lr': lr, 'grad_norm': grad_norm}

    def run(self, resume: bool | str | Path = False, command: str = '',
            stop_at: int | None = None) -> TrainResult:
        """Train to ``config.steps``; ``stop_at`` ends this invocation early at that step (state
        saved, no final export), to be continued with ``resume=True``."""
        cfg = self.config
        if resume:
            self.load_state(None if resume is True else Path(resume))
        else:
            seed_everything(cfg.seed)
            self.log_path.write_text('')
        self.commands.append(command)
        log = read_loss_log(self.log_path)
        from tqdm import tqdm
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not cfg.progress, file=sys.stderr,
                   mininterval=5, desc='training', unit='step')
        started = time.perf_counter()
        base_elapsed = self.elapsed_s
        with self.log_path.open('a') as log_file:
            end = cfg.steps if stop_at is None else min(stop_at, cfg.steps)
            while self.step < end:
                values = self.train_step()
                self.elapsed_s = base_elapsed + time.perf_counter() - started
                for key in ('loss', 'velocity', 'gradient', 'mse', 'grad_norm'):
                    if key in values:
                        self.window[key] = self.window.get(key, 0.0) + values[key]
                self.window_count += 1
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    entry = {'step': self.step, **values,
                             **{f'{k}_avg': v / self.window_count for k, v in self.window.items()},
                             'elapsed_s': round(self.elapsed_s, 3)}
                    log.append(entry)
                    log_file.write(json.dumps(entry) + '\n')
                    log_file.flush()
                    bar.set_postfix(loss=f"{entry['loss_avg']:.4f}")
                    self.window, self.window_count = {}, 0
                if self.step % cfg.ckpt_every == 0 or self.step == end:
                    self.save_state()
        bar.close()
        if self.step < cfg.steps:
            return TrainResult(None, self.step, self.elapsed_s, log)
        metadata = {'command': self.commands[0], 'resumed_with': self.commands[1:],
                    'seed': cfg.seed, 'steps': self.step,
                    'batch_size': cfg.batch_size, 'lr': cfg.lr, 'lr_schedule': cfg.lr_schedule,
                    'warmup_steps': cfg.warmup_steps, 'weight_decay': cfg.weight_decay,
                    'grad_clip': cfg.grad_clip, 'precision': cfg.precision,
                    'wall_time_s': round(self.elapsed_s, 1),
                    'torch_threads': torch.get_num_threads(), 'device': str(self.device),
                    'final_loss_avg': _recent_average(log), **cfg.extra_metadata}
        final = self.task.save_final(self.out_dir / self.task.final_name, metadata)
        return TrainResult(final, self.step, self.elapsed_s, log)


def _recent_average(log: list[dict], entries: int = 10) -> float | None:
    recent = [e['loss_avg'] for e in log[-entries:] if 'loss_avg' in e]
    return round(sum(recent) / len(recent), 6) if recent else None
