"""What makes OpenMM's L-BFGS stoppable, and what it costs: ``LocalEnergyMinimizer.minimize`` with no reporter
(``none``: it cannot be stopped), with the plugin's C++ reporter (``cpp``: ``runLocalEnergyMinimizer``, which the
package's L-BFGS stages use, stopping on Ctrl-C or at the time budget) and with a Python reporter that only counts
(``python``: what they would need without the plugin).

Each case starts from the same positions in every mode, on the CPU platform with one thread, in interleaved
rounds. Reported per mode: the median and the minimum wall time over the rounds (the minimum is the least
disturbed on a shared machine) and the ratios of medians and of minima to ``none``; per case: the iterations
(each reporter's count, last round), the force evaluations (counted by a PythonForce that adds nothing, in one more
run: a reporter that never stops changes nothing in OpenMM's path) and the largest energy difference between the
modes' results (0 where the path is deterministic; PME on the CPU platform is not: its FFT plan depends on the
machine's load, so that case's modes take different paths).

    python -m benchmarks lbfgs-reporter [--cases host_guest,chignolin,chignolin_hbonds,enkephalin_water,water_rf]
                                        [--rounds 3] [--tolerance 10] [--json out.json]
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform as _platform
import statistics
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import openmm
from openmm import app, unit

from openmm_reparam.engines import compiled
from openmm_reparam.testing import load_peptide, make_context, perturbed, solvated_enkephalin

MODES = ("none", "cpp", "python")


def _host_guest() -> Tuple[openmm.System, np.ndarray]:
    from openmmtools import testsystems
    case = testsystems.HostGuestImplicit()
    return case.system, np.array(case.positions.value_in_unit(unit.nanometer))


def _chignolin(constraints=None) -> Tuple[openmm.System, np.ndarray]:
    _, system, positions = load_peptide("5awl", constraints=constraints)
    return system, perturbed(positions, 0.02, seed=1)


def _water_box(edge: float = 3.0) -> Tuple[openmm.System, np.ndarray]:
    """TIP3P waters in a cube, reaction field (deterministic on the CPU platform, unlike PME), rigid water."""
    forcefield = app.ForceField("amber14/tip3p.xml")
    modeller = app.Modeller(app.Topology(), [])
    modeller.addSolvent(forcefield, model="tip3p", boxSize=openmm.Vec3(edge, edge, edge) * unit.nanometer)
    system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.CutoffPeriodic,
                                     nonbondedCutoff=0.9 * unit.nanometer, rigidWater=True)
    return system, perturbed(np.array(modeller.positions.value_in_unit(unit.nanometer)), 0.01, seed=3)


#: name -> (what it is, a function returning (System, start))
CASES: Dict[str, Tuple[str, Callable[[], Tuple[openmm.System, np.ndarray]]]] = {
    "host_guest": ("openmmtools HostGuestImplicit, 156 atoms, 60 constraints, its own positions", _host_guest),
    "chignolin": ("5AWL, 166 atoms, OBC2, no constraints, 0.02 nm noise", _chignolin),
    "chignolin_hbonds": ("5AWL, 166 atoms, OBC2, HBonds, 0.02 nm noise", lambda: _chignolin(app.HBonds)),
    "enkephalin_water": ("met-enkephalin in TIP3P, PME, HBonds, 0.01 nm noise", solvated_enkephalin),
    "water_rf": ("TIP3P waters in a 3 nm cube, reaction field, rigid, 0.01 nm noise", _water_box),
}


class CountingReporter(openmm.MinimizationReporter):
    """Counts iterations; never stops."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def report(self, iteration, x, grad, args):
        self.count += 1
        return False


def _energy(context: openmm.Context) -> float:
    return context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)


