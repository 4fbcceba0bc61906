"""The energy bridge: a differentiable torch function of positions evaluated by an OpenMM Context.

``EnergyBridge(context)(x)`` takes an (N, 3) float64 tensor of positions in nm and returns the potential
energy in kJ/mol as a 0-d tensor whose gradient is −F, with F the Context's forces. Everything OpenMM can
compute works: any force field, implicit or explicit solvent, Custom*Force, ``openmmtorch.TorchForce``.

It also
* evaluates only the integrator's integration force groups, as OpenMM's own minimizer does;
* never moves fixed particles (massless particles and virtual sites, :mod:`.atoms`), whose gradient is zero;
* keeps constrained distances: positions are projected with ``Context.applyConstraints``, the forces lose
  their components along the constraints (:class:`.ConstraintProjector`), and a spring of stiffness ``k_c``
  pulls the unprojected input onto the projection, so the loss is E(P(x)) + ½ k_c |x − P(x)|² with gradient
  −F⊥(P(x)) + k_c (x − P(x));
* counts evaluations and remembers the lowest-energy positions seen (used when a run is interrupted);
* measures a state once: the energy, the start check and the convergence measure of the same positions (and box)
  come from one force evaluation, whoever asks (force evaluations are what a minimization costs on a device).

The compiled engine's EnergyBridge (plugin_cpp/), of the same name, computes the same loss and gradient. The former
name ``ContextEnergy`` still imports, with a DeprecationWarning, for one release.
"""
from __future__ import annotations

import math
import sys
import warnings
from typing import Any, NamedTuple, Optional, Tuple

import numpy as np
import openmm
import torch
from openmm import unit

from .atoms import fixed_mask, force_norms
from .constraints import ConstraintProjector
from .errors import NonFiniteEnergyError

_NM = unit.nanometer
_KJ = unit.kilojoule_per_mole
_FORCE = _KJ / _NM


