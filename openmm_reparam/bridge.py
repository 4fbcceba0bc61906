"""The energy bridge: a differentiable torch function of positions evaluated by an OpenMM Context.

``ContextEnergy(context)(x)`` takes an (N, 3) float64 tensor of positions in nm and returns the potential
energy in kJ/mol as a 0-d tensor whose gradient is −F, with F the Context's forces. Everything OpenMM can
compute works: any force field, implicit or explicit solvent, Custom*Force, ``openmmtorch.TorchForce``.

It also
* evaluates only the integrator's integration force groups, as OpenMM's own minimizer does;
* never moves fixed particles (massless particles and virtual sites), whose gradient is zero;
* keeps constrained distances: positions are projected with ``Context.applyConstraints``, the forces lose
  their components along the constraints (``ConstraintProjector``), and a spring of stiffness ``k_c`` pulls the
  unprojected input onto the projection, so the loss is E(P(x)) + ½ k_c |x − P(x)|² with gradient
  −F⊥(P(x)) + k_c (x − P(x));
* counts evaluations and remembers the lowest-energy positions seen (used when a run is interrupted).
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import openmm
import torch
from openmm import unit
import scipy.sparse
import scipy.sparse.linalg
from scipy.spatial import cKDTree

_NM = unit.nanometer


class NonFiniteEnergyError(FloatingPointError):
    """The force field returned a NaN or infinite energy or force."""


class ContextEnergy:
    """Energy and forces of ``context`` as a torch function; see the module docstring."""

    def __init__(self, context: openmm.Context, constraint_stiffness: float = 1e4):
        self.context = context
        system = context.getSystem()
        integrator = context.getIntegrator()
        self.n_particles = system.getNumParticles()
        self.groups = integrator.getIntegrationForceGroups()
        self.has_constraints = system.getNumConstraints() > 0
        self.project = ConstraintProjector(system)
        self.constraint_tolerance = integrator.getConstraintTolerance()
        self.has_virtual_sites = any(system.isVirtualSite(i) for i in range(self.n_particles))
        fixed = np.array([system.isVirtualSite(i) or system.getParticleMass(i).value_in_unit(unit.dalton) == 0
                          for i in range(self.n_particles)], dtype=bool)
        self.fixed = fixed
        self.movable = ~fixed
        self.constraint_stiffness = float(constraint_stiffness)
        start = self.current_positions()
        self.fixed_positions = start[fixed].copy()
        self.evaluations = 0
        self.best_energy = math.inf
        self.best_positions: Optional[np.ndarray] = None
        self.last_energy = math.nan
        self.last_positions: Optional[np.ndarray] = None
        self.last_forces: Optional[np.ndarray] = None
        self.last_max_force = math.nan

    # -- plain numpy interface -------------------------------------------------------------------------
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

    def evaluate(self, positions: np.ndarray):
        """Energy (kJ/mol), loss gradient (kJ/mol/nm) and the projected positions actually evaluated.

        Raises :class:`NonFiniteEnergyError` on NaN/inf energies or forces.
        """
        positions = np.array(positions, dtype=np.float64, copy=True)
        positions[self.fixed] = self.fixed_positions
        self.context.setPositions(positions * _NM)
        if self.has_constraints:
            self.context.applyConstraints(self.constraint_tolerance)
        if self.has_virtual_sites:
            self.context.computeVirtualSites()
        state = self.context.getState(getEnergy=True, getForces=True, getPositions=self.has_constraints,
                                      groups=self.groups)
        energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        forces = np.array(state.getForces(asNumpy=True)._value, dtype=np.float64)
        self.evaluations += 1
        if not math.isfinite(energy) or not np.isfinite(forces).all():
            raise NonFiniteEnergyError(f"the force field returned a non-finite energy ({energy}) or forces "
                                       f"at evaluation {self.evaluations}")
        projected = (np.array(state.getPositions(asNumpy=True)._value, dtype=np.float64)
                     if self.has_constraints else positions)
        gradient = -forces
        loss = energy
        if self.has_constraints:
            gradient = -self.project(forces, projected)
            offset = positions - projected
            offset[self.fixed] = 0.0
            gradient = gradient + self.constraint_stiffness * offset
            loss = energy + 0.5 * self.constraint_stiffness * float((offset * offset).sum())
        gradient[self.fixed] = 0.0
        self.last_energy, self.last_positions, self.last_forces = energy, projected, forces
        self.last_max_force = float(np.sqrt((forces[self.movable] ** 2).sum(axis=1)).max()) \
            if self.movable.any() else 0.0
        if energy < self.best_energy:
            self.best_energy, self.best_positions = energy, projected.copy()
        return loss, gradient, energy, projected

    # -- torch interface -------------------------------------------------------------------------------
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable loss (the energy, plus the constraint spring when constraints exist)."""
        return _ContextEnergyFunction.apply(x, self)


