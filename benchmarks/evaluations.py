"""Force evaluations of a benchmark run, counted the same way for OpenMM's ``LocalEnergyMinimizer`` (whose line
searches OpenMM does not report), the package's methods and ASE's optimizers.

The System gets a zero force, an ``openmm.PythonForce`` in force group :data:`COUNTER_GROUP` with energy 0 and
forces 0 (every sum it enters is unchanged), whose callback counts the evaluations of every Context of that
System. A run's count is the calls during its timed call only (:func:`timed`): the measurements a benchmark makes
before and after it are not counted. Evaluations carry over to a GPU, where a step of any of these optimizers is
a force evaluation plus little else; wall times do not. What the counter costs LEM is measured in
benchmarks/RESULTS.md#hard-starts (``--counter-check``); every run pays it per evaluation.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, List, Optional, Tuple

import numpy as np
import openmm

COUNTER_GROUP = 31


class EvaluationCounter:
    """Counts the force evaluations of every Context of ``system``: a zero ``openmm.PythonForce`` added to it
    (add it before the Contexts are made)."""

    def __init__(self, system: openmm.System):
        self.calls = 0
        self._zeros = np.zeros((system.getNumParticles(), 3))
        force = openmm.PythonForce(self._compute)
        force.setForceGroup(COUNTER_GROUP)
        force.setName("EvaluationCounter")
        system.addForce(force)

    def _compute(self, state: openmm.State):
        self.calls += 1
        return 0.0, self._zeros


_active: List[EvaluationCounter] = []


@contextmanager
def counting(counter: Optional[EvaluationCounter]) -> Iterator[None]:
    """Within the block, :func:`timed` counts with ``counter`` (None: no count)."""
    _active.append(counter)
    try:
        yield
    finally:
        _active.pop()


def timed(call: Callable[[], Any]) -> Tuple[Any, float, Optional[int]]:
    """``call()``'s value, its wall time (s) and the force evaluations it made (None outside :func:`counting`)."""
    counter = _active[-1] if _active else None
    before = counter.calls if counter is not None else 0
    t0 = time.perf_counter()
    value = call()
    wall = time.perf_counter() - t0
    return value, wall, (counter.calls - before if counter is not None else None)


#: Where LEM needs more than this many force evaluations, a run may take at most :data:`FEW_FRACTION` of them;
#: elsewhere at most as many as LEM.
MANY_EVALUATIONS = 300
FEW_FRACTION = 0.5


def evaluations_allowed(lem_evaluations: int) -> float:
    """The most force evaluations a run may take where LEM took ``lem_evaluations``."""
    return FEW_FRACTION * lem_evaluations if lem_evaluations > MANY_EVALUATIONS else float(lem_evaluations)


def evaluations_ok(run: dict, lem: dict) -> Optional[bool]:
    """Whether ``run`` kept to :func:`evaluations_allowed` of the LEM run ``lem`` (None: one was not counted)."""
    if run.get("force_evaluations") is None or not lem.get("force_evaluations"):
        return None
    return run["force_evaluations"] <= evaluations_allowed(lem["force_evaluations"])
