"""Structural violations of a protein model, as AlphaFold's relax checks them after each minimization.

Three kinds, over heavy atoms only (AlphaFold's atom14 representation has no hydrogens):

* **clash**: two heavy atoms more than two bonds apart closer than the sum of their van der Waals radii minus
  1.5 Å (AlphaFold's ``clash_overlap_tolerance``; radii C 1.7, N 1.55, O 1.52, S 1.8 Å);
* **bond**: a bond length off its force-field equilibrium by more than 12 σ (AlphaFold's
  ``violation_tolerance_factor``) with σ = 0.02 Å, the typical Engh & Huber spread;
* **angle**: a bond angle whose cosine is off the equilibrium cosine by more than 12 σ with σ = 0.014, the
  spread AlphaFold uses for the backbone angles.

Equilibrium lengths and angles come from the System's ``HarmonicBondForce`` and ``HarmonicAngleForce`` (the
force field being relaxed with), so the check applies to any residue the force field knows. A residue violates
when one of its atoms takes part in a violation; AlphaFold's relax releases the restraints on those residues
and minimizes again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Set, Tuple

import numpy as np
import openmm
from openmm import app

from ..core.units import as_positions

#: van der Waals radii (Å) of AlphaFold's residue_constants; other elements use 1.7 Å.
VDW_RADII_ANGSTROM = {"C": 1.7, "N": 1.55, "O": 1.52, "S": 1.8}
CLASH_OVERLAP_ANGSTROM = 1.5
TOLERANCE_FACTOR = 12.0
BOND_SIGMA_ANGSTROM = 0.02
ANGLE_COSINE_SIGMA = 0.014
_DEFAULT_RADIUS = 1.7


@dataclass
class Violations:
    """Violations of one structure: (atom, atom, distance Å, limit Å) clashes, (atom, atom, length, ideal Å)
    bonds, (a, b, c, angle, ideal degrees) angles, and the indices of the residues they touch."""
    clashes: List[Tuple[int, int, float, float]] = field(default_factory=list)
    bonds: List[Tuple[int, int, float, float]] = field(default_factory=list)
    angles: List[Tuple[int, int, int, float, float]] = field(default_factory=list)
    residues: Set[int] = field(default_factory=set)

    @property
    def count(self) -> int:
        return len(self.clashes) + len(self.bonds) + len(self.angles)

    def to_dict(self, topology: app.Topology) -> Dict[str, Any]:
        """JSON-ready counts, the violating residues by label, and the worst clash overlap."""
        residues = list(topology.residues())
        worst = max((limit - distance for _, _, distance, limit in self.clashes), default=0.0)
        return {"clashes": len(self.clashes), "bond_lengths": len(self.bonds), "bond_angles": len(self.angles),
                "total": self.count, "violating_residues": [_label(residues[i]) for i in sorted(self.residues)],
                "worst_clash_overlap_angstrom": float(worst)}


def find_violations(topology: app.Topology, positions: Any, system: openmm.System) -> Violations:
    """Clashes, bond lengths and bond angles out of range among the heavy atoms of ``positions`` (nm)."""
    xyz = as_positions(positions) * 10.0  # Å
    atoms = list(topology.atoms())
    heavy = np.array([a.element is not None and a.element.symbol != "H" for a in atoms])
    result = Violations(clashes=_clashes(topology, xyz, heavy), bonds=_bonds(system, xyz, heavy),
                        angles=_angles(system, xyz, heavy))
    touched = {i for item in result.clashes + result.bonds for i in item[:2]}
    touched |= {i for item in result.angles for i in item[:3]}
    result.residues = {atoms[i].residue.index for i in touched}
    return result


def _clashes(topology: app.Topology, xyz: np.ndarray, heavy: np.ndarray) -> List[Tuple[int, int, float, float]]:
    from scipy.spatial import cKDTree

    indices = np.flatnonzero(heavy)
    if len(indices) < 2:
        return []
    radii = np.array([VDW_RADII_ANGSTROM.get(a.element.symbol if a.element else "", _DEFAULT_RADIUS)
                      for a in topology.atoms()])
    near = _within_two_bonds(topology)
    reach = 2 * max(radii[indices]) - CLASH_OVERLAP_ANGSTROM
    found = []
    for p, q in cKDTree(xyz[indices]).query_pairs(reach, output_type="ndarray"):
        i, j = sorted((int(indices[p]), int(indices[q])))
        if (i, j) in near:
            continue
        distance = float(np.linalg.norm(xyz[i] - xyz[j]))
        limit = radii[i] + radii[j] - CLASH_OVERLAP_ANGSTROM
        if distance < limit:
            found.append((i, j, distance, float(limit)))
    return sorted(found)


def _within_two_bonds(topology: app.Topology) -> Set[Tuple[int, int]]:
    """Pairs (i < j) one or two bonds apart: bonded geometry, not clashes."""
    neighbours: Dict[int, Set[int]] = {}
    for bond in topology.bonds():
        a, b = bond[0].index, bond[1].index
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    pairs = set()
    for centre, bonded in neighbours.items():
        for other in bonded:
            pairs.add((min(centre, other), max(centre, other)))
            for third in bonded:
                if third != other:
                    pairs.add((min(third, other), max(third, other)))
    return pairs


def _harmonic_forces(system: openmm.System, kind: type) -> List[Any]:
    return [f for f in system.getForces() if isinstance(f, kind)]


def _bonds(system: openmm.System, xyz: np.ndarray, heavy: np.ndarray) -> List[Tuple[int, int, float, float]]:
    limit = TOLERANCE_FACTOR * BOND_SIGMA_ANGSTROM
    found = []
    for force in _harmonic_forces(system, openmm.HarmonicBondForce):
        for index in range(force.getNumBonds()):
            i, j, length, _ = force.getBondParameters(index)
            if not (heavy[i] and heavy[j]):
                continue
            ideal = length.value_in_unit(openmm.unit.angstrom)
            actual = float(np.linalg.norm(xyz[i] - xyz[j]))
            if abs(actual - ideal) > limit:
                found.append((i, j, actual, ideal))
    return found


def _angles(system: openmm.System, xyz: np.ndarray, heavy: np.ndarray) -> List[Tuple[int, int, int, float, float]]:
    limit = TOLERANCE_FACTOR * ANGLE_COSINE_SIGMA
    found = []
    for force in _harmonic_forces(system, openmm.HarmonicAngleForce):
        for index in range(force.getNumAngles()):
            i, j, k, angle, _ = force.getAngleParameters(index)
            if not (heavy[i] and heavy[j] and heavy[k]):
                continue
            ideal = angle.value_in_unit(openmm.unit.radian)
            u, v = xyz[i] - xyz[j], xyz[k] - xyz[j]
            cosine = float(np.dot(u, v) / max(np.linalg.norm(u) * np.linalg.norm(v), 1e-12))
            if abs(cosine - np.cos(ideal)) > limit:
                found.append((i, j, k, float(np.degrees(np.arccos(np.clip(cosine, -1, 1)))),
                              float(np.degrees(ideal))))
    return found


def _label(residue: app.Residue) -> str:
    return f"{residue.name} {residue.chain.id} {residue.id}{getattr(residue, 'insertionCode', '') or ''}".strip()


__all__ = ["Violations", "find_violations", "VDW_RADII_ANGSTROM", "CLASH_OVERLAP_ANGSTROM", "TOLERANCE_FACTOR"]
