"""Cartesian Hessians of a Context's energy by central finite differences of its forces.

Both functions return H over the *movable* atoms only (3·m × 3·m, m movable atoms, coordinate order atom-major:
3·a + d), symmetrized, in kJ/mol/nm². Fixed particles (massless particles, virtual sites; see
:mod:`openmm_reparam.core.atoms`) are never moved; virtual sites follow their parents and OpenMM hands their forces
to the parents, so H is the Hessian with respect to the real atoms. Forces come from
:meth:`EnergyBridge.raw_forces` (integration force groups, no constraints applied).

Central differences, H[:, (j,d)] = −(F(x + h e_jd) − F(x − h e_jd)) / 2h, have an O(h²) error. With the default
h = 1e-3 nm it is about (h / bond length)² ≈ 1e-4 relative for bond stretches, and k·h²/(2r²) ≈ 20 kJ/mol/nm² across
a stiff bond (k ≈ 4e5 kJ/mol/nm², r ≈ 0.1 nm), which stiffens soft modes slightly: the lowest mode of the 75-atom
test peptide is 9.74 cm⁻¹ at h = 1e-3 nm against 9.62 cm⁻¹ converged (h ≤ 1e-4 nm, double precision). Smaller
steps are not better with single-precision forces (CPU, CUDA, OpenCL platforms): the rounding noise of the forces,
divided by 2h, then dominates (±5 cm⁻¹ on the softest modes at h = 1e-5 nm on the CPU platform).

* :func:`dense_hessian`: one coordinate at a time, 6·m force evaluations. Exact up to the O(h²) error.
* :func:`sparse_hessian`: atoms coloured so that two atoms of one colour are more than 2·cutoff apart (the
  colouring of :func:`openmm_reparam.core.atoms.colour_atoms`); a whole colour is moved at once and the force change on
  atom i is attributed to its one same-colour atom within ``cutoff``. 6·(number of colours) evaluations, which
  depends on the density, not on N. Couplings beyond ``cutoff`` are lost (their contribution to the force change
  lands on the near neighbour or is dropped), so long-range electrostatic couplings are approximate.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import scipy.sparse
from scipy.spatial import cKDTree

from ..core.bridge import EnergyBridge
from ..core.atoms import colour_atoms


def _force_change(probe: EnergyBridge, positions: np.ndarray, atoms, direction: int, step: float) -> np.ndarray:
    """−dF/dx for a displacement of ``atoms`` along ``direction``, central differences: (N, 3) kJ/mol/nm²."""
    plus = positions.copy()
    plus[atoms, direction] += step
    minus = positions.copy()
    minus[atoms, direction] -= step
    return -(probe.raw_forces(plus) - probe.raw_forces(minus)) / (2.0 * step)


def dense_hessian(probe: EnergyBridge, positions: np.ndarray, movable: np.ndarray, step: float) -> np.ndarray:
    """The full Hessian over the movable atoms (see the module docstring); 6·m force evaluations."""
    index = np.flatnonzero(movable)
    size = 3 * len(index)
    hessian = np.empty((size, size))
    for column, atom in enumerate(index):
        for d in range(3):
            hessian[:, 3 * column + d] = _force_change(probe, positions, atom, d, step)[index].ravel()
    return 0.5 * (hessian + hessian.T)


def neighbour_pairs(positions: np.ndarray, cutoff: float, boxsize: Optional[np.ndarray] = None) -> np.ndarray:
    """(P, 2) index pairs closer than ``cutoff`` (both orders, and each atom with itself)."""
    pairs = cKDTree(positions, boxsize=boxsize).query_pairs(cutoff, output_type="ndarray")
    self_pairs = np.repeat(np.arange(len(positions))[:, None], 2, axis=1)
    return np.concatenate([pairs, pairs[:, ::-1], self_pairs]).astype(np.int64)


def sparse_hessian(probe: EnergyBridge, positions: np.ndarray, movable: np.ndarray, step: float, cutoff: float,
                   boxsize: Optional[np.ndarray] = None) -> scipy.sparse.csr_matrix:
    """The Hessian over the movable atoms restricted to pairs within ``cutoff`` (see the module docstring).

    ``boxsize``: edges of a rectangular periodic box (distances then use the nearest image).
    """
    index = np.flatnonzero(movable)
    local = positions[index]
    if boxsize is not None:
        local = np.mod(local, boxsize)
    colours = colour_atoms(local, np.ones(len(index), dtype=bool), 2.0 * cutoff, boxsize)
    pairs = neighbour_pairs(local, cutoff, boxsize)  # (row atom i, column atom j), local indices
    rows, cols, values = [], [], []
    for c in range(colours.max() + 1 if len(index) else 0):
        selected = pairs[colours[pairs[:, 1]] == c]  # each row atom has at most one such column atom
        members = index[colours == c]
        for d in range(3):
            change = _force_change(probe, positions, members, d, step)[index]
            block = change[selected[:, 0]]  # (P_c, 3): H[(i, e), (j, d)] for e = 0..2
            rows.append((3 * selected[:, 0][:, None] + np.arange(3)).ravel())
            cols.append(np.repeat(3 * selected[:, 1] + d, 3))
            values.append(block.ravel())
    size = 3 * len(index)
    if not rows:
        return scipy.sparse.csr_matrix((size, size))
    hessian = scipy.sparse.coo_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
                                      shape=(size, size)).tocsr()
    return (0.5 * (hessian + hessian.T)).tocsr()
