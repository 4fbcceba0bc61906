"""OpenMM's own L-BFGS (``LocalEnergyMinimizer``) as stages of a run: method ``lbfgs``, the ``never_worse``
baseline, the declash of ``precon`` and the polish every other method ends with."""
from __future__ import annotations

import math
import time

from typing import Optional, Tuple

import numpy as np
import openmm

from ..core.bridge import ContextEnergy
from ..core.platforms import openmm_lbfgs_blocker, require_openmm_lbfgs
from ..engines.precon import PreconSettings, build_preconditioner, precon_stage
from ..engines.precon_compiled import compiled_precon_stage, precon_engine_name
from ..run.options import PolishOptions
from ..run.profile import SystemProfile
from ..run.recorder import RunRecorder
from ..run.result import StageResult
from .auto import SMALL_ATOMS
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

    Iterations are forwarded to the recorder only where something needs them: a user's reporter, or the run's
    iteration cap (``maxIterations``), which must count them. Otherwise the stage runs without a reporter,
    because OpenMM's minimizer does more work per iteration when it has one (measured on HostGuestImplicit, 156
    atoms with 60 constraints: 0.49-0.52 s with a reporter that only counts against 0.34-0.37 s without, about 2
    ms an iteration), and the stage records one history point and 0 iterations (OpenMM does not say how many it
    ran). It also runs without reports when the System has a force that runs torch's autograd: OpenMM's
    minimizer keeps the Python lock while it calls a Python reporter, and such a force cannot be evaluated then.
    OpenMM does not expose line-search evaluations, so ``energy_evaluations`` counts iterations. As documented
    for OpenMM's minimizer, with constraints it may run more than ``maxIterations`` iterations. On a platform
    where OpenMM's L-BFGS crashes (:mod:`openmm_reparam.core.platforms`) it raises ``UnsupportedPlatformError``
    before calling it.
    """
    require_openmm_lbfgs(bridge.context, f"stage {name!r}")
    start = time.perf_counter()
    initial = bridge.energy()
    cap = recorder.iterations_left()
    if max_iterations > 0:
        cap = max_iterations if cap is None else min(cap, max_iterations)
    if cap == 0 or recorder.stopped:
        return StageResult(name, 0, 0, 0.0, initial, initial, stop_reason="cap" if cap == 0 else "reporter")
    reported = (recorder.reporter is not None or recorder.max_iterations > 0) and not bridge.runs_torch_autograd
    forwarding = _ForwardingReporter(recorder, name) if reported else None
    if forwarding is None:
        openmm.LocalEnergyMinimizer.minimize(bridge.context, tolerance, 0 if cap is None else cap)
    else:
        openmm.LocalEnergyMinimizer.minimize(bridge.context, tolerance, 0 if cap is None else cap, forwarding)
    final = bridge.energy()
    count = forwarding.count if forwarding is not None else 0
    if count == 0:  # no per-iteration reports: one history point for the stage
        recorder.note_best(final, bridge.current_positions())
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
    iteration), and the projected L-BFGS, whose line search only accepts lower points, finishes instead. It also
    finishes wherever OpenMM's rounds stop above the tolerance without constraints (measured: the GNN's result on
    openmmtools' CustomGBForceSystem, about -268,000 kJ/mol, where OpenMM's line search gives up in single
    precision).

    Nothing is run from a point already at ``finish_tolerance`` × the tolerance (where ``precon`` stops): OpenMM's
    L-BFGS would start over on its constraint penalty there (measured: 0.1-0.5 s on 156-284-atom molecules
    with HBonds, for no change in energy above 0.1 kJ/mol).

    Where OpenMM's L-BFGS cannot run (OpenCL on a CPU runtime, :mod:`openmm_reparam.core.platforms`) the
    projected L-BFGS is the whole polish."""
    if bridge.force_norms()[0] <= tolerance * options.finish_tolerance:
        return StageResult("polish", 0, 0, 0.0, bridge.energy(), bridge.energy(), stop_reason="converged")
    if openmm_lbfgs_blocker(bridge.context) is not None:
        return projected_finish(bridge, recorder, tolerance, options, engine_name)
    total, rejected = None, False
    for _ in range(max(1, options.polish_rounds)):
        stage, rejected = undone_if_higher(bridge, lbfgs_stage, "polish", bridge, recorder, tolerance,
                                           options.polish_iterations)
        total = stage if total is None else _merged(total, stage)
        improved = stage.final_energy < stage.initial_energy - 1e-6 * abs(stage.initial_energy)
        if rejected or bridge.force_norms()[0] <= tolerance or recorder.stopped or not improved:
            break
    if bridge.force_norms()[0] > tolerance and not recorder.stopped:
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
    return projected_lbfgs("polish", bridge, recorder, tolerance, options.finish_steps, options.finish_memory,
                           options.finish_max_step, options.finish_tolerance, engine_name)


