"""The public minimizer: ``minimize(context, ...)``, a drop-in for ``openmm.LocalEnergyMinimizer.minimize``.

The orchestrator owns the run: the stage order, the optional comparison run, the time budget and iteration cap
(through the recorder), best-positions tracking, the polish and the result. An engine (:mod:`..engines`) runs
only the inner Adam loop of a stage.

    baseline    (never_worse) OpenMM L-BFGS from the start, remembered, positions reset
    slow_modes, fit         (gnn, linear) the graph and the generator, fitted to the start
    reparam                 (gnn, linear) Adam on the generator parameters against the force-field energy
    restart1..K             (restarts > 0) latent-space restarts of reparam, the best kept (restarts.py)
    fine / adam             Adam on the coordinates
    declash                 (precon) a few OpenMM L-BFGS iterations out of the start's clashes
    precon_setup, precon    (precon) L-BFGS on the coordinates preconditioned by the force-constant Laplacian
    polish                  OpenMM L-BFGS to the tolerance (constraints satisfied on exit), finished by a projected
                            L-BFGS where constraints keep OpenMM's above it (lbfgs.polish)

Safety: a non-finite start raises ``NonFiniteEnergyError`` and leaves the Context as it was; any exception
restores the original positions; KeyboardInterrupt leaves the best positions seen and is re-raised.
"""
from __future__ import annotations

import time
import warnings
from typing import Any, List, Optional, Tuple, Union

import numpy as np
import openmm
import torch
from openmm import unit

from ..core.atoms import has_collapsed_contact
from ..core.bridge import ContextEnergy
from ..core.units import as_force
from ..engines import AdamStageSettings, select_engine, stage_engine
from ..reparam.build import build_generator
from .lbfgs import lbfgs_stage, polish
from .options import MinimizerOptions, canonical_method, resolve_auto
from .precon import PreconSettings, precon_setup, precon_stage
from .recorder import RunRecorder
from .restarts import latent_search
from .result import MinimizationResult, StageResult

DEFAULT_TOLERANCE = 10.0 * unit.kilojoule_per_mole / unit.nanometer


class ReparamMinimizer:
    """Reusable minimizer: ``ReparamMinimizer(method="auto", seed=0, **options).minimize(context, ...)``.

    See :class:`openmm_reparam.optimize.options.MinimizerOptions` for the options.
    """

    def __init__(self, method: str = "auto", seed: int = 0, **options: Any):
        self.method = canonical_method(method)
        self.seed = int(seed)
        self.options = MinimizerOptions.from_kwargs(**options)
        self.engine_used = "python"

    def minimize(self, context: openmm.Context, tolerance: Union[float, unit.Quantity] = DEFAULT_TOLERANCE,
                 maxIterations: int = 0, reporter: Optional[openmm.MinimizationReporter] = None
                 ) -> MinimizationResult:
        """Minimize the energy of ``context`` in place; returns a :class:`MinimizationResult`."""
        tolerance = as_force(tolerance)
        if not tolerance > 0:
            raise ValueError(f"tolerance must be > 0 kJ/mol/nm, got {tolerance}")
        run = _Run(self, context, tolerance, RunRecorder(reporter, maxIterations))
        result = run.execute()
        self.engine_used = result.engine
        return result


