"""The stages of a run: Adam on generator parameters or on coordinates, and OpenMM's L-BFGS.

Each stage reports every iteration to a :class:`RunRecorder`, which keeps the energy history, forwards
to the user's ``openmm.MinimizationReporter``, enforces the time budget and iteration cap, and remembers
the lowest-energy positions seen (what an interrupted run leaves in the Context).
"""
from __future__ import annotations

import math
import time
from typing import Callable, List, Optional, Sequence

import numpy as np
import openmm
import torch

from .bridge import ContextEnergy, has_collapsed_contact
from .result import HistoryPoint, StageResult


class RunRecorder:
    """Shared bookkeeping of one minimization run across its stages."""

    def __init__(self, reporter: Optional[openmm.MinimizationReporter] = None,
                 max_iterations: int = 0):
        self.start = time.perf_counter()
        self.reporter = reporter
        self.max_iterations = int(max_iterations)
        self.iterations = 0                  # across all stages: the reporter's iteration number
        self.history: List[HistoryPoint] = []
        self.stopped = False                 # the reporter asked to stop
        self.best_energy = math.inf
        self.best_positions: Optional[np.ndarray] = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def iterations_left(self) -> Optional[int]:
        """How many iterations the cap still allows (None: no cap)."""
        if self.max_iterations <= 0:
            return None
        return max(0, self.max_iterations - self.iterations)

    def record(self, stage: str, energy: float, positions: Optional[np.ndarray],
               gradient: Optional[np.ndarray], extra: Optional[dict] = None) -> bool:
        """Log one iteration; returns True when the run must stop (reporter request)."""
        self.history.append(HistoryPoint(stage, self.iterations, self.elapsed(), float(energy)))
        if positions is not None and energy < self.best_energy:
            self.best_energy, self.best_positions = float(energy), np.array(positions, copy=True)
        if self.reporter is not None:
            args = {"system energy": float(energy), "stage": stage}
            if extra:
                args.update(extra)
            x = np.ravel(positions) if positions is not None else np.zeros(0)
            g = np.ravel(gradient) if gradient is not None else np.zeros(0)
            if self.reporter.report(self.iterations, x, g, args):
                self.stopped = True
        self.iterations += 1
        return self.stopped


def adam_stage(name: str, bridge: ContextEnergy, recorder: RunRecorder, parameters: Sequence[torch.Tensor],
               positions_fn: Callable[[], torch.Tensor], *, lr: float, max_steps: int, patience: int,
               clip_norm: float, rel_tol: float, deadline: Optional[float] = None,
               collapse_distance: float = 0.07, spike_factor: float = 3.0,
               after_evaluation: Optional[Callable[[], None]] = None) -> StageResult:
    """Adam on ``parameters`` minimizing the bridge's loss at ``positions_fn()``.

    Each step: X = positions_fn(); loss = E(X) (+ constraint spring); backprop; ``after_evaluation()`` (the
    coordinate stage uses it to put the coordinates back onto the constraints); clip the gradient norm; Adam
    step. Progress is judged on the energy at the evaluated (constrained) positions. Stops after
    ``max_steps``, ``patience`` steps without a relative energy improvement of ``rel_tol``,
    at ``deadline`` (``time.perf_counter()`` value), at the iteration cap or when the reporter asks. The
    Context is left at the best positions found. Parameter order and arithmetic match the C++ engine.

    Collapse guard: Adam's normalized steps can carry an atom over a barrier into a singularity of the
    force field (energy → −∞, forces explode). An evaluation whose largest atomic force exceeds
    ``spike_factor`` × the smallest seen in this stage is *suspect*: it cannot become the best point, and if
    two atoms are closer than ``collapse_distance`` nm there, the stage stops (``collapsed`` is set).
    """
    start = time.perf_counter()
    evaluations_before = bridge.evaluations
    initial_energy = None
    best_positions, best_energy = None, math.inf
    waited = 0
    steps = 0
    calmest = math.inf  # smallest max-atom force seen in this stage
    collapsed = False
    optimizer = torch.optim.Adam(list(parameters), lr=lr)
    cap = recorder.iterations_left()
    max_steps = int(max_steps) if cap is None else min(int(max_steps), cap)
    for _ in range(max_steps):
        if recorder.stopped or (deadline is not None and time.perf_counter() >= deadline):
            break
        optimizer.zero_grad()
        loss = bridge(positions_fn())
        loss.backward()
        if after_evaluation is not None:
            after_evaluation()
        torch.nn.utils.clip_grad_norm_(parameters, clip_norm)
        optimizer.step()
        steps += 1
        energy = bridge.last_energy
        if initial_energy is None:
            initial_energy = energy
        calmest = min(calmest, bridge.last_max_force)
        suspect = bridge.last_max_force > spike_factor * calmest
        if suspect and has_collapsed_contact(bridge.last_positions, bridge.movable, collapse_distance):
            collapsed = True
            break
        if not suspect and (energy < best_energy - rel_tol * abs(best_energy) or best_positions is None):
            best_positions, best_energy = bridge.last_positions.copy(), energy
            waited = 0
        else:
            waited += 1
        if recorder.record(name, energy, bridge.last_positions, -bridge.last_forces) or waited >= patience:
            break
    if best_positions is not None:
        bridge.set_positions(best_positions)
    return StageResult(name, steps, bridge.evaluations - evaluations_before, time.perf_counter() - start,
                       initial_energy, best_energy if best_positions is not None else None, collapsed)


