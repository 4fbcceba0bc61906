"""Protein benchmark systems: amber14 + OBC2 implicit solvent, native structures and stored unfolded starts.

Every protein is model 1 of its PDB entry, cleaned by the application layer (``openmm_reparam.app.prepare``:
pdbfixer, heterogens and water removed, missing heavy atoms and hydrogens at pH 7 added), and its System is the
application layer's amber14 + OBC2 ``create_system``. Refold and relax Systems use NoCutoff and *no
constraints* (every atom is a free coordinate, which keeps the comparison between optimizers simple; OpenMM's
L-BFGS sees the same unconstrained system).

Unfolded starts come from high-temperature Langevin MD of the native structure with a fixed seed, stopped as
soon as the C-alpha RMSD to native passes a per-protein threshold. CPU MD is not reproducible bit for bit, so
the starts are generated once (``python -m benchmarks make-starts``) and stored in ``benchmarks/data/`` as PDB
files; every method and every seed then begins from the same coordinates.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import openmm
from openmm import app, unit

from openmm_reparam.app.prepare import ca_indices as app_ca_indices
from openmm_reparam.app.prepare import create_system as app_create_system
from openmm_reparam.app.prepare import heavy_atom_indices, prepare, write_structure

from .pdb_source import PDB_SOURCE_DIR  # the deposited PDB entries (see pdb_source)

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")

#: C-alpha RMSD (Angstrom) the unfolding MD must exceed, per protein (chosen for each protein's size).
UNFOLD_THRESHOLD_ANGSTROM: Dict[str, float] = {"1PLW": 2.5, "5AWL": 4.0, "2JOF": 6.0, "2WXC": 5.0}
UNFOLD_TEMPERATURE_K = 1000.0
UNFOLD_SEED = 2024


@dataclass
class ProteinCase:
    """A protein benchmark system: force field System, topology, native and start positions (nm)."""

    name: str
    topology: app.Topology
    system: openmm.System
    native: np.ndarray
    start: np.ndarray


def fix_structure(pdb_path: str) -> Tuple[app.Topology, np.ndarray]:
    """Clean model 1 of a PDB file with the application layer's ``prepare`` (pdbfixer: heterogens and water
    removed, nonstandard residues replaced, missing heavy atoms and hydrogens at pH 7 added, no missing residues
    modelled); returns the topology and positions in nm.

    The stored starts in ``data/`` were made with an earlier copy of this code (pdbfixer's default platform,
    no seed); they stay valid as they are (they are read from their PDB files), only regenerated starts would
    differ in the placement of added hydrogens."""
    prepared = prepare(pdb_path, forcefield="amber14", solvent="obc2", ph=7.0, model=1,
                       add_missing_residues=False, constraints=None)
    positions = np.array(prepared.positions.value_in_unit(unit.nanometer), dtype=np.float64)
    return prepared.topology, positions


def create_system(topology: app.Topology, constraints=None) -> openmm.System:
    """amber14-all + OBC2 implicit solvent, NoCutoff (the application layer's ``create_system``); no constraints
    unless asked (the unfolding MD and the everyday implicit-solvent cases use HBonds)."""
    return app_create_system(topology, forcefield="amber14", solvent="obc2", constraints=constraints)


def ca_indices(topology: app.Topology) -> np.ndarray:
    return np.array(app_ca_indices(topology), dtype=int)


def heavy_indices(topology: app.Topology) -> np.ndarray:
    return np.array(heavy_atom_indices(topology, solute_only=False), dtype=int)


def superposed_rmsd(x: np.ndarray, ref: np.ndarray, indices: np.ndarray) -> float:
    """RMSD (Angstrom) over ``indices`` after optimal superposition (Kabsch), positions in nm."""
    a = np.asarray(x, dtype=np.float64)[indices]
    b = np.asarray(ref, dtype=np.float64)[indices]
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    u, s, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt))
    s[-1] *= d
    msd = (np.sum(a * a) + np.sum(b * b) - 2.0 * np.sum(s)) / len(indices)
    return float(np.sqrt(max(msd, 0.0)) * 10.0)


def structure_metrics(topology: app.Topology, x: np.ndarray, native: np.ndarray) -> Dict[str, float]:
    """C-alpha and heavy-atom RMSD to native (Angstrom), each after its own superposition."""
    return {"ca_rmsd": superposed_rmsd(x, native, ca_indices(topology)),
            "heavy_rmsd": superposed_rmsd(x, native, heavy_indices(topology))}


def native_path(name: str) -> str:
    return os.path.join(DATA_DIR, f"{name}_native.pdb")


def start_path(name: str) -> str:
    return os.path.join(DATA_DIR, f"{name}_unfolded.pdb")


def write_pdb(path: str, topology: app.Topology, positions_nm: np.ndarray) -> None:
    write_structure(topology, np.asarray(positions_nm) * unit.nanometer, path, fmt="pdb")


def read_pdb(path: str) -> Tuple[app.Topology, np.ndarray]:
    pdb = app.PDBFile(path)
    return pdb.topology, np.array(pdb.positions.value_in_unit(unit.nanometer), dtype=np.float64)


def unfold(topology: app.Topology, native: np.ndarray, threshold_angstrom: float,
           temperature: float = UNFOLD_TEMPERATURE_K, seed: int = UNFOLD_SEED,
           chunk_steps: int = 500, max_steps: int = 400_000, threads: int = 1) -> Tuple[np.ndarray, Dict]:
    """Langevin MD (HBonds constraints, 1 fs, friction 1/ps) until the C-alpha RMSD to native passes the threshold."""
    system = create_system(topology, constraints=app.HBonds)
    integrator = openmm.LangevinMiddleIntegrator(temperature * unit.kelvin, 1.0 / unit.picosecond,
                                                 1.0 * unit.femtosecond)
    integrator.setRandomNumberSeed(seed)
    platform = openmm.Platform.getPlatformByName("CPU")
    context = openmm.Context(system, integrator, platform, {"Threads": str(threads)})
    context.setPositions(native)
    openmm.LocalEnergyMinimizer.minimize(context, 10.0, 200)  # remove clashes from added hydrogens
    context.setVelocitiesToTemperature(temperature * unit.kelvin, seed)
    ca = ca_indices(topology)
    steps, rmsd = 0, 0.0
    while steps < max_steps:
        integrator.step(chunk_steps)
        steps += chunk_steps
        x = context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        rmsd = superposed_rmsd(x, native, ca)
        if rmsd >= threshold_angstrom:
            break
        if steps % (20 * chunk_steps) == 0:
            print(f"  unfolding: {steps} steps, C-alpha RMSD {rmsd:.2f} A", file=sys.stderr, flush=True)
    info = {"temperature_K": temperature, "seed": seed, "timestep_fs": 1.0, "friction_per_ps": 1.0,
            "constraints": "HBonds", "steps": steps, "ca_rmsd_angstrom": rmsd,
            "threshold_angstrom": threshold_angstrom, "reached": bool(rmsd >= threshold_angstrom)}
    return np.array(x, dtype=np.float64), info


def make_starts(names=None, source_dir: str = PDB_SOURCE_DIR, overwrite: bool = False,
                threads: int = 1) -> Dict[str, Dict]:
    """Generate and store native and unfolded PDBs for the named proteins (once; they are committed data)."""
    os.makedirs(DATA_DIR, exist_ok=True)
    manifest_path = os.path.join(DATA_DIR, "starts.json")
    manifest = json.load(open(manifest_path)) if os.path.exists(manifest_path) else {}
    for name in names or list(UNFOLD_THRESHOLD_ANGSTROM):
        if os.path.exists(start_path(name)) and not overwrite:
            continue
        topology, native = fix_structure(os.path.join(source_dir, f"{name}.pdb"))
        write_pdb(native_path(name), topology, native)
        topology, native = read_pdb(native_path(name))  # use exactly the stored (rounded) coordinates
        start, info = unfold(topology, native, UNFOLD_THRESHOLD_ANGSTROM[name], threads=threads)
        write_pdb(start_path(name), topology, start)
        info.update({"n_atoms": topology.getNumAtoms(), "n_residues": topology.getNumResidues(),
                     "openmm": openmm.__version__})
        manifest[name] = info
        with open(manifest_path, "w") as handle:
            json.dump(manifest, handle, indent=2, sort_keys=True)
        print(f"{name}: {info}", flush=True)
    return manifest


def load_case(name: str, start: str = "unfolded", perturb_nm: float = 0.0, seed: int = 0,
              constraints=None) -> ProteinCase:
    """Load a stored protein case. ``start``: "unfolded" (stored MD start) or "native" (deposited structure,
    optionally perturbed by seeded Gaussian noise of ``perturb_nm`` per coordinate, for the relax benchmark).
    ``constraints``: of the System (None, the refold/relax setting, or e.g. ``app.HBonds``)."""
    topology, native = read_pdb(native_path(name))
    if start == "unfolded":
        _, x0 = read_pdb(start_path(name))
    elif start == "native":
        x0 = native.copy()
    else:
        raise ValueError(f"unknown start {start!r}")
    if perturb_nm > 0:
        x0 = x0 + np.random.default_rng(seed).normal(scale=perturb_nm, size=x0.shape)
    return ProteinCase(name=name, topology=topology, system=create_system(topology, constraints),
                       native=native, start=x0)


def minimized_native_energy(case: ProteinCase, tolerance: float = 1.0,
                            platform_name: str = "CPU") -> float:
    """Reference energy (kJ/mol): OpenMM's L-BFGS run to convergence from the native structure."""
    integrator = openmm.VerletIntegrator(0.001)
    context = openmm.Context(case.system, integrator, openmm.Platform.getPlatformByName(platform_name))
    context.setPositions(case.native)
    openmm.LocalEnergyMinimizer.minimize(context, tolerance, 0)
    return context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m benchmarks make-starts [--systems 2WXC] [--overwrite]``: generate the stored starts."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks make-starts",
                                     description="generate the stored native/unfolded protein PDBs")
    parser.add_argument("--systems", default=",".join(UNFOLD_THRESHOLD_ANGSTROM))
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for the MD")
    args = parser.parse_args(argv)
    names = [t.strip() for t in args.systems.split(",") if t.strip()]
    make_starts(names, overwrite=args.overwrite, threads=args.threads)
    return 0
