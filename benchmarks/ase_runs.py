"""ASE's optimizers (FIRE, LBFGS, PreconLBFGS with the Exp preconditioner) on an OpenMM Context, for the external
suite's comparison (``ase`` is a benchmark dependency, imported only here).

:class:`OpenMMCalculator` is an ASE ``Calculator`` over the Context itself (the same Context, platform and
threads as the LEM and package runs): positions Å -> nm, energy kJ/mol -> eV, forces kJ/mol/nm -> eV/Å.

Stopping rule: ASE's ``fmax`` (largest per-atom force) is not OpenMM's measure, so the optimizer runs with
``fmax=0`` (never "converged" by its own test) and is stopped by our check after every step: the RMS force
``‖F‖₂/√N`` of the forces ASE works with (constraint components removed by ``FixBondLengths``), in kJ/mol/nm,
at or below the tolerance, confirmed by the package's own measure (``EnergyBridge.force_norms``, the one LEM's
and the package's runs are reported with). For reference, 10 kJ/mol/nm RMS is 0.0104 eV/Å; an ``fmax`` of that
value would be a stricter test (the largest atom instead of the RMS).

Constraints: the System's constraints become ``FixBondLengths`` (FIRE and LBFGS; the start is first put on the
constraints with ``Context.applyConstraints``). ASE's preconditioners support only ``FixAtoms``, so PreconLBFGS
is not run on constrained Systems (the run records why). Virtual sites and periodic Systems are not run either.
"""
from __future__ import annotations

import math
import time
from typing import Any, Dict, List, Optional

import numpy as np
import openmm
from openmm import app, unit

from .evaluations import timed

KJ_PER_EV = 96.48533212  # kJ/mol per eV
NM_PER_ANGSTROM = 0.1
OPTIMIZERS = ("FIRE", "LBFGS", "PreconLBFGS")
LABELS = {f"ase_{name.lower()}": name for name in OPTIMIZERS}
MAX_STEPS = 100_000
MIN_TIME_CAP = 10.0  # s: a run is stopped (not converged) after max(this, TIME_CAP_DEFAULT x the default's time)
TIME_CAP_DEFAULT = 2.0


def _calculator_class():
    from ase.calculators.calculator import Calculator, all_changes

    class OpenMMCalculator(Calculator):
        """Energy and forces of an OpenMM Context, in ASE's units."""

        implemented_properties = ["energy", "forces"]

        def __init__(self, context: openmm.Context):
            super().__init__()
            self.context = context
            self.evaluations = 0

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            self.context.setPositions(self.atoms.positions * NM_PER_ANGSTROM)
            state = self.context.getState(getEnergy=True, getForces=True)
            self.evaluations += 1
            energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
            forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
            self.results = {"energy": energy / KJ_PER_EV,
                            "forces": np.asarray(forces, dtype=np.float64) / (KJ_PER_EV / NM_PER_ANGSTROM)}

    return OpenMMCalculator


def unsupported(context: openmm.Context, optimizer: str) -> Optional[str]:
    """Why ASE's ``optimizer`` is not run on this Context's System (None if it is)."""
    system = context.getSystem()
    if system.usesPeriodicBoundaryConditions():
        return "periodic System (the ASE comparison covers non-periodic Systems only)"
    if any(system.isVirtualSite(i) for i in range(system.getNumParticles())):
        return "virtual sites"
    if optimizer == "PreconLBFGS" and system.getNumConstraints():
        return "ASE's preconditioners support only FixAtoms, not bond constraints (FixBondLengths)"
    return None


def make_atoms(context: openmm.Context, topology: Optional[app.Topology]):
    """ASE Atoms at the Context's positions (Å), element symbols from the topology ('X' where unknown), in a
    non-periodic cell around them (the Exp preconditioner sizes its neighbour search by the cell), with the
    System's constraints as ``FixBondLengths``."""
    from ase import Atoms
    from ase.constraints import FixBondLengths

    system = context.getSystem()
    n = system.getNumParticles()
    symbols = ["X"] * n
    if topology is not None and topology.getNumAtoms() == n:
        symbols = [a.element.symbol if a.element is not None else "X" for a in topology.atoms()]
    x = context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.angstrom)
    x = np.asarray(x, dtype=np.float64)
    atoms = Atoms(symbols=symbols, positions=x, cell=np.ptp(x, axis=0) + 10.0, pbc=False)
    pairs: List[List[int]] = []
    lengths: List[float] = []
    for k in range(system.getNumConstraints()):
        i, j, d = system.getConstraintParameters(k)
        pairs.append([i, j])
        lengths.append(d.value_in_unit(unit.angstrom))
    if pairs:
        atoms.set_constraint(FixBondLengths(pairs, tolerance=1e-10, bondlengths=lengths))
    return atoms


