"""Minimize a protein structure with the openmm-reparam Python API (default: chignolin, PDB 5AWL).

    python examples/minimize_pdb.py [IN.pdb] [-o OUT.pdb] [--method gnn] [--steps N] [--fine-steps N]

Steps: prepare the PDB (PDBFixer: remove waters, add hydrogens; amber14 + OBC2 implicit solvent), make an
OpenMM Context, minimize it with ``openmm_reparam.minimize``, print the result and write the minimized PDB.
"""
import argparse
import os

import openmm
from openmm import app

import openmm_reparam
from openmm_reparam.app.prepare import prepare

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_INPUT = os.path.join(HERE, os.pardir, "tests", "data", "5AWL.pdb")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", nargs="?", default=DEFAULT_INPUT, help="PDB or mmCIF file (default: 5AWL)")
    parser.add_argument("-o", "--output", default="minimized.pdb")
    parser.add_argument("--method", default="gnn", choices=openmm_reparam.METHODS)
    parser.add_argument("--steps", type=int, default=None, help="max steps of the reparametrized stage")
    parser.add_argument("--fine-steps", type=int, default=None, help="max steps of the fine stage")
    parser.add_argument("--platform", default="CPU")
    args = parser.parse_args()

    # 1. Repair the structure and build an OpenMM System.
    prepared = prepare(args.input, forcefield="amber14", solvent="obc2", ph=7.0)
    changes = prepared.changes
    removed = ", ".join(changes["heterogens_removed"]) or "nothing"
    print(f"prepared {prepared.topology.getNumAtoms()} atoms: removed {removed}, "
          f"added {changes['hydrogens_added']} hydrogens and {changes['heavy_atoms_added']} heavy atoms")

    # 2. An ordinary OpenMM Context (the integrator is not used by minimization).
    platform = openmm.Platform.getPlatformByName(args.platform)
    context = openmm.Context(prepared.system, openmm.VerletIntegrator(0.001), platform)
    context.setPositions(prepared.positions)

    # 3. Minimize: the Context holds the minimized positions afterwards.
    options = {k: v for k, v in (("steps", args.steps), ("fine_steps", args.fine_steps)) if v is not None}
    result = openmm_reparam.minimize(context, tolerance=10.0, method=args.method, seed=0, **options)
    print(result)

    # 4. Write the minimized structure, keeping the chain and residue ids of the input.
    positions = context.getState(getPositions=True).getPositions()
    with open(args.output, "w") as handle:
        app.PDBFile.writeFile(prepared.topology, positions, handle, keepIds=True)
    print(f"final energy {result.final_energy:.3f} kJ/mol; wrote {args.output}")


if __name__ == "__main__":
    main()
