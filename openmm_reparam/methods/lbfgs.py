"""OpenMM's own L-BFGS (``LocalEnergyMinimizer``) as stages of a run: method ``lbfgs``, the ``never_worse``
baseline, the declash of ``precon`` and the polish every other method ends with."""
from __future__ import annotations

import math
import time

from typing import Tuple

import numpy as np
import openmm

from ..core.bridge import ContextEnergy
from ..core.platforms import openmm_lbfgs_blocker, require_openmm_lbfgs
from ..engines.precon import PreconSettings, build_preconditioner, precon_stage
from ..engines.precon_compiled import compiled_precon_stage
from ..run.options import PolishOptions
from ..run.recorder import RunRecorder
from ..run.result import StageResult
from .base import Method, RunState


class _ForwardingReporter(openmm.MinimizationReporter):
    """Passes OpenMM L-BFGS iterations to the run recorder, under the stage's name."""

    def __init__(self, recorder: RunRecorder, stage: str):
        super().__init__()
        self.recorder, self.stage, self.count = recorder, stage, 0

    def report(self, iteration, x, grad, args):
        args = {str(k): float(args[k]) for k in args.keys()}  # a SWIG map<string,double>
        energy = args.pop("system energy", math.nan)
        self.count += 1
        positions = np.asarray(x, dtype=np.float64).reshape(-1, 3)
        return self.recorder.record(self.stage, energy, positions, np.asarray(grad), args)


def lbfgs_stage(name: str, bridge: ContextEnergy, recorder: RunRecorder, tolerance: float,
                max_iterations: int = 0) -> StageResult:
    """OpenMM's LocalEnergyMinimizer (L-BFGS with constraint handling) to ``tolerance`` kJ/mol/nm, for at most
    ``max_iterations`` iterations (0: no limit but the run's cap).

    Iterations are forwarded to the recorder, except when the System has a force that runs torch's autograd:
    OpenMM's minimizer keeps the Python lock while it calls a Python reporter, and such a force cannot be
    evaluated then, so the stage runs without per-iteration reports. OpenMM does not expose line-search
    evaluations, so ``energy_evaluations`` counts iterations. As documented for OpenMM's minimizer, with
    constraints it may run more than ``maxIterations`` iterations. On a platform where OpenMM's L-BFGS crashes
    (:mod:`openmm_reparam.core.platforms`) it raises ``UnsupportedPlatformError`` before calling it.
    """
    require_openmm_lbfgs(bridge.context, f"stage {name!r}")
    start = time.perf_counter()
    initial = bridge.energy()
    cap = recorder.iterations_left()
    if max_iterations > 0:
        cap = max_iterations if cap is None else min(cap, max_iterations)
    if cap == 0 or recorder.stopped:
        return StageResult(name, 0, 0, 0.0, initial, initial, stop_reason="cap" if cap == 0 else "reporter")
    forwarding = None if bridge.runs_torch_autograd else _ForwardingReporter(recorder, name)
    openmm.LocalEnergyMinimizer.minimize(bridge.context, tolerance, 0 if cap is None else cap, forwarding)
    final = bridge.energy()
    count = forwarding.count if forwarding is not None else 0
    if count == 0:  # no per-iteration reports: one history point for the stage
        recorder.record(name, final, None, None)
    return StageResult(name, count, count, time.perf_counter() - start, initial, final)


