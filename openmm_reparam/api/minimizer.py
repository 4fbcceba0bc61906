"""The public minimizer: ``minimize(context, ...)``, a drop-in for ``openmm.LocalEnergyMinimizer.minimize``.

What every run does around its method's stages (the method is a plug-in, :mod:`openmm_reparam.methods`):

    start       the start's energy and forces, one force evaluation; the default (``auto``) first applies the
                constraints, as OpenMM's minimizer does, and stops there if that start is already converged
    baseline    (never_worse) OpenMM L-BFGS from the start, remembered, positions reset
    ...         the method's stages (``Method.run``)
    polish      OpenMM L-BFGS to the tolerance (constraints satisfied on exit), finished by a projected L-BFGS
                where constraints keep OpenMM's above it (:func:`~openmm_reparam.methods.lbfgs.polish`)
    result      the method's structure, unless it collapsed into a singularity or the baseline is lower
                (:mod:`.selection`)

``time_budget`` bounds all of it: every stage, the baseline and the polish included, stops at its deadline
(stop reason "deadline"), and the result says whether it converged.

Safety: a start with a non-finite coordinate or a particle absurdly far from all others raises
``InvalidPositionsError`` (:mod:`openmm_reparam.core.validation`), one with a non-finite energy
``NonFiniteEnergyError``, both before anything runs, leaving the Context as it was; any exception restores the
original positions. Ctrl-C (SIGINT) stops the run at the next step of whatever stage runs (Python, compiled,
device or OpenMM's L-BFGS), starts no further stage, leaves the lowest-energy positions seen and raises
KeyboardInterrupt (:mod:`openmm_reparam.engines.interrupts`: in the main thread, while SIGINT's handler is
Python's default; elsewhere KeyboardInterrupt still leaves the best positions, when Python raises it).
"""
from __future__ import annotations

import time
from typing import Any, Dict, Optional, Union

import openmm
import torch
from openmm import unit

from ..core.bridge import EnergyBridge
from ..core.obstacles import find_obstacles
from ..core.platforms import require_openmm_lbfgs
from ..core.units import as_force
from ..core.validation import check_positions
from ..engines import select_runners
from ..engines.interrupts import InterruptWatch
from ..methods.base import Method, RunState
from ..methods.effects import warn_ineffective
from ..methods.lbfgs import polish
from ..run.options import MinimizerOptions
from ..run.recorder import RunRecorder
from ..run.registry import get_method
from ..run.renames import current_options
from ..run.result import MinimizationResult, StageResult
from .selection import choose_result, lbfgs_from, leave_best

DEFAULT_TOLERANCE = 10.0 * unit.kilojoule_per_mole / unit.nanometer