class EnergyBridge:
    """Energy and forces of ``context`` as a torch function; see the module docstring."""

    def __init__(self, context: openmm.Context, constraint_stiffness: float = 1e4):
        self.context = context
        system = context.getSystem()
        integrator = context.getIntegrator()
        self.n_particles = system.getNumParticles()
        self.groups = integrator.getIntegrationForceGroups()
        self.project = ConstraintProjector(system)
        self.has_constraints = len(self.project) > 0
        self.constraint_tolerance = integrator.getConstraintTolerance()
        self.has_virtual_sites = any(system.isVirtualSite(i) for i in range(self.n_particles))
        self.periodic = system.usesPeriodicBoundaryConditions()
        self.fixed = fixed_mask(system)
        self.movable = ~self.fixed
        self.constraint_stiffness = float(constraint_stiffness)
        self.runs_torch_autograd = any(_may_run_torch_autograd(force) for force in system.getForces())
        self.fixed_positions = self.current_positions()[self.fixed].copy()
        self.evaluations = 0
        self.best_energy = math.inf
        self.best_positions: Optional[np.ndarray] = None
        self.last_energy = math.nan
        self.last_positions: Optional[np.ndarray] = None
        self.last_forces: Optional[np.ndarray] = None
        self.last_max_force = math.nan
        self.last_rms_force = math.nan  # of the forces projected off the constraints, over the movable atoms
        self._measured: Optional[_Measurement] = None

    # -- the Context's current state -------------------------------------------------------------------
    def current_positions(self) -> np.ndarray:
        state = self.context.getState(getPositions=True)
        return np.array(state.getPositions(asNumpy=True).value_in_unit(_NM), dtype=np.float64)

    def set_positions(self, positions: np.ndarray) -> None:
        """Put positions into the Context (fixed particles keep theirs; virtual sites recomputed)."""
        positions = np.array(positions, dtype=np.float64, copy=True)
        positions[self.fixed] = self.fixed_positions
        self.context.setPositions(positions * _NM)
        if self.has_virtual_sites:
            self.context.computeVirtualSites()

    def apply_constraints(self) -> None:
        if self.has_constraints:
            self.context.applyConstraints(self.constraint_tolerance)

    def measure(self) -> "_Measurement":
        """Energy and forces of the Context's current positions and box (integration force groups): one force
        evaluation per distinct state, reused while the positions and box stay exactly as they were."""
        state = self.context.getState(getPositions=True)
        positions = state.getPositions(asNumpy=True).value_in_unit(_NM)
        box = state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(_NM) if self.periodic else None
        known = self._measured
        if known is not None and np.array_equal(known.positions, positions) and \
                (box is None or np.array_equal(known.box, box)):
            return known
        state = self.context.getState(getEnergy=True, getForces=True, groups=self.groups)
        self._measured = _Measurement(np.array(positions, dtype=np.float64), None if box is None else np.array(box),
                                      state.getPotentialEnergy().value_in_unit(_KJ),
                                      np.array(state.getForces(asNumpy=True).value_in_unit(_FORCE), dtype=np.float64))
        return self._measured

    def remember(self, positions: np.ndarray, energy: float, forces: np.ndarray) -> None:
        """Take ``energy`` (kJ/mol) and ``forces`` (kJ/mol/nm, integration force groups), evaluated elsewhere at
        ``positions`` (nm) in the Context's current box, as that state's measurement: :meth:`measure` returns them
        while the Context holds exactly those positions and box, and evaluates again as soon as it does not (used
        for OpenMM's L-BFGS, whose last report is its last evaluation when it leaves that iterate in the Context)."""
        box = self.context.getState().getPeriodicBoxVectors(asNumpy=True).value_in_unit(_NM) if self.periodic else None
        self._measured = _Measurement(np.array(positions, dtype=np.float64).reshape(-1, 3),
                                      None if box is None else np.array(box), float(energy),
                                      np.array(forces, dtype=np.float64).reshape(-1, 3))

    def energy(self) -> float:
        """Potential energy (kJ/mol) of the Context's current positions, integration force groups."""
        return self.measure().energy

    def checked_energy(self) -> float:
        """The current energy; raises :class:`NonFiniteEnergyError` (Context untouched) if it or a force is not
        finite."""
        measured = self.measure()
        if not math.isfinite(measured.energy) or not np.isfinite(measured.forces).all():
            raise NonFiniteEnergyError(
                f"the starting structure has a non-finite energy ({measured.energy}) or non-finite forces; "
                "check for overlapping or coincident atoms, NaN coordinates or missing parameters. "
                "The Context was left unchanged.")
        return measured.energy

    def force_norms(self) -> Tuple[float, float]:
        """(‖F‖₂/√N, max |F_i|) at the current positions over movable particles, constraint components
        removed: OpenMM's convergence measure."""
        measured = self.measure()
        forces = measured.forces
        if self.has_constraints:
            forces = self.project(forces, measured.positions)
        return force_norms(forces, self.movable)

    def converged(self, tolerance: float) -> bool:
        """Whether the current positions meet ``tolerance`` (kJ/mol/nm) by OpenMM's measure, ‖F‖₂/√N with the
        constraint components removed (:meth:`force_norms`): a force evaluation unless :meth:`measure` already
        has this state."""
        return self.force_norms()[0] <= tolerance

    def raw_forces(self, positions: np.ndarray) -> np.ndarray:
        """Forces (kJ/mol/nm) at ``positions`` as given: no constraints applied, virtual sites recomputed.
        Used for finite differences (slow modes, Hessians); the caller restores the positions."""
        self.context.setPositions(positions * _NM)
        if self.has_virtual_sites:
            self.context.computeVirtualSites()
        state = self.context.getState(getForces=True, groups=self.groups)
        self.evaluations += 1
        return np.array(state.getForces(asNumpy=True).value_in_unit(_FORCE), dtype=np.float64)

    # -- the loss the optimizers see -------------------------------------------------------------------
    def evaluate(self, positions: np.ndarray):
        """Loss, loss gradient (kJ/mol/nm), energy (kJ/mol) and the projected positions actually evaluated.

        Raises :class:`NonFiniteEnergyError` on NaN/inf energies or forces.
        """
        positions = np.array(positions, dtype=np.float64, copy=True)
        positions[self.fixed] = self.fixed_positions
        self.context.setPositions(positions * _NM)
        self.apply_constraints()
        if self.has_virtual_sites:
            self.context.computeVirtualSites()
        state = self.context.getState(getEnergy=True, getForces=True, getPositions=self.has_constraints,
                                      groups=self.groups)
        energy = state.getPotentialEnergy().value_in_unit(_KJ)
        forces = np.array(state.getForces(asNumpy=True).value_in_unit(_FORCE), dtype=np.float64)
        self.evaluations += 1
        if not math.isfinite(energy) or not np.isfinite(forces).all():
            raise NonFiniteEnergyError(f"the force field returned a non-finite energy ({energy}) or forces "
                                       f"at evaluation {self.evaluations}")
        projected = (np.array(state.getPositions(asNumpy=True).value_in_unit(_NM), dtype=np.float64)
                     if self.has_constraints else positions)
        gradient, loss, along = -forces, energy, forces
        if self.has_constraints:
            offset = positions - projected
            offset[self.fixed] = 0.0
            along = self.project(forces, projected)
            gradient = -along + self.constraint_stiffness * offset
            loss = energy + 0.5 * self.constraint_stiffness * float((offset * offset).sum())
        gradient[self.fixed] = 0.0
        self.last_energy, self.last_positions, self.last_forces = energy, projected, forces
        self.last_max_force = float(np.sqrt((forces[self.movable] ** 2).sum(axis=1)).max()) \
            if self.movable.any() else 0.0
        self.last_rms_force = float(np.sqrt((along[self.movable] ** 2).sum() / self.movable.sum())) \
            if self.movable.any() else 0.0
        if energy < self.best_energy:
            self.best_energy, self.best_positions = energy, projected.copy()
        return loss, gradient, energy, projected

    def evaluate_projected(self, positions: np.ndarray) -> Tuple[float, np.ndarray, np.ndarray]:
        """(energy, the constrained positions evaluated, −F⊥ there on the movable atoms): one evaluation, for
        the coordinate iterations whose iterate is the constrained point itself (precon, FIRE), so the
        constraint spring is left out of the gradient."""
        _, gradient, energy, projected = self.evaluate(positions)
        if self.has_constraints:
            offset = positions - projected
            offset[self.fixed] = 0.0
            gradient = gradient - self.constraint_stiffness * offset
        return energy, np.array(projected, copy=True), gradient[self.movable]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable loss (the energy, plus the constraint spring when constraints exist)."""
        return _EnergyBridgeFunction.apply(x, self)


class _Measurement(NamedTuple):
    """One evaluated state: positions and box (nm), energy (kJ/mol), forces (kJ/mol/nm)."""
    positions: np.ndarray
    box: Optional[np.ndarray]
    energy: float
    forces: np.ndarray


def _may_run_torch_autograd(force: openmm.Force) -> bool:
    """Whether a force may run torch's autograd when evaluated (``openmmtorch.TorchForce``). Such a force cannot
    be evaluated from C++ while this thread holds the Python lock, as it does when a Python reporter is called
    back. A plugin force that openmm's Python layer cannot name (a bare ``openmm.Force``) is counted too."""
    openmmtorch = sys.modules.get("openmmtorch")  # a System can only hold one once that module was imported,
    torch_force = getattr(openmmtorch, "TorchForce", None)  # or as a bare Force when read from XML without it
    return type(force) is openmm.Force or (torch_force is not None and isinstance(force, torch_force))


