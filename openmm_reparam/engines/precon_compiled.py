"""Stage ``precon`` compiled: the iteration of :func:`~openmm_reparam.engines.precon.precon_stage` in the plugin
(``PreconStage``, plugin_cpp/openmmapi/include/PreconStage.h), the same steps without Python in the loop.

What crosses to C++:

* the iteration's settings, :class:`PreconIterationSettings` (the fields of
  :class:`~openmm_reparam.engines.precon.PreconSettings` the loop reads; μ, cutoff, atoms and laplacian only
  shape P, which Python builds), by one loop over the dataclass fields (``compiled.fill_cpp_settings``);
* P itself, as CSR arrays of ``Preconditioner.matrix`` (n × n over the movable atoms); C++ factorizes it
  (``PreconMatrix``: envelope L D Lᵀ in the atom order, exact like scipy's LU; P = μI costs a division);
* the coupled atoms' indices (the rebuild test).

Rebuilds: P needs finite differences of forces (Python), so ``PreconStage.run`` returns "rebuild" right after
the step on which :meth:`~openmm_reparam.engines.precon.PreconLBFGS.step` would call ``rebuild()`` (that step
already recorded, its reporter args counting the rebuild). This wrapper then builds P at the iterate, hands
it over (``setPreconditioner``: memory forgotten, anchor moved, as in Python) and runs the remaining steps;
the iterate (x, E, g) stays in the C++ object across calls, so no evaluation is repeated and the trajectory
is the Python one. A reporter's stop at that step takes effect after the rebuild, as in Python.

On the Context's device (``runDevicePreconStage``, plugin_cpp/openmmapi/include/DevicePreconStage.h) where the
platform has the kernel and no reporter is given (``on_device``, :mod:`.runners`): the same iteration with x, g,
the memory and P's solve on the device. There a rebuild ends the device stage with the iterate in the Context;
P is built there and a new device stage starts from it (its start evaluated again: one evaluation more per
rebuild than the host stage, counted).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..core.bridge import EnergyBridge
from ..run.recorder import RunRecorder
from ..run.result import StageResult
from .compiled import compiled_stop_reason, fill_cpp_settings, plugin
from .recording import RecordingReporter
from .device import cpu_force_evaluations, device_name
from .precon import PreconSettings, Preconditioner, build_preconditioner


@dataclass
class PreconIterationSettings:
    """What the compiled iteration reads (the C++ ``PreconStageSettings``); no defaults."""
    name: str                 # the stage name ("precon"; "polish" for the projected finish)
    max_steps: int            # the iteration cap applied
    memory: int               # L-BFGS (s, y) pairs kept
    rebuild_distance: float   # nm (inf: never)
    max_step: float           # nm: the first trial's largest atom displacement
    tolerance_factor: float   # the stage stops at this x the run's tolerance
    deadline: Optional[float] = None  # time.perf_counter() value


def iteration_settings(settings: PreconSettings, name: str, max_steps: int) -> PreconIterationSettings:
    """The iteration's part of ``settings`` (its same-named fields), with the stage name and the capped steps."""
    shared = {f.name: getattr(settings, f.name) for f in dataclasses.fields(PreconIterationSettings)
              if f.name not in ("name", "max_steps")}
    return PreconIterationSettings(name=name, max_steps=max_steps, **shared)


def cpp_precon_settings(settings: PreconIterationSettings, now: float):
    """``settings`` as ``reparamplugin.PreconStageSettings`` (one loop over the fields; the deadline as seconds
    left after ``now``), validated."""
    values = {field.name: getattr(settings, field.name) for field in dataclasses.fields(settings)}
    cpp = fill_cpp_settings(plugin().PreconStageSettings(), values, now)
    cpp.validate()
    return cpp


def cpp_precon_matrix(precon: Preconditioner):
    """``precon.matrix`` as a factorized ``reparamplugin.PreconMatrix`` (CSR arrays)."""
    matrix = precon.matrix.tocsr()
    matrix.sum_duplicates()
    matrix.eliminate_zeros()  # explicit zeros (uncoupled rows) would only widen the envelope
    return plugin().PreconMatrix(matrix.shape[0], matrix.indptr.astype(np.float64),
                                 matrix.indices.astype(np.float64), matrix.data.astype(np.float64))