def projected_lbfgs(name: str, bridge: ContextEnergy, recorder: RunRecorder, tolerance: float, steps: int,
                    memory: int, max_step: float, tolerance_factor: float, engine_name: str = "python"
                    ) -> StageResult:
    """Stage ``name``: at most ``steps`` iterations of plain L-BFGS (P = μI) whose iterates stay on the
    constraints, to ``tolerance_factor`` × ``tolerance``; each step moves no atom more than ``max_step`` nm."""
    settings = PreconSettings(max_steps=steps, memory=memory, mu=None, rebuild_distance=math.inf, cutoff=0.0,
                              max_step=max_step, tolerance_factor=tolerance_factor, atoms="all", laplacian=False,
                              matrix="measured")
    positions = bridge.current_positions()
    precon, _ = build_preconditioner(bridge, positions, settings, np.zeros(bridge.n_particles, dtype=bool))
    stage = compiled_precon_stage if engine_name == "cpp" else precon_stage
    return stage(bridge, recorder, tolerance, settings, precon, name=name)


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

    auto_candidate = True

    def auto_rank(self, profile: SystemProfile) -> Optional[float]:
        """Nothing to minimize, few atoms, AMOEBA, or a periodic System without constraints, unless it holds
        molecules in implicit solvent (see :mod:`openmm_reparam.methods.auto`): ranked ahead of every other
        candidate there."""
        if not profile.has_forces or profile.n_movable <= SMALL_ATOMS or profile.amoeba:
            return 0.0
        if profile.periodic and not profile.constrained and not (profile.implicit_solvent and profile.molecular):
            return 0.0
        return None

    def for_auto(self) -> Method:
        return FinishedLBFGSMethod()

    def run(self, state: RunState) -> None:
        require_openmm_lbfgs(state.context, "method 'lbfgs'")
        state.add(lbfgs_stage("lbfgs", state.bridge, state.recorder, state.tolerance))


class FinishedLBFGSMethod(LBFGSMethod):
    """What ``auto`` runs as ``lbfgs``: OpenMM's L-BFGS, then the polish only where its final constraint
    projection left the forces above the tolerance (measured on HostGuestVacuum and HostGuestImplicitGBn in
    benchmarks/RESULTS.md section 10): converged by the package's measure, at no cost where OpenMM got there."""

    def run(self, state: RunState) -> None:
        bridge = state.bridge
        blocked = openmm_lbfgs_blocker(bridge.context) is not None
        if not blocked:  # OpenMM's L-BFGS, with the polish's iteration cap: a default run always ends
            state.add(lbfgs_stage("lbfgs", bridge, state.recorder, state.tolerance,
                                  state.options.polish.polish_iterations))
        # where OpenMM's L-BFGS cannot run, the polish is the projected L-BFGS alone
        if bridge.force_norms()[0] > state.tolerance and not state.recorder.stopped:
            where = precon_engine_name(state.engine.name, bridge, state.recorder)
            state.add(polish(bridge, state.recorder, state.tolerance, state.options.polish, state.engine.name))
            if blocked:
                state.ran_on(where)  # the polish was the projected L-BFGS alone: "opencl"/"cuda" on the device
