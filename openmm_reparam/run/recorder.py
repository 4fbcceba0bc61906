"""Bookkeeping of one run across its stages: history, iteration cap, reporter, stop requests, lowest-energy
positions."""
from __future__ import annotations

import math
import time
from typing import Callable, List, Optional, Sequence

import numpy as np
import openmm

from .result import HistoryPoint


class RunRecorder:
    """Every iteration of every stage passes through :meth:`record` (or :meth:`extend`, for the compiled engine's
    history of a stage run without a reporter). It numbers the iterations the way the reporter sees them, keeps
    the energy history, forwards to the user's ``openmm.MinimizationReporter`` with ``args["stage"]`` naming the
    stage, enforces the iteration cap, says when the run must stop (:attr:`stopped`: the reporter asked, or Ctrl-C
    did, which ``stop_requested`` reports), and remembers the lowest-energy positions seen (what an interrupted
    run leaves in the Context).

    The reporter's ``args`` hold the keys OpenMM's own minimizer passes, with their meaning in each stage:
    "system energy" (kJ/mol), "restraint energy" and "restraint strength" (OpenMM's L-BFGS stages pass its
    constraint penalty; every other stage works on the constraint surface itself and has no restraint: 0), and
    "max constraint error" (OpenMM's own value in its stages; elsewhere the largest relative error |r − d|/d of
    the reported positions, from ``constraint_error``); then this package's: "stage" (the stage's name) and,
    where a stage has them, "rms force" and "rebuilds"."""

    def __init__(self, reporter: Optional[openmm.MinimizationReporter] = None, max_iterations: int = 0,
                 constraint_error: Optional[Callable[[np.ndarray], float]] = None,
                 stop_requested: Optional[Callable[[], bool]] = None):
        self.start = time.perf_counter()
        self.reporter = reporter
        self.constraint_error = constraint_error
        self.max_iterations = int(max_iterations)
        self.iterations = 0
        self.history: List[HistoryPoint] = []
        self.reporter_stopped = False        # the reporter asked to stop
        self.interrupted = False             # Ctrl-C asked to stop (``stop_requested`` said so)
        self.stop_requested = stop_requested
        self.best_energy = math.inf
        self.best_positions: Optional[np.ndarray] = None

    @property
    def stopped(self) -> bool:
        """Whether the run must stop: no further step or stage (the reporter asked, or Ctrl-C did)."""
        return self.reporter_stopped or self.check_interrupt()

    def check_interrupt(self) -> bool:
        """Whether Ctrl-C asked the run to stop (asks ``stop_requested``; once it said yes, remembers it)."""
        if not self.interrupted and self.stop_requested is not None and self.stop_requested():
            self.interrupted = True
        return self.interrupted

    @property
    def stop_reason(self) -> str:
        """The stop reason of a stage that ended because the run must stop: "interrupted" or "reporter"."""
        return "interrupted" if self.check_interrupt() else "reporter"

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def iterations_left(self) -> Optional[int]:
        """How many iterations the cap still allows (None: no cap)."""
        if self.max_iterations <= 0:
            return None
        return max(0, self.max_iterations - self.iterations)

    def capped(self, steps: int) -> int:
        """``steps`` limited by the iteration cap."""
        left = self.iterations_left()
        return int(steps) if left is None else min(int(steps), left)

    def record(self, stage: str, energy: float, positions: Optional[np.ndarray],
               gradient: Optional[np.ndarray], extra: Optional[dict] = None) -> bool:
        """Log one iteration; returns True when the run must stop (the reporter's or Ctrl-C's request)."""
        self.history.append(HistoryPoint(stage, self.iterations, self.elapsed(), float(energy)))
        if positions is not None:
            self.note_best(energy, positions)
        if self.reporter is not None:
            error = 0.0
            if positions is not None and self.constraint_error is not None:
                error = float(self.constraint_error(np.asarray(positions).reshape(-1, 3)))
            args = {"system energy": float(energy), "restraint energy": 0.0, "restraint strength": 0.0,
                    "max constraint error": error, "stage": stage}
            if extra:
                args.update(extra)
            x = np.ravel(positions) if positions is not None else np.zeros(0)
            g = np.ravel(gradient) if gradient is not None else np.zeros(0)
            if self.reporter.report(self.iterations, x, g, args):
                self.reporter_stopped = True
        self.iterations += 1
        return self.stopped

    def extend(self, stage: str, energies: Sequence[float], times: Sequence[float], stage_start: float) -> None:
        """Log iterations run without a reporter (compiled engine): ``times`` in seconds since ``stage_start``
        (a ``time.perf_counter()`` value)."""
        offset = stage_start - self.start
        for energy, seconds in zip(energies, times):
            self.history.append(HistoryPoint(stage, self.iterations, offset + float(seconds), float(energy)))
            self.iterations += 1

    def note_best(self, energy: float, positions: np.ndarray) -> None:
        if energy < self.best_energy:
            self.best_energy, self.best_positions = float(energy), np.array(positions, copy=True)
