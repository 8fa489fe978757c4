"""Temporal filtering of per-frame log-affine fits (a, b) for a stable metric scale.

Per update:
  - a failed fit, or an outlier, holds the last accepted (a, b) for up to hold_frames frames;
    after that the output is invalid and `reason` says why (metric output unavailable);
  - an outlier is a fit whose metric depth at its median prediction differs from the current
    filtered model's by more than max_relative_jump (relative);
  - reset_after consecutive outliers that agree with each other (same test) are a genuine
    change (new scene, sensor switch): the filter restarts from the latest of them;
  - an accepted fit is blended by an EMA, (a, b) <- (1 - alpha)(a, b) + alpha (a_new, b_new),
    i.e. an EMA of the predicted log(1 + depth) at every prediction value;
  - a stamp older than the previous one (bag loop, clock reset) resets the filter, unless it
    is not older than the one before: then the previous stamp was a lone jump ahead (one
    corrupt stamp), and the filter carries on;
  - after scene_changed() (the caller saw the view change: another room, a fast turn) the
    next good fit is taken as it is, without the jump test or the EMA, so the scale settles
    on the new scene at once; failed fits until then still hold the last scale.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ppd_ros.alignment.log_affine_fit import LogAffineFit

#: Prediction value used to compare fits lacking pred_median (middle of PPD's nominal range).
_DEFAULT_PRED_PROBE = 0.5


@dataclass(frozen=True)
class FilterOutput:
    a: float        #: filtered parameters (NaN when not valid)
    b: float
    valid: bool     #: metric output available
    reason: str     #: what happened this frame ('' on a normal accepted update)
    held_for: int   #: frames since the last accepted fit (0: accepted now)


class TemporalScaleFilter:
    def __init__(self, alpha: float = 0.3, max_relative_jump: float = 0.25,
                 reset_after: int = 5, hold_frames: int = 10):
        if not 0.0 < alpha <= 1.0:
            raise ValueError('alpha must be in (0, 1]')
        if max_relative_jump <= 0 or reset_after < 1 or hold_frames < 0:
            raise ValueError('need max_relative_jump > 0, reset_after >= 1, hold_frames >= 0')
        self.alpha = alpha
        self.max_relative_jump = max_relative_jump
        self.reset_after = reset_after
        self.hold_frames = hold_frames
        self.reset('no fit yet')

    def reset(self, reason: str = 'reset') -> None:
        self._params: tuple[float, float] | None = None
        self._pending: list[LogAffineFit] = []
        self._held = 0
        self._last_stamp: float | None = None
        self._stamp_before: float | None = None  # the stamp before _last_stamp
        self._state = reason
        self._scene_changed = False

    def scene_changed(self) -> None:
        """The view changed: take the next good fit as the new scale (module doc)."""
        self._scene_changed = True

    @property
    def state(self) -> str:
        """Reason of the latest output ('' while tracking normally)."""
        return self._state

    @property
    def available(self) -> bool:
        return self._params is not None and self._held <= self.hold_frames

    def _relative_jump(self, fit: LogAffineFit, a: float, b: float) -> float:
        probe = fit.pred_median if np.isfinite(fit.pred_median) else _DEFAULT_PRED_PROBE
        current = float(np.expm1(a * probe + b))
        return abs(fit.depth_at(probe) - current) / max(abs(current), 1e-6)

    def _output(self, reason: str) -> FilterOutput:
        self._state = reason
        if self.available:
            return FilterOutput(*self._params, True, reason, self._held)
        return FilterOutput(float('nan'), float('nan'), False, reason, self._held)

    def _accept(self, a: float, b: float, reason: str) -> FilterOutput:
        self._params, self._held, self._pending = (a, b), 0, []
        self._scene_changed = False
        return self._output(reason)

    def _hold(self, why: str) -> FilterOutput:
        self._held += 1
        if self._params is None:
            return self._output(f'metric scale unavailable: no valid fit yet ({why})')
        if self._held > self.hold_frames:
            return self._output(f'metric scale unavailable: no accepted fit for {self._held} '
                                f'frames (last: {why})')
        return self._output(f'holding last fit ({self._held}/{self.hold_frames}): {why}')

    def update(self, fit: LogAffineFit, stamp: float | None = None) -> FilterOutput:
        """Feed one frame's fit (stamp in seconds, optional); get the scale to use."""
        if stamp is not None:
            if self._last_stamp is not None and stamp < self._last_stamp:
                if self._stamp_before is None or stamp < self._stamp_before:
                    self.reset('time went backwards')
            self._stamp_before, self._last_stamp = self._last_stamp, stamp
        if not fit.ok:
            return self._hold(f'fit failed: {fit.reason}')
        if self._params is None:
            return self._accept(fit.a, fit.b, 'initialised')
        if self._scene_changed:
            return self._accept(fit.a, fit.b, 'scene changed: restarted from this fit')
        jump = self._relative_jump(fit, *self._params)
        if jump <= self.max_relative_jump:
            a, b = self._params
            return self._accept((1 - self.alpha) * a + self.alpha * fit.a,
                                (1 - self.alpha) * b + self.alpha * fit.b, '')
        last = self._pending[-1] if self._pending else None
        if last is not None and self._relative_jump(fit, last.a, last.b) <= self.max_relative_jump:
            self._pending.append(fit)
        else:
            self._pending = [fit]
        if len(self._pending) >= self.reset_after:
            return self._accept(fit.a, fit.b, f'reset to a new scale after {self.reset_after} '
                                              'consistent fits')
        return self._hold(f'rejected fit: median depth jump {jump:.0%} > '
                          f'{self.max_relative_jump:.0%}')