class _ContextEnergyFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, bridge: ContextEnergy) -> torch.Tensor:
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


def has_collapsed_contact(positions: np.ndarray, movable: np.ndarray, distance: float,
                          forces: Optional[np.ndarray] = None, min_force: float = 0.0) -> bool:
    """True if two movable particles are closer than ``distance`` nm (and, when ``forces`` are given, one of
    them feels a force above ``min_force`` kJ/mol/nm).

    No covalent bond is shorter than about 0.09 nm, so such a contact means the structure has fallen into
    a singularity of the force field (typically a hydrogen without Lennard-Jones radius sinking into an
    opposite charge), where the energy goes to −∞ and the forces diverge. The force test keeps soft-core
    potentials, whose particles may overlap harmlessly, from being flagged. Periodic images are not considered.
    """
    index = np.flatnonzero(movable)
    if len(index) < 2:
        return False
    pairs = cKDTree(positions[index]).query_pairs(distance, output_type="ndarray")
    if len(pairs) == 0 or forces is None:
        return len(pairs) > 0
    magnitude = np.sqrt((forces[index] ** 2).sum(axis=1))
    return bool((np.maximum(magnitude[pairs[:, 0]], magnitude[pairs[:, 1]]) > min_force).any())


class ConstraintProjector:
    """Removes from forces their components along the constrained distances (what constraint forces cancel).

    At a constrained minimum the raw forces are balanced by constraint forces, so both the optimizer's gradient
    and the convergence test use F − Jᵀλ, with λ the least-squares constraint multipliers and J the gradients of
    the constrained distances (one row per constraint, ±unit vector on its two particles).
    """

    def __init__(self, system: openmm.System):
        pairs = [system.getConstraintParameters(k)[:2] for k in range(system.getNumConstraints())]
        self.first = np.array([p[0] for p in pairs], dtype=np.int64)
        self.second = np.array([p[1] for p in pairs], dtype=np.int64)
        n = len(pairs)
        self.rows = np.repeat(np.arange(n), 6)
        self.cols = np.concatenate([3 * self.first[:, None] + np.arange(3), 3 * self.second[:, None] + np.arange(3)],
                                   axis=1).ravel()

    def __call__(self, forces: np.ndarray, positions: np.ndarray) -> np.ndarray:
        if len(self.first) == 0:
            return forces
        direction = positions[self.first] - positions[self.second]
        direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
        values = np.concatenate([direction, -direction], axis=1).ravel()
        jacobian = scipy.sparse.csr_matrix((values, (self.rows, self.cols)),
                                           shape=(len(self.first), forces.size))
        multipliers = scipy.sparse.linalg.lsqr(jacobian.T, forces.ravel(), atol=1e-10, btol=1e-10)[0]
        return (forces.ravel() - jacobian.T @ multipliers).reshape(forces.shape)


def force_norms(forces: np.ndarray, movable: np.ndarray) -> tuple:
    """OpenMM's convergence measure ‖F‖₂/√N and the largest per-atom |F|, over movable particles."""
    f = forces[movable]
    if len(f) == 0:
        return 0.0, 0.0
    per_atom = np.sqrt((f * f).sum(axis=1))
    return float(math.sqrt((per_atom ** 2).sum() / len(f))), float(per_atom.max())