class _Run:
    """One minimization of one Context: the state the stages share."""

    def __init__(self, minimizer: ReparamMinimizer, context: openmm.Context, tolerance: float,
                 recorder: RunRecorder):
        self.requested_method, self.seed, self.options = minimizer.method, minimizer.seed, minimizer.options
        self.method = self.requested_method
        if self.method == "auto":
            self.method = resolve_auto(context.getSystem())
        self.context, self.tolerance, self.recorder = context, tolerance, recorder
        self.bridge = ContextEnergy(context, self.options.safety.constraint_stiffness)
        self.original = context.getState(getPositions=True).getPositions(asNumpy=True)
        self.initial_energy = self.bridge.checked_energy()
        self.engine = select_engine(self.options.run.engine, self.bridge.runs_torch_autograd,
                                    recorder.reporter is not None)
        self.stages: List[StageResult] = []
        self.engines_used = set()
        self.baseline: Optional[Tuple[float, np.ndarray]] = None
        self.selected = "method"
        self.restarts: List[dict] = []

    def execute(self) -> MinimizationResult:
        threads = torch.get_num_threads()
        torch.set_num_threads(self.options.run.torch_threads)
        try:
            self._stages()
        except KeyboardInterrupt:
            self._leave_best()
            raise
        except BaseException:
            self.context.setPositions(self.original)
            raise
        finally:
            torch.set_num_threads(threads)
        return self._result()

    # -- the stage order ---------------------------------------------------------------------------------
    def _stages(self) -> None:
        if self.method == "lbfgs":
            self.stages.append(lbfgs_stage("lbfgs", self.bridge, self.recorder, self.tolerance))
            return
        start = self.bridge.current_positions()
        if self.options.run.never_worse:
            self.baseline = self._lbfgs_from(start, "baseline")
        budget = self.options.run.time_budget
        deadline = None if budget is None else time.perf_counter() + budget
        if self.method in ("gnn", "linear"):
            generator, setup = build_generator(self.context, self.method, self.seed, self.options, start)
            self.stages += setup
            reparam_deadline = self._reparam_deadline(deadline)
            first = self._adam_stage("reparam", generator, reparam_deadline)
            self.restarts = latent_search(self, generator, first, reparam_deadline, self._adam_stage)
            self._adam_stage("fine", None, deadline)
        elif self.method == "precon":
            self._precon_stages(deadline)
        else:
            self._adam_stage("adam", None, deadline)
        if self.options.run.polish:
            self.stages.append(polish(self.bridge, self.recorder, self.tolerance, self.options.run.polish_rounds))
        else:
            self.bridge.apply_constraints()
        self._choose_result(start)

    def _reparam_deadline(self, deadline: Optional[float]) -> Optional[float]:
        if deadline is None:
            return None
        now = time.perf_counter()
        return now + self.options.run.reparam_share * max(0.0, deadline - now)

    def _adam_stage(self, name: str, generator: Optional[torch.nn.Module], deadline: Optional[float]
                    ) -> Optional[StageResult]:
        settings = self.stage_settings(name, deadline)
        if settings.max_steps <= 0:
            return None
        engine = stage_engine(self.engine, generator, self.options.reparam.reparam_optimizer)
        self.stages.append(engine.adam_stage(self.bridge, self.recorder, generator, settings))
        self.engines_used.add(engine.name)
        return self.stages[-1]

    def stage_settings(self, name: str, deadline: Optional[float]) -> AdamStageSettings:
        """The engine's settings for stage ``name`` ("reparam", "restart<k>", "fine" or "adam"), from the options
        table."""
        o = self.options
        if name == "reparam" or name.startswith("restart"):
            lr, steps, patience = o.reparam.lr, o.reparam.steps, o.reparam.patience
        else:
            lr, patience = o.coordinates.fine_lr, o.coordinates.fine_patience
            steps = o.coordinates.fine_steps + (o.reparam.steps if name == "adam" else 0)
        return AdamStageSettings(
            name=name, lr=lr, max_steps=steps, patience=patience, clip_norm=o.reparam.clip_norm,
            rel_tol=o.reparam.rel_tol, collapse_distance=o.safety.collapse_distance,
            spike_factor=o.safety.spike_factor, constraint_stiffness=o.safety.constraint_stiffness,
            progress_window=o.run.progress_window, progress_fraction=o.run.progress_fraction,
            torch_threads=o.run.torch_threads, deadline=deadline)

    def _precon_stages(self, deadline: Optional[float]) -> None:
        o = self.options.precon
        settings = PreconSettings(
            max_steps=o.precon_steps, memory=o.precon_memory, mu=o.precon_mu,
            rebuild_distance=o.precon_rebuild_distance, cutoff=o.precon_cutoff, max_step=o.precon_max_step,
            tolerance_factor=o.precon_tolerance, deadline=deadline)
        if self.recorder.capped(settings.max_steps) <= 0:
            return
        if o.precon_declash > 0:
            self.stages.append(lbfgs_stage("declash", self.bridge, self.recorder, self.tolerance, o.precon_declash))
            if (self.recorder.capped(settings.max_steps) <= 0 or self.recorder.stopped
                    or self.bridge.force_norms()[0] <= self.tolerance * settings.tolerance_factor):
                return  # out of iterations, stopped, or already there (the set-up would cost more than the polish)
        preconditioner, setup = precon_setup(self.bridge, settings)
        self.stages += [setup, precon_stage(self.bridge, self.recorder, self.tolerance, settings, preconditioner)]

    def _lbfgs_from(self, positions: np.ndarray, name: str) -> Tuple[float, np.ndarray]:
        """Plain L-BFGS from ``positions``; returns (energy, positions) and puts the Context back where it was."""
        current = self.bridge.current_positions()
        self.bridge.set_positions(positions)
        stage = lbfgs_stage(name, self.bridge, self.recorder, self.tolerance)
        self.stages.append(stage)
        reached = (stage.final_energy, self.bridge.current_positions())
        self.bridge.set_positions(current)
        return reached

    # -- choosing the result -----------------------------------------------------------------------------
    def _collapsed(self, positions: Optional[np.ndarray] = None) -> bool:
        """Whether ``positions`` (default: the Context's) sit in a force-field singularity: a close contact under
        a diverging force. The Context keeps its positions."""
        s = self.options.safety
        current = self.bridge.current_positions()
        if positions is not None:
            self.bridge.set_positions(positions)
        state = self.context.getState(getPositions=True, getForces=True, groups=self.bridge.groups)
        evaluated = np.array(state.getPositions(asNumpy=True)._value, dtype=np.float64)
        forces = np.array(state.getForces(asNumpy=True)._value, dtype=np.float64)
        if positions is not None:
            self.bridge.set_positions(current)
        return has_collapsed_contact(evaluated, self.bridge.movable, s.collapse_distance, forces, s.collapse_force)

    def _choose_result(self, start: np.ndarray) -> None:
        """Keep the method's structure unless it collapsed into a singularity or the baseline run (made now if
        it collapsed and there was none) is lower: a physical structure first, then the lower energy."""
        collapsed = self._collapsed()
        if collapsed:
            warnings.warn("openmm-reparam: the optimized structure fell into a force-field singularity (atoms "
                          f"closer than {self.options.safety.collapse_distance} nm); falling back on OpenMM's "
                          "L-BFGS result")
            if self.baseline is None:
                self.baseline = self._lbfgs_from(start, "baseline")
        if self.baseline is None:
            return
        if (self._collapsed(self.baseline[1]), self.baseline[0]) < (collapsed, self.bridge.energy()):
            self.bridge.set_positions(self.baseline[1])
            self.selected = "baseline"

    def _leave_best(self) -> None:
        """On interrupt: the lowest-energy positions seen (constraints applied), else the original ones."""
        candidates = [(self.recorder.best_energy, self.recorder.best_positions),
                      (self.bridge.best_energy, self.bridge.best_positions),
                      (self.bridge.energy(), self.bridge.current_positions())]  # the compiled engine's last state
        energy, best = min(((e, p) for e, p in candidates if p is not None), key=lambda c: c[0])
        if not np.isfinite(energy):
            self.context.setPositions(self.original)
            return
        self.bridge.set_positions(best)
        self.bridge.apply_constraints()

    def _result(self) -> MinimizationResult:
        rms, largest = self.bridge.force_norms()
        return MinimizationResult(
            method=self.method, requested_method=self.requested_method, seed=self.seed, tolerance=self.tolerance,
            initial_energy=self.initial_energy,
            final_energy=self.bridge.energy(), rms_force=rms, max_force=largest, converged=rms <= self.tolerance,
            stages=self.stages, history=self.recorder.history,
            baseline_energy=None if self.baseline is None else self.baseline[0], selected=self.selected,
            interrupted=self.recorder.stopped, engine="+".join(sorted(self.engines_used)) or self.engine.name,
            options=self.options.to_dict(), restarts=self.restarts)


