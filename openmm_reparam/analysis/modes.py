"""The lowest eigenpairs of a mass-weighted Hessian with some directions projected out.

For a Hessian H (3m × 3m) and orthogonal projectors Π_c (constraints, sparse) and Π_r = V Vᵀ (rigid body, V
dense with a few orthonormal columns), both solvers diagonalize

    K = P H P + α (I − P),      P = I − Π_c − Π_r,

whose spectrum is that of H on the allowed subspace plus the removed directions at α, chosen above every
eigenvalue of H (a Gershgorin bound) so that they never come out among the lowest.

* :func:`lowest_dense`: LAPACK on the dense K (O(m³); a few thousand coordinates).
* :func:`lowest_sparse`: ARPACK in shift-invert mode on the sparse K_c = (I − Π_c) H (I − Π_c) + α Π_c and the
  rank-2r correction for the rigid body, inverted with a sparse LU of K_c − σI and the Woodbury identity. The shift
  σ is placed below the lowest eigenvalue, estimated first by Lanczos on K, so that the eigenvalues nearest σ are the
  lowest ones, imaginary modes included.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg


def removed_shift(hessian) -> float:
    """α: twice a Gershgorin bound on |eigenvalues of H|, plus one."""
    row_sums = np.asarray(abs(hessian).sum(axis=1)).ravel()
    return 2.0 * float(row_sums.max(initial=0.0)) + 1.0


def lowest_dense(hessian: np.ndarray, constraint_projector, rigid: np.ndarray,
                 count: int) -> Tuple[np.ndarray, np.ndarray]:
    """The ``count`` lowest eigenpairs of K (module docstring) for a dense H."""
    alpha = removed_shift(hessian)
    k = np.array(hessian, dtype=np.float64)
    if constraint_projector is not None and constraint_projector.nnz:  # sparse Π_c: cheap products
        side = np.asarray(constraint_projector @ k)
        k -= side + side.T
        k += np.asarray(constraint_projector @ side.T) + alpha * constraint_projector.toarray()
    if rigid.shape[1]:  # rank-r update for Π_r = V Vᵀ (V ⟂ the constraint directions)
        w = k @ rigid
        k -= rigid @ w.T + w @ rigid.T
        k += rigid @ ((rigid.T @ w) + alpha * np.eye(rigid.shape[1])) @ rigid.T
    values, vectors = scipy.linalg.eigh(0.5 * (k + k.T), subset_by_index=[0, count - 1], overwrite_a=True)
    return values, vectors


class _ProjectedOperator:
    """K = K_c + U S Uᵀ with U = [V, K_c V], S = [[VᵀK_cV + αI, −I], [−I, 0]] (rigid body projected out of K_c)."""

    def __init__(self, k_c: scipy.sparse.csc_matrix, rigid: np.ndarray, alpha: float):
        self.k_c, r = k_c, rigid.shape[1]
        w = k_c @ rigid
        self.u = np.hstack([rigid, w])
        identity = np.eye(r)
        self.s = np.block([[rigid.T @ w + alpha * identity, -identity], [-identity, np.zeros((r, r))]])
        self.s_inverse = np.block([[np.zeros((r, r)), -identity], [-identity, -(rigid.T @ w + alpha * identity)]])

    def matvec(self, x: np.ndarray) -> np.ndarray:
        return self.k_c @ x + self.u @ (self.s @ (self.u.T @ x))

    def shift_inverse(self, sigma: float) -> scipy.sparse.linalg.LinearOperator:
        """(K − σI)⁻¹ by a sparse LU of K_c − σI and the Woodbury identity."""
        size = self.k_c.shape[0]
        lu = scipy.sparse.linalg.splu((self.k_c - sigma * scipy.sparse.identity(size)).tocsc())
        solved_u = lu.solve(self.u)
        core = np.linalg.inv(self.s_inverse + self.u.T @ solved_u)

        def solve(b: np.ndarray) -> np.ndarray:
            y = lu.solve(np.asarray(b, dtype=np.float64).ravel())
            return y - solved_u @ (core @ (self.u.T @ y))
        return scipy.sparse.linalg.LinearOperator((size, size), matvec=solve, dtype=np.float64)

    def operator(self) -> scipy.sparse.linalg.LinearOperator:
        size = self.k_c.shape[0]
        return scipy.sparse.linalg.LinearOperator((size, size), matvec=self.matvec, dtype=np.float64)


def _lowest_estimate(operator: scipy.sparse.linalg.LinearOperator, start: np.ndarray) -> float:
    """Lanczos estimate of the smallest eigenvalue (an upper bound on it, usually close)."""
    try:
        return float(scipy.sparse.linalg.eigsh(operator, k=1, which="SA", v0=start, tol=1e-3,
                                               maxiter=20 * operator.shape[0], return_eigenvectors=False)[0])
    except scipy.sparse.linalg.ArpackNoConvergence as error:
        found = error.eigenvalues
        return float(np.min(found)) if len(found) else 0.0


def lowest_sparse(hessian: scipy.sparse.spmatrix, constraint_projector: scipy.sparse.spmatrix, rigid: np.ndarray,
                  count: int) -> Tuple[np.ndarray, np.ndarray]:
    """The ``count`` lowest eigenpairs of K (module docstring) for a sparse H."""
    size = hessian.shape[0]
    if count >= size - 1:  # ARPACK needs k < n − 1; so small a problem is dense anyway
        return lowest_dense(hessian.toarray(), constraint_projector, rigid, count)
    alpha = removed_shift(hessian)
    keep = (scipy.sparse.identity(size) - constraint_projector).tocsr()
    k_c = (keep @ hessian @ keep + alpha * constraint_projector).tocsc()
    k_c = (0.5 * (k_c + k_c.T)).tocsc()
    projected = _ProjectedOperator(k_c, rigid, alpha)
    operator = projected.operator()
    start = np.random.default_rng(0).standard_normal(size)
    lowest = _lowest_estimate(operator, start)
    sigma = min(lowest, 0.0) - 0.05 * abs(lowest) - 1.0
    values, vectors = scipy.sparse.linalg.eigsh(operator, k=count, sigma=sigma, which="LM", v0=start,
                                                OPinv=projected.shift_inverse(sigma))
    order = np.argsort(values)
    return values[order], vectors[:, order]
