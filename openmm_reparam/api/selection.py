"""Which structure a run leaves in the Context: the method's, unless it fell into a force-field singularity or
the ``never_worse`` baseline ended lower; on interrupt, the lowest-energy positions seen."""
from __future__ import annotations

import math
import warnings
from typing import Optional, Tuple

import numpy as np
from openmm import unit

from ..core.atoms import has_collapsed_contact
from ..methods.base import RunState
from ..core.platforms import openmm_lbfgs_blocker
from ..methods.lbfgs import lbfgs_stage, projected_finish


def lbfgs_from(state: RunState, positions: np.ndarray, name: str) -> Tuple[float, np.ndarray]:
    """Plain L-BFGS from ``positions`` (OpenMM's; the projected L-BFGS where OpenMM's cannot run); returns
    (energy, positions) and puts the Context back where it was."""
    bridge = state.bridge
    current = bridge.current_positions()
    bridge.set_positions(positions)
    if openmm_lbfgs_blocker(state.context) is None:
        stage = state.add(lbfgs_stage(name, bridge, state.recorder, state.tolerance,
                                      state.options.polish.polish_iterations, state.deadline, state.runners.lbfgs))
    else:
        stage = state.add(projected_finish(bridge, state.recorder, state.tolerance, state.options.polish,
                                           state.runners.precon, state.deadline))
        stage.name = name
    reached = (stage.final_energy, bridge.current_positions())
    bridge.set_positions(current)
    return reached


def collapsed(state: RunState, positions: Optional[np.ndarray] = None) -> bool:
    """Whether ``positions`` (default: the Context's) sit in a force-field singularity: a close contact under
    a diverging force. The Context keeps its positions."""
    bridge, safety = state.bridge, state.options.safety
    current = bridge.current_positions()
    if positions is not None:
        bridge.set_positions(positions)
    reading = state.context.getState(getPositions=True, getForces=True, groups=bridge.groups)
    evaluated = np.array(reading.getPositions(asNumpy=True).value_in_unit(unit.nanometer), dtype=np.float64)
    forces = np.array(reading.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer),
                      dtype=np.float64)
    if positions is not None:
        bridge.set_positions(current)
    return has_collapsed_contact(evaluated, bridge.movable, safety.collapse_distance, forces, safety.collapse_force)


def choose_result(state: RunState) -> None:
    """Keep the method's structure unless it collapsed into a singularity or the baseline run (made now if
    it collapsed and there was none) is lower: a physical structure first, then the lower energy."""
    fell = collapsed(state)
    if fell:
        warnings.warn("openmm-reparam: the optimized structure fell into a force-field singularity (atoms "
                      f"closer than {state.options.safety.collapse_distance} nm); falling back on OpenMM's "
                      "L-BFGS result")
        if state.baseline is None:
            state.baseline = lbfgs_from(state, state.start, "baseline")
    if state.baseline is None:
        return
    if (collapsed(state, state.baseline[1]), state.baseline[0]) < (fell, state.bridge.energy()):
        state.bridge.set_positions(state.baseline[1])
        state.selected = "baseline"


def leave_best(state: RunState, original: np.ndarray) -> None:
    """On interrupt: the lowest-energy positions seen, constraints applied, unless the original ones are lower.

    The candidates are the recorder's lowest (every reported step), the bridge's (every evaluation in Python) and
    where the Context is (a compiled or OpenMM stage leaves its best there); each is compared by its energy on the
    constraints, which is what the Context will hold (OpenMM's L-BFGS reports points slightly off them)."""
    recorder, bridge = state.recorder, state.bridge
    candidates = [(recorder.best_energy, recorder.best_positions), (bridge.best_energy, bridge.best_positions),
                  (bridge.energy(), bridge.current_positions())]
    lowest, kept = math.inf, None
    for _, positions in (c for c in candidates if c[1] is not None and math.isfinite(c[0])):
        bridge.set_positions(positions)
        bridge.apply_constraints()
        energy = bridge.energy()
        if energy < lowest:
            lowest, kept = energy, bridge.current_positions()
    state.context.setPositions(original)
    if kept is not None and lowest < bridge.energy():
        bridge.set_positions(kept)
