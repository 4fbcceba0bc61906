"""Force constants read from the force field's bonded terms, with no force evaluation.

K_ij approximates the norm of the Hessian's (i, j) block from the System's parameters: a harmonic bond of
stiffness k gives k to its pair; a harmonic angle of stiffness k_θ (per rad²) at the current geometry gives
k_θ / (r_ij r_kj) to its outer pair and k_θ / r² to each of its bonds (the stiffness of bending, felt as a
transverse spring of k_θ / r² at either end). This is the force-field preconditioner of Makri, Ortner and
Kermode (J. Chem. Phys. 150, 094109, 2019) in the form the slow-mode Laplacian uses, at none of the cost of the
finite-difference matrix (:func:`~openmm_reparam.reparam.slow_modes.force_constant_matrix`, about 90 force
evaluations on a 156-atom molecule). Torsions, nonbonded contacts and custom or AMOEBA forces add nothing:
their stiffness is small next to bonds and angles, or not readable from parameters.
"""
from __future__ import annotations

from typing import List

import numpy as np
import openmm
import scipy.sparse
from openmm import unit

KJ_NM2 = unit.kilojoule_per_mole / unit.nanometer ** 2
KJ_RAD2 = unit.kilojoule_per_mole / unit.radian ** 2


def bonded_force_constants(system: openmm.System, positions: np.ndarray) -> scipy.sparse.csr_matrix:
    """(N, N) symmetric CSR matrix of bonded force constants (kJ/mol/nm²) at ``positions`` (nm), zero diagonal."""
    n = system.getNumParticles()
    rows: List[int] = []
    cols: List[int] = []
    values: List[float] = []

    def add(i: int, j: int, k: float) -> None:
        if i != j and k > 0 and np.isfinite(k):
            rows.append(min(i, j))
            cols.append(max(i, j))
            values.append(k)

    for force in system.getForces():
        if isinstance(force, openmm.HarmonicBondForce):
            for b in range(force.getNumBonds()):
                i, j, _, k = force.getBondParameters(b)
                add(i, j, k.value_in_unit(KJ_NM2))
        elif isinstance(force, openmm.HarmonicAngleForce):
            for a in range(force.getNumAngles()):
                i, j, l, _, k = force.getAngleParameters(a)
                k = k.value_in_unit(KJ_RAD2)
                r_ij = max(float(np.linalg.norm(positions[i] - positions[j])), 0.05)
                r_lj = max(float(np.linalg.norm(positions[l] - positions[j])), 0.05)
                add(i, l, k / (r_ij * r_lj))
                add(i, j, k / r_ij ** 2)
                add(l, j, k / r_lj ** 2)
    upper = scipy.sparse.coo_matrix((values, (rows, cols)), shape=(n, n)).tocsr()
    upper.sum_duplicates()
    return (upper + upper.T).tocsr()  # exactly symmetric
