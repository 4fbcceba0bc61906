"""Harmonic positional restraints (as in AlphaFold's relax step), so a model can be relaxed without drifting.

E = 0.5 * k * w * d^2 summed over the restrained atoms, d = distance to the reference position
(``periodicdistance`` in periodic systems, so an atom that is wrapped into another image is not pulled across the
box), w a per-atom weight (1, or 0 once released: ``update_position_restraints`` moves the references and releases
atoms inside a live Context, as the relax protocol does for violating residues).
The force lives in its own force group, so reports can show its energy separately from the force field.
"""
from __future__ import annotations

from typing import Any, Iterable, List, Optional, Union

import openmm
from openmm import app, unit

from .prepare import ca_indices, heavy_atom_indices
from ..core.units import as_positions

RESTRAINT_CHOICES = ("heavy", "ca", "none")
#: AlphaFold's relax stiffness: 10 kcal/mol/A^2 = 4184 kJ/mol/nm^2.
DEFAULT_STIFFNESS = 4184.0
RESTRAINT_FORCE_NAME = "PositionRestraint"

_STIFFNESS_UNIT = unit.kilojoule_per_mole / unit.nanometer ** 2
_PARAMETERS = ("x0", "y0", "z0", "w_restraint")


def restrained_atoms(topology: app.Topology, restrain: Union[str, Iterable[int]]) -> List[int]:
    """The atom indices selected by ``restrain``: ``"heavy"`` (solute heavy atoms), ``"ca"`` (C-alpha atoms),
    ``"none"``, or an explicit iterable of indices."""
    if isinstance(restrain, str):
        if restrain == "heavy":
            return heavy_atom_indices(topology)
        if restrain == "ca":
            return ca_indices(topology)
        if restrain == "none":
            return []
        raise ValueError(f"restrain must be one of {RESTRAINT_CHOICES} or a list of atom indices, got {restrain!r}")
    return [int(i) for i in restrain]


def add_position_restraints(system: openmm.System, topology: app.Topology, reference_positions: Any,
                            restrain: Union[str, Iterable[int]] = "heavy", stiffness: Any = DEFAULT_STIFFNESS,
                            force_group: Optional[int] = None) -> Optional[openmm.CustomExternalForce]:
    """Add harmonic restraints of ``stiffness`` (kJ/mol/nm^2 or Quantity) pulling the selected atoms to
    ``reference_positions``. Returns the added force (named ``PositionRestraint``), or None when nothing is
    restrained. ``force_group`` defaults to the first group no other force uses. Call this before creating
    a Context (or reinitialize the Context afterwards).
    """
    atoms = restrained_atoms(topology, restrain)
    if not atoms:
        return None
    k = stiffness.value_in_unit(_STIFFNESS_UNIT) if unit.is_quantity(stiffness) else float(stiffness)
    if k < 0:
        raise ValueError(f"restraint stiffness must be >= 0, got {k}")
    reference = as_positions(reference_positions)
    if system.usesPeriodicBoundaryConditions():
        expression = "0.5*k_restraint*w_restraint*periodicdistance(x, y, z, x0, y0, z0)^2"
    else:
        expression = "0.5*k_restraint*w_restraint*((x-x0)^2 + (y-y0)^2 + (z-z0)^2)"
    force = openmm.CustomExternalForce(expression)
    force.setName(RESTRAINT_FORCE_NAME)
    force.addGlobalParameter("k_restraint", k)
    for name in _PARAMETERS:
        force.addPerParticleParameter(name)
    for index in atoms:
        force.addParticle(index, [float(c) for c in reference[index]] + [1.0])
    force.setForceGroup(_free_group(system) if force_group is None else int(force_group))
    system.addForce(force)
    return force


def update_position_restraints(force: openmm.CustomExternalForce, context: openmm.Context,
                               reference_positions: Any, released: Iterable[int] = (), released_weight: float = 0.0,
                               released_reference: Any = None) -> int:
    """Move every reference of ``force`` (made by ``add_position_restraints``) to ``reference_positions`` and
    release the atoms in ``released``: their weight becomes ``released_weight`` (0: free) and their reference
    ``released_reference`` (default ``reference_positions``); in ``context`` too. Returns the number of atoms
    still fully restrained."""
    reference = as_positions(reference_positions)
    held = reference if released_reference is None else as_positions(released_reference)
    released = set(int(i) for i in released)
    restrained = 0
    for index in range(force.getNumParticles()):
        atom, _ = force.getParticleParameters(index)
        if atom in released:
            force.setParticleParameters(index, atom, [float(c) for c in held[atom]] + [float(released_weight)])
        else:
            restrained += 1
            force.setParticleParameters(index, atom, [float(c) for c in reference[atom]] + [1.0])
    force.updateParametersInContext(context)
    return restrained


def _free_group(system: openmm.System) -> int:
    used = {f.getForceGroup() for f in system.getForces()}
    for group in range(31, -1, -1):  # count down: report.assign_force_groups counts up from 0
        if group not in used:
            return group
    raise ValueError("all 32 force groups are in use; pass force_group explicitly")
