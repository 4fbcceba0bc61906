"""Boxes where the default hands over to OpenMM's L-BFGS or where ``precon`` had not converged: flexible water
(openmmtools' FlexibleWaterBox and its PME, reaction-field and discharged variants), dipolar fluids, polarizable
SWM4-NDP water with Drude particles and AMOEBA water, each run by LEM (OpenMM's LocalEnergyMinimizer) and by
candidates of the package from the same start in the same process.

    python -m benchmarks boxes --cases FlexibleWaterBox,drude --candidates default,precon,precon@precon_mu_floor=0.05

Per case: one Context (CPU platform by name, ``--threads`` threads, DeterministicForces: otherwise OpenMM's CPU
PME spreads charges in the order its threads take them; runs from the same start repeat exactly only with
``--threads 1``, as the CPU platform's nonbonded forces are summed in its threads' order), tolerance
10 kJ/mol/nm, the start put back before every run; each run's force evaluations during its call are counted
(:mod:`benchmarks.evaluations`; LEM's line searches included), with wall time, final energy, RMS and largest
force (every particle with mass: Drude particles too) and whether it converged. Wall times depend on the
machine's load; evaluations do not. Prints one Markdown table per case and writes ``--json`` if given.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import openmm
from openmm import unit

from .compare import parse_variant
from .evaluations import EvaluationCounter, counting, evaluations_allowed, timed

TOLERANCE = 10.0
CASES = ("FlexibleWaterBox", "FlexiblePMEWaterBox", "FlexibleReactionFieldWaterBox", "FlexibleDischargedWaterBox",
         "UnconstrainedDipolarFluid", "DipolarFluid", "drude", "amoeba")


def build(name: str) -> Tuple[openmm.System, np.ndarray]:
    """(System, start) of case ``name``: ``drude`` and ``amoeba`` from :mod:`openmm_reparam.testing`, any other
    an openmmtools test system perturbed as the external suite perturbs it (seed 0)."""
    from openmm_reparam import testing

    if name in ("drude", "amoeba"):
        return getattr(testing, f"{name}_water_box")()
    from .external_cases import testsystem_case

    case = testsystem_case(name)
    return case.system, case.make_start(0)


def _measure(context: openmm.Context) -> Tuple[float, float, float]:
    """(energy kJ/mol, RMS force, largest force) over the particles with mass."""
    from openmm_reparam.core.bridge import EnergyBridge

    energy = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    rms, largest = EnergyBridge(context).force_norms()
    return energy, float(rms), float(largest)


def run_candidate(context: openmm.Context, label: str) -> Dict[str, Any]:
    """``lem``, ``default`` (``minimize(context)``) or ``METHOD[@option=value+...]`` on ``context``."""
    from openmm_reparam import minimize

    stages: List[Dict[str, Any]] = []
    method = "lem"
    if label == "lem":
        _, wall, evaluations = timed(lambda: openmm.LocalEnergyMinimizer.minimize(context, TOLERANCE, 0))
    else:
        name, options = ("auto", {}) if label == "default" else parse_variant(label)
        result, wall, evaluations = timed(lambda: minimize(context, TOLERANCE, method=name, **options))
        method = result.method
        stages = [{"name": s.name, "iterations": s.iterations, "evaluations": s.energy_evaluations,
                   "stop_reason": s.stop_reason, "engine": s.engine} for s in result.stages]
    energy, rms, largest = _measure(context)
    return {"label": label, "method": method, "wall_time": wall, "energy": energy, "rms_force": rms,
            "max_force": largest, "converged": rms <= TOLERANCE, "stages": stages, "evaluations": evaluations}


def run_case(name: str, candidates: Sequence[str], threads: int) -> List[Dict[str, Any]]:
    """LEM, then each candidate, from the same start on one Context; evaluations counted per run."""
    system, start = build(name)
    counter = EvaluationCounter(system)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("CPU"),
                             {"Threads": str(threads), "DeterministicForces": "true"})
    runs = []
    for label in ["lem", *[c for c in candidates if c != "lem"]]:
        context.setPositions(start)
        context.computeVirtualSites()
        with counting(counter):
            run = run_candidate(context, label)
        run["case"], run["particles"] = name, system.getNumParticles()
        runs.append(run)
        print(f"{name}: {label}: {run['evaluations']} evaluations, {run['wall_time']:.2f} s, "
              f"E {run['energy']:.3f}, RMS {run['rms_force']:.2f}", file=sys.stderr, flush=True)
    return runs


def table(runs: List[Dict[str, Any]]) -> str:
    """One case's runs as Markdown, with ratios to LEM and whether each meets the goals (evaluations and time
    at most LEM's, at most half LEM's evaluations where LEM needs more than 300, energy at most LEM's +
    max(1, 1e-5|E|), converged)."""
    lem = runs[0]
    slack = max(1.0, 1e-5 * abs(lem["energy"]))
    lines = [f"#### {lem['case']} ({lem['particles']} particles)", "",
             "| run | method | evaluations | x LEM | time s | x LEM | energy kJ/mol | RMS force | converged | goals |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for run in runs:
        evals = run["evaluations"] / max(1, lem["evaluations"])
        goals = (run["converged"] and run["energy"] <= lem["energy"] + slack
                 and run["evaluations"] <= evaluations_allowed(lem["evaluations"])
                 and run["wall_time"] <= lem["wall_time"])
        lines.append(f"| {run['label']} | {run['method']} | {run['evaluations']} | {evals:.2f} | "
                     f"{run['wall_time']:.1f} | {run['wall_time'] / lem['wall_time']:.2f} | {run['energy']:.1f} | "
                     f"{run['rms_force']:.2f} | {'yes' if run['converged'] else 'no'} | "
                     f"{'-' if run is lem else 'met' if goals else 'not met'} |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks boxes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case names (default: all)")
    parser.add_argument("--candidates", default="default,precon",
                        help="comma-separated: default, a method name, or METHOD@option=value+option=value")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write every run's record here")
    args = parser.parse_args(argv)
    everything = []
    for name in [c for c in args.cases.split(",") if c]:
        runs = run_case(name, [c for c in args.candidates.split(",") if c], args.threads)
        everything += runs
        print(table(runs) + "\n", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(everything, handle, indent=1)
    return 0
