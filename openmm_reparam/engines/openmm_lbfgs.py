"""OpenMM's own L-BFGS (``LocalEnergyMinimizer.minimize``) as a stage runner: which reporter it is given, so that
the run can record its iterations and stop it (the stage around it is
:func:`openmm_reparam.methods.lbfgs.lbfgs_stage`)."""
from __future__ import annotations

import math
import time
from typing import Optional, Tuple

import numpy as np
import openmm

from ..core.bridge import EnergyBridge
from ..run.recorder import RunRecorder
from . import compiled


class ForwardingReporter(openmm.MinimizationReporter):
    """Passes OpenMM L-BFGS iterations to the run recorder, under the stage's name; asks OpenMM to stop when the
    run must stop (reporter, Ctrl-C) or at ``deadline`` (a ``time.perf_counter()`` value)."""

    def __init__(self, recorder: RunRecorder, stage: str, deadline: Optional[float] = None):
        super().__init__()
        self.recorder, self.stage, self.count, self.deadline = recorder, stage, 0, deadline
        self.stop_reason = ""
        self.last: Optional[tuple] = None  # (x, grad, system energy) of the last report, as OpenMM passed them

    def report(self, iteration, x, grad, args):
        args = {str(k): float(args[k]) for k in args.keys()}  # a SWIG map<string,double>
        energy = args.pop("system energy", math.nan)
        self.count += 1
        self.last = (x, grad, energy)
        positions = np.asarray(x, dtype=np.float64).reshape(-1, 3)
        if not math.isfinite(energy):  # OpenMM's L-BFGS goes on iterating NaNs, without end when it has no cap
            self.stop_reason = "non-finite"
        elif self.recorder.record(self.stage, energy, positions, np.asarray(grad), args):
            self.stop_reason = self.recorder.stop_reason
        elif self.deadline is not None and time.perf_counter() >= self.deadline:
            self.stop_reason = "deadline"
        return bool(self.stop_reason)


class OpenMMLBFGS:
    """``LocalEnergyMinimizer.minimize`` with the reporter the run needs. ``plugin_reporter``: whether the
    plugin's C++ reporter (``runLocalEnergyMinimizer``) may be used where nothing needs the iterations in Python
    (no user's reporter, no iteration cap): it only stops OpenMM on Ctrl-C or at the deadline and records each
    iteration's energy, at no measurable cost, where a Python reporter costs Python work at every iteration. A
    System with a force that runs torch's autograd gets no Python reporter (OpenMM keeps the Python lock while it
    calls one); without the plugin it then runs unreported and cannot be stopped."""

    engine = "openmm"

    def __init__(self, plugin_reporter: bool):
        self.plugin_reporter = plugin_reporter

    def run(self, name: str, bridge: EnergyBridge, recorder: RunRecorder, tolerance: float, cap: int,
            deadline: Optional[float]) -> Tuple[int, str]:
        """Minimize ``bridge``'s Context to ``tolerance`` in at most ``cap`` iterations (0: no limit); returns
        (iterations reported, stop reason: "" when OpenMM finished)."""
        context, autograd = bridge.context, bridge.runs_torch_autograd
        forwarded = recorder.reporter is not None or recorder.max_iterations > 0
        if not autograd and (forwarded or not self.plugin_reporter):
            forwarding = ForwardingReporter(recorder, name, deadline)
            openmm.LocalEnergyMinimizer.minimize(context, tolerance, cap, forwarding)
            remember_last_report(bridge, forwarding.last)
            return forwarding.count, forwarding.stop_reason
        if not self.plugin_reporter:
            openmm.LocalEnergyMinimizer.minimize(context, tolerance, cap)
            return 0, ""
        now = time.perf_counter()
        limit = -1.0 if deadline is None else max(0.0, deadline - now)
        outcome = compiled.plugin().runLocalEnergyMinimizer(context, float(tolerance), int(cap), limit)
        energies = outcome._energies()
        recorder.extend(name, energies, outcome._times(), now)
        if energies:
            remember_last_report(bridge, (outcome._lastPositions(), outcome._lastGradient(), energies[-1]))
        return int(outcome.iterations), str(outcome.stopReason)


def remember_last_report(bridge: EnergyBridge, last: Optional[tuple]) -> None:
    """Give ``bridge`` OpenMM's last report (x, gradient, system energy) as the measurement of its iterate, so
    that the stage's final energy and the result's RMS force need no force evaluation of their own, where that
    report can be the state OpenMM left: no constraints (OpenMM's reported gradient then holds its constraint
    penalty, and it ends by projecting the positions onto the constraints), no massless particles or virtual sites
    (it reports no force for them and places virtual sites after its iterate), a finite energy; and, checked by
    every later measurement (:meth:`EnergyBridge.remember`), the Context holding exactly the reported positions:
    where its line search fails OpenMM's L-BFGS leaves its last trial in the Context, not the reported iterate.

    The report comes from the Python reporter where one runs, and from the plugin's C++ reporter otherwise, which
    keeps it for this (a Python reporter only to keep it would cost more than the evaluation it saves)."""
    if last is None or bridge.has_constraints or bridge.fixed.any() or not math.isfinite(last[2]):
        return
    x, grad, energy = last
    bridge.remember(np.asarray(x, dtype=np.float64), energy, -np.asarray(grad, dtype=np.float64))


def default_lbfgs() -> OpenMMLBFGS:
    """The runner every engine choice gets: the plugin's reporter where the plugin is built."""
    return OpenMMLBFGS(compiled.cpp_available())