class _ForwardingReporter(openmm.MinimizationReporter):
    """Passes OpenMM L-BFGS iterations to the run recorder, under the stage's name."""

    def __init__(self, recorder: RunRecorder, stage: str):
        super().__init__()
        self.recorder = recorder
        self.stage = stage
        self.count = 0
        self.first_energy = None
        self.last_energy = None

    def report(self, iteration, x, grad, args):
        args = {str(k): float(args[k]) for k in args.keys()}  # a SWIG map<string,double>
        energy = args.get("system energy", math.nan)
        self.count += 1
        if self.first_energy is None:
            self.first_energy = energy
        self.last_energy = energy
        positions = np.asarray(x, dtype=np.float64).reshape(-1, 3)
        extra = {k: v for k, v in args.items() if k != "system energy"}
        return self.recorder.record(self.stage, energy, positions, np.asarray(grad), extra)


def lbfgs_stage(name: str, context: openmm.Context, recorder: RunRecorder, tolerance: float,
                energy_fn: Callable[[], float]) -> StageResult:
    """OpenMM's own LocalEnergyMinimizer (L-BFGS with constraint handling) to ``tolerance``.

    Its iterations are forwarded to the recorder. OpenMM does not expose its line-search evaluations, so the
    stage's ``energy_evaluations`` counts iterations. As documented for OpenMM's minimizer, with constraints it
    may run more than ``maxIterations`` iterations (repeated rounds with stiffer constraint springs).
    """
    start = time.perf_counter()
    initial = energy_fn()
    forwarding = _ForwardingReporter(recorder, name)
    cap = recorder.iterations_left()
    if cap == 0 or recorder.stopped:
        return StageResult(name, 0, 0, 0.0, initial, initial)
    saved = context.getState(getPositions=True)
    max_iterations = 0 if cap is None else cap
    try:
        openmm.LocalEnergyMinimizer.minimize(context, tolerance, max_iterations, forwarding)
    except openmm.OpenMMException as error:
        if "GIL" not in str(error):
            raise
        # A force computed by torch (openmmtorch.TorchForce) cannot run backward while OpenMM holds the
        # Python lock for a Python reporter: minimize again without per-iteration reports.
        context.setState(saved)
        openmm.LocalEnergyMinimizer.minimize(context, tolerance, max_iterations)
        forwarding.count = 0
    final = energy_fn()
    if forwarding.count == 0:
        recorder.record(name, final, None, None)
    return StageResult(name, forwarding.count, forwarding.count, time.perf_counter() - start, initial, final)