def _optimizer(name: str, atoms):
    from ase.optimize import FIRE, LBFGS
    from ase.optimize.precon import Exp, PreconLBFGS

    if name == "FIRE":
        return FIRE(atoms, logfile=None)
    if name == "LBFGS":
        return LBFGS(atoms, logfile=None)
    optimizer = PreconLBFGS(atoms, precon=Exp(), logfile=None)
    optimizer.smax = 0.0  # set by PreconLBFGS.run, which is not used (irun is)
    return optimizer


def run_ase(context: openmm.Context, name: str, tolerance: float, topology: Optional[app.Topology] = None,
            time_cap: float = MIN_TIME_CAP) -> Dict[str, Any]:
    """Minimize the Context's positions with ASE's ``name`` until the RMS force is at most ``tolerance``
    (kJ/mol/nm), ``MAX_STEPS`` or ``time_cap`` seconds; returns the run's record fields (the Context holds the
    final positions)."""
    from openmm_reparam.core.bridge import EnergyBridge

    why = unsupported(context, name)
    if why is not None:
        raise NotImplementedError(f"ASE {name} not run: {why}")
    measure = EnergyBridge(context)
    if context.getSystem().getNumConstraints():
        context.applyConstraints(1e-8)
    atoms = make_atoms(context, topology)
    calculator = _calculator_class()(context)
    atoms.calc = calculator
    factor = KJ_PER_EV / NM_PER_ANGSTROM  # eV/Å -> kJ/mol/nm
    n_movable = max(1, int(measure.movable.sum()))
    def descend():
        t0 = time.perf_counter()
        optimizer = _optimizer(name, atoms)
        rms, largest, steps, stop = math.nan, math.nan, 0, "max_steps"
        for steps, _ in enumerate(optimizer.irun(fmax=0.0, steps=MAX_STEPS)):
            forces = atoms.get_forces()  # cached: constraint components removed by FixBondLengths
            if np.linalg.norm(forces) * factor / math.sqrt(n_movable) <= tolerance:
                context.setPositions(atoms.positions * NM_PER_ANGSTROM)
                rms, largest = measure.force_norms()
                if rms <= tolerance:
                    stop = "tolerance"
                    break
            if time.perf_counter() - t0 > time_cap:
                stop = "time_cap"
                break
        return rms, largest, steps, stop

    (rms, largest, steps, stop), wall, evaluations = timed(descend)
    context.setPositions(atoms.positions * NM_PER_ANGSTROM)
    if stop != "tolerance":
        rms, largest = measure.force_norms()
    return {"method": f"ase {name}", "wall_time": wall, "rms_force": float(rms), "max_force": float(largest),
            "converged": bool(rms <= tolerance), "tolerance": tolerance, "selected": None, "engine": "ase",
            "stages": [{"name": f"ase_{name.lower()}", "wall_time": wall, "iterations": steps,
                        "energy_evaluations": calculator.evaluations, "stop_reason": stop}],
            "ase_constraints": context.getSystem().getNumConstraints() > 0, "time_cap": time_cap,
            **({} if evaluations is None else {"force_evaluations": int(evaluations)})}


def runner(label: str, topology: Optional[app.Topology]):
    """The :data:`benchmarks.everyday.Runner` for ``label`` (``ase_fire``, ``ase_lbfgs``, ``ase_preconlbfgs``);
    its time cap is ``max(MIN_TIME_CAP, TIME_CAP_DEFAULT x the default's time)`` from the default run of the same
    start (enough to tell whether ASE is faster than the default; a cut run is not converged)."""
    name = LABELS[label]

    def run(context: openmm.Context, tolerance: float, previous: List[Dict[str, Any]]) -> Dict[str, Any]:
        start = previous[-1]["start_seed"] if previous else None
        default = [r["wall_time"] for r in previous if r["label"] == "default" and r["start_seed"] == start
                   and math.isfinite(r["wall_time"])]
        cap = max(MIN_TIME_CAP, TIME_CAP_DEFAULT * max(default, default=0.0))
        return run_ase(context, name, tolerance, topology, cap)

    return run
