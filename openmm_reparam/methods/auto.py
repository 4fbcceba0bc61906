"""Method ``auto``, the default: for each System, the registered method that ranks best for it.

``auto`` is a function of the registry: every registered method with ``auto_candidate`` set says, through
``auto_rank(profile)`` (a :class:`~openmm_reparam.run.profile.SystemProfile`: size, constraints, box, force
types), whether it suits the System and how well (lower is better); ``auto`` runs the best one (``result.method``
says which). Options passed with ``auto`` may be those of any candidate: the ones the chosen method does not use
are left out of its run (and of ``result.options``), each with a RuntimeWarning naming it and the method chosen
(:mod:`.effects`).

Before any candidate runs, ``auto`` applies the constraints to the start, as OpenMM's minimizer does, and where
that start is already converged by the package's measure it stops there (one stage "start" and one force
evaluation, as ``LocalEnergyMinimizer``; ``Method.stops_at_converged_start``), whichever candidate it picked.

What the package's candidates claim, each from a measured class (benchmarks/RESULTS.md#auto-rules;
the classes' runs: benchmarks/RESULTS.md#everyday and benchmarks/RESULTS.md#external-suite):

* ``lbfgs`` (OpenMM's L-BFGS, then the polish only if OpenMM's final constraint projection left it above the
  tolerance): Systems with nothing to minimize or at most :data:`SMALL_ATOMS` movable atoms, where any set-up
  costs more than the whole minimization (toluene, alanine dipeptide, the toys); periodic Systems without
  constraints, unless they hold molecules in implicit solvent (LJ fluids, flexible water, ionic crystals, free
  ions in implicit solvent), where OpenMM's L-BFGS has no constraint penalty to slow it and Adam crawls (on
  openmmtools' CustomGBForceSystem, ions in GB, the GNN ended lower in most runs but far higher in the others,
  at many times the time); AMOEBA, where a force evaluation dominates everything.
* ``precon``: the rest of the non-periodic Systems (proteins and other molecules above :data:`SMALL_ATOMS`, in
  vacuum or implicit solvent), molecules in implicit solvent in a box, and periodic Systems with constraints
  whose molecules are all small (at most :data:`MACROMOLECULE_ATOMS` atoms: water boxes, liquids, a small solute
  in water), where it took a fraction of OpenMM's L-BFGS time and Adam more.
* ``adam``: periodic Systems with constraints holding a larger molecule (solvated proteins, nucleic acids,
  host-guest complexes), where OpenMM's L-BFGS is slowed by its constraint penalty: faster than LEM and lower.
"""
from __future__ import annotations

from typing import Optional

import openmm

from ..run.profile import SystemProfile
from ..run.registry import registered
from .base import Method

#: At most this many movable atoms: OpenMM's L-BFGS (measured: 15-22-atom molecules and the toys; 75 atoms, the
#: smallest protein of the suites, already gains from ``precon``).
SMALL_ATOMS = 50
#: Periodic Systems with constraints and a molecule larger than this go to ``adam``, the others to ``precon``
#: (measured: water boxes, methanol, alanine dipeptide in water and constrained fluids, molecules of 2-22 atoms,
#: are faster with ``precon``; solvated proteins of 166-284 atoms and a 126-atom host with ``adam``;
#: benchmarks/RESULTS.md#auto-rules).
MACROMOLECULE_ATOMS = 50


class AutoMethod(Method):
    """Picks a method per System; see the module docstring."""

    name = "auto"
    summary = "the candidate that measured best for the System's class (result.method says which)"
    polished = False
    stops_at_converged_start = True

    @property
    def option_groups(self):  # type: ignore[override]
        """The groups of every candidate (what ``minimize(method="auto", ...)`` accepts)."""
        groups = {}
        for method in candidates():
            groups.update(method.option_groups)
        return groups

    def resolve(self, system: openmm.System) -> Method:
        profile = SystemProfile.of(system)
        ranked = [(rank, index, method) for index, method in enumerate(candidates())
                  for rank in [method.auto_rank(profile)] if rank is not None]
        if not ranked:
            raise ValueError("no registered method is an auto candidate for this System")
        return min(ranked, key=lambda entry: entry[:2])[2].for_auto()

    def run(self, state) -> None:
        raise RuntimeError("auto runs the method it resolves to (AutoMethod.resolve)")


def candidates() -> list:
    return [method for method in registered() if method.auto_candidate and method.name != "auto"]


def resolve_auto(system: openmm.System) -> Optional[str]:
    """The name of the method ``auto`` runs on ``system``."""
    return AutoMethod().resolve(system).name
