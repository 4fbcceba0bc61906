"""Chain breaks made real termini before a structure is prepared.

OpenMM bonds consecutive residues of a chain (``Topology.createStandardBonds``) whatever their distance, and
PDBFixer caps only the ends of a chain: a gap of missing residues left unbuilt becomes one peptide bond of
several Å, which the force field then pulls shut, dragging the residues on both sides far from where they
were. :func:`split_at_chain_breaks` finds the breaks (C(i)–N(i+1) farther than
:data:`~.violations.BREAK_DISTANCE_ANGSTROM`) in the input and writes a copy in which each break starts a new
chain with the same chain id and residue numbers (a ``TER`` record between them): PDBFixer then adds the OXT of
the residue before the break and the N-terminal hydrogens of the residue after it, and the force field gives
them terminal templates, with no bond across the gap.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Tuple

from openmm import app

from ..core.units import as_positions
from .violations import BREAK_DISTANCE_ANGSTROM, label, peptide_links


def read_structure(path: str, model: int = 1) -> Tuple[app.Topology, Any]:
    """The topology and the positions of model ``model`` (1-based) of a PDB or PDBx/mmCIF file."""
    from .prepare import structure_format
    reader = app.PDBxFile if structure_format(path) == "pdbx" else app.PDBFile
    structure = reader(path)
    return structure.topology, structure.getPositions(asNumpy=True, frame=model - 1)


def find_chain_breaks(topology: app.Topology, positions: Any,
                      break_distance: float = BREAK_DISTANCE_ANGSTROM) -> List[Tuple[int, int, float]]:
    """(residue index before, after, C–N distance Å) of every chain break; ``positions`` in nm."""
    return peptide_links(topology, as_positions(positions) * 10.0, break_distance=break_distance)[1]


def split_topology(topology: app.Topology, breaks: List[Tuple[int, int, float]]) -> app.Topology:
    """A copy of ``topology`` (atoms only) in which the residue after each break begins a new chain."""
    starts = {after for _, after, _ in breaks}
    split = app.Topology()
    split.setPeriodicBoxVectors(topology.getPeriodicBoxVectors())
    for chain in topology.chains():
        new_chain = split.addChain(chain.id)
        for residue in chain.residues():
            if residue.index in starts:
                new_chain = split.addChain(chain.id)
            new_residue = split.addResidue(residue.name, new_chain, residue.id, residue.insertionCode)
            for atom in residue.atoms():
                split.addAtom(atom.name, atom.element, new_residue, atom.id)
    return split


def split_at_chain_breaks(path: str, model: int, directory: str,
                          break_distance: float = BREAK_DISTANCE_ANGSTROM) -> Tuple[str, int, List[Dict[str, Any]]]:
    """``(path to prepare, model to use, breaks)``: the input itself when it has no chain break, else a copy in
    ``directory`` split at its breaks (model 1 of it). A file OpenMM cannot read is passed on unchanged, for
    the preparation to report."""
    try:
        topology, positions = read_structure(path, model)
    except Exception:  # noqa: BLE001  (prepare() gives the user-facing error for unreadable input)
        return path, model, []
    breaks = find_chain_breaks(topology, positions, break_distance)
    if not breaks:
        return path, model, []
    residues = list(topology.residues())
    found = [{"after": label(residues[a]), "before": label(residues[b]), "c_n_angstrom": d} for a, b, d in breaks]
    split_path = os.path.join(directory, "split_" + os.path.splitext(os.path.basename(path))[0] + ".pdb")
    with open(split_path, "w") as handle:
        app.PDBFile.writeFile(split_topology(topology, breaks), positions, handle, keepIds=True)
    return split_path, 1, found


__all__ = ["find_chain_breaks", "split_topology", "split_at_chain_breaks", "read_structure"]
