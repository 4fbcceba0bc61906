"""The public minimizer: ``minimize(context, ...)``, a drop-in for ``openmm.LocalEnergyMinimizer.minimize``.

A run is a sequence of stages on the user's own Context:

    baseline  (never_worse) OpenMM L-BFGS from the start, remembered, positions reset
    slow_modes, fit         (gnn, cg) the graph and the generator, fitted to the start
    reparam                 (gnn, cg) Adam on the generator parameters against the force-field energy
    fine / adam             Adam on the coordinates
    polish                  OpenMM L-BFGS to the tolerance (constraints satisfied on exit)

Safety: a non-finite start raises ``NonFiniteEnergyError`` and leaves the Context as it was; any exception
restores the original positions; KeyboardInterrupt leaves the best positions seen and is re-raised.
"""
from __future__ import annotations

import math
import time
import warnings
from typing import Any, Optional, Tuple, Union

import numpy as np
import openmm
import torch
from openmm import unit

from .bridge import ContextEnergy, NonFiniteEnergyError, force_norms, has_collapsed_contact
from .generators import GNNGenerator, LinearModeGenerator
from .options import METHODS, MinimizerOptions
from .result import MinimizationResult, StageResult
from .slow_modes import compute_slow_modes
from .stages import RunRecorder, adam_stage, lbfgs_stage
from .units import as_force, as_positions

DEFAULT_TOLERANCE = 10.0 * unit.kilojoule_per_mole / unit.nanometer
REPARAM_SHARE = 0.7  # share of the remaining time budget the reparam stage may use before the fine stage
POLISH_ROUNDS = 3    # L-BFGS restarts at most, while the forces are above the tolerance


def build_generator(context: openmm.Context, method: str, seed: int, options: MinimizerOptions,
                    positions: Optional[np.ndarray] = None) -> Tuple[torch.nn.Module, list]:
    """Slow modes of the Context's System at ``positions`` (default: the Context's) and the generator for
    ``method`` ("gnn" or "cg"), fitted to those positions. Returns (generator, [StageResult, ...])."""
    x0 = as_positions(context.getState(getPositions=True).getPositions(asNumpy=True)) \
        if positions is None else as_positions(positions)
    n = len(x0)
    modes = compute_slow_modes(context, x0, n_modes=min(options.n_modes, max(1, n - 1)),
                               method=options.slow_modes, samples=options.hessian_samples,
                               perturbation=options.hessian_perturbation, seed=seed)
    stages = [StageResult("slow_modes", 0, modes.force_evaluations, modes.wall_time)]
    if method == "cg":
        return LinearModeGenerator(modes.vectors, x0), stages
    start = time.perf_counter()
    generator = GNNGenerator(modes.vectors, x0, hidden=options.hidden, layers=options.layers, seed=seed)
    generator.fit(x0, steps=options.fit_steps, lr=options.fit_lr, tolerance=options.fit_tolerance)
    fit = StageResult("fit", generator.fit_iterations, 0, time.perf_counter() - start)
    return generator, stages + [fit]


