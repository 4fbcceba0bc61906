"""Checks of a start before anything runs: every coordinate finite, and no atom absurdly far from all others.

A NaN coordinate makes OpenMM fail deep inside its first force evaluation, and an atom thousands of nm from the
rest (a corrupt coordinate, such as ``99999.99`` in a PDB file) makes a run that never finishes: a bond stretched
that far has an energy of ~1e13 kJ/mol that no optimizer crosses in reasonable time, and OpenMM's L-BFGS stops
early with the bonded residue dragged tens of nm away. Both are refused up front, naming the atom.

"Absurdly far" means the nearest other particle is more than ``far_atom_distance`` away (non-periodic Systems;
in a periodic box every particle has neighbours within the box), or a coordinate beyond
:data:`MAX_COORDINATE`, which no structure file can hold.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .errors import InvalidPositionsError

#: nm: a coordinate beyond this (1,000,000 Å) is refused whatever the System (a PDB file holds at most 10,000 Å).
MAX_COORDINATE = 1e5
#: nm: the default distance beyond which a particle with no other particle nearer is refused (non-periodic).
FAR_ATOM_DISTANCE = 10.0


def position_problem(positions: np.ndarray, periodic: bool = False,
                     far_atom_distance: float = FAR_ATOM_DISTANCE) -> Optional[Tuple[int, str]]:
    """The first problem of ``positions`` ((N, 3) nm) as (particle index, what is wrong), or None.
    ``far_atom_distance`` <= 0 turns the distance check off."""
    positions = np.asarray(positions, dtype=np.float64)
    finite = np.isfinite(positions).all(axis=1)
    if not finite.all():
        index = int(np.flatnonzero(~finite)[0])
        return index, f"has a non-finite coordinate ({_xyz(positions[index])})"
    huge = np.abs(positions).max(axis=1) > MAX_COORDINATE if len(positions) else np.zeros(0, bool)
    if huge.any():
        index = int(np.flatnonzero(huge)[0])
        return index, f"is at ({_xyz(positions[index])}), beyond {MAX_COORDINATE:g} nm"
    if periodic or far_atom_distance <= 0 or len(positions) < 2:
        return None
    from scipy.spatial import cKDTree
    distances, _ = cKDTree(positions).query(positions, k=2, distance_upper_bound=float(far_atom_distance))
    lonely = ~np.isfinite(distances[:, 1])
    if not lonely.any():
        return None
    index = int(np.flatnonzero(lonely)[0])
    nearest = float(np.sort(np.linalg.norm(np.delete(positions, index, axis=0) - positions[index], axis=1))[0])
    return index, (f"is {nearest:.4g} nm from the nearest other atom (at {_xyz(positions[index])}); more than "
                   f"{far_atom_distance:g} nm apart means a corrupt coordinate")


def check_positions(positions: np.ndarray, periodic: bool = False, far_atom_distance: float = FAR_ATOM_DISTANCE,
                    describe=lambda index: f"particle {index}") -> None:
    """Raise :class:`InvalidPositionsError` naming the first problem of ``positions`` (see
    :func:`position_problem`); ``describe(index)`` names a particle (default ``"particle 12"``)."""
    problem = position_problem(positions, periodic, far_atom_distance)
    if problem is not None:
        index, what = problem
        raise InvalidPositionsError(f"{describe(index)} {what}", index)


def _xyz(row: np.ndarray) -> str:
    return ", ".join(f"{value:.4g}" for value in row) + " nm"


__all__ = ["position_problem", "check_positions", "MAX_COORDINATE", "FAR_ATOM_DISTANCE"]
