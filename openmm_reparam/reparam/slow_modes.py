"""Slow modes of a molecular system: the graph the reparametrization is built on.

The force-constant matrix K has K_ij = ‖H_ij‖_F, the Frobenius norm of the 3×3 Hessian block coupling atoms
i and j (i ≠ j), averaged over a few randomly perturbed copies of the structure as in the paper. Its graph
Laplacian L = D − K (D the row sums) has as lowest eigenvectors the system's slowest, most collective modes.

Two ways to get K, both by forward finite differences of the Context's own forces (so every System works,
custom forces and TorchForce included; the step is small enough that the O(step) error is far below the
differences between strong and weak couplings the graph needs):

* ``"exact"``: perturb one coordinate at a time. Cost: 3·N + 1 force evaluations per sample and a dense
  N×N eigenproblem (O(N³)); right for up to a few hundred atoms.
* ``"sparse"``: perturb many atoms at once. Atoms are coloured so that two atoms of one colour are more than
  2·cutoff apart; the force change on atom i is then attributed to its one same-colour neighbour within
  ``cutoff``. Cost: 3·(number of colours) + 1 evaluations per sample, where the number of colours is bounded by the
  number of atoms within 2·cutoff of any atom (a few hundred in a protein, independent of N), plus a sparse
  shift-invert eigensolve. Couplings beyond ``cutoff`` (long-range electrostatics) are dropped.

``"auto"`` picks exact up to ``EXACT_MAX_ATOMS`` movable atoms and sparse above.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
import openmm
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg
from openmm import unit
from scipy.spatial import cKDTree

from ..core.atoms import colour_atoms
from ..core.bridge import EnergyBridge
from ..core.subsystem import restricted_context
from ..core.units import as_positions

EXACT_MAX_ATOMS = 400


@dataclass
class SlowModes:
    """The k lowest Laplacian eigenpairs. ``vectors`` is (N, k) with orthonormal columns."""
    eigenvalues: np.ndarray
    vectors: np.ndarray
    force_constants: Union[np.ndarray, scipy.sparse.spmatrix]
    method: str
    force_evaluations: int
    wall_time: float


def graph_laplacian(force_constants):
    """L = D − K for a symmetric, zero-diagonal K (dense array or scipy sparse matrix)."""
    degree = np.asarray(force_constants.sum(axis=1)).ravel()
    if scipy.sparse.issparse(force_constants):
        return (scipy.sparse.diags(degree) - force_constants).tocsc()
    return np.diag(degree) - force_constants


def lowest_modes(laplacian, n_modes: int):
    """The ``n_modes`` smallest eigenvalues and their eigenvectors of a symmetric Laplacian."""
    n = laplacian.shape[0]
    n_modes = max(1, min(int(n_modes), n))
    if not scipy.sparse.issparse(laplacian) or n <= 2000 or n_modes >= n - 1:
        dense = laplacian.toarray() if scipy.sparse.issparse(laplacian) else laplacian
        values, vectors = scipy.linalg.eigh(dense, subset_by_index=[0, n_modes - 1])
        return values, vectors
    shift = -1e-3 * max(float(np.abs(laplacian.diagonal()).mean()), 1e-12)
    start = np.random.default_rng(0).standard_normal(n)
    values, vectors = scipy.sparse.linalg.eigsh(laplacian, k=n_modes, sigma=shift, which="LM", v0=start)
    order = np.argsort(values)
    return values[order], vectors[:, order]


def _exact_block_norms_sq(probe: EnergyBridge, positions: np.ndarray, movable: np.ndarray, step: float):
    """Σ over the 3×3 block entries of H_ij², for all pairs, by perturbing one coordinate at a time."""
    n = len(positions)
    norms_sq = np.zeros((n, n))
    reference = probe.raw_forces(positions)
    for j in np.flatnonzero(movable):
        for d in range(3):
            moved = positions.copy()
            moved[j, d] += step
            column = -(probe.raw_forces(moved) - reference) / step  # (n, 3): H[i*, (j,d)]
            norms_sq[:, j] += (column * column).sum(axis=1)
    return norms_sq


def _sparse_block_norms_sq(probe: EnergyBridge, positions: np.ndarray, movable: np.ndarray, step: float,
                           cutoff: float):
    """Block norms for pairs within ``cutoff`` only, by perturbing whole colour classes at once."""
    n = len(positions)
    colours = colour_atoms(positions, movable, 2 * cutoff)
    pairs = cKDTree(positions).query_pairs(cutoff, output_type="ndarray")
    rows = np.concatenate([pairs[:, 0], pairs[:, 1], np.arange(n)])
    cols = np.concatenate([pairs[:, 1], pairs[:, 0], np.arange(n)])
    keep = movable[cols]
    rows, cols = rows[keep], cols[keep]
    values = np.zeros(len(rows))
    reference = probe.raw_forces(positions)
    for c in range(colours.max() + 1):
        members = colours == c
        selected = members[cols]  # pairs (i, j) whose j has this colour: unique per i by construction
        if not selected.any():
            continue
        for d in range(3):
            moved = positions.copy()
            moved[members, d] += step
            delta = -(probe.raw_forces(moved) - reference) / step
            values[selected] += (delta[rows[selected]] ** 2).sum(axis=1)
    return scipy.sparse.coo_matrix((values, (rows, cols)), shape=(n, n)).tocsr()


class _Probe:
    """Where the finite differences are taken: the Context itself, or, for a subset of ``atoms`` whose couplings
    do not depend on the other particles, a Context of that subset alone (:mod:`..core.subsystem`), which costs
    a fraction of an evaluation of a solvated System. ``cover``: the full-System indices of the probe's
    particles; ``movable``: which of them are perturbed."""

    def __init__(self, context: openmm.Context, atoms: Optional[np.ndarray], restrict: bool = True):
        self.n = context.getSystem().getNumParticles()
        self.restricted = None
        chosen = None if atoms is None else np.asarray(atoms, dtype=bool)
        if restrict and chosen is not None and not chosen.all():
            self.restricted = restricted_context(context, chosen)
        if self.restricted is not None:
            self.bridge, self.cover = EnergyBridge(self.restricted), np.flatnonzero(chosen)
            self.movable = self.bridge.movable
        else:
            self.bridge, self.cover = EnergyBridge(context), np.arange(self.n)
            self.movable = self.bridge.movable if chosen is None else self.bridge.movable & chosen

    def block_norms(self, positions: np.ndarray, method: str, step: float, cutoff: float):
        """‖H_ij‖_F over the probe's particles at the full-System ``positions`` (dense or CSR)."""
        local = positions[self.cover]
        if method == "exact":
            return np.sqrt(_exact_block_norms_sq(self.bridge, local, self.movable, step))
        return _sparse_block_norms_sq(self.bridge, local, self.movable, step, cutoff).sqrt()

    def embed(self, k):
        """The probe's matrix as the full System's: unchanged for the whole System, CSR N×N for a subset."""
        if self.restricted is None:
            return k
        k = scipy.sparse.coo_matrix(k)
        return scipy.sparse.csr_matrix((k.data, (self.cover[k.row], self.cover[k.col])), shape=(self.n, self.n))