class ReparamMinimizer:
    """Reusable minimizer: ``ReparamMinimizer(method="gnn", seed=0, **options).minimize(context, ...)``.

    See :class:`openmm_reparam.options.MinimizerOptions` for the options.
    """

    def __init__(self, method: str = "gnn", seed: int = 0, **options: Any):
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.method = method
        self.seed = int(seed)
        self.options = MinimizerOptions.from_kwargs(**options)
        self.engine_used = "python"

    # -- public ------------------------------------------------------------------------------------------
    def minimize(self, context: openmm.Context, tolerance: Union[float, unit.Quantity] = DEFAULT_TOLERANCE,
                 maxIterations: int = 0, reporter: Optional[openmm.MinimizationReporter] = None
                 ) -> MinimizationResult:
        """Minimize the energy of ``context`` in place; returns a :class:`MinimizationResult`."""
        tolerance = as_force(tolerance)
        if not tolerance > 0:
            raise ValueError(f"tolerance must be > 0 kJ/mol/nm, got {tolerance}")
        torch.manual_seed(self.seed)
        bridge = ContextEnergy(context, self.options.constraint_stiffness)
        original = context.getState(getPositions=True).getPositions(asNumpy=True)
        initial_energy = self._checked_start_energy(bridge, context)
        recorder = RunRecorder(reporter, maxIterations)
        threads = torch.get_num_threads()
        torch.set_num_threads(self.options.torch_threads)
        try:
            result = self._run(context, bridge, recorder, tolerance, initial_energy)
        except KeyboardInterrupt:
            self._leave_best(context, bridge, recorder, original)
            raise
        except BaseException:
            context.setPositions(original)
            raise
        finally:
            torch.set_num_threads(threads)
        return result

    # -- internals ---------------------------------------------------------------------------------------
    def _checked_start_energy(self, bridge: ContextEnergy, context: openmm.Context) -> float:
        state = context.getState(getEnergy=True, getForces=True, groups=bridge.groups)
        energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        forces = state.getForces(asNumpy=True)._value
        if not math.isfinite(energy) or not np.isfinite(forces).all():
            raise NonFiniteEnergyError(
                f"the starting structure has a non-finite energy ({energy}) or non-finite forces; "
                "check for overlapping or coincident atoms, NaN coordinates or missing parameters. "
                "The Context was left unchanged.")
        return energy

    def _energy(self, bridge: ContextEnergy) -> float:
        state = bridge.context.getState(getEnergy=True, groups=bridge.groups)
        return state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)

    def _leave_best(self, context, bridge, recorder, original) -> None:
        """On interrupt: the lowest-energy positions seen (constraints applied), else the original ones."""
        candidates = [(recorder.best_energy, recorder.best_positions), (bridge.best_energy, bridge.best_positions),
                      (self._energy(bridge), bridge.current_positions())]  # the compiled engine's last state
        energy, best = min(((e, p) for e, p in candidates if p is not None), key=lambda c: c[0])
        if not np.isfinite(energy):
            context.setPositions(original)
            return
        bridge.set_positions(best)
        if bridge.has_constraints:
            context.applyConstraints(bridge.constraint_tolerance)

    def _run(self, context, bridge, recorder, tolerance, initial_energy) -> MinimizationResult:
        opts = self.options
        stages = []
        start_positions = bridge.current_positions()
        energy_fn = lambda: self._energy(bridge)  # noqa: E731
        baseline = None
        if self.method == "lbfgs" or opts.never_worse:
            stage = lbfgs_stage("baseline" if self.method != "lbfgs" else "lbfgs", context, recorder,
                                tolerance, energy_fn)
            stages.append(stage)
            if self.method == "lbfgs":
                return self._result(context, bridge, recorder, tolerance, initial_energy, stages, None, "method")
            baseline = (stage.final_energy, bridge.current_positions())
            bridge.set_positions(start_positions)

        deadline = None if opts.time_budget is None else time.perf_counter() + opts.time_budget
        generator = None
        if self.method in ("gnn", "cg"):
            generator, setup = build_generator(context, self.method, self.seed, opts)
            stages += setup
            fine_name, fine_steps = "fine", opts.fine_steps
        else:  # adam: the whole run on the coordinates
            fine_name, fine_steps = "adam", opts.steps + opts.fine_steps
        if self._use_cpp():
            stages += self._cpp_stages(context, bridge, recorder, tolerance, generator, deadline, fine_name,
                                       fine_steps, energy_fn)
        else:
            stages += self._python_stages(context, bridge, recorder, tolerance, generator, deadline,
                                          fine_name, fine_steps, energy_fn)

        selected = "method"
        collapsed = self._collapsed(bridge)
        if collapsed:
            warnings.warn("openmm-reparam: the optimized structure fell into a force-field singularity (atoms "
                          f"closer than {opts.collapse_distance} nm); falling back on OpenMM's L-BFGS result")
            if baseline is None:
                ours = bridge.current_positions()
                bridge.set_positions(start_positions)
                stage = lbfgs_stage("baseline", context, recorder, tolerance, energy_fn)
                stages.append(stage)
                baseline = (stage.final_energy, bridge.current_positions())
                bridge.set_positions(ours)
        if baseline is not None:
            # prefer a physical structure, then the lower energy
            baseline_collapsed = self._collapsed(bridge, baseline[1])
            if (baseline_collapsed, baseline[0]) < (collapsed, self._energy(bridge)):
                bridge.set_positions(baseline[1])
                selected = "baseline"
        return self._result(context, bridge, recorder, tolerance, initial_energy, stages,
                            None if baseline is None else baseline[0], selected)

    def _collapsed(self, bridge: ContextEnergy, positions: Optional[np.ndarray] = None) -> bool:
        """Whether ``positions`` (default: the Context's) sit in a force-field singularity."""
        if positions is None:
            positions = bridge.current_positions()
        _, _, _, forces = self._evaluate_forces(bridge, positions)
        return has_collapsed_contact(positions, bridge.movable, self.options.collapse_distance, forces,
                                     self.options.collapse_force)

    def _evaluate_forces(self, bridge: ContextEnergy, positions: np.ndarray):
        """Evaluate at ``positions`` and put the Context's previous positions back."""
        current = bridge.current_positions()
        loss, gradient, energy, _ = bridge.evaluate(positions)
        forces = bridge.last_forces
        bridge.set_positions(current)
        return loss, gradient, energy, forces

    def _use_cpp(self) -> bool:
        """The compiled engine for engine="cpp" (an error if it is not built) or "auto" (when it is built)."""
        if self.options.engine == "python":
            return False
        from . import cpp_engine
        if cpp_engine.cpp_available():
            return True
        if self.options.engine == "cpp":
            raise RuntimeError(cpp_engine.unavailable_reason())
        return False

    def _cpp_stages(self, context, bridge, recorder, tolerance, generator, deadline, fine_name, fine_steps,
                    energy_fn) -> list:
        """The same stages in the compiled engine. A TorchForce cannot run inside it while a Python reporter
        holds the interpreter lock; then the stages are rerun in Python from where they began."""
        from . import cpp_engine
        start = context.getState(getPositions=True)
        history_length, iterations = len(recorder.history), recorder.iterations
        try:
            stages = cpp_engine.run_stages(context, generator, tolerance=tolerance, options=self.options,
                                           recorder=recorder, deadline=deadline, fine_name=fine_name,
                                           fine_steps=fine_steps)[0]
            self.engine_used = "cpp"
            return stages
        except openmm.OpenMMException as error:
            if "GIL" not in str(error):
                raise
        context.setState(start)
        del recorder.history[history_length:]
        recorder.iterations = iterations
        return self._python_stages(context, bridge, recorder, tolerance, generator, deadline, fine_name,
                                   fine_steps, energy_fn)

    def _python_stages(self, context, bridge, recorder, tolerance, generator, deadline, fine_name, fine_steps,
                       energy_fn) -> list:
        """reparam (with a generator) -> Adam on coordinates -> polish, in Python (openmm_reparam.stages)."""
        opts = self.options
        stages = []
        common = dict(clip_norm=opts.clip_norm, rel_tol=opts.rel_tol, collapse_distance=opts.collapse_distance)
        if generator is not None:
            reparam_deadline = None if deadline is None else \
                time.perf_counter() + REPARAM_SHARE * max(0.0, deadline - time.perf_counter())
            stages.append(adam_stage("reparam", bridge, recorder, generator.ordered_parameters(), generator,
                                     lr=opts.lr, max_steps=opts.steps, patience=opts.patience,
                                     deadline=reparam_deadline, **common))
        coordinates = torch.nn.Parameter(torch.as_tensor(bridge.current_positions(), dtype=torch.float64))

        def onto_constraints() -> None:  # projected gradient descent: keep the coordinates constrained
            if bridge.has_constraints:
                coordinates.data.copy_(torch.from_numpy(bridge.last_positions))

        stages.append(adam_stage(fine_name, bridge, recorder, [coordinates], lambda: coordinates,
                                 lr=opts.fine_lr, max_steps=fine_steps, patience=opts.fine_patience,
                                 deadline=deadline, after_evaluation=onto_constraints, **common))
        if opts.polish:
            stages.append(self._polish(context, bridge, recorder, tolerance, energy_fn))
        elif bridge.has_constraints:
            context.applyConstraints(bridge.constraint_tolerance)
        self.engine_used = "python"
        return stages

    def _polish(self, context, bridge, recorder, tolerance, energy_fn) -> StageResult:
        """OpenMM's L-BFGS, restarted (fresh curvature memory) while it still lowers the energy but the
        forces are above the tolerance: in single or mixed precision its line search can stop early."""
        total = None
        for _ in range(POLISH_ROUNDS):
            stage = lbfgs_stage("polish", context, recorder, tolerance, energy_fn)
            if total is None:
                total = stage
            else:
                total.iterations += stage.iterations
                total.energy_evaluations += stage.energy_evaluations
                total.wall_time += stage.wall_time
                total.final_energy = stage.final_energy
            if (self._force_norms(context, bridge)[0] <= tolerance or recorder.stopped
                    or not stage.final_energy < stage.initial_energy - 1e-6 * abs(stage.initial_energy)):
                break
        return total

    def _force_norms(self, context, bridge) -> Tuple[float, float]:
        """(‖F‖₂/√N, max |F_i|) over movable particles, constraint components removed."""
        state = context.getState(getForces=True, getPositions=True, groups=bridge.groups)
        forces = np.array(state.getForces(asNumpy=True)._value, dtype=np.float64)
        if bridge.has_constraints:
            forces = bridge.project(forces, np.array(state.getPositions(asNumpy=True)._value, dtype=np.float64))
        return force_norms(forces, bridge.movable)

    def _result(self, context, bridge, recorder, tolerance, initial_energy, stages, baseline_energy,
                selected) -> MinimizationResult:
        state = context.getState(getEnergy=True, groups=bridge.groups)
        rms, largest = self._force_norms(context, bridge)
        return MinimizationResult(
            method=self.method, seed=self.seed, tolerance=tolerance, initial_energy=initial_energy,
            final_energy=state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
            rms_force=rms, max_force=largest, converged=rms <= tolerance, stages=stages,
            history=recorder.history, baseline_energy=baseline_energy, selected=selected,
            interrupted=recorder.stopped, engine=self.engine_used, options=self.options.to_dict())


