"""Every method on a device platform against the same method on the CPU platform (the OpenCL goal: the
methods that need not call OpenMM's L-BFGS run with positions on the device, with the CPU engine's results within
1e-3 relative). From the same start, each method runs three times: on the device platform with the device stages
(``engine="auto"``; ``result.engine`` says where they ran), on the same platform with ``engine="cpp"`` (the host stages:
this separates the device arithmetic from the platform's own rounding) and on the CPU platform. Prints a
markdown table of final energies and relative gaps; appends it to the device section of RESULTS.md
(``benchmarks/RESULTS.md#device``) with ``--results``.

    python -m benchmarks device-parity --platform OpenCL --precision double --results benchmarks/RESULTS.md

Cases: ``free`` and ``hbonds`` (met-enkephalin in OBC2 from a 0.02 nm start: rugged, where rounding sends paths
into different minima), ``free_near`` and ``hbonds_near`` (0.002 nm from OpenMM's L-BFGS minimum: where the
paths cannot part), ``tip4pew`` (a rigid TIP4P-Ew box with virtual sites, PME) and ``solvated`` (met-enkephalin
in TIP3P with ions, PME, HBonds; slow on pocl).
"""
from __future__ import annotations

import argparse
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import openmm
from openmm import app, unit

import openmm_reparam
from openmm_reparam.testing import (load_peptide, make_context, perturbed, solvated_enkephalin,
                                    tip4pew_water_box)

from .results_file import insert_at_end_of_section
from .runner import environment

SECTION = "device"  # the anchor of the device section in RESULTS.md
METHODS = ("auto", "adam", "fire", "precon", "linear", "gnn")


def _peptide(constraints, near_minimum: bool = False) -> Tuple[openmm.System, np.ndarray]:
    """Met-enkephalin from a 0.02 nm start, or (near_minimum) 0.002 nm from OpenMM's L-BFGS minimum on the CPU."""
    _, system, positions = load_peptide("1plw", constraints=constraints)
    if not near_minimum:
        return system, perturbed(positions, 0.02)
    context = make_context(system, positions, "CPU")
    openmm.LocalEnergyMinimizer.minimize(context, 0.1, 0)
    minimum = context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    return system, perturbed(np.asarray(minimum), 0.002)


CASES: Dict[str, Callable[[], Tuple[openmm.System, np.ndarray]]] = {
    "free": lambda: _peptide(None), "hbonds": lambda: _peptide(app.HBonds),
    "free_near": lambda: _peptide(None, True), "hbonds_near": lambda: _peptide(app.HBonds, True),
    "tip4pew": tip4pew_water_box, "solvated": solvated_enkephalin}


def _run(system: openmm.System, start: np.ndarray, method: str, platform: str, precision: str,
         device: bool) -> Tuple[float, str, bool, float]:
    """(final energy, result.engine, converged, seconds) of one minimize call."""
    properties = {"Precision": precision} if precision and platform != "CPU" else {}
    if platform == "CPU":
        context = make_context(system, start, "CPU")
    else:
        context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(platform),
                                 properties)
        context.setPositions(start * unit.nanometer)
    began = time.perf_counter()
    result = openmm_reparam.minimize(context, method=method, seed=1, engine="auto" if device else "cpp")
    return result.final_energy, result.engine, result.converged, time.perf_counter() - began


def measure(cases: Sequence[str], methods: Sequence[str], platform: str, precision: str) -> List[Dict[str, object]]:
    records = []
    for case in cases:
        system, start = CASES[case]()
        for method in methods:
            device = _run(system, start, method, platform, precision, True)
            host = _run(system, start, method, platform, precision, False)
            cpu = _run(system, start, method, "CPU", "", False)
            records.append({"case": case, "method": method, "device": device, "host": host, "cpu": cpu})
            print(f"{case:9s} {method:7s} device {device[0]:12.3f} ({device[1]})  host {host[0]:12.3f}  "
                  f"cpu {cpu[0]:12.3f}", flush=True)
    return records


def _device_name(platform: str) -> str:
    """The OpenCL device's name (pocl on a CPU, in CI), or the platform's."""
    system = openmm.System()
    system.addParticle(1.0)
    try:
        context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(platform))
        return context.getPlatform().getPropertyValue(context, "DeviceName") or platform
    except openmm.OpenMMException:
        return platform


def _gap(a: float, b: float) -> str:
    return f"{abs(a - b) / max(abs(b), 1e-12):.1e}"


def table(records: Sequence[Dict[str, object]], platform: str, precision: str, command: str) -> str:
    env = environment()
    lines = [f"### Device parity, every method: {platform}, {precision or 'default'} precision "
             f"({env['date_utc']} UTC, commit {env.get('git_commit', '?')})", "",
             f"Machine: {env['cpu_model']}, {env['cpu_count']} CPUs (the device: {_device_name(platform)}). Command: "
             f"`{command}`. Energies in kJ/mol; \"device\" is the run on "
             f"{platform} with the device stages (engine as `result.engine` says), \"host\" the same platform with "
             "`engine=\"cpp\"`, \"CPU\" the CPU platform; gaps relative.", "",
             "| case | method | device | engine | host | CPU | device vs host | device vs CPU | converged |",
             "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- |"]
    for r in records:
        device, host, cpu = r["device"], r["host"], r["cpu"]
        lines.append(f"| {r['case']} | {r['method']} | {device[0]:.3f} | {device[1]} | {host[0]:.3f} | {cpu[0]:.3f} | "
                     f"{_gap(device[0], host[0])} | {_gap(device[0], cpu[0])} | "
                     f"{'yes' if device[2] else 'no'} |")
    return "\n".join(lines) + "\n"


def append_to_results(path: str, text: str) -> None:
    """Insert ``text`` at the end of the device section of RESULTS.md (before the next section)."""
    insert_at_end_of_section(path, SECTION, text)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks device-parity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--platform", default="OpenCL")
    parser.add_argument("--precision", default="double")
    parser.add_argument("--cases", default="free,hbonds,tip4pew")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--results", default="", help="RESULTS.md to append to (default: print only)")
    args = parser.parse_args(argv)
    records = measure(args.cases.split(","), args.methods.split(","), args.platform, args.precision)
    command = "python -m benchmarks device-parity " + " ".join(argv if argv is not None else [])
    text = table(records, args.platform, args.precision, command.strip())
    print(text)
    if args.results:
        append_to_results(args.results, text)
    return 0
