"""The public minimizer: ``minimize(context, ...)``, a drop-in for ``openmm.LocalEnergyMinimizer.minimize``.

What every run does around its method's stages (the method is a plug-in, :mod:`openmm_reparam.methods`):

    baseline    (never_worse) OpenMM L-BFGS from the start, remembered, positions reset
    ...         the method's stages (``Method.run``), within the time budget's deadline
    polish      OpenMM L-BFGS to the tolerance (constraints satisfied on exit), finished by a projected L-BFGS
                where constraints keep OpenMM's above it (:func:`~openmm_reparam.methods.lbfgs.polish`)
    result      the method's structure, unless it collapsed into a singularity or the baseline is lower
                (:mod:`.selection`)

Safety: a non-finite start raises ``NonFiniteEnergyError`` and leaves the Context as it was; any exception
restores the original positions; KeyboardInterrupt leaves the best positions seen and is re-raised.
"""
from __future__ import annotations

import time
from typing import Any, Dict, Optional, Union

import openmm
import torch
from openmm import unit

from ..core.bridge import ContextEnergy
from ..core.obstacles import find_obstacles
from ..core.platforms import require_openmm_lbfgs
from ..core.units import as_force
from ..engines import select_engine
from ..methods.base import Method, RunState
from ..methods.lbfgs import polish
from ..run.options import MinimizerOptions
from ..run.recorder import RunRecorder
from ..run.registry import get_method
from ..run.result import MinimizationResult
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
        self.option_values: Dict[str, Any] = dict(options)
        self.options = MinimizerOptions.from_kwargs(method=self.method.name, **options)
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
        bridge = ContextEnergy(context, options.safety.constraint_stiffness)
        original = bridge.current_positions()
        initial_energy = bridge.checked_energy()
        recorder = RunRecorder(reporter, maxIterations, bridge.project.max_error if bridge.has_constraints else None)
        engine = select_engine(options.run.engine, bridge.runs_torch_autograd, reporter is not None)
        state = RunState(context, bridge, recorder, tolerance, self.seed, options, engine)
        _execute(method, state, original)
        result = _result(method, self.method, state, initial_energy)
        self.engine_used = result.engine
        return result


def _execute(method: Method, state: RunState, original) -> None:
    """The run around the method's stages, with its safety rules (module docstring)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(state.options.run.torch_threads)
    try:
        _stages(method, state)
    except KeyboardInterrupt:
        leave_best(state, original)
        raise
    except BaseException:
        state.context.setPositions(original)
        raise
    finally:
        torch.set_num_threads(threads)


def _stages(method: Method, state: RunState) -> None:
    run = state.options.run
    if not method.polished:  # OpenMM's L-BFGS itself: nothing to compare with or polish
        method.run(state)
        return
    if run.never_worse:
        require_openmm_lbfgs(state.context, "never_worse (it compares with OpenMM's minimizer)")
        state.baseline = lbfgs_from(state, state.start, "baseline")
    if run.time_budget is not None:
        state.deadline = time.perf_counter() + run.time_budget
    method.run(state)
    if state.options.polish.polish:
        state.add(polish(state.bridge, state.recorder, state.tolerance, state.options.polish, state.engine.name))
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
        interrupted=state.recorder.stopped, engine="+".join(sorted(state.engines_used)) or state.engine.name,
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
    (L-BFGS on the coordinates preconditioned by the force-constant Laplacian), or one registered with
    :func:`openmm_reparam.register_method`. Every method but lbfgs ends with the L-BFGS polish.

    ``tolerance`` (kJ/mol/nm, number or Quantity): converged when ‖F‖₂/√N ≤ tolerance. ``maxIterations``
    (0: no limit) caps the iterations of all stages together. ``reporter``: an ``openmm.MinimizationReporter``
    called every iteration of every stage with OpenMM's keys and ``args["stage"]`` naming it; returning True
    stops the run. ``options``: flat option names of the method (:mod:`openmm_reparam.run.options`).
    """
    return ReparamMinimizer(method=method, seed=seed, **options).minimize(context, tolerance, maxIterations,
                                                                        reporter)


def minimize_simulation(simulation, tolerance: Union[float, unit.Quantity] = DEFAULT_TOLERANCE,
                        maxIterations: int = 0, reporter: Optional[openmm.MinimizationReporter] = None,
                        **kwargs: Any) -> MinimizationResult:
    """One-line replacement for ``simulation.minimizeEnergy()`` on an ``openmm.app.Simulation``."""
    return minimize(simulation.context, tolerance, maxIterations, reporter, **kwargs)
