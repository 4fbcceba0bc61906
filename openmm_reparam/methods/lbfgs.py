"""OpenMM's own L-BFGS (``LocalEnergyMinimizer``) as stages of a run: method ``lbfgs``, the ``never_worse``
baseline, the declash of ``precon`` and the polish every other method ends with."""
from __future__ import annotations

import math
import time

from typing import Collection, Dict, Optional, Tuple

import numpy as np
import openmm

from ..core.bridge import EnergyBridge
from ..core.platforms import openmm_lbfgs_blocker, require_openmm_lbfgs
from ..engines.openmm_lbfgs import OpenMMLBFGS, default_lbfgs
from ..engines.precon import PreconSettings, build_preconditioner, precon_stage
from ..engines.runners import PreconRunner, StageRunners, python_runners
from ..run.options import MinimizerOptions, PolishOptions
from ..run.profile import SystemProfile
from ..run.recorder import RunRecorder
from ..run.result import StageResult
from .auto import SMALL_ATOMS
from .base import Method, RunState


def lbfgs_stage(name: str, bridge: EnergyBridge, recorder: RunRecorder, tolerance: float,
                max_iterations: int = 0, deadline: Optional[float] = None,
                runner: Optional[OpenMMLBFGS] = None) -> StageResult:
    """OpenMM's LocalEnergyMinimizer (L-BFGS with constraint handling) to ``tolerance`` kJ/mol/nm, for at most
    ``max_iterations`` iterations (0: no limit but the run's cap), until ``deadline`` (a ``time.perf_counter()``
    value; stop reason "deadline"), or until the run must stop (reporter, Ctrl-C).

    ``runner`` (the run's, :class:`~openmm_reparam.engines.openmm_lbfgs.OpenMMLBFGS`; default: the plugin's
    reporter where built) chooses the reporter: a Python one only where something needs the iterations (a user's
    reporter, or the run's iteration cap, ``maxIterations``, which must count them), otherwise the plugin's C++
    reporter (``runLocalEnergyMinimizer``), which only stops it on Ctrl-C or at the deadline and records each
    iteration's energy (the recorder gets them afterwards). A Python reporter costs Python work at every
    iteration (a few percent on CPU cases, more with constraints), the C++ one nothing measurable there
    (benchmarks/RESULTS.md#stopping and benchmarks/RESULTS.md#auto-rules). Where OpenMM's L-BFGS runs into NaN (a force field that is not finite everywhere, a hydrogen on top
    of an acceptor: it then iterates NaN coordinates, without end when it has no iteration cap, or raises
    "Particle coordinate is NaN"), it is stopped at the first non-finite energy and the stage is undone: the
    Context goes back to where the stage began, and the stop reason is "non-finite". OpenMM does not expose
    line-search evaluations, so ``energy_evaluations`` counts iterations. As documented for OpenMM's minimizer, with constraints it may run
    more than ``maxIterations`` iterations. On a platform where OpenMM's L-BFGS crashes
    (:mod:`openmm_reparam.core.platforms`) it raises ``UnsupportedPlatformError`` before calling it.
    """
    require_openmm_lbfgs(bridge.context, f"stage {name!r}")
    start = time.perf_counter()
    initial = bridge.energy()
    cap = recorder.iterations_left()
    if max_iterations > 0:
        cap = max_iterations if cap is None else min(cap, max_iterations)
    if cap == 0 or recorder.stopped or (deadline is not None and start >= deadline):
        reason = "cap" if cap == 0 else recorder.stop_reason if recorder.stopped else "deadline"
        return StageResult(name, 0, 0, 0.0, initial, initial, stop_reason=reason, engine=OpenMMLBFGS.engine)
    if not bridge.has_constraints and bridge.converged(tolerance):
        # already converged (by a measure at least as strict as OpenMM's): OpenMM's L-BFGS would stop after
        # evaluating this same state again; the measurement above already did
        recorder.record(name, initial, None, None)
        return StageResult(name, 0, 0, time.perf_counter() - start, initial, initial, stop_reason="converged")
    before = bridge.current_positions()
    try:
        runner = runner or default_lbfgs()
        count, reason = runner.run(name, bridge, recorder, tolerance, 0 if cap is None else cap, deadline)
        final = bridge.energy()
    except openmm.OpenMMException as error:  # "Particle coordinate is NaN"
        if "nan" not in str(error).lower():
            raise
        count, final = 0, math.nan
    if not math.isfinite(final) or not np.isfinite(bridge.current_positions()).all():
        bridge.set_positions(before)
        final, reason = bridge.energy(), "non-finite"
    recorder.note_best(final, bridge.current_positions())
    if count == 0:  # no per-iteration reports: one history point for the stage
        recorder.record(name, final, None, None)
    return StageResult(name, count, count, time.perf_counter() - start, initial, final, stop_reason=reason,
                       engine=OpenMMLBFGS.engine)


