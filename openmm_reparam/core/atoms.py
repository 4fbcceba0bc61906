"""Which particles an optimizer may move, and per-atom checks on positions and forces.

A particle is *fixed* when it is a virtual site (its position follows from others) or has zero mass (OpenMM's
convention for particles that integrators and the minimizer never move). Everything else is *movable*. This is
the one definition used by the bridge, the slow modes, the convergence test and the report; the compiled
engine's EnergyBridge implements the same rule.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np
import openmm
from openmm import unit
from scipy.spatial import cKDTree


def fixed_mask(system: openmm.System) -> np.ndarray:
    """(N,) bool: True for virtual sites and massless particles."""
    return np.array([system.isVirtualSite(i) or system.getParticleMass(i).value_in_unit(unit.dalton) == 0
                     for i in range(system.getNumParticles())], dtype=bool)


def movable_mask(system: openmm.System) -> np.ndarray:
    """(N,) bool: True for the particles an optimizer moves."""
    return ~fixed_mask(system)


def force_norms(forces: np.ndarray, movable: np.ndarray) -> Tuple[float, float]:
    """OpenMM's convergence measure ‖F‖₂/√N and the largest per-atom |F|, over movable particles."""
    f = forces[movable]
    if len(f) == 0:
        return 0.0, 0.0
    per_atom = np.sqrt((f * f).sum(axis=1))
    return float(math.sqrt((per_atom ** 2).sum() / len(f))), float(per_atom.max())


def has_collapsed_contact(positions: np.ndarray, movable: np.ndarray, distance: float,
                          forces: Optional[np.ndarray] = None, min_force: float = 0.0) -> bool:
    """True if two movable particles are closer than ``distance`` nm (and, when ``forces`` are given, one of
    them feels a force above ``min_force`` kJ/mol/nm).

    No covalent bond is shorter than about 0.09 nm, so such a contact means the structure has fallen into
    a singularity of the force field (typically a hydrogen without Lennard-Jones radius sinking into an
    opposite charge), where the energy goes to −∞ and the forces diverge. The force test keeps soft-core
    potentials, whose particles may overlap harmlessly, from being flagged. Periodic images are not considered.
    """
    if distance <= 0:
        return False
    index = np.flatnonzero(movable)
    if len(index) < 2:
        return False
    pairs = cKDTree(positions[index]).query_pairs(distance, output_type="ndarray")
    if len(pairs) == 0 or forces is None:
        return len(pairs) > 0
    magnitude = np.sqrt((forces[index] ** 2).sum(axis=1))
    return bool((np.maximum(magnitude[pairs[:, 0]], magnitude[pairs[:, 1]]) > min_force).any())


def solvent_mask(system: openmm.System, max_atoms: int = 4) -> np.ndarray:
    """(N,) bool: True for particles of molecules with at most ``max_atoms`` particles (waters, ions), where a
    molecule is a connected set of particles under the System's constraints and two-particle bonds
    (``HarmonicBondForce``). Such molecules have no slow collective modes of their own worth reparametrizing."""
    n = system.getNumParticles()
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in _pairs(system):
        parent[root(a)] = root(b)
    roots = np.array([root(i) for i in range(n)])
    sizes = np.bincount(roots, minlength=n)
    return sizes[roots] <= max_atoms


def _pairs(system: openmm.System):
    """Particle pairs joined by a constraint, a two-particle bond or a virtual-site definition."""
    for k in range(system.getNumConstraints()):
        yield system.getConstraintParameters(k)[:2]
    for force in system.getForces():
        if isinstance(force, openmm.HarmonicBondForce):
            for k in range(force.getNumBonds()):
                yield force.getBondParameters(k)[:2]
    for i in range(system.getNumParticles()):
        if system.isVirtualSite(i):
            site = system.getVirtualSite(i)
            for k in range(site.getNumParticles()):
                yield i, site.getParticle(k)


def colour_atoms(positions: np.ndarray, movable: np.ndarray, separation: float,
                 boxsize: Optional[np.ndarray] = None) -> np.ndarray:
    """Greedy colouring: atoms closer than ``separation`` get different colours (−1 for fixed atoms).
    ``boxsize``: rectangular periodic box edges (positions must lie inside it). Used by the sparse
    force-constant probes (:mod:`openmm_reparam.reparam.slow_modes`) and the sparse finite-difference Hessians
    (:mod:`openmm_reparam.analysis`)."""
    n = len(positions)
    colours = -np.ones(n, dtype=int)
    tree = cKDTree(positions, boxsize=boxsize)
    neighbours = tree.query_ball_point(positions, separation)
    for i in np.flatnonzero(movable):
        taken = {colours[j] for j in neighbours[i] if colours[j] >= 0}
        c = 0
        while c in taken:
            c += 1
        colours[i] = c
    return colours