def force_constant_matrix(context: openmm.Context, positions=None, *, method: str = "auto",
                          samples: int = 1, perturbation: float = 0.005, step: float = 1e-3,
                          cutoff: float = 0.45, seed: int = 0, atoms: Optional[np.ndarray] = None,
                          restrict: bool = True):
    """K_ij = ‖H_ij‖_F averaged over ``samples`` structures (the first unperturbed, the others with Gaussian
    noise of ``perturbation`` nm), zero diagonal, symmetric. Dense for ``exact``, scipy CSR for ``sparse``.
    ``atoms`` (an (N,) bool mask): perturb only those atoms; where the System allows it
    (:func:`~openmm_reparam.core.subsystem.restrict_system`: bonded and pairwise forces, nothing coupling the
    subset to the rest) the couplings among them are probed on a System of those atoms alone (exactly the same
    numbers, far cheaper in a water box) and K is a CSR N×N matrix with nonzeros among them only;
    ``restrict=False`` always probes the whole Context (the reference path).

    Uses (and afterwards restores) the positions of ``context``. Returns (K, method used, evaluations).
    """
    saved = context.getState(getPositions=True).getPositions(asNumpy=True)
    base = as_positions(saved) if positions is None else as_positions(positions)
    probe = _Probe(context, atoms, restrict)
    movable = np.zeros(probe.n, dtype=bool)
    movable[probe.cover[probe.movable]] = True
    if method == "auto":
        method = "exact" if movable.sum() <= EXACT_MAX_ATOMS else "sparse"
    if method not in ("exact", "sparse"):
        raise ValueError(f"method must be 'auto', 'exact' or 'sparse', got {method!r}")
    rng = np.random.default_rng(seed)
    total = None
    try:
        for s in range(max(1, int(samples))):
            sample = base if s == 0 else base + np.where(movable[:, None], rng.normal(0, perturbation, base.shape), 0)
            block = probe.block_norms(sample, method, step, cutoff)
            total = block if total is None else total + block
    finally:
        context.setPositions(saved)
    k = probe.embed(total / max(1, int(samples)))
    k = 0.5 * (k + k.T)
    if scipy.sparse.issparse(k):
        k = k.tolil()
        k.setdiag(0)
        k = k.tocsr()
        k.eliminate_zeros()
    else:
        np.fill_diagonal(k, 0.0)
    return k, method, probe.bridge.evaluations


def compute_slow_modes(context_or_system: Union[openmm.Context, openmm.System], positions=None, *,
                       n_modes: int = 30, method: str = "auto", samples: int = 1, perturbation: float = 0.005,
                       step: float = 1e-3, cutoff: float = 0.45, seed: int = 0,
                       platform: Optional[openmm.Platform] = None, atoms: Optional[np.ndarray] = None) -> SlowModes:
    """The ``n_modes`` slowest modes of a System at ``positions`` (see the module docstring for costs).

    Pass a Context (its positions are used unless ``positions`` is given, and are left unchanged) or a System
    plus positions (a temporary Context is made on ``platform``, CPU by default). ``atoms`` (an (N,) bool mask):
    build the graph of those atoms only (only they are perturbed); the modes then have one row per chosen atom.
    """
    start = time.perf_counter()
    if isinstance(context_or_system, openmm.Context):
        context, owned = context_or_system, False
    else:
        if positions is None:
            raise ValueError("positions are required when a System is given")
        if platform is None:
            platform = openmm.Platform.getPlatformByName("CPU")
        context = openmm.Context(context_or_system, openmm.VerletIntegrator(0.001), platform)
        context.setPositions(as_positions(positions) * unit.nanometer)
        owned = True
    try:
        k, used, evaluations = force_constant_matrix(context, positions, method=method, samples=samples,
                                                     perturbation=perturbation, step=step, cutoff=cutoff, atoms=atoms,
                                                     seed=seed)
    finally:
        if owned:
            del context
    if atoms is not None:  # the graph of the chosen atoms only; modes are rows of those atoms
        index = np.flatnonzero(np.asarray(atoms, dtype=bool))
        k = k[index][:, index]
    values, vectors = lowest_modes(graph_laplacian(k), n_modes)
    return SlowModes(eigenvalues=values, vectors=vectors, force_constants=k, method=used,
                     force_evaluations=evaluations, wall_time=time.perf_counter() - start)
