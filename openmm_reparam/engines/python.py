"""The reference engine: the Adam stage in Python, torch autograd and :class:`~..core.adam.Adam` (see
:mod:`.settings` for the contract).

The compiled engine (:mod:`.compiled`) is a second implementation of the same loop, tested against this one.
"""
from __future__ import annotations

import math
import time
from typing import Callable, List, Optional, Tuple

import numpy as np
import torch

from ..core.adam import Adam
from ..core.atoms import has_collapsed_contact
from ..core.bridge import EnergyBridge
from ..run.recorder import RunRecorder
from ..run.result import StageResult
from .settings import AdamStageSettings


class StageTracker:
    """Best point, early stopping and collapse guard of one Adam stage (the twin of the compiled adamStep)."""

    def __init__(self, settings: AdamStageSettings, movable: np.ndarray):
        self.settings, self.movable = settings, movable
        self.best_energy, self.best_positions = math.inf, None
        self.first_energy: Optional[float] = None
        self.waited = 0
        self.calmest = math.inf            # smallest max-atom force seen in this stage
        self.lowest: List[float] = []      # lowest non-suspect energy after each step
        self.largest_drop = 0.0

    def observe(self, energy: float, max_force: float, positions: np.ndarray,
                rms_force: float = math.inf) -> Optional[str]:
        """Take one evaluated step; returns why the stage must stop, or None."""
        s = self.settings
        if self.first_energy is None:
            self.first_energy = energy
        self.calmest = min(self.calmest, max_force)
        suspect = max_force > s.spike_factor * self.calmest
        if suspect and has_collapsed_contact(positions, self.movable, s.collapse_distance):
            return "collapse"
        if not suspect and (self.best_positions is None or energy < self.best_energy - s.rel_tol * abs(self.best_energy)):
            self.best_energy, self.best_positions = energy, positions.copy()
            self.waited = 0
        else:
            self.waited += 1
        previous = self.lowest[-1] if self.lowest else math.inf
        self.lowest.append(min(previous, energy) if not suspect else previous)
        verdict = "stalled" if self._stalled() else ("patience" if self.waited >= s.patience else None)
        if s.force_tolerance > 0 and rms_force <= s.force_tolerance:  # the compiled tracker's converged()
            if self.best_positions is None or energy <= self.best_energy:
                self.best_energy, self.best_positions = energy, positions.copy()
            return "converged"
        return verdict

    def _stalled(self) -> bool:
        window = self.settings.progress_window
        if window <= 0 or len(self.lowest) <= window or not math.isfinite(self.lowest[-window - 1]):
            return False
        drop = self.lowest[-window - 1] - self.lowest[-1]
        self.largest_drop = max(self.largest_drop, drop)
        return drop < self.settings.progress_fraction * self.largest_drop


class PythonEngine:
    """Adam stages (torch.optim.Adam's update, :class:`~..core.adam.Adam`) over :class:`EnergyBridge`."""

    name = "python"

    def adam_stage(self, bridge: EnergyBridge, recorder: RunRecorder, generator: Optional[torch.nn.Module],
                   settings: AdamStageSettings) -> StageResult:
        start, evaluations = time.perf_counter(), bridge.evaluations
        parameters, positions, after_evaluation = _variables(bridge, generator)
        optimizer = Adam(parameters, lr=settings.lr)
        tracker = StageTracker(settings, bridge.movable)
        reason, steps = "max_steps", 0
        for _ in range(recorder.capped(settings.max_steps)):
            if recorder.stopped:
                reason = recorder.stop_reason
                break
            if settings.deadline is not None and time.perf_counter() >= settings.deadline:
                reason = "deadline"
                break
            optimizer.zero_grad()
            bridge(positions()).backward()
            after_evaluation()
            torch.nn.utils.clip_grad_norm_(parameters, settings.clip_norm)
            optimizer.step()
            steps += 1
            stop = observe_step(bridge, recorder, tracker, settings.name)
            if stop is not None:
                reason = stop
                break
        return finish_stage(bridge, tracker, settings.name, steps, evaluations, start, reason)


def observe_step(bridge: EnergyBridge, recorder: RunRecorder, tracker: StageTracker, name: str) -> Optional[str]:
    """Record the step just evaluated; returns why the stage must stop ("collapse" before recording, then
    "reporter" or "interrupted", then the tracker's reason), or None."""
    stop = tracker.observe(bridge.last_energy, bridge.last_max_force, bridge.last_positions, bridge.last_rms_force)
    if stop == "collapse":
        return stop
    if recorder.record(name, bridge.last_energy, bridge.last_positions, -bridge.last_forces):
        return recorder.stop_reason
    return stop


def finish_stage(bridge: EnergyBridge, tracker: StageTracker, name: str, steps: int, evaluations: int,
                 start: float, reason: str) -> StageResult:
    """Leave the Context at the stage's best point and describe the stage."""
    if tracker.best_positions is not None:
        bridge.set_positions(tracker.best_positions)
    return StageResult(name, steps, bridge.evaluations - evaluations, time.perf_counter() - start,
                       tracker.first_energy, tracker.best_energy if tracker.best_positions is not None else None,
                       reason == "collapse", reason, engine="python")


def _variables(bridge: EnergyBridge, generator: Optional[torch.nn.Module]
               ) -> Tuple[list, Callable[[], torch.Tensor], Callable[[], None]]:
    """(parameters Adam updates, the positions they give, what to do after each evaluation)."""
    if generator is not None:
        after = getattr(generator, "after_evaluation", None)
        return generator.ordered_parameters(), generator, (lambda: after(bridge)) if after else (lambda: None)
    coordinates = torch.nn.Parameter(torch.as_tensor(bridge.current_positions(), dtype=torch.float64))

    def onto_constraints() -> None:  # projected gradient descent: keep the coordinates constrained
        if bridge.has_constraints:
            coordinates.data.copy_(torch.from_numpy(bridge.last_positions))

    return [coordinates], lambda: coordinates, onto_constraints
