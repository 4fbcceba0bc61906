"""What ``auto`` knows about a System before it picks a method: size, constraints, box and force types.

Computed from the System alone (no force evaluation), so choosing costs nothing next to a minimization. The start's
roughness (its largest force) was measured as a candidate input too and left out: on the external suite it did not
separate the classes that want different methods (benchmarks/RESULTS.md#auto-rules).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import FrozenSet

import numpy as np
import openmm
import scipy.sparse
import scipy.sparse.csgraph

from ..core.atoms import movable_mask

#: Forces of implicit solvent (generalized Born); openmmtools builds GBn/GBn2 and its ion system as CustomGBForce.
GB_FORCES = frozenset({"GBSAOBCForce", "CustomGBForce", "AmoebaGeneralizedKirkwoodForce"})
#: Forces that hold atoms together in molecules (bonds, angles, torsions, and their custom and AMOEBA forms).
BONDED_FORCES = frozenset({"HarmonicBondForce", "HarmonicAngleForce", "PeriodicTorsionForce", "RBTorsionForce",
                           "CMAPTorsionForce", "CustomBondForce", "CustomAngleForce", "CustomTorsionForce",
                           "CustomCompoundBondForce", "AmoebaBondForce", "AmoebaAngleForce",
                           "AmoebaInPlaneAngleForce", "AmoebaTorsionTorsionForce", "AmoebaStretchBendForce",
                           "AmoebaOutOfPlaneBendForce", "AmoebaPiTorsionForce"})
#: Forces of the AMOEBA polarizable force field.
AMOEBA_PREFIX = "Amoeba"


@dataclass(frozen=True)
class SystemProfile:
    """The facts of a System that ``auto``'s candidates rank themselves on (see :mod:`openmm_reparam.methods.auto`)."""

    system: openmm.System
    n_particles: int
    n_movable: int          # particles with mass that are not virtual sites
    n_constraints: int
    periodic: bool
    force_names: FrozenSet[str]
    largest_molecule: int   # atoms in the largest group joined by harmonic bonds and constraints

    @classmethod
    def of(cls, system: openmm.System) -> "SystemProfile":
        names = frozenset(type(force).__name__ for force in system.getForces())
        return cls(system=system, n_particles=system.getNumParticles(), n_movable=int(movable_mask(system).sum()),
                   n_constraints=system.getNumConstraints(), periodic=system.usesPeriodicBoundaryConditions(),
                   force_names=names, largest_molecule=largest_molecule(system))

    @property
    def constrained(self) -> bool:
        return self.n_constraints > 0

    @property
    def has_forces(self) -> bool:
        return bool(self.force_names - {"CMMotionRemover"})

    @property
    def implicit_solvent(self) -> bool:
        """A generalized-Born force is present (in a box or not)."""
        return bool(self.force_names & GB_FORCES)

    @property
    def molecular(self) -> bool:
        """Atoms are held together: a bonded force or constraints (not free particles or ions)."""
        return self.constrained or bool(self.force_names & BONDED_FORCES)

    @property
    def amoeba(self) -> bool:
        return any(name.startswith(AMOEBA_PREFIX) for name in self.force_names)


def largest_molecule(system: openmm.System) -> int:
    """Atoms in the largest connected group of the graph of harmonic bonds and constraints (1 with neither)."""
    n = system.getNumParticles()
    if n == 0:
        return 0
    pairs = [system.getConstraintParameters(k)[:2] for k in range(system.getNumConstraints())]
    for force in system.getForces():
        if isinstance(force, openmm.HarmonicBondForce):
            pairs += [force.getBondParameters(b)[:2] for b in range(force.getNumBonds())]
    if not pairs:
        return 1
    rows, cols = np.array(pairs, dtype=np.int64).T
    graph = scipy.sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, labels = scipy.sparse.csgraph.connected_components(graph, directed=False)
    return int(np.bincount(labels).max())