def device_precon_stage(bridge: EnergyBridge, recorder: RunRecorder, tolerance: float, settings: PreconSettings,
                        precon: Preconditioner, name: str = "precon") -> StageResult:
    """:func:`compiled_precon_stage` on the Context's device: a device stage per preconditioner (each rebuild
    starts a new one at the iterate the last one left in the Context); the steps are recorded afterwards."""
    start = time.perf_counter()
    cap = recorder.capped(settings.max_steps)
    coupled = np.flatnonzero(precon.coupled).astype(np.float64)
    steps, evaluations, initial, on_cpu = 0, 0, None, 0
    while True:
        stage_start = time.perf_counter()
        cpp_settings = cpp_precon_settings(iteration_settings(settings, name, cap - steps), stage_start)
        outcome = plugin().runDevicePreconStage(bridge.context, cpp_settings, cpp_precon_matrix(precon), coupled,
                                                float(tolerance))
        recorder.extend(name, outcome._energies(), outcome._times(), stage_start)
        steps += int(outcome.iterations)
        evaluations += int(outcome.energyEvaluations)
        on_cpu += cpu_force_evaluations(name, outcome)
        initial = float(outcome.initialEnergy) if initial is None else initial
        reason = str(outcome.stopReason)
        if reason != "rebuild" or recorder.check_interrupt():  # no new P for a run that stops
            reason = "interrupted" if reason == "rebuild" else reason
            break
        # the iterate is the best so far: kept before P is rebuilt (a Ctrl-C there must not lose it)
        recorder.note_best(float(outcome.finalEnergy), bridge.current_positions())
        precon, used = build_preconditioner(bridge, bridge.current_positions(), settings, precon.coupled)
        evaluations += used
    final = float(outcome.finalEnergy)
    recorder.note_best(final, bridge.current_positions())
    return StageResult(name, steps, evaluations, time.perf_counter() - start, initial, final, stop_reason=reason,
                       cpu_force_evaluations=on_cpu, engine=device_name(bridge.context))


def compiled_precon_stage(bridge: EnergyBridge, recorder: RunRecorder, tolerance: float, settings: PreconSettings,
                          precon: Preconditioner, name: str = "precon", on_device: bool = False) -> StageResult:
    """:func:`~openmm_reparam.engines.precon.precon_stage` in the plugin: same contract, same steps (the recorder
    sees them through the reporter when there is one, afterwards otherwise), same stop reasons. On the Context's
    device with ``on_device`` (:func:`device_precon_stage`; the caller checked that the platform has the kernel
    and that no reporter is given, :mod:`.runners`), unless the run is already stopped."""
    if on_device and not recorder.stopped:
        return device_precon_stage(bridge, recorder, tolerance, settings, precon, name)
    start = time.perf_counter()
    cap = recorder.capped(settings.max_steps)
    cpp_settings = cpp_precon_settings(iteration_settings(settings, name, cap), start)
    reporter = RecordingReporter(recorder, name) if recorder.reporter is not None else None
    coupled = np.flatnonzero(precon.coupled).astype(np.float64)
    stage = plugin().PreconStage(bridge.context, cpp_settings, cpp_precon_matrix(precon), coupled, float(tolerance))
    steps, rebuild_evaluations = 0, 0
    while True:
        outcome = stage.run(cap - steps, bool(recorder.stopped), reporter)
        if reporter is not None and reporter.error is not None:
            raise reporter.error
        if reporter is None:
            recorder.extend(name, outcome._energies(), outcome._times(), start)
        steps += int(outcome.iterations)
        reason = compiled_stop_reason(outcome, recorder)
        if reason != "rebuild" or recorder.check_interrupt():  # no new P for a run that stops
            reason = "interrupted" if reason == "rebuild" else reason
            break
        positions = np.array(stage._positions()).reshape(-1, 3)
        if reporter is None:  # the best so far, kept before P is rebuilt (a Ctrl-C there must not lose it)
            recorder.note_best(float(stage.getEnergy()), positions)
        precon, used = build_preconditioner(bridge, positions, settings, precon.coupled)
        rebuild_evaluations += used
        stage.setPreconditioner(cpp_precon_matrix(precon))
        if outcome.reporterStopped:
            reason = "reporter"
            break
    stage.leaveContext()
    final = float(stage.getEnergy())
    if reporter is None:
        recorder.note_best(final, bridge.current_positions())
    return StageResult(name, steps, int(outcome.energyEvaluations) + rebuild_evaluations,
                       time.perf_counter() - start, float(outcome.initialEnergy), final, stop_reason=reason,
                       engine="cpp")
