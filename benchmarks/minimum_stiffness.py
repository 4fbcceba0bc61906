"""``openmm_reparam.stiffness`` in use: is what each method returns a true minimum, and how sharp is it?

For each implicit-solvent everyday case (default: the noisy chignolin and Trp-cage models, seed 0), minimize the
same start with OpenMM's LocalEnergyMinimizer and with each method to 10 kJ/mol/nm, then call
``openmm_reparam.stiffness(context, n_modes)`` on the result: the lowest vibrational frequencies (cm⁻¹, imaginary
as negative) and whether any mode is below −threshold (a saddle, not a minimum).

    python -m benchmarks stiffness --cases chignolin_noisy,trpcage_noisy --methods adam,precon,gnn
"""
from __future__ import annotations

import argparse
import json
import time
from typing import List, Optional

import torch  # noqa: F401  (before openmm)
import openmm
from openmm import unit

import openmm_reparam

from . import everyday_cases

TOLERANCE = 10.0


def run(case_name: str, method: str, n_modes: int, threads: int) -> dict:
    case = everyday_cases.build_case(case_name)
    platform = openmm.Platform.getPlatformByName("CPU")
    context = openmm.Context(case.system, openmm.VerletIntegrator(0.001), platform, {"Threads": str(threads)})
    context.setPositions(case.make_start(0) * unit.nanometer)
    t0 = time.perf_counter()
    if method == "lem":
        openmm.LocalEnergyMinimizer.minimize(context, TOLERANCE, 0)
    else:
        openmm_reparam.minimize(context, TOLERANCE, method=method)
    wall = time.perf_counter() - t0
    energy = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    result = openmm_reparam.stiffness(context, n_modes=n_modes)
    return {"case": case_name, "atoms": case.system.getNumParticles(), "method": method, "energy": energy,
            "minimize_s": wall, **result.to_dict()}


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m benchmarks stiffness``: print the table row by row (and write ``--json``)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks stiffness",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="chignolin_noisy,trpcage_noisy")
    parser.add_argument("--methods", default="adam,precon,gnn")
    parser.add_argument("--modes", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    print("| case | atoms | method | E (kJ/mol) | lowest frequencies (cm⁻¹) | imaginary | true minimum | stiffness s |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for case_name in args.cases.split(","):
        for method in ["lem"] + [m for m in args.methods.split(",") if m]:
            row = run(case_name, method, args.modes, args.threads)
            rows.append(row)
            frequencies = ", ".join(f"{f:.0f}" for f in row["frequencies"])
            print(f"| {case_name} | {row['atoms']} | {method} | {row['energy']:.1f} | {frequencies} | "
                  f"{row['n_imaginary']} | {'yes' if row['is_minimum'] else '**no**'} | {row['wall_time']:.1f} |",
                  flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)
    return 0
