"""Method variants side by side with OpenMM's L-BFGS on named cases: what the rules of ``auto`` were chosen from.

``python -m benchmarks compare --variants precon,precon@precon_matrix=finite-difference CASE[:START] ...`` builds
each case (an external one, :mod:`benchmarks.external_cases`, or an everyday one,
:mod:`benchmarks.everyday_cases`), sets the start (``own`` or a perturbation/noise seed), counts OpenMM L-BFGS
iterations once with a counting reporter, times LEM alone (no reporter) counting its force evaluations
(:mod:`benchmarks.evaluations`), then each variant (``method@option=value+option=value``, ``never_worse=False``)
from the same start on the same Context (CPU platform, 2 threads), and prints one JSON line per case: the start's
largest and RMS force, LEM's (time s, iterations, energy, force evaluations), and per variant (time / LEM, E -
E_LEM, converged, the method run, [stage, iterations, seconds], force evaluations / LEM's). LEM's results move from
run to run on glassy Systems (its path is chaotic at rounding level), so compare variants within a line.
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .evaluations import EvaluationCounter, counting, timed


def parse_variant(text: str) -> Tuple[str, Dict[str, Any]]:
    """``method@key=value+key=value`` -> (method, options); numbers become int or float."""
    method, _, rest = text.partition("@")
    options: Dict[str, Any] = {}
    for item in filter(None, rest.split("+")):
        key, _, value = item.partition("=")
        for kind in (int, float):
            try:
                options[key] = kind(value)
                break
            except ValueError:
                continue
        else:
            options[key] = value
    return method, options


def build(name: str):
    from . import everyday_cases, external_cases

    return everyday_cases.build_case(name) if name in everyday_cases.CASES else external_cases.build_case(name)


def compare_case(name: str, start: Any, variants: List[str], threads: int = 2) -> Dict[str, Any]:
    """One case and start: LEM, then each variant, side by side (see the module docstring)."""
    import openmm
    from openmm import unit

    import openmm_reparam

    case = build(name)
    evaluations = EvaluationCounter(case.system)
    context = openmm.Context(case.system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("CPU"),
                             {"Threads": str(threads)})
    x = case.make_start(start)
    context.setPositions(x)
    forces = context.getState(getForces=True).getForces(asNumpy=True).value_in_unit(
        unit.kilojoule_per_mole / unit.nanometer)
    row: Dict[str, Any] = {"case": name, "start": start, "atoms": case.n_atoms,
                           "constraints": case.system.getNumConstraints(), "max_force": float(np.abs(forces).max()),
                           "rms_force": float(np.sqrt((np.asarray(forces) ** 2).mean()))}

    class Count(openmm.MinimizationReporter):
        n = 0

        def report(self, iteration, x, grad, args):
            self.n += 1
            return False

    counter = Count()
    openmm.LocalEnergyMinimizer.minimize(context, 10.0, 0, counter)
    context.setPositions(x)
    with counting(evaluations):
        _, lem_time, lem_evaluations = timed(lambda: openmm.LocalEnergyMinimizer.minimize(context, 10.0, 0))
    lem = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    row["lem"] = (round(lem_time, 4), counter.n, round(lem, 2), lem_evaluations)
    for text in variants:
        method, options = parse_variant(text)
        context.setPositions(x)
        with counting(evaluations):
            result, seconds, used = timed(lambda: openmm_reparam.minimize(context, method=method, never_worse=False,
                                                                          **options))
        row[text] = (round(seconds / lem_time, 2), round(result.final_energy - lem, 2), result.converged,
                     result.method, [(s.name, s.iterations, round(s.wall_time, 3)) for s in result.stages],
                     round(used / lem_evaluations, 2))
    return row


def _start(text: str) -> Any:
    return int(text) if text.isdigit() else (text or "own")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", required=True, help="comma-separated method@option=value+... variants")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("cases", nargs="+", help="CASE or CASE:START (START: own or a seed)")
    args = parser.parse_args(argv)
    import torch  # noqa: F401 - before the OpenMM plugins

    for item in args.cases:
        name, _, start = item.partition(":")
        print(json.dumps(compare_case(name, _start(start), args.variants.split(","), args.threads)), flush=True)
    return 0