def polish(bridge: ContextEnergy, recorder: RunRecorder, tolerance: float, options: PolishOptions,
           engine_name: str = "python") -> StageResult:
    """L-BFGS restarted (fresh curvature memory) up to ``rounds`` times while it still lowers the energy but
    the forces are above the tolerance: in single or mixed precision its line search can stop early. With
    constraints OpenMM's minimizer ends by projecting onto them, which can leave the package's measure (forces
    without their constraint components) above the tolerance however often it is rerun (measured: 3 of 16 small
    TIP3P boxes at 11-20 kJ/mol/nm); then the polish finishes with a projected L-BFGS on the coordinates (the
    ``precon`` iteration with P = μI, ``finish_*`` options), whose iterates stay on the constraints and which
    stops on that measure; it runs compiled when ``engine_name`` is "cpp".

    A round of OpenMM's L-BFGS that ends higher than it started is undone (measured: from a near-converged
    perturbed SodiumChlorideCrystal its first line search put two ions into contact, +655,000 kJ/mol, reporting no
    iteration), and the projected L-BFGS, whose line search only accepts lower points, finishes instead.

    Where OpenMM's L-BFGS cannot run (OpenCL on a CPU runtime, :mod:`openmm_reparam.core.platforms`) the
    projected L-BFGS is the whole polish."""
    if openmm_lbfgs_blocker(bridge.context) is not None:
        return projected_finish(bridge, recorder, tolerance, options, engine_name)
    total, rejected = None, False
    for _ in range(max(1, options.polish_rounds)):
        stage, rejected = undone_if_higher(bridge, lbfgs_stage, "polish", bridge, recorder, tolerance)
        total = stage if total is None else _merged(total, stage)
        improved = stage.final_energy < stage.initial_energy - 1e-6 * abs(stage.initial_energy)
        if rejected or bridge.force_norms()[0] <= tolerance or recorder.stopped or not improved:
            break
    if ((bridge.has_constraints or rejected) and bridge.force_norms()[0] > tolerance and not recorder.stopped):
        total = _merged(total, projected_finish(bridge, recorder, tolerance, options, engine_name))
    return total


def undone_if_higher(bridge: ContextEnergy, run_stage, *args) -> Tuple[StageResult, bool]:
    """Run ``run_stage(*args)``; if it ended higher than it started (beyond single-precision rounding), put the
    Context back where it was. Returns (the stage, whether it was undone)."""
    start = bridge.current_positions()
    stage = run_stage(*args)
    if not stage.final_energy > stage.initial_energy + 1e-5 * max(1.0, abs(stage.initial_energy)):
        return stage, False
    bridge.set_positions(start)
    stage.final_energy, stage.stop_reason = bridge.energy(), "undone"
    return stage, True


def projected_finish(bridge: ContextEnergy, recorder: RunRecorder, tolerance: float,
                     options: PolishOptions, engine_name: str = "python") -> StageResult:
    """Plain L-BFGS with constraints by projection, to ``finish_tolerance`` × ``tolerance`` (recorded as
    ``polish``), in the plugin when ``engine_name`` is "cpp"."""
    settings = PreconSettings(max_steps=options.finish_steps, memory=options.finish_memory, mu=None,
                              rebuild_distance=math.inf, cutoff=0.0, max_step=options.finish_max_step,
                              tolerance_factor=options.finish_tolerance, atoms="all", laplacian=False)
    positions = bridge.current_positions()
    precon, _ = build_preconditioner(bridge, positions, settings, np.zeros(bridge.n_particles, dtype=bool))
    stage = compiled_precon_stage if engine_name == "cpp" else precon_stage
    return stage(bridge, recorder, tolerance, settings, precon, name="polish")


def _merged(total: StageResult, stage: StageResult) -> StageResult:
    """``total`` extended by a later part of the same stage."""
    total.iterations += stage.iterations
    total.energy_evaluations += stage.energy_evaluations
    total.wall_time += stage.wall_time
    total.final_energy = stage.final_energy
    return total


class LBFGSMethod(Method):
    """OpenMM's ``LocalEnergyMinimizer`` alone: exactly OpenMM's result (no polish, no baseline)."""

    name = "lbfgs"
    summary = "OpenMM's LocalEnergyMinimizer alone"
    polished = False

    def run(self, state: RunState) -> None:
        require_openmm_lbfgs(state.context, "method 'lbfgs'")
        state.add(lbfgs_stage("lbfgs", state.bridge, state.recorder, state.tolerance))
