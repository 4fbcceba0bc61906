"""What holds a minimization back: the atoms with the largest residual forces and the atoms closest to them.

A run that stops above its tolerance (out of iterations, out of time, or stuck) leaves forces that some atoms
cannot shed: typically a clash that the run could not resolve, an atom caught between two others, or a term that
cannot be satisfied. :func:`find_obstacles` names them: the movable atoms with the largest forces, projected off
the constraints as the convergence test measures them, each with its nearest atom that is not bonded to it
(bonds and constraints, up to two bonds apart: those are close by design), minimum image in a periodic box.
:func:`describe_obstacles` turns them into one line with residue and atom names.

Here rather than in ``analysis``: the minimizer (``api``) puts them into its result (``run``), and both may import
``core`` only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Set

import numpy as np
import openmm
from openmm import app, unit

if TYPE_CHECKING:  # torch is imported where an energy is evaluated, not here
    from .bridge import EnergyBridge

#: How many atoms a result names (the largest residual forces).
DEFAULT_COUNT = 5
#: How many of them the one-line description names.
DESCRIBED = 3
#: Atoms at most this many bonds apart are not each other's clash partners.
BONDED_SEPARATION = 2


@dataclass(frozen=True)
class Obstacle:
    """A movable atom whose residual force holds a run back: its index, the force on it (kJ/mol/nm, projected off
    the constraints), and its nearest atom that is not bonded to it (index, distance in nm; None in a System of
    bonded atoms only)."""
    atom: int
    force: float
    neighbor: Optional[int]
    distance: Optional[float]


def residual_forces(bridge: EnergyBridge) -> np.ndarray:
    """(N,) |F_i| at the Context's positions: projected off the constraints, 0 on fixed particles."""
    state = bridge.context.getState(getForces=True, getPositions=bridge.has_constraints, groups=bridge.groups)
    forces = np.array(state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer),
                      dtype=np.float64)
    if bridge.has_constraints:
        forces = bridge.project(forces, np.array(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer),
                                                 dtype=np.float64))
    magnitude = np.sqrt((forces * forces).sum(axis=1))
    magnitude[bridge.fixed] = 0.0
    return magnitude


def bonded_neighbors(system: openmm.System, atoms: Sequence[int],
                     separation: int = BONDED_SEPARATION) -> Dict[int, Set[int]]:
    """For each of ``atoms``, the particles at most ``separation`` bonds away (harmonic bonds and constraints)."""
    direct: List[Set[int]] = [set() for _ in range(system.getNumParticles())]
    pairs = [system.getConstraintParameters(k)[:2] for k in range(system.getNumConstraints())]
    for force in system.getForces():
        if isinstance(force, openmm.HarmonicBondForce):
            pairs += [force.getBondParameters(b)[:2] for b in range(force.getNumBonds())]
    for i, j in pairs:
        direct[i].add(j)
        direct[j].add(i)
    near = {}
    for atom in atoms:
        reached = {atom}
        for _ in range(separation):
            reached |= set().union(*(direct[k] for k in reached))
        near[atom] = reached - {atom}
    return near


def _nearest(positions: np.ndarray, atom: int, excluded: Set[int], box: Optional[np.ndarray]):
    """(index, distance) of the atom nearest ``atom`` outside ``excluded`` (minimum image in ``box``)."""
    delta = positions - positions[atom]
    if box is not None:  # OpenMM's reduced triclinic box: c, then b, then a
        for axis in (2, 1, 0):
            delta -= np.outer(np.round(delta[:, axis] / box[axis, axis]), box[axis])
    distance = np.sqrt((delta * delta).sum(axis=1))
    distance[atom] = np.inf
    distance[list(excluded)] = np.inf
    nearest = int(np.argmin(distance))
    return (None, None) if not np.isfinite(distance[nearest]) else (nearest, float(distance[nearest]))


def find_obstacles(bridge: EnergyBridge, count: int = DEFAULT_COUNT) -> List[Obstacle]:
    """The ``count`` movable atoms with the largest residual forces at the Context's positions, largest first,
    each with its nearest non-bonded atom."""
    forces = residual_forces(bridge)
    order = [int(i) for i in np.argsort(-forces, kind="stable")[:count] if forces[i] > 0]
    if not order:
        return []
    context = bridge.context
    state = context.getState(getPositions=True)
    positions = np.array(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer), dtype=np.float64)
    system = context.getSystem()
    box = (np.array(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer))
           if system.usesPeriodicBoundaryConditions() else None)
    near = bonded_neighbors(system, order)
    obstacles = []
    for atom in order:
        neighbor, distance = _nearest(positions, atom, near[atom], box)
        obstacles.append(Obstacle(atom, float(forces[atom]), neighbor, distance))
    return obstacles


def _chain_names(topology: app.Topology) -> Dict[int, str]:
    """Chain index -> the prefix that tells chains apart ("" for a single chain): its id, or its position
    (1, 2, ...) where ids repeat."""
    chains = list(topology.chains())
    if len(chains) < 2:
        return {c.index: "" for c in chains}
    unique = len({c.id for c in chains}) == len(chains) and all(c.id for c in chains)
    return {c.index: f"{c.id if unique else c.index + 1}:" for c in chains}


def atom_label(topology: app.Topology, index: int, atoms: Optional[Dict[int, app.topology.Atom]] = None,
               chains: Optional[Dict[int, str]] = None) -> str:
    """``[chain:]RES number NAME`` (chain where there are several, residue name, its id in the file, atom name)
    of atom ``index``."""
    atom = (atoms or {a.index: a for a in topology.atoms()}).get(index)
    if atom is None:
        return f"atom {index}"
    prefix = (chains if chains is not None else _chain_names(topology)).get(atom.residue.chain.index, "")
    return f"{prefix}{atom.residue.name} {atom.residue.id} {atom.name}"


def _short(value: float) -> str:
    """Two significant digits, exponent without padding: 3.1e4, 850, 2.5e-3."""
    text = f"{value:.2g}"
    mantissa, _, exponent = text.partition("e")
    return text if not exponent else f"{mantissa}e{int(exponent)}"


def describe_obstacles(obstacles: Sequence[Obstacle], topology: app.Topology, count: int = DESCRIBED) -> str:
    """One line naming the first ``count`` obstacles, e.g. ``held back by ARG 12 NH1 (force 3.1e4 kJ/mol/nm,
    0.09 nm from GLU 8 OE2), ...`` (with ``A:`` before the residue where there are several chains); "" when
    there are none."""
    if not obstacles:
        return ""
    atoms, chains = {a.index: a for a in topology.atoms()}, _chain_names(topology)
    parts = []
    for o in list(obstacles)[:count]:
        where = ("" if o.neighbor is None else
                 f", {o.distance:.2f} nm from {atom_label(topology, o.neighbor, atoms, chains)}")
        parts.append(f"{atom_label(topology, o.atom, atoms, chains)} (force {_short(o.force)} kJ/mol/nm{where})")
    return "held back by " + ", ".join(parts)
