"""Removing from forces their components along constrained distances (what constraint forces cancel)."""
from __future__ import annotations

import warnings

import numpy as np
import openmm
from openmm import unit
import scipy.sparse
import scipy.sparse.linalg


class ConstraintProjector:
    """F − Jᵀλ, with λ the least-squares constraint multipliers and J the gradients of the constrained distances
    (one row per constraint, ±unit vector on its two particles).

    λ solves the normal equations J Jᵀ λ = J F by a sparse LU factorization (J Jᵀ couples only constraints that
    share a particle, so it is nearly block diagonal). An iterative least-squares solver spends its time in BLAS
    vector operations whose threads compete with OpenMM's; it remains the fallback when J Jᵀ is singular
    (redundant constraints, e.g. a fully constrained rigid cluster).

    At a constrained minimum the raw forces are balanced by constraint forces, so both the optimizer's gradient
    and the convergence test use the projected forces. The compiled engine's ConstraintProjector is its twin.
    """

    def __init__(self, system: openmm.System):
        constraints = [system.getConstraintParameters(k) for k in range(system.getNumConstraints())]
        self.first = np.array([c[0] for c in constraints], dtype=np.int64)
        self.second = np.array([c[1] for c in constraints], dtype=np.int64)
        self.distances = np.array([c[2].value_in_unit(unit.nanometer) for c in constraints], dtype=np.float64)
        n = len(constraints)
        self.rows = np.repeat(np.arange(n), 6)
        self.cols = np.concatenate([3 * self.first[:, None] + np.arange(3), 3 * self.second[:, None] + np.arange(3)],
                                   axis=1).ravel()

    def max_error(self, positions: np.ndarray) -> float:
        """The largest relative constraint error |r − d| / d at ``positions`` (0 without constraints)."""
        if len(self.first) == 0:
            return 0.0
        r = np.linalg.norm(positions[self.first] - positions[self.second], axis=1)
        return float((np.abs(r - self.distances) / self.distances).max())

    def __len__(self) -> int:
        return len(self.first)

    def __call__(self, forces: np.ndarray, positions: np.ndarray) -> np.ndarray:
        if len(self.first) == 0:
            return forces
        direction = positions[self.first] - positions[self.second]
        direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
        values = np.concatenate([direction, -direction], axis=1).ravel()
        jacobian = scipy.sparse.csr_matrix((values, (self.rows, self.cols)),
                                           shape=(len(self.first), forces.size))
        multipliers = _multipliers(jacobian, forces.ravel())
        return (forces.ravel() - jacobian.T @ multipliers).reshape(forces.shape)


def _multipliers(jacobian: scipy.sparse.csr_matrix, forces: np.ndarray) -> np.ndarray:
    """Least-squares λ of Jᵀλ ≈ F: a direct sparse solve of J Jᵀ λ = J F, else (singular J Jᵀ) LSQR."""
    normal = (jacobian @ jacobian.T).tocsc()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", scipy.sparse.linalg.MatrixRankWarning)
            multipliers = scipy.sparse.linalg.splu(normal).solve(jacobian @ forces)
        if np.all(np.isfinite(multipliers)):
            return multipliers
    except (RuntimeError, scipy.sparse.linalg.MatrixRankWarning):
        pass
    return scipy.sparse.linalg.lsqr(jacobian.T, forces, atol=1e-10, btol=1e-10)[0]
