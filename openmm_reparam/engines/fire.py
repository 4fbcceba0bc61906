"""Stage ``fire``: FIRE minimization of the coordinates (Bitzek et al., PRL 97, 170201, 2006, as in ASE's FIRE)
with the FIRE 2.0 corrections (Guénolé et al., Comput. Mater. Sci. 175, 109584, 2020), unit masses.

The state is x (all particles, on the constraints), E, F (= F⊥, the force on the movable atoms with its
constraint components removed, :meth:`~openmm_reparam.core.bridge.EnergyBridge.evaluate_projected`), v (movable atoms,
starts at 0), dt = ``dt``, α = ``alpha_start``, N+ = N− = 0, the last step Δ = 0. Each iteration i = 0, 1, …
(at most ``max_steps``, the run's iteration cap applied) does, in this order (the C++ twin ``runFireStage``
follows it to the letter):

 1. stop "converged" if ‖F‖₂/√n ≤ ``tolerance_factor`` × tolerance; stop "deadline" if the deadline passed;
 2. unless v = 0 (the first iteration, and the one after a non-finite energy: nothing to test), P = F·v:
    P > 0: N+ += 1, N− = 0; if N+ > ``n_delay``: dt = min(dt·``f_inc``, ``dt_max``), α = α·``f_alpha``;
    P ≤ 0: N+ = 0, N− += 1; stop "stuck" if N− > ``max_uphill``; unless ``initial_delay`` and i < ``n_delay``:
    dt = max(dt·``f_dec``, ``dt_min``) and α = ``alpha_start``; v = 0; B = −½·Δ (half the last step back, Δ
    being dt·v when that step was not capped; B = 0 otherwise);
 3. semi-implicit Euler with mixing after the velocity update: v = v + dt·F; v = (1 − α)·v + α·‖v‖·F/‖F‖
    (global norms over the movable atoms; skipped when ‖F‖ = 0);
 4. Δ = dt·v, scaled as a whole by ``max_step``/d when the largest per-atom displacement d exceeds ``max_step``;
 5. evaluate (x + B) + Δ on the movable atoms (then B = 0): the Context puts it on the constraints, giving
    E', x', F'; on a non-finite energy or force (NonFiniteEnergyError) x, E, F stay, v = 0, Δ = 0,
    α = ``alpha_start``, dt = dt·``f_dec`` (no ``dt_min`` floor: the point is to get back to finite energies),
    N+ = 0, N− += 1, stop "stuck" if N− > ``max_uphill``; the iteration is counted (``max_steps``, one
    evaluation) but not recorded; next iteration;
 6. x, E, F = x', E', F'; with constraints v is projected onto the tangent space at x' (its components along
    the constraint gradients removed by the same projector as the force: the RATTLE velocity step, so the
    velocity never pushes into a constraint and P = F·v compares tangent vectors only);
 7. record the step (``recorder.record``: energy, x, −F on all particles, {"rms force"}); stop "reporter" if
    it asks.

Choices where the papers leave room or differ: the P test is skipped while v = 0 (FIRE 2.0 would take the P ≤ 0
branch at i = 0, a no-op under the initial delay); ``dt_min`` is a floor (dt = max(dt·f_dec, dt_min)) where
FIRE 2.0 skips a decrease that would pass it; ``max_step`` bounds each atom's displacement by scaling the whole
step (ASE caps the norm of the whole step, LAMMPS shortens dt), v is left unscaled; the half step back is half
the last displacement proposed. Step 6 projects v rather than setting it to what the projection let through,
(x' − x)/dt: that needs no dt for a step whose length the cap chose, and it keeps P and the mixing to tangent
vectors (a velocity component along a constraint would only be undone by the next projection).

After the loop (``max_steps``), "converged" if the last F is below the target. The Context is left at the last
point when the stage converged (its RMS force is what "converged" promises) and otherwise at the lowest-energy
point evaluated (FIRE is not monotone; that is the better start for the polish and what an interrupted run
keeps); ``final_energy`` is the energy of the point left.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..core.bridge import EnergyBridge
from ..core.errors import NonFiniteEnergyError
from ..run.recorder import RunRecorder
from .iterate import CoordinateIterate
from ..run.result import StageResult
from .compiled import compiled_stop_reason, fill_cpp_settings, plugin
from .recording import RecordingReporter
from .device import cpu_force_evaluations, device_name


@dataclass
class FireStageSettings:
    """What one ``fire`` stage needs; no defaults (they belong to the options table). Every particle has mass
    1 Da, so the time steps are in ps (kJ/mol = Da·nm²/ps²): a step from rest moves dt²·F nm."""
    name: str                 # the stage name ("fire")
    max_steps: int
    dt: float                 # initial time step
    dt_max: float
    dt_min: float
    n_delay: int              # steps with P > 0 before dt may grow (FIRE 2.0: also the initial delay)
    f_inc: float              # dt growth factor (1.1)
    f_dec: float              # dt shrink factor on P <= 0 (0.5)
    alpha_start: float        # mixing after a reset (FIRE 2.0: 0.25)
    f_alpha: float            # α shrink factor (0.99)
    max_uphill: int           # stop "stuck" after more than this many consecutive P <= 0 steps
    max_step: float           # nm: the largest per-atom displacement of one step
    tolerance_factor: float   # the stage stops at this x the run's tolerance
    initial_delay: bool       # FIRE 2.0: no dt decrease during the first n_delay steps
    deadline: Optional[float] = None  # time.perf_counter() value


class FireState(CoordinateIterate):
    """The FIRE iterate on the movable atoms and its update rules (see the module docstring, steps 2-6)."""

    def __init__(self, bridge: EnergyBridge, settings: FireStageSettings):
        self.bridge, self.settings = bridge, settings
        self.energy, self.x, self.gradient = bridge.evaluate_projected(bridge.current_positions())
        self.v = np.zeros_like(self.gradient)
        self.last_step = np.zeros_like(self.gradient)
        self.back = np.zeros_like(self.gradient)  # the half step back, added to the next trial point
        self.dt, self.alpha = float(settings.dt), float(settings.alpha_start)
        self.n_positive = self.n_negative = 0
        self.evaluations = 1
        self.best_energy, self.best_x = self.energy, self.x.copy()

    def adapt(self, iteration: int) -> bool:
        """Step 2: the P = F·v test; False when the uphill count exceeds ``max_uphill`` (stuck)."""
        s = self.settings
        if not self.v.any():
            return True
        power = -float((self.gradient * self.v).sum())
        if power > 0:
            self.n_positive, self.n_negative = self.n_positive + 1, 0
            if self.n_positive > s.n_delay:
                self.dt, self.alpha = min(self.dt * s.f_inc, s.dt_max), self.alpha * s.f_alpha
            return True
        self.n_positive, self.n_negative = 0, self.n_negative + 1
        if self.n_negative > s.max_uphill:
            return False
        if not (s.initial_delay and iteration < s.n_delay):
            self.dt, self.alpha = max(self.dt * s.f_dec, s.dt_min), s.alpha_start
        self.back = -0.5 * self.last_step
        self.v[:] = 0.0
        return True

    def proposal(self) -> np.ndarray:
        """Steps 3-4: the velocity update, the mixing and the (capped) displacement Δ."""
        force = -self.gradient
        self.v += self.dt * force
        force_norm = math.sqrt(float((force * force).sum()))
        if force_norm > 0:
            speed = math.sqrt(float((self.v * self.v).sum()))
            self.v = (1.0 - self.alpha) * self.v + (self.alpha * speed / force_norm) * force
        step = self.dt * self.v
        longest = float(np.sqrt((step * step).sum(axis=1)).max()) if len(step) else 0.0
        if longest > self.settings.max_step:
            step *= self.settings.max_step / longest
        return step

    def advance(self) -> bool:
        """Steps 3-6: one proposal evaluated; False (state reset as documented) on a non-finite energy."""
        step = self.proposal()
        trial = self.x.copy()
        trial[self.bridge.movable] += self.back
        trial[self.bridge.movable] += step
        self.back = np.zeros_like(self.gradient)
        self.evaluations += 1
        try:
            energy, x, gradient = self.bridge.evaluate_projected(trial)
        except NonFiniteEnergyError:
            s = self.settings
            self.v[:], self.last_step[:] = 0.0, 0.0
            self.alpha, self.dt = s.alpha_start, self.dt * s.f_dec
            self.n_positive, self.n_negative = 0, self.n_negative + 1
            return False
        self.energy, self.x, self.gradient, self.last_step = energy, x, gradient, step
        if self.bridge.has_constraints:
            full = np.zeros_like(x)
            full[self.bridge.movable] = self.v
            self.v = self.bridge.project(full, x)[self.bridge.movable]
        if energy < self.best_energy:
            self.best_energy, self.best_x = energy, x.copy()
        return True


def python_fire_stage(bridge: EnergyBridge, recorder: RunRecorder, tolerance: float,
                      settings: FireStageSettings) -> StageResult:
    """Stage ``fire`` (reference implementation): FIRE 2.0 on the coordinates until the RMS force is at most
    ``settings.tolerance_factor`` × ``tolerance``; see the module docstring for the exact iteration."""
    name, start = settings.name, time.perf_counter()
    if recorder.stopped:
        return StageResult(name, stop_reason=recorder.stop_reason, engine="python")
    target = tolerance * settings.tolerance_factor
    state = FireState(bridge, settings)
    initial, reason, steps = state.energy, "max_steps", 0
    for i in range(recorder.capped(settings.max_steps)):
        if state.rms_force() <= target:
            reason = "converged"
            break
        if settings.deadline is not None and time.perf_counter() >= settings.deadline:
            reason = "deadline"
            break
        if not state.adapt(i):
            reason = "stuck"
            break
        if not state.advance():
            if state.n_negative > settings.max_uphill:
                reason = "stuck"
                break
            continue
        steps += 1
        if recorder.record(name, state.energy, state.x, state.full_gradient(), {"rms force": state.rms_force()}):
            reason = recorder.stop_reason
            break
    if reason == "max_steps" and state.rms_force() <= target:
        reason = "converged"
    final_x, final = (state.x, state.energy) if reason == "converged" else (state.best_x, state.best_energy)
    bridge.set_positions(final_x)
    return StageResult(name, steps, state.evaluations, time.perf_counter() - start, initial, final,
                       stop_reason=reason, engine="python")


def cpp_fire_settings(settings: FireStageSettings, max_steps: int, now: float):
    """``settings`` as ``reparamplugin.FireStageSettings``, by one loop over the dataclass fields (snake_case to
    camelCase), with ``max_steps`` (the iteration cap applied) and the deadline as seconds left after ``now``."""
    values = {field.name: getattr(settings, field.name) for field in dataclasses.fields(settings)}
    values["max_steps"] = max_steps
    cpp = fill_cpp_settings(plugin().FireStageSettings(), values, now)
    cpp.validate()
    return cpp


def compiled_fire_stage(bridge: EnergyBridge, recorder: RunRecorder, tolerance: float,
                        settings: FireStageSettings, on_device: bool = False) -> StageResult:
    """Stage ``fire`` in the compiled plugin (``runFireStage``, the same iteration without Python in the loop; on
    the Context's device, ``runDeviceFireStage``, with ``on_device``: the caller checked that the platform has
    the kernel and that no reporter is given, :mod:`.runners`); the recorder sees the same steps as with
    :func:`python_fire_stage` (through the reporter when there is one, afterwards otherwise)."""
    where = device_name(bridge.context) if on_device else "cpp"
    if recorder.stopped:
        return StageResult(settings.name, stop_reason=recorder.stop_reason, engine=where)
    reporter = RecordingReporter(recorder, settings.name) if recorder.reporter is not None else None
    stage_start = time.perf_counter()
    cpp_settings = cpp_fire_settings(settings, recorder.capped(settings.max_steps), stage_start)
    if on_device:
        outcome = plugin().runDeviceFireStage(bridge.context, cpp_settings, float(tolerance))
    else:
        outcome = plugin().runFireStage(bridge.context, cpp_settings, float(tolerance), reporter)
    if reporter is not None and reporter.error is not None:
        raise reporter.error
    final = float(outcome.finalEnergy)
    if reporter is None:
        recorder.extend(settings.name, outcome._energies(), outcome._times(), stage_start)
        recorder.note_best(final, bridge.current_positions())
    return StageResult(settings.name, int(outcome.iterations), int(outcome.energyEvaluations),
                       float(outcome.wallTime), float(outcome.initialEnergy), final,
                       stop_reason=compiled_stop_reason(outcome, recorder),
                       cpu_force_evaluations=cpu_force_evaluations(settings.name, outcome), engine=where)