def minimize(context: openmm.Context, tolerance: Union[float, unit.Quantity] = DEFAULT_TOLERANCE,
             maxIterations: int = 0, reporter: Optional[openmm.MinimizationReporter] = None, *,
             method: str = "gnn", seed: int = 0, **options: Any) -> MinimizationResult:
    """Minimize ``context`` in place, like ``openmm.LocalEnergyMinimizer.minimize`` with the same first four
    arguments, by neural-network reparametrization (``method="gnn"``), linear slow-mode reparametrization
    ("cg"), Adam on coordinates ("adam") or OpenMM's L-BFGS alone ("lbfgs").

    ``tolerance`` (kJ/mol/nm, number or Quantity): converged when ‖F‖₂/√N ≤ tolerance. ``maxIterations``
    (0: no limit) caps the iterations of all stages together. ``reporter``: an ``openmm.MinimizationReporter``
    called every iteration of every stage (``args["stage"]`` names it); returning True stops the run.
    ``options``: see :class:`openmm_reparam.options.MinimizerOptions`.
    """
    return ReparamMinimizer(method=method, seed=seed, **options).minimize(context, tolerance, maxIterations,
                                                                        reporter)


def minimize_simulation(simulation, tolerance: Union[float, unit.Quantity] = DEFAULT_TOLERANCE,
                        maxIterations: int = 0, reporter: Optional[openmm.MinimizationReporter] = None,
                        **kwargs: Any) -> MinimizationResult:
    """One-line replacement for ``simulation.minimizeEnergy()`` on an ``openmm.app.Simulation``."""
    return minimize(simulation.context, tolerance, maxIterations, reporter, **kwargs)