class ReparamMinimizer:
    """Reusable minimizer: ``ReparamMinimizer(method="auto", seed=0, **options).minimize(context, ...)``.

    ``options`` are flat option names (see :mod:`openmm_reparam.run.options`); a name the method does not use
    raises TypeError naming the methods that do, a bad value ValueError.
    """

    def __init__(self, method: Union[str, Method] = "auto", seed: int = 0, **options: Any):
        self.method = get_method(method if isinstance(method, str) else method.name)  # registered methods only
        self.seed = int(seed)
        known = MinimizerOptions.known(self.method.name)
        self.option_values: Dict[str, Any] = current_options(options, known, stacklevel=3)  # former names translated
        self.options = MinimizerOptions.from_kwargs(method=self.method.name, **self.option_values)
        self.engine_used = "python"

    def options_for(self, method: Method) -> MinimizerOptions:
        """The options of ``method`` (what ``auto`` resolved to): the given values that it uses."""
        if method is self.method:
            return self.options
        known = set(MinimizerOptions.known(method.name))
        return MinimizerOptions.from_kwargs(method=method.name,
                                            **{k: v for k, v in self.option_values.items() if k in known})

    def minimize(self, context: openmm.Context, tolerance: Union[float, unit.Quantity] = DEFAULT_TOLERANCE,
                 maxIterations: int = 0, reporter: Optional[openmm.MinimizationReporter] = None
                 ) -> MinimizationResult:
        """Minimize the energy of ``context`` in place; returns a :class:`MinimizationResult`."""
        tolerance = as_force(tolerance)
        if not tolerance > 0:
            raise ValueError(f"tolerance must be > 0 kJ/mol/nm, got {tolerance}")
        method = self.method.resolve(context.getSystem())
        options = self.options_for(method)
        warn_ineffective(self.method, method, self.option_values, options, stacklevel=3)
        bridge = EnergyBridge(context, options.safety.constraint_stiffness)
        original = bridge.current_positions()
        check_positions(original, bridge.periodic, options.safety.far_atom_distance)
        like_openmm = self.method.stops_at_converged_start
        initial_energy = _start_energy(bridge, original, like_openmm)
        watch = InterruptWatch()
        recorder = RunRecorder(reporter, maxIterations, bridge.project.max_error if bridge.has_constraints else None,
                               stop_requested=watch.requested)
        runners = select_runners(options.run.engine, context, bridge.runs_torch_autograd, reporter is not None)
        state = RunState(context, bridge, recorder, tolerance, self.seed, options, runners)
        converged_start = like_openmm and bridge.converged(tolerance)
        _execute(method, state, original, watch, converged_start)
        result = _result(method, self.method, state, initial_energy)
        self.engine_used = result.engine
        return result


def _start_energy(bridge: EnergyBridge, original, constrained: bool) -> float:
    """The start's energy, checked (:meth:`EnergyBridge.checked_energy`): one force evaluation. ``constrained``:
    the constraints are applied first, as OpenMM's minimizer starts (the energy is then that of the constrained
    start); on a non-finite energy the Context gets ``original`` back before the error is raised."""
    if not constrained or not bridge.has_constraints:
        return bridge.checked_energy()
    try:
        bridge.apply_constraints()
        return bridge.checked_energy()
    except BaseException:
        bridge.context.setPositions(original)
        raise


def _execute(method: Method, state: RunState, original, watch: InterruptWatch,
             converged_start: bool = False) -> None:
    """The run around the method's stages, with its safety rules (module docstring), watching for Ctrl-C;
    ``converged_start``: nothing to run (:func:`_stages`)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(state.options.run.torch_threads)
    try:
        with watch:
            try:
                _stages(method, state, converged_start)
                _stop_if_interrupted(state)
            except BaseException as error:
                _after_error(state, original, error)
                raise
    finally:
        torch.set_num_threads(threads)


def _after_error(state: RunState, original, error: BaseException) -> None:
    """Interrupted (KeyboardInterrupt, or any error once Ctrl-C asked to stop, such as OpenMM's SWIG error for a
    second Ctrl-C inside its reporter): the best positions seen, and KeyboardInterrupt raised. Otherwise the
    original positions (the caller re-raises)."""
    if isinstance(error, KeyboardInterrupt) or state.recorder.check_interrupt():
        leave_best(state, original)
        if not isinstance(error, KeyboardInterrupt):
            raise KeyboardInterrupt from error
        return
    state.context.setPositions(original)


def _stop_if_interrupted(state: RunState) -> None:
    """No further stage once Ctrl-C asked the run to stop."""
    if state.recorder.check_interrupt():
        raise KeyboardInterrupt


def _stages(method: Method, state: RunState, converged_start: bool = False) -> None:
    """The stages of the run. ``converged_start``: the start is already converged (``stops_at_converged_start``):
    one stage "start" with no iteration, and the Context as it is, like OpenMM's minimizer there."""
    if converged_start:
        energy = state.bridge.energy()
        state.recorder.record("start", energy, None, None)
        state.add(StageResult("start", 0, 0, 0.0, energy, energy, stop_reason="converged"))
        return
    run = state.options.run
    if run.time_budget is not None:
        state.deadline = time.perf_counter() + run.time_budget
    if not method.polished:  # OpenMM's L-BFGS itself: nothing to compare with or polish
        method.run(state)
        return
    if run.never_worse:
        require_openmm_lbfgs(state.context, "never_worse (it compares with OpenMM's minimizer)")
        state.baseline = lbfgs_from(state, state.start, "baseline")
        _stop_if_interrupted(state)
    method.run(state)
    _stop_if_interrupted(state)
    if state.options.polish.polish:
        state.add(polish(state.bridge, state.recorder, state.tolerance, state.options.polish, state.runners,
                         state.deadline))
        _stop_if_interrupted(state)
    else:
        state.bridge.apply_constraints()
    choose_result(state)