def polish(bridge: EnergyBridge, recorder: RunRecorder, tolerance: float, options: PolishOptions,
           runners: Optional[StageRunners] = None, deadline: Optional[float] = None) -> StageResult:
    """L-BFGS restarted (fresh curvature memory) up to ``rounds`` times while it still lowers the energy but
    the forces are above the tolerance: in single or mixed precision its line search can stop early. With
    constraints OpenMM's minimizer ends by projecting onto them, which can leave the package's measure (forces
    without their constraint components) above the tolerance however often it is rerun (measured on small TIP3P
    boxes, benchmarks/RESULTS.md#everyday-2026-12-01-goals); then the polish finishes with a projected L-BFGS on
    the coordinates (the ``precon`` iteration with P = μI, ``polish_projected_*`` options), whose iterates stay on the
    constraints and which stops on that measure. ``runners``: the run's (default: Python's) for OpenMM's L-BFGS
    and the projected L-BFGS.

    A round of OpenMM's L-BFGS that ends higher than it started is undone (measured: from a near-converged
    perturbed SodiumChlorideCrystal its first line search put two ions into contact, reporting no iteration,
    benchmarks/RESULTS.md#external-suite-2026-12-01), and the projected L-BFGS, whose line search accepts a
    higher point only within the energy's noise, finishes instead. It also finishes wherever OpenMM's rounds stop
    above the tolerance without constraints (measured: the GNN's result on openmmtools' CustomGBForceSystem, where
    OpenMM's line search gives up in single precision, benchmarks/RESULTS.md#auto-rules).

    Nothing is run from a point already at ``polish_projected_tolerance`` × the tolerance (where ``precon``
    stops): OpenMM's L-BFGS would start over on its constraint penalty there (measured on 156-284-atom molecules
    with HBonds: time spent for no change in energy).

    Where OpenMM's L-BFGS cannot run (OpenCL on a CPU runtime, :mod:`openmm_reparam.core.platforms`) the
    projected L-BFGS is the whole polish. Every part stops at ``deadline`` (a ``time.perf_counter()`` value) and
    when the run must stop; the stage's stop reason is then its last part's ("deadline", "interrupted", ...)."""
    runners = runners or python_runners()
    if bridge.converged(tolerance * options.polish_projected_tolerance):
        return StageResult("polish", 0, 0, 0.0, bridge.energy(), bridge.energy(), stop_reason="converged")
    if openmm_lbfgs_blocker(bridge.context) is not None:
        return projected_finish(bridge, recorder, tolerance, options, runners.precon, deadline)
    total, rejected = None, False
    for _ in range(max(1, options.polish_rounds)):
        stage, rejected = undone_if_higher(bridge, lbfgs_stage, "polish", bridge, recorder, tolerance,
                                           options.polish_iterations, deadline, runners.lbfgs)
        total = stage if total is None else _merged(total, stage)
        improved = stage.final_energy < stage.initial_energy - 1e-6 * abs(stage.initial_energy)
        if rejected or bridge.converged(tolerance) or recorder.stopped or not improved or _past(deadline):
            break
    if not bridge.converged(tolerance) and not recorder.stopped and not _past(deadline):
        total = _merged(total, projected_finish(bridge, recorder, tolerance, options, runners.precon, deadline))
    return total


def _past(deadline: Optional[float]) -> bool:
    return deadline is not None and time.perf_counter() >= deadline


def undone_if_higher(bridge: EnergyBridge, run_stage, *args) -> Tuple[StageResult, bool]:
    """Run ``run_stage(*args)``; if it ended higher than it started (beyond single-precision rounding), put the
    Context back where it was. Returns (the stage, whether it was undone)."""
    start = bridge.current_positions()
    stage = run_stage(*args)
    if not stage.final_energy > stage.initial_energy + 1e-5 * max(1.0, abs(stage.initial_energy)):
        return stage, False
    bridge.set_positions(start)
    stage.final_energy, stage.stop_reason = bridge.energy(), "undone"
    return stage, True


