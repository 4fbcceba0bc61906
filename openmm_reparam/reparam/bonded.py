"""Force constants read from the force field's bonded terms, with no force evaluation.

K_ij approximates the norm of the Hessian's (i, j) block from the System's parameters: a harmonic bond of
stiffness k gives k to its pair; a harmonic angle of stiffness k_θ (per rad²) at the current geometry gives
k_θ / (r_ij r_kj) to its outer pair and k_θ / r² to each of its bonds (the stiffness of bending, felt as a
transverse spring of k_θ / r² at either end). This is the force-field preconditioner of Makri, Ortner and
Kermode (J. Chem. Phys. 150, 094109, 2019) in the form the slow-mode Laplacian uses, at none of the cost of the
finite-difference matrix (:func:`~openmm_reparam.reparam.slow_modes.force_constant_matrix`, about 90 force
evaluations on a 156-atom molecule). A Drude particle's spring to its parent (``DrudeForce``: k = q²/(4πε₀α),
isotropic, so the Laplacian form is exact for it) is a bond like the others. Torsions, nonbonded contacts and
custom or AMOEBA forces add nothing: their stiffness is small next to bonds and angles, or not readable from
parameters.
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np
import openmm
import scipy.sparse
from openmm import unit

KJ_NM2 = unit.kilojoule_per_mole / unit.nanometer ** 2
KJ_RAD2 = unit.kilojoule_per_mole / unit.radian ** 2


def bonded_force_constants(system: openmm.System, positions: np.ndarray) -> scipy.sparse.csr_matrix:
    """(N, N) symmetric CSR matrix of bonded force constants (kJ/mol/nm²) at ``positions`` (nm), zero diagonal."""
    n = system.getNumParticles()
    positions = np.asarray(positions, dtype=float)
    rows: List[np.ndarray] = []
    cols: List[np.ndarray] = []
    values: List[np.ndarray] = []
    for force in system.getForces():
        if isinstance(force, openmm.HarmonicBondForce):
            i, j, k = _bond_terms(force)
            rows.append(i), cols.append(j), values.append(k)
        elif isinstance(force, openmm.HarmonicAngleForce):
            i, j, l, k = _angle_terms(force)
            r_ij = np.maximum(np.linalg.norm(positions[i] - positions[j], axis=1), 0.05)
            r_lj = np.maximum(np.linalg.norm(positions[l] - positions[j], axis=1), 0.05)
            # per angle, in this order: the outer pair, then each bond (the order fixes the duplicates' sums)
            rows.append(np.stack([i, i, l], axis=1).ravel())
            cols.append(np.stack([l, j, j], axis=1).ravel())
            values.append(np.stack([k / (r_ij * r_lj), k / r_ij ** 2, k / r_lj ** 2], axis=1).ravel())
        elif type(force).__name__ == "DrudeForce":  # openmm.DrudeForce (the Drude plugin)
            i, j, k = _drude_terms(force)
            rows.append(i), cols.append(j), values.append(k)
    if not rows:
        return scipy.sparse.csr_matrix((n, n))
    first, second, k = np.concatenate(rows), np.concatenate(cols), np.concatenate(values)
    keep = (first != second) & (k > 0) & np.isfinite(k)
    first, second, k = first[keep], second[keep], k[keep]
    upper = scipy.sparse.coo_matrix((k, (np.minimum(first, second), np.maximum(first, second))),
                                    shape=(n, n)).tocsr()
    upper.sum_duplicates()
    return (upper + upper.T).tocsr()  # exactly symmetric


def _bond_terms(force: openmm.HarmonicBondForce) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The bonds' atom pairs and stiffnesses (kJ/mol/nm²)."""
    terms = [force.getBondParameters(b) for b in range(force.getNumBonds())]
    return (np.array([t[0] for t in terms], dtype=np.int64), np.array([t[1] for t in terms], dtype=np.int64),
            np.array([t[3].value_in_unit(KJ_NM2) for t in terms], dtype=float))


def _angle_terms(force: openmm.HarmonicAngleForce) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The angles' atoms (outer, centre, outer) and stiffnesses (kJ/mol/rad²)."""
    terms = [force.getAngleParameters(a) for a in range(force.getNumAngles())]
    atoms = np.array([t[:3] for t in terms], dtype=np.int64).reshape(-1, 3)
    return (atoms[:, 0], atoms[:, 1], atoms[:, 2],
            np.array([t[4].value_in_unit(KJ_RAD2) for t in terms], dtype=float))


#: 1/(4π ε₀) in kJ/mol nm/e², OpenMM's ONE_4PI_EPS0.
ONE_4PI_EPS0 = 138.935456


def _drude_terms(force) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Drude particles, their parents and their springs' stiffness q²/(4πε₀α) (kJ/mol/nm²; the anisotropic
    parts, k₁₂ and k₃₄, left out)."""
    terms = [force.getParticleParameters(p) for p in range(force.getNumParticles())]
    charge = np.array([t[5].value_in_unit(unit.elementary_charge) for t in terms], dtype=float)
    alpha = np.array([t[6].value_in_unit(unit.nanometer ** 3) for t in terms], dtype=float)
    k = ONE_4PI_EPS0 * charge ** 2 / np.where(alpha > 0, alpha, np.inf)
    return (np.array([t[0] for t in terms], dtype=np.int64), np.array([t[1] for t in terms], dtype=np.int64), k)