def _result(method: Method, requested: Method, state: RunState, initial_energy: float) -> MinimizationResult:
    bridge = state.bridge
    rms, largest = bridge.force_norms()
    baseline = state.baseline
    return MinimizationResult(
        method=method.name, requested_method=requested.name, seed=state.seed, tolerance=state.tolerance,
        initial_energy=initial_energy, final_energy=bridge.energy(), rms_force=rms, max_force=largest,
        converged=rms <= state.tolerance, stages=state.stages, history=state.recorder.history,
        baseline_energy=None if baseline is None else baseline[0], selected=state.selected,
        interrupted=state.recorder.stopped, engine=state.engines(),
        options=state.options.to_dict(), restarts=state.restarts,
        obstacles=[] if rms <= state.tolerance else find_obstacles(bridge))


def minimize(context: openmm.Context, tolerance: Union[float, unit.Quantity] = DEFAULT_TOLERANCE,
             maxIterations: int = 0, reporter: Optional[openmm.MinimizationReporter] = None, *,
             method: Union[str, Method] = "auto", seed: int = 0, **options: Any) -> MinimizationResult:
    """Minimize ``context`` in place, like ``openmm.LocalEnergyMinimizer.minimize`` with the same first four
    arguments. ``method``: a registered method (its name, ``openmm_reparam.method_names()``, or the Method): "auto"
    (default: the method that measured best for the System's class, :mod:`openmm_reparam.methods.auto`), "gnn"
    (neural-network reparametrization over the slow modes), "linear" (linear slow-mode reparametrization;
    "cg" is its deprecated name), "adam" (Adam on the coordinates), "lbfgs" (OpenMM's L-BFGS alone), "precon"
    (L-BFGS on the coordinates preconditioned by the force-constant Laplacian), "fire" (FIRE on the
    coordinates), or one registered with :func:`openmm_reparam.register_method`. Every method but lbfgs ends with
    the L-BFGS polish.

    ``tolerance`` (kJ/mol/nm, number or Quantity): converged when ‖F‖₂/√N ≤ tolerance. ``maxIterations``
    (0: no limit) caps the iterations of all stages together. ``reporter``: an ``openmm.MinimizationReporter``
    called every iteration of every stage with OpenMM's keys and ``args["stage"]`` naming it; returning True
    stops the run. ``options``: flat option names of the method (:mod:`openmm_reparam.run.options`).

    Ctrl-C stops the run at the next step of any stage, leaves the lowest-energy positions seen and raises
    KeyboardInterrupt; in another thread than the main one, or where SIGINT has a handler of the user's own, the
    run installs nothing and SIGINT does what it did before (:mod:`openmm_reparam.engines.interrupts`).
    """
    name = method if isinstance(method, str) else method.name
    options = current_options(options, MinimizerOptions.known(get_method(name, warn=False).name), stacklevel=3)
    return ReparamMinimizer(method=method, seed=seed, **options).minimize(context, tolerance, maxIterations,
                                                                        reporter)


def minimize_simulation(simulation, tolerance: Union[float, unit.Quantity] = DEFAULT_TOLERANCE,
                        maxIterations: int = 0, reporter: Optional[openmm.MinimizationReporter] = None,
                        **kwargs: Any) -> MinimizationResult:
    """One-line replacement for ``simulation.minimizeEnergy()`` on an ``openmm.app.Simulation``."""
    return minimize(simulation.context, tolerance, maxIterations, reporter, **kwargs)
