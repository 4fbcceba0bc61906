"""What is not a vibration: rigid-body motion and constrained distances, in mass-weighted coordinates.

Coordinates are q = M^{1/2} x over the movable atoms (atom-major, 3·a + d). The functions here give

* the rigid-body directions: translations √m_a e_d, and (for non-periodic Systems) rotations √m_a (e_d × (x_a − c)),
  c the centre of mass; orthonormalized, so a linear molecule has 5 and a single atom 3;
* the constraint directions B = M^{-1/2} Jᵀ, J the gradients of the constrained distances, and the curvature the
  constraints add to the Hessian on the constraint surface, Σ_k λ_k ∇²g_k with λ the least-squares constraint
  multipliers of the forces (F ≈ Jᵀλ). At a constrained minimum the constrained bonds carry tension, and
  this term is what makes the frequencies those of motion along the surface, not of the unconstrained Hessian.

Rigid-body directions are orthogonal to the constraint directions (rigid motion keeps distances), so the two
projections commute.
"""
from __future__ import annotations

import numpy as np
import openmm
import scipy.sparse
import scipy.sparse.linalg


def rigid_body_basis(positions: np.ndarray, masses: np.ndarray, rotations: bool) -> np.ndarray:
    """(3m, r) orthonormal mass-weighted rigid-body directions (r = 3 translations, plus up to 3 rotations)."""
    m = len(masses)
    root = np.sqrt(masses)
    vectors = []
    for d in range(3):
        v = np.zeros((m, 3))
        v[:, d] = root
        vectors.append(v.ravel())
    if rotations:
        centred = positions - (masses[:, None] * positions).sum(axis=0) / masses.sum()
        for d in range(3):
            axis = np.zeros(3)
            axis[d] = 1.0
            vectors.append((root[:, None] * np.cross(axis, centred)).ravel())
    basis, singular, _ = np.linalg.svd(np.array(vectors).T, full_matrices=False)
    keep = singular > 1e-8 * singular.max()
    return basis[:, keep]


class ConstraintGeometry:
    """The System's distance constraints between movable atoms, at given positions (local atom indices)."""

    def __init__(self, system: openmm.System, index: np.ndarray, positions: np.ndarray):
        local = -np.ones(system.getNumParticles(), dtype=np.int64)
        local[index] = np.arange(len(index))
        pairs = [system.getConstraintParameters(k)[:2] for k in range(system.getNumConstraints())]
        pairs = np.array([(local[a], local[b]) for a, b in pairs if local[a] >= 0 and local[b] >= 0],
                         dtype=np.int64).reshape(-1, 2)
        self.first, self.second = pairs[:, 0], pairs[:, 1]
        self.size = 3 * len(index)
        difference = positions[index][self.first] - positions[index][self.second]
        self.length = np.linalg.norm(difference, axis=1)
        self.direction = difference / np.maximum(self.length, 1e-12)[:, None]

    def __len__(self) -> int:
        return len(self.first)

    def jacobian(self) -> scipy.sparse.csr_matrix:
        """J (c × 3m): gradients of the constrained distances |x_a − x_b|."""
        rows = np.repeat(np.arange(len(self)), 6)
        cols = np.concatenate([3 * self.first[:, None] + np.arange(3), 3 * self.second[:, None] + np.arange(3)],
                              axis=1).ravel()
        values = np.concatenate([self.direction, -self.direction], axis=1).ravel()
        return scipy.sparse.csr_matrix((values, (rows, cols)), shape=(len(self), self.size))

    def curvature(self, forces: np.ndarray) -> scipy.sparse.csr_matrix:
        """Σ_k λ_k ∇²g_k (3m × 3m, kJ/mol/nm²) for the movable atoms' forces (m, 3), λ = argmin |F − Jᵀλ|."""
        if len(self) == 0:
            return scipy.sparse.csr_matrix((self.size, self.size))
        multipliers = scipy.sparse.linalg.lsqr(self.jacobian().T, forces.ravel(), atol=1e-12, btol=1e-12)[0]
        # ∇²|x_a − x_b| = [[A, −A], [−A, A]] with A = (I − u uᵀ) / r
        blocks = (np.eye(3)[None] - self.direction[:, :, None] * self.direction[:, None, :]) \
            * (multipliers / self.length)[:, None, None]
        rows, cols, values = [], [], []
        for a, b, sign in ((self.first, self.first, 1), (self.second, self.second, 1),
                           (self.first, self.second, -1), (self.second, self.first, -1)):
            rows.append(np.repeat(3 * a[:, None] + np.arange(3), 3, axis=1).ravel())
            cols.append(np.tile(3 * b[:, None] + np.arange(3), (1, 3)).ravel())
            values.append(sign * blocks.ravel())
        return scipy.sparse.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
                                       shape=(self.size, self.size))

    def mass_weighted_projector(self, masses: np.ndarray) -> scipy.sparse.csr_matrix:
        """Π_c = B (BᵀB)⁻¹ Bᵀ, the orthogonal projector onto the constraint directions B = M^{-1/2} Jᵀ.
        BᵀB couples only constraints that share an atom, so Π_c is sparse."""
        if len(self) == 0:
            return scipy.sparse.csr_matrix((self.size, self.size))
        inverse_root = scipy.sparse.diags(np.repeat(1.0 / np.sqrt(masses), 3))
        b = (inverse_root @ self.jacobian().T).tocsc()
        gram = (b.T @ b).tocsc()
        solved = scipy.sparse.linalg.spsolve(gram, b.T.tocsc())  # (BᵀB)⁻¹ Bᵀ
        return scipy.sparse.csr_matrix(b @ scipy.sparse.csc_matrix(solved))