class _EnergyBridgeFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, bridge: EnergyBridge) -> torch.Tensor:
        # autograd turns grad mode off inside forward(); an openmmtorch.TorchForce in the System runs its
        # own backward pass in this thread and needs it on.
        with torch.enable_grad():
            loss, gradient, _, _ = bridge.evaluate(x.detach().cpu().numpy())
        ctx.save_for_backward(torch.as_tensor(gradient, dtype=x.dtype, device=x.device))
        return torch.tensor(loss, dtype=x.dtype, device=x.device)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (gradient,) = ctx.saved_tensors
        return grad_output * gradient, None


#: former names -> current ones: still importable, with a DeprecationWarning, for one release
DEPRECATED_NAMES = {"ContextEnergy": "EnergyBridge"}


def deprecated_name(module: str, name: str) -> Any:
    """The object a former public name of ``module`` stands for, with a DeprecationWarning naming the new one;
    AttributeError for any other name (what a module ``__getattr__`` raises)."""
    if name not in DEPRECATED_NAMES:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    new = DEPRECATED_NAMES[name]
    warnings.warn(f"{name} is deprecated, use {new} (the same class, renamed after the C++ EnergyBridge it "
                  f"mirrors)", DeprecationWarning, stacklevel=3)
    return globals()[new]


def __getattr__(name: str) -> Any:
    return deprecated_name(__name__, name)
