"""Relax a noisy model of a crystal structure with chain breaks and compare it with the crystal.

    python examples/relax_chain_breaks.py [CRYSTAL.pdb] [--noise 0.02] [--seed 0] [--method lbfgs] [-o out.pdb]

Adds Gaussian noise (nm, on every coordinate) to the crystal, relaxes the noisy model with
``openmm_reparam.relax`` and prints the heavy-atom RMSD to the crystal (Kabsch superposition) of the noisy and
the relaxed model, the chain breaks found, the violations before and after and the residues that moved most.
Default input: 1HLO chain A 3-42 without residues 13-14 and 31-32 (two chain breaks, four histidines).
"""
import argparse
import math
import os
import tempfile

import numpy as np
from openmm import app, unit

import openmm_reparam

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = os.path.join(HERE, os.pardir, "tests", "data", "1hlo_A3-42_breaks.pdb")


def heavy_atoms(path):
    pdb = app.PDBFile(path)
    xyz = pdb.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    return {(a.residue.chain.id, a.residue.id, a.name): xyz[a.index] for a in pdb.topology.atoms()
            if a.element is not None and a.element.symbol != "H" and a.name != "OXT" and a.residue.name != "HOH"}


def rmsd_angstrom(reference, path):
    """Heavy-atom RMSD (Å) of ``path`` to ``reference`` after the optimal superposition."""
    ref, moved = heavy_atoms(reference), heavy_atoms(path)
    keys = sorted(set(ref) & set(moved))
    a = np.array([ref[k] for k in keys])
    b = np.array([moved[k] for k in keys])
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    u, s, vt = np.linalg.svd(a.T @ b)
    s[-1] *= np.sign(np.linalg.det(u @ vt))
    return 10 * math.sqrt(max(0.0, ((a ** 2).sum() + (b ** 2).sum() - 2 * s.sum()) / len(a)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("crystal", nargs="?", default=DEFAULT)
    parser.add_argument("--noise", type=float, default=0.02, help="nm, Gaussian, on every coordinate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--method", default="lbfgs")
    parser.add_argument("--platform", default="CPU")
    parser.add_argument("-o", "--output", default=None, help="the relaxed model (default: a temporary file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        pdb = app.PDBFile(args.crystal)
        x = pdb.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        x = x + np.random.default_rng(args.seed).normal(0.0, args.noise, x.shape)
        noisy = os.path.join(directory, "noisy.pdb")
        with open(noisy, "w") as handle:
            app.PDBFile.writeFile(pdb.topology, x * unit.nanometer, handle, keepIds=True)
        output = args.output or os.path.join(directory, "relaxed.pdb")
        data = openmm_reparam.relax(noisy, output, method=args.method, platform=args.platform)
        print(f"noisy model:   heavy-atom RMSD to the crystal {rmsd_angstrom(args.crystal, noisy):.3f} A")
        print(f"relaxed model: heavy-atom RMSD to the crystal {rmsd_angstrom(args.crystal, output):.3f} A")
    breaks = data["preparation"]["chain_breaks"]
    print(f"chain breaks: {len(breaks)}: " + ", ".join(f"{b['after']} | {b['before']}" for b in breaks))
    print(f"violations: {data['violations_before']['total']} -> {data['violations_after']['total']} in "
          f"{len(data['outer_iterations'])} outer iteration(s); released: "
          f"{data['outer_iterations'][-1]['released_residues']}")
    moved = sorted(data["residue_displacements"], key=lambda row: -row["max_angstrom"])[:5]
    print("largest displacements: " + ", ".join(f"{r['residue']} {r['max_angstrom']:.2f} A" for r in moved))


if __name__ == "__main__":
    main()