def run_mode(context: openmm.Context, start: np.ndarray, mode: str, tolerance: float) -> Tuple[float, int, float]:
    """(seconds, iterations or -1 where no reporter counts, final energy) of one minimization from ``start``."""
    context.setPositions(start * unit.nanometer)
    began = time.perf_counter()
    if mode == "none":
        openmm.LocalEnergyMinimizer.minimize(context, tolerance, 0)
        iterations = -1
    elif mode == "cpp":
        iterations = int(compiled.plugin().runLocalEnergyMinimizer(context, tolerance, 0, -1.0).iterations)
    else:
        reporter = CountingReporter()
        openmm.LocalEnergyMinimizer.minimize(context, tolerance, 0, reporter)
        iterations = reporter.count
    return time.perf_counter() - began, iterations, _energy(context)


def count_evaluations(system: openmm.System, start: np.ndarray, tolerance: float) -> int:
    """Force evaluations of one minimization, counted by a PythonForce that adds no energy and no force."""
    counted = [0]

    def nothing(state):
        counted[0] += 1
        return 0.0, np.zeros((system.getNumParticles(), 3))

    copy = openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(system))
    copy.addForce(openmm.PythonForce(nothing))
    context = make_context(copy, start)
    openmm.LocalEnergyMinimizer.minimize(context, tolerance, 0)
    return counted[0]


def measure(name: str, rounds: int, tolerance: float) -> dict:
    """Every mode on case ``name``, ``rounds`` interleaved rounds."""
    system, start = CASES[name][1]()
    context = make_context(system, start)
    times: Dict[str, List[float]] = {mode: [] for mode in MODES}
    energies: Dict[str, float] = {}
    iterations: Dict[str, int] = {}
    for _ in range(rounds):
        for mode in MODES:
            seconds, count, energy = run_mode(context, start, mode, tolerance)
            times[mode].append(seconds)
            energies[mode], iterations[mode] = energy, count
    medians = {mode: statistics.median(values) for mode, values in times.items()}
    minima = {mode: min(values) for mode, values in times.items()}
    return {"case": name, "what": CASES[name][0], "atoms": system.getNumParticles(),
            "iterations": {mode: iterations[mode] for mode in ("cpp", "python")},
            "evaluations": count_evaluations(system, start, tolerance), "median_s": medians, "min_s": minima,
            "ratio_to_none": {mode: medians[mode] / medians["none"] for mode in MODES},
            "min_ratio_to_none": {mode: minima[mode] / minima["none"] for mode in MODES},
            "energy_spread": max(energies.values()) - min(energies.values())}


def print_table(rows: List[dict]) -> None:
    print("| case | atoms | iterations C++/Python | evaluations | none s (min) | C++ reporter s (min) | "
          "Python reporter s (min) | C++/none (min) | Python/none (min) | energy spread kJ/mol |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        cells = [f"{r['median_s'][m]:.3f} ({r['min_s'][m]:.3f})" for m in MODES]
        ratios = [f"{r['ratio_to_none'][m]:.3f} ({r['min_ratio_to_none'][m]:.3f})" for m in ("cpp", "python")]
        print(f"| {r['case']} | {r['atoms']} | {r['iterations']['cpp']}/{r['iterations']['python']} | "
              f"{r['evaluations']} | {' | '.join(cells)} | {' | '.join(ratios)} | {r['energy_spread']:.2e} |")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks lbfgs-reporter", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tolerance", type=float, default=10.0, help="kJ/mol/nm (OpenMM's default)")
    parser.add_argument("--json", default=None, help="write the rows here")
    args = parser.parse_args(argv)
    if not compiled.cpp_available():
        parser.error(compiled.unavailable_reason())
    rows = [measure(name, args.rounds, args.tolerance) for name in args.cases.split(",")]
    print(f"{datetime.date.today()} {_platform.node()} {_platform.processor() or _platform.machine()}, "
          f"OpenMM {openmm.__version__}, CPU platform 1 thread, tolerance {args.tolerance} kJ/mol/nm, "
          f"{args.rounds} rounds")
    print_table(rows)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)
    return 0
