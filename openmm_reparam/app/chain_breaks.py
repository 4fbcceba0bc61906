"""Chain breaks made real termini while a structure is prepared.

OpenMM bonds consecutive residues of a chain (``Topology.createStandardBonds``) whatever their distance, and
PDBFixer caps only the ends of a chain: a gap of missing residues left unbuilt becomes one peptide bond of
several Å, which the force field then pulls shut, dragging the residues on both sides far from where they
were. :func:`find_chain_breaks` finds the breaks: consecutive polymer residues whose linking atoms (C(i)–N(i+1)
in proteins, O3'(i)–P(i+1) in nucleic acids) are farther apart than
:data:`~.violations.BREAK_DISTANCE_ANGSTROM`. :func:`split_chains` starts a new chain with the same chain id at
each break and drops the bond across it: PDBFixer then adds the terminal atoms on both sides (OXT before, the
N-terminal hydrogens after) and the force field gives them terminal templates.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Tuple

import numpy as np
from openmm import app

from ..core.units import as_positions
from .violations import BREAK_DISTANCE_ANGSTROM, label

#: The atoms that link residue i to residue i+1 of a chain: (atom of i, atom of i+1).
LINKS = (("C", "N"), ("O3'", "P"))


def find_chain_breaks(topology: app.Topology, positions: Any,
                      break_distance: float = BREAK_DISTANCE_ANGSTROM) -> List[Tuple[int, int, float]]:
    """(index of the residue before, index of the residue after, link distance Å) of every chain break;
    ``positions`` in nm (a Quantity or an array). Pairs without both linking atoms are not breaks."""
    xyz = as_positions(positions) * 10.0
    breaks = []
    for chain in topology.chains():
        residues = list(chain.residues())
        for before, after in zip(residues, residues[1:]):
            distance = link_distance(before, after, xyz)
            if distance is not None and distance > break_distance:
                breaks.append((before.index, after.index, distance))
    return breaks


def link_distance(before: app.Residue, after: app.Residue, xyz: np.ndarray):
    """The distance (Å) between the atoms that would bond ``before`` to ``after``, or None when they have no
    such pair of atoms (not both amino acids or both nucleotides, or an atom missing)."""
    first = {a.name: a.index for a in before.atoms()}
    second = {a.name: a.index for a in after.atoms()}
    for tail, head in LINKS:
        if tail in first and head in second:
            return float(np.linalg.norm(xyz[first[tail]] - xyz[second[head]]))
    return None


def describe_breaks(topology: app.Topology, breaks: Iterable[Tuple[int, int, float]]) -> List[Dict[str, Any]]:
    """The breaks as report rows: ``{"after": "ALA A 12", "before": "ARG A 15", "c_n_angstrom": 3.9}``."""
    residues = list(topology.residues())
    return [{"after": label(residues[a]), "before": label(residues[b]), "c_n_angstrom": d} for a, b, d in breaks]


def split_chains(topology: app.Topology, starts: Iterable[int]) -> app.Topology:
    """A copy of ``topology`` in which each residue whose index is in ``starts`` begins a new chain with the same
    id; every bond is kept except those joining a new chain's first residue to the residue before it. Residues
    and atoms keep their order, names, ids and elements."""
    starts = set(starts)
    split = app.Topology()
    split.setPeriodicBoxVectors(topology.getPeriodicBoxVectors())
    new_atoms, previous = {}, {}
    for chain in topology.chains():
        new_chain, last = split.addChain(chain.id), None
        for residue in chain.residues():
            if residue.index in starts:
                new_chain = split.addChain(chain.id)
                previous[residue.index] = last
            new_residue = split.addResidue(residue.name, new_chain, residue.id, residue.insertionCode)
            for atom in residue.atoms():
                new_atoms[atom] = split.addAtom(atom.name, atom.element, new_residue, atom.id)
            last = residue.index
    for bond in topology.bonds():
        pair = {bond[0].residue.index, bond[1].residue.index}
        if any(pair == {start, previous[start]} for start in starts if start in previous):
            continue
        split.addBond(new_atoms[bond[0]], new_atoms[bond[1]], bond.type, bond.order)
    return split


__all__ = ["find_chain_breaks", "split_chains", "describe_breaks", "link_distance", "LINKS"]