def projected_finish(bridge: EnergyBridge, recorder: RunRecorder, tolerance: float,
                     options: PolishOptions, run_precon: PreconRunner = precon_stage,
                     deadline: Optional[float] = None) -> StageResult:
    """Plain L-BFGS with constraints by projection, to ``polish_projected_tolerance`` × ``tolerance`` (recorded as
    ``polish``), by ``run_precon`` (the run's precon runner; default: Python's), until ``deadline``."""
    return projected_lbfgs("polish", bridge, recorder, tolerance, options.polish_projected_steps,
                           options.polish_projected_memory, options.polish_projected_max_step,
                           options.polish_projected_tolerance, run_precon, deadline)


def projected_lbfgs(name: str, bridge: EnergyBridge, recorder: RunRecorder, tolerance: float, steps: int,
                    memory: int, max_step: float, tolerance_factor: float, run_precon: PreconRunner = precon_stage,
                    deadline: Optional[float] = None) -> StageResult:
    """Stage ``name``: at most ``steps`` iterations of plain L-BFGS (P = μI) whose iterates stay on the
    constraints, to ``tolerance_factor`` × ``tolerance``, until ``deadline``; each step moves no atom more than
    ``max_step`` nm; by ``run_precon`` (the run's precon runner; default: Python's)."""
    settings = PreconSettings(max_steps=steps, memory=memory, mu=None, rebuild_distance=math.inf, cutoff=0.0,
                              max_step=max_step, tolerance_factor=tolerance_factor, atoms="all", laplacian=False,
                              matrix="identity", deadline=deadline)
    positions = bridge.current_positions()
    precon, _ = build_preconditioner(bridge, positions, settings, np.zeros(bridge.n_particles, dtype=bool))
    return run_precon(bridge, recorder, tolerance, settings, precon, name=name)


def _merged(total: StageResult, stage: StageResult) -> StageResult:
    """``total`` extended by a later part of the same stage."""
    total.iterations += stage.iterations
    total.energy_evaluations += stage.energy_evaluations
    total.wall_time += stage.wall_time
    total.final_energy = stage.final_energy
    total.stop_reason = stage.stop_reason
    parts = [part for part in (total.engine + "+" + stage.engine).split("+") if part]
    total.engine = "+".join(dict.fromkeys(parts))  # "openmm+cpp": OpenMM's rounds, then the projected finish
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
        state.add(lbfgs_stage("lbfgs", state.bridge, state.recorder, state.tolerance, deadline=state.deadline,
                              runner=state.runners.lbfgs))


class FinishedLBFGSMethod(LBFGSMethod):
    """What ``auto`` runs as ``lbfgs``: OpenMM's L-BFGS, then the polish only where its final constraint
    projection left the forces above the tolerance (measured on HostGuestVacuum and HostGuestImplicitGBn in
    benchmarks/RESULTS.md#external-suite): converged by the package's measure, at no cost where OpenMM got there."""

    def ineffective(self, options: MinimizerOptions, given: Collection[str]) -> Dict[str, str]:
        """Only ``never_worse``: this run's polish goes by the forces, not by the ``polish`` option."""
        return {"never_worse": "auto's lbfgs is OpenMM's L-BFGS itself, the baseline never_worse compares with"}\
            if "never_worse" in given else {}

    def run(self, state: RunState) -> None:
        bridge = state.bridge
        blocked = openmm_lbfgs_blocker(bridge.context) is not None
        if not blocked:  # OpenMM's L-BFGS, with the polish's iteration cap: a default run always ends
            state.add(lbfgs_stage("lbfgs", bridge, state.recorder, state.tolerance,
                                  state.options.polish.polish_iterations, state.deadline, state.runners.lbfgs))
        # where OpenMM's L-BFGS cannot run, the polish is the projected L-BFGS alone
        if not bridge.converged(state.tolerance) and not state.recorder.stopped and not _past(state.deadline):
            state.add(polish(bridge, state.recorder, state.tolerance, state.options.polish, state.runners,
                             state.deadline))
