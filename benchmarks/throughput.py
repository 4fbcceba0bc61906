"""Throughput of batch minimization and relax, in structures per hour, on noisy models of the shared proteins.

    python -m benchmarks throughput --models 20 --workers 2 --out-dir benchmarks/out/throughput
    python -m benchmarks throughput --models 3 --proteins 1PLW,5AWL --out-dir /tmp/throughput   # a quick check

Models: ``--models`` copies of the stored native structures (``benchmarks/data/NAME_native.pdb``, taken in turn)
with Gaussian noise of ``--noise`` nm (default 0.02) on every coordinate, seeds 0, 1, ...

Minimization (amber14 + OBC2, HBonds, tolerance 10 kJ/mol/nm, CPU platform), wall clock from first input to
last output, cluster start included:

* ``batch gnn`` / ``batch lbfgs``: ``openmm_reparam.minimize_many`` on an embedded LocalCluster of ``--workers``
  processes, one thread each (``--method`` and OpenMM's L-BFGS alone, to separate the parallelism from the
  minimizer);
* ``sequential``: the plain loop a script would run: PDBFixer (heterogens removed, missing atoms and hydrogens
  added), ``ForceField.createSystem`` (force field loaded once), ``LocalEnergyMinimizer.minimize``, PDB written;
  the CPU platform gets ``--workers`` threads so both use the same cores.

Relax (AlphaFold protocol, amber99sb, heavy-atom restraints, violation checks, up to 3 outer iterations), in the
same batch: ``--method`` as the inner step against OpenMM's L-BFGS (``lbfgs``) as the inner step. Reported: the
median time per structure (on its worker), throughput, violations left and the heavy-atom RMSD to the native.

Prints a Markdown table and writes ``OUT_DIR/throughput.json``. Every run redoes its structures (``force``).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any, Dict, List, Optional

import numpy as np

import torch  # noqa: F401  (before openmm: openmmtorch's plugin needs libtorch loaded)
import openmm
from openmm import app, unit

from openmm_reparam.app.batch import minimize_many

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
PROTEINS = ("1PLW", "5AWL", "2JOF", "2WXC")
TOLERANCE = 10.0  # kJ/mol/nm


def make_models(count: int, proteins: List[str], noise_nm: float, directory: str) -> List[str]:
    """``count`` noisy models, proteins in turn, seed = model number; returns their paths."""
    os.makedirs(directory, exist_ok=True)
    paths = []
    for seed in range(count):
        name = proteins[seed % len(proteins)]
        pdb = app.PDBFile(os.path.join(DATA_DIR, f"{name}_native.pdb"))
        native = pdb.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        noisy = native + np.random.default_rng(seed).normal(0.0, noise_nm, native.shape)
        path = os.path.join(directory, f"{name}_{seed:03d}.pdb")
        with open(path, "w") as handle:
            app.PDBFile.writeFile(pdb.topology, noisy * unit.nanometer, handle, keepIds=True)
        paths.append(path)
    return paths


def run_batch(models: List[str], out_dir: str, workers: int, **settings: Any) -> Dict[str, Any]:
    start = time.perf_counter()
    rows = minimize_many(models, out_dir, workers=workers, force=True, platform="CPU", progress=False,
                         tolerance=TOLERANCE, **settings)
    wall = time.perf_counter() - start
    ok = [r for r in rows if r["status"] == "ok"]
    result = {"wall_time": wall, "structures": len(rows), "ok": len(ok), "per_hour": 3600.0 * len(ok) / wall,
              "median_time_per_structure": statistics.median(r["wall_time"] for r in ok) if ok else None,
              "median_energy_after": statistics.median(r["energy_after"] for r in ok) if ok else None}
    if settings.get("protocol") == "relax":
        result["violations_before"] = sum(r["violations_before"] for r in ok)
        result["violations_after"] = sum(r["violations_after"] for r in ok)
        result["median_rmsd_to_native"] = statistics.median(rmsd_to_native(r["input"], r["output"]) for r in ok)
    return result


def run_sequential(models: List[str], out_dir: str, threads: int) -> Dict[str, Any]:
    """PDBFixer + createSystem + LocalEnergyMinimizer, one model after the other."""
    from pdbfixer import PDBFixer
    os.makedirs(out_dir, exist_ok=True)
    start = time.perf_counter()
    forcefield = app.ForceField("amber14-all.xml", "implicit/obc2.xml")
    platform = openmm.Platform.getPlatformByName("CPU")
    energies, times = [], []
    for path in models:
        begin = time.perf_counter()
        fixer = PDBFixer(filename=path)
        fixer.findMissingResidues()
        fixer.missingResidues = {}
        fixer.findNonstandardResidues()
        fixer.replaceNonstandardResidues()
        fixer.removeHeterogens(keepWater=False)
        fixer.findMissingAtoms()
        fixer.addMissingAtoms()
        fixer.addMissingHydrogens(7.0, forcefield=forcefield)
        system = forcefield.createSystem(fixer.topology, nonbondedMethod=app.NoCutoff, constraints=app.HBonds)
        context = openmm.Context(system, openmm.VerletIntegrator(0.001), platform, {"Threads": str(threads)})
        context.setPositions(fixer.positions)
        openmm.LocalEnergyMinimizer.minimize(context, TOLERANCE, 0)
        state = context.getState(getEnergy=True, getPositions=True)
        with open(os.path.join(out_dir, os.path.basename(path)), "w") as handle:
            app.PDBFile.writeFile(fixer.topology, state.getPositions(), handle, keepIds=True)
        energies.append(state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole))
        times.append(time.perf_counter() - begin)
    wall = time.perf_counter() - start
    return {"wall_time": wall, "structures": len(models), "ok": len(models), "per_hour": 3600.0 * len(models) / wall,
            "median_time_per_structure": statistics.median(times), "median_energy_after": statistics.median(energies)}


def rmsd_to_native(model: str, relaxed: str) -> float:
    """Heavy-atom RMSD (Å, superposed) of a relaxed model to the native structure it was made from."""
    name = os.path.basename(model).split("_")[0]
    native, result = _heavy(os.path.join(DATA_DIR, f"{name}_native.pdb")), _heavy(relaxed)
    keys = sorted(set(native) & set(result))
    a, b = np.array([native[k] for k in keys]), np.array([result[k] for k in keys])
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    u, s, vt = np.linalg.svd(a.T @ b)
    s[-1] *= np.sign(np.linalg.det(u @ vt))
    return 10.0 * float(np.sqrt(max(0.0, ((a ** 2).sum() + (b ** 2).sum() - 2.0 * s.sum()) / len(a))))


def _heavy(path: str) -> Dict[Any, np.ndarray]:
    structure = app.PDBxFile(path) if path.endswith(".cif") else app.PDBFile(path)
    xyz = structure.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    return {(a.residue.chain.id, a.residue.id, a.name): xyz[a.index] for a in structure.topology.atoms()
            if a.element is not None and a.element.symbol != "H"}


def table(results: Dict[str, Dict[str, Any]], workers: int) -> str:
    lines = ["| run | structures ok | wall (s) | structures/hour | median s/structure | median E after (kJ/mol) "
             "| violations before → after | median heavy RMSD to native (Å) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in results.items():
        violations = (f"{r['violations_before']} → {r['violations_after']}" if "violations_after" in r else "")
        rmsd = f"{r['median_rmsd_to_native']:.3f}" if "median_rmsd_to_native" in r else ""
        lines.append(f"| {name} | {r['ok']}/{r['structures']} | {r['wall_time']:.1f} | {r['per_hour']:.0f} | "
                     f"{_fmt(r['median_time_per_structure'])} | {_fmt(r['median_energy_after'], 1)} | {violations} | "
                     f"{rmsd} |")
    return "\n".join(lines) + f"\n\n{workers} workers x 1 thread (batch); sequential: 1 process x {workers} threads."


def _fmt(value: Any, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m benchmarks throughput``: run, print the table, write ``OUT_DIR/throughput.json``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--proteins", default=",".join(PROTEINS))
    parser.add_argument("--noise", type=float, default=0.02, help="nm per coordinate (default 0.02)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--method", default="gnn", help="our minimizer (default gnn)")
    parser.add_argument("--skip", default="", help="comma-separated runs to leave out: batch,lbfgs,sequential,relax")
    parser.add_argument("--out-dir", default=os.path.join("benchmarks", "out", "throughput"))
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    models = make_models(args.models, [p.strip() for p in args.proteins.split(",")], args.noise,
                         os.path.join(args.out_dir, "models"))
    runs = {f"batch {args.method}": ("batch", dict(method=args.method)),
            "batch lbfgs": ("lbfgs", dict(method="lbfgs")),
            "sequential PDBFixer + LocalEnergyMinimizer": ("sequential", None),
            f"relax, inner {args.method}": ("relax", dict(protocol="relax", method=args.method)),
            "relax, inner OpenMM L-BFGS": ("relax", dict(protocol="relax", method="lbfgs"))}
    results: Dict[str, Dict[str, Any]] = {}
    for label, (kind, settings) in runs.items():
        if kind in skip:
            continue
        out = os.path.join(args.out_dir, label.split(",")[0].replace(" ", "_") + "_" + (settings or {}).get(
            "method", "openmm"))
        print(f"running {label} on {len(models)} models ...", file=sys.stderr, flush=True)
        results[label] = (run_sequential(models, out, args.workers) if settings is None else
                          run_batch(models, out, args.workers, **settings))
    text = table(results, args.workers)
    print(text)
    with open(os.path.join(args.out_dir, "throughput.json"), "w") as handle:
        json.dump({"models": len(models), "noise_nm": args.noise, "workers": args.workers, "results": results,
                   "openmm": openmm.__version__, "cpus": os.cpu_count()}, handle, indent=2)
    return 0
