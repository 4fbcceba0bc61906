"""ConstraintProjector: F − Jᵀλ removes exactly the force components along constrained distances."""
import numpy as np
import openmm
import scipy.sparse.linalg

from openmm_reparam.core.constraints import ConstraintProjector


def _system(pairs, n):
    system = openmm.System()
    for _ in range(n):
        system.addParticle(1.0)
    for i, j in pairs:
        system.addConstraint(i, j, 0.1)
    return system


def _jacobian(pairs, positions):
    rows = np.zeros((len(pairs), positions.size))
    for k, (i, j) in enumerate(pairs):
        d = positions[i] - positions[j]
        d /= np.linalg.norm(d)
        rows[k, 3 * i:3 * i + 3], rows[k, 3 * j:3 * j + 3] = d, -d
    return rows


def test_projected_forces_have_no_component_along_any_constraint():
    rng = np.random.default_rng(0)
    waters = [(3 * w + a, 3 * w + b) for w in range(50) for a, b in ((0, 1), (0, 2), (1, 2))]  # rigid triangles
    chain = [(150 + k, 151 + k) for k in range(20)]  # a constrained chain: rows coupled through shared atoms
    pairs = waters + chain
    positions = rng.normal(size=(171, 3))
    forces = rng.normal(size=(171, 3)) * 100
    projected = ConstraintProjector(_system(pairs, 171))(forces, positions)
    jacobian = _jacobian(pairs, positions)
    np.testing.assert_allclose(jacobian @ projected.ravel(), 0.0, atol=1e-9)
    reference = scipy.sparse.linalg.lsqr(jacobian.T, forces.ravel(), atol=1e-12, btol=1e-12)[0]
    np.testing.assert_allclose(projected.ravel(), forces.ravel() - jacobian.T @ reference, atol=1e-8)


def test_redundant_constraints_fall_back_to_least_squares():
    rng = np.random.default_rng(1)
    pairs = [(0, 1), (1, 2), (0, 1)]  # the same distance twice: J Jᵀ is singular
    positions = rng.normal(size=(3, 3))
    forces = rng.normal(size=(3, 3))
    projected = ConstraintProjector(_system(pairs, 3))(forces, positions)
    assert np.all(np.isfinite(projected))
    np.testing.assert_allclose(_jacobian(pairs, positions) @ projected.ravel(), 0.0, atol=1e-8)