def minimize(context: openmm.Context, tolerance: Union[float, unit.Quantity] = DEFAULT_TOLERANCE,
             maxIterations: int = 0, reporter: Optional[openmm.MinimizationReporter] = None, *,
             method: str = "auto", seed: int = 0, **options: Any) -> MinimizationResult:
    """Minimize ``context`` in place, like ``openmm.LocalEnergyMinimizer.minimize`` with the same first four
    arguments. ``method``: "auto" (default: what measured fastest for the System's class, see
    :func:`~openmm_reparam.optimize.options.resolve_auto`), "gnn" (neural-network reparametrization over the slow
    modes), "linear" (linear slow-mode reparametrization; "cg" is its deprecated name), "adam" (Adam on the
    coordinates), "lbfgs" (OpenMM's L-BFGS alone) or "precon" (L-BFGS on the coordinates preconditioned by the
    force-constant Laplacian). Every method but lbfgs ends with the L-BFGS polish.

    ``tolerance`` (kJ/mol/nm, number or Quantity): converged when ‖F‖₂/√N ≤ tolerance. ``maxIterations``
    (0: no limit) caps the iterations of all stages together. ``reporter``: an ``openmm.MinimizationReporter``
    called every iteration of every stage (``args["stage"]`` names it); returning True stops the run.
    ``options``: see :class:`openmm_reparam.optimize.options.MinimizerOptions`.
    """
    return ReparamMinimizer(method=method, seed=seed, **options).minimize(context, tolerance, maxIterations,
                                                                        reporter)


def minimize_simulation(simulation, tolerance: Union[float, unit.Quantity] = DEFAULT_TOLERANCE,
                        maxIterations: int = 0, reporter: Optional[openmm.MinimizationReporter] = None,
                        **kwargs: Any) -> MinimizationResult:
    """One-line replacement for ``simulation.minimizeEnergy()`` on an ``openmm.app.Simulation``."""
    return minimize(simulation.context, tolerance, maxIterations, reporter, **kwargs)
