"""Slow modes: the force-constant graph, its Laplacian and the lowest eigenvectors."""
import numpy as np
import scipy.sparse

from openmm_reparam import compute_slow_modes, force_constant_matrix, graph_laplacian

from conftest import make_context


def test_exact_force_constants_are_symmetric_and_bonds_are_stiffest(plw):
    topology, system, positions = plw
    context = make_context(system, positions, "Reference")
    k, method, evaluations = force_constant_matrix(context, method="exact")
    assert method == "exact" and evaluations == 3 * len(positions) + 1
    np.testing.assert_allclose(k, k.T)
    assert np.all(np.diag(k) == 0) and np.all(k >= 0)
    bonded = [(b[0].index, b[1].index) for b in topology.bonds()]
    bond_values = np.array([k[i, j] for i, j in bonded])
    mask = np.ones_like(k, dtype=bool)
    for i, j in bonded:
        mask[i, j] = mask[j, i] = False
    np.fill_diagonal(mask, False)
    assert np.median(bond_values) > 20 * np.median(k[mask])
    # the Context's positions are left as they were
    np.testing.assert_allclose(context.getState(getPositions=True).getPositions(asNumpy=True)._value,
                               positions, atol=1e-12)


def test_laplacian_modes_are_orthonormal_and_start_with_translation(plw):
    _, system, positions = plw
    modes = compute_slow_modes(system, positions, n_modes=10)
    assert modes.vectors.shape == (len(positions), 10)
    np.testing.assert_allclose(modes.vectors.T @ modes.vectors, np.eye(10), atol=1e-8)
    assert abs(modes.eigenvalues[0]) < 1e-6 * modes.eigenvalues[-1]
    assert np.all(np.diff(modes.eigenvalues) >= -1e-9)
    constant = np.ones(len(positions)) / np.sqrt(len(positions))
    assert abs(constant @ modes.vectors[:, 0]) > 0.999
    laplacian = graph_laplacian(modes.force_constants)
    np.testing.assert_allclose(laplacian @ np.ones(len(positions)), 0, atol=1e-6)


def test_sparse_path_recovers_the_exact_slow_subspace(plw):
    _, system, positions = plw
    context = make_context(system, positions, "Reference")
    exact = compute_slow_modes(context, n_modes=6, method="exact")
    sparse = compute_slow_modes(context, n_modes=6, method="sparse")
    assert scipy.sparse.issparse(sparse.force_constants) and sparse.method == "sparse"
    assert sparse.force_evaluations < exact.force_evaluations
    # principal angles between the two 6-dimensional subspaces: mostly aligned
    overlap = np.linalg.svd(exact.vectors.T @ sparse.vectors, compute_uv=False)
    assert overlap.mean() > 0.8
