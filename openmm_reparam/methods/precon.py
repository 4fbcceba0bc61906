"""Method ``precon``: a few L-BFGS iterations out of the start's clashes (``declash``: by default the projected
L-BFGS with the stage's memory and step cap, or OpenMM's with ``declash_by="openmm"``), then L-BFGS on the coordinates
preconditioned by the force-constant graph Laplacian (:mod:`openmm_reparam.engines.precon`), then the polish.
What ``auto`` runs for non-periodic Systems (vacuum, implicit solvent), implicit solvent in a box and constrained
boxes of small molecules (:mod:`openmm_reparam.methods.auto`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Dict, Optional

import openmm

from ..core.platforms import openmm_lbfgs_blocker
from ..engines.precon import PreconSettings, precon_setup
from ..run.options import MinimizerOptions, require, require_ints, require_positive
from ..run.profile import GB_FORCES, SystemProfile
from ..run.renames import current_value
from ..run.result import StageResult
from .auto import MACROMOLECULE_ATOMS
from .base import Method, RunState
from .lbfgs import lbfgs_stage, projected_lbfgs, undone_if_higher

#: what K, the force-constant matrix of P = L(K) + mu I, is built from
MATRICES = ("finite-difference", "bonded")
#: The estimated μ is at least this x the mean diagonal of the Laplacian, in general ...
MU_FLOOR = 1e-3
#: ... and at least this on periodic Systems without constraints or implicit solvent (liquids, flexible water):
#: there the sine test measures the liquid's long-wavelength stiffness (on FlexibleWaterBox below 1e-3 of the
#: O-H bonds' diagonal), far below what holds a molecule against its neighbours, so P⁻¹ took molecular moves as
#: soft and precon needed 3-18x the evaluations of OpenMM's L-BFGS; with 0.125 it needs 0.7-1.9x, ending lower
#: (benchmarks/RESULTS.md#auto-rules).
BOX_MU_FLOOR = 0.125


@dataclass
class PreconOptions:
    """``precon``: L-BFGS on the coordinates preconditioned by the force-constant Laplacian."""
    precon_steps: int = 10000      # max iterations
    precon_memory: int = 10        # L-BFGS (s, y) pairs kept
    precon_mu: Optional[float] = None  # kJ/mol/nm^2, the shift of P = L + mu I (None: estimated, sine test)
    precon_mu_floor: Optional[float] = None  # the estimated mu is at least this x the mean diagonal of L (None:
    #                                BOX_MU_FLOOR on periodic Systems without constraints or implicit solvent,
    #                                MU_FLOOR elsewhere)
    precon_rebuild_distance: float = 0.5  # nm: rebuild P when an atom moved farther since the last build
    precon_cutoff: float = 0.25    # nm: atom pairs coupled in the force-constant matrix (bonds, angles)
    precon_max_step: float = 0.03  # nm: the largest atom displacement of one step
    precon_tolerance: float = 0.5  # the stage stops at this x the tolerance, leaving the polish little to do
    precon_matrix: str = "bonded"  # K: "bonded" (bond and angle terms, no evaluation) or "finite-difference"
    #                                (finite differences of the forces, pairs within precon_cutoff; formerly
    #                                "measured"; slower, benchmarks/RESULTS.md#auto-rules)
    declash_steps: int = 20        # L-BFGS iterations first (stage "declash"; 0: none): from a clash-laden start
    #                                the long preconditioned steps can push a planar group through its plane
    declash_by: str = "projected"  # "projected" (the projected L-BFGS of the polish, with precon_memory and
    #                                precon_max_step; runs on every platform) or "openmm" (OpenMM's L-BFGS: with
    #                                constraints it repeats the capped pass per penalty tightening, 60+ iterations)

    def __post_init__(self) -> None:
        require_ints(self, ("precon_steps", "declash_steps"))
        require_ints(self, ("precon_memory",), 1)
        require(self.precon_mu is None or float(self.precon_mu) > 0,
                f"precon_mu must be > 0 or None, got {self.precon_mu}")
        require(self.precon_mu_floor is None or float(self.precon_mu_floor) > 0,
                f"precon_mu_floor must be > 0 or None, got {self.precon_mu_floor}")
        require_positive(self, ("precon_rebuild_distance", "precon_cutoff", "precon_max_step",
                                "precon_tolerance"))
        require(self.declash_by in ("openmm", "projected"), "declash_by must be 'openmm' or "
                f"'projected', got {self.declash_by!r}")
        self.precon_matrix = current_value("precon_matrix", self.precon_matrix, stacklevel=4)  # "measured": former
        require(self.precon_matrix in MATRICES, f"precon_matrix must be one of {', '.join(MATRICES)}, "
                f"got {self.precon_matrix!r}")

    def stage_settings(self, deadline: Optional[float], system: Optional[openmm.System] = None) -> PreconSettings:
        """The preconditioned stage's settings (Laplacian over the solute) for ``system`` (which chooses the μ
        floor when ``precon_mu_floor`` is None; no System: :data:`MU_FLOOR`)."""
        floor = self.precon_mu_floor
        if floor is None:
            flexible_box = (system is not None and system.usesPeriodicBoundaryConditions()
                            and system.getNumConstraints() == 0
                            and not {type(f).__name__ for f in system.getForces()} & GB_FORCES)
            floor = BOX_MU_FLOOR if flexible_box else MU_FLOOR
        return PreconSettings(
            max_steps=self.precon_steps, memory=self.precon_memory, mu=self.precon_mu,
            rebuild_distance=self.precon_rebuild_distance, cutoff=self.precon_cutoff, max_step=self.precon_max_step,
            tolerance_factor=self.precon_tolerance, atoms="solute", laplacian=True, matrix=self.precon_matrix,
            deadline=deadline, mu_floor=float(floor))


def declash_stage(state: RunState, settings: PreconSettings) -> StageResult:
    """``declash_steps`` iterations out of the start's clashes: by the plain projected L-BFGS with the stage's
    memory and step cap (``declash_by="projected"``, the default, and wherever OpenMM's L-BFGS cannot run), or by
    OpenMM's L-BFGS (``"openmm"``)."""
    options, bridge = state.options.precon, state.bridge
    if options.declash_by == "openmm" and openmm_lbfgs_blocker(bridge.context) is None:
        declash, _ = undone_if_higher(bridge, lbfgs_stage, "declash", bridge, state.recorder, state.tolerance,
                                      options.declash_steps, state.deadline, state.runners.lbfgs)
        return declash
    return projected_lbfgs("declash", bridge, state.recorder, state.tolerance, options.declash_steps,
                           options.precon_memory, options.precon_max_step, settings.tolerance_factor,
                           state.runners.precon, state.deadline)


class PreconMethod(Method):
    """declash → precon_setup → precon, then the polish."""

    name = "precon"
    summary = "declash, then L-BFGS preconditioned by the force-constant Laplacian, then the L-BFGS polish"
    option_groups = {"precon": PreconOptions}
    auto_candidate = True

    def auto_rank(self, profile: SystemProfile) -> Optional[float]:
        """Non-periodic Systems (vacuum, implicit solvent; faster than OpenMM's L-BFGS alone on most noisy and
        unfolded protein starts and lower in energy, benchmarks/RESULTS.md#everyday), implicit solvent in a box,
        and constrained boxes of small molecules (see :mod:`openmm_reparam.methods.auto`)."""
        if not profile.periodic or profile.implicit_solvent:
            return 1.0
        return 1.0 if profile.constrained and profile.largest_molecule <= MACROMOLECULE_ATOMS else None

    def ineffective(self, options: MinimizerOptions, given: Collection[str]) -> Dict[str, str]:
        found = super().ineffective(options, given)
        p = options.precon
        if "declash_by" in given and p.declash_steps == 0:
            found["declash_by"] = "the declash is off (declash_steps=0)"
        if "precon_cutoff" in given and p.precon_matrix == "bonded":
            found["precon_cutoff"] = ("the bonded K couples the atoms of bond and angle terms; the cutoff sets the "
                                      "pairs of precon_matrix='finite-difference'")
        return found

    def run(self, state: RunState) -> None:
        options = state.options.precon
        settings = options.stage_settings(state.deadline, state.context.getSystem())
        bridge, recorder = state.bridge, state.recorder
        if recorder.capped(settings.max_steps) <= 0:
            return
        if options.declash_steps > 0:
            state.add(declash_stage(state, settings))
            if (recorder.capped(settings.max_steps) <= 0 or recorder.stopped
                    or bridge.converged(state.tolerance * settings.tolerance_factor)):
                return  # out of iterations, stopped, or already there (the set-up would cost more than the polish)
        preconditioner, setup = precon_setup(bridge, settings)
        state.add(setup)
        state.add(state.runners.precon(bridge, recorder, state.tolerance, settings, preconditioner))
