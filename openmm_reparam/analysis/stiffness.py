"""How sharp a minimum is: the lowest vibrational frequencies at a Context's positions.

``stiffness(context, n_modes=10)`` builds the Hessian of the Context's energy by central finite differences of
its own forces (:mod:`.hessian`; every System works, custom forces and TorchForce included), mass-weights it,
projects out what is not a vibration (:mod:`.projection`) and returns the ``n_modes`` lowest frequencies in cm⁻¹,
imaginary ones (negative curvature) as negative numbers, with their normal modes.

* Fixed particles (massless particles, virtual sites) are not coordinates: virtual sites follow their parents,
  massless particles stay put (as if infinitely heavy).
* Constraints: frequencies are those of motion *on* the constraint surface. The constrained directions are
  projected out (they are not modes), and the curvature the constraint forces add on that surface is included.
  A System with m movable atoms, c constraints and r rigid-body directions has 3m − c − r modes.
* Rigid body: translations and rotations are projected out; periodic Systems lose translations only; a System
  with massless (non-virtual-site) particles keeps all (those particles anchor the rest). ``project_rigid``
  overrides this. External forces (positional restraints) make rigid-body motion stiff; projected, it is not shown.
* Mass-weighted Hessian eigenvalues λ are in kJ/mol/nm²/amu = 1e24 s⁻², so ω = √λ·1e12 rad/s and
  ν̃ = √λ · 1e12 / (2π c) cm⁻¹ = 5.3088·√λ cm⁻¹ (c = 2.99792458e10 cm/s).
* Threshold (default 20 cm⁻¹): a mode below −threshold is imaginary, and the structure is then not a minimum.
  Finite differences of single-precision forces (CPU, CUDA, OpenCL platforms) and the residual forces of a
  minimizer stopped at a tolerance put a few cm⁻¹ of noise on the soft, collective modes, and a small negative
  curvature of a torsion is not a meaningful saddle; 20 cm⁻¹ (λ ≈ 14 kJ/mol/nm²/amu) is above that noise.
* Cost: dense, 6·m force evaluations and a dense 3m × 3m eigensolve, chosen up to ``DENSE_MAX_ATOMS`` movable
  atoms; sparse, 6·(number of colours) evaluations (a few hundred colours for protein density and the default
  0.6 nm cutoff, independent of N) and a sparse shift-invert eigensolve, but couplings beyond ``cutoff`` are lost.
  The Context's positions are restored exactly afterwards.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import openmm
import scipy.sparse
from openmm import unit

from ..core.bridge import EnergyBridge
from ..core.units import as_positions
from .hessian import dense_hessian, sparse_hessian
from .modes import lowest_dense, lowest_sparse
from .projection import ConstraintGeometry, rigid_body_basis

DENSE_MAX_ATOMS = 1000
DEFAULT_THRESHOLD = 20.0  # cm⁻¹
DEFAULT_STEP = 1e-3  # nm
DEFAULT_CUTOFF = 0.6  # nm, sparse path only
SPEED_OF_LIGHT_CM_PER_S = 2.99792458e10
# √(1 kJ/mol/nm²/amu) = 1e12 rad/s; divided by 2πc gives cm⁻¹
WAVENUMBER_PER_ROOT_EIGENVALUE = 1e12 / (2.0 * math.pi * SPEED_OF_LIGHT_CM_PER_S)


@dataclass
class StiffnessResult:
    """The lowest vibrational frequencies at a structure; see :func:`stiffness`."""
    frequencies: np.ndarray  # (k,) cm⁻¹, ascending; imaginary modes as negative numbers
    vectors: np.ndarray  # (N, 3, k) mass-weighted normal modes, unit norm; zero on fixed particles
    threshold: float  # cm⁻¹: a mode below −threshold counts as imaginary
    is_minimum: bool  # no frequency below −threshold
    method: str  # "dense" or "sparse"
    force_evaluations: int
    n_vibrational_modes: int = 0  # 3m − constraints − rigid-body directions
    projected_rigid: int = 0  # rigid-body directions removed
    projected_constraints: int = 0  # constraint directions removed
    wall_time: float = 0.0  # s

    @property
    def n_imaginary(self) -> int:
        return int((self.frequencies < -self.threshold).sum())

    def to_dict(self) -> dict:
        """JSON-friendly summary (no vectors)."""
        return {"frequencies": [float(f) for f in self.frequencies], "threshold": float(self.threshold),
                "is_minimum": bool(self.is_minimum), "n_imaginary": self.n_imaginary, "method": self.method,
                "force_evaluations": int(self.force_evaluations),
                "n_vibrational_modes": int(self.n_vibrational_modes), "projected_rigid": int(self.projected_rigid),
                "projected_constraints": int(self.projected_constraints), "wall_time": float(self.wall_time)}


def eigenvalues_to_wavenumbers(values: np.ndarray) -> np.ndarray:
    """Mass-weighted Hessian eigenvalues (kJ/mol/nm²/amu) → cm⁻¹, negative curvature as negative numbers."""
    values = np.asarray(values, dtype=np.float64)
    return np.sign(values) * np.sqrt(np.abs(values)) * WAVENUMBER_PER_ROOT_EIGENVALUE


def _as_length(value, name: str) -> float:
    if unit.is_quantity(value):
        if not value.unit.is_compatible(unit.nanometer):
            raise TypeError(f"{name} must be a length (nm), got {value}")
        value = value.value_in_unit(unit.nanometer)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive length in nm, got {value!r}")
    return float(value)


def _as_wavenumber(value) -> float:
    if unit.is_quantity(value):
        if not value.unit.is_compatible(unit.centimeter ** -1):
            raise TypeError(f"threshold must be a wavenumber (cm⁻¹), got {value}")
        value = value.value_in_unit(unit.centimeter ** -1)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f"threshold must be a non-negative number of cm⁻¹, got {value!r}")
    return float(value)


def _check_arguments(context, n_modes, method: str) -> None:
    if not isinstance(context, openmm.Context):
        raise TypeError(f"stiffness needs an openmm.Context, got {type(context).__name__}")
    if isinstance(n_modes, bool) or not isinstance(n_modes, (int, np.integer)) or n_modes < 1:
        raise ValueError(f"n_modes must be an integer ≥ 1, got {n_modes!r}")
    if method not in ("auto", "dense", "sparse"):
        raise ValueError(f"method must be 'auto', 'dense' or 'sparse', got {method!r}")


def _rectangular_box(context: openmm.Context) -> np.ndarray:
    """Edges of the Context's periodic box (nm); the sparse path needs a rectangular one."""
    box = np.array(context.getState().getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer))
    if np.abs(box - np.diag(np.diag(box))).max() > 1e-9:
        raise ValueError("method='sparse' supports rectangular periodic boxes only; use method='dense'")
    return np.diag(box).copy()


def stiffness(context: openmm.Context, n_modes: int = 10, *, method: str = "auto", step=DEFAULT_STEP,
              threshold=DEFAULT_THRESHOLD, cutoff=DEFAULT_CUTOFF,
              project_rigid: Optional[bool] = None) -> StiffnessResult:
    """The ``n_modes`` lowest vibrational frequencies (cm⁻¹) at the Context's positions; see the module docstring.

    ``method``: "dense", "sparse" or "auto" (dense up to ``DENSE_MAX_ATOMS`` movable atoms). ``step``: finite
    difference step (nm or a length Quantity). ``threshold``: cm⁻¹ (number or a Quantity of 1/length).
    ``cutoff``: coupling range of the sparse path (nm). Fewer than ``n_modes`` come back when the System has fewer
    vibrational modes. The Context's positions are left exactly as they were.
    """
    start = time.perf_counter()
    _check_arguments(context, n_modes, method)
    step, threshold = _as_length(step, "step"), _as_wavenumber(threshold)
    cutoff = _as_length(cutoff, "cutoff")
    system = context.getSystem()
    saved = context.getState(getPositions=True).getPositions(asNumpy=True)
    positions = as_positions(saved)
    probe = EnergyBridge(context)
    index = np.flatnonzero(probe.movable)
    if len(index) == 0:
        raise ValueError("the System has no movable particles (all are massless or virtual sites)")
    if method == "auto":
        method = "dense" if len(index) <= DENSE_MAX_ATOMS else "sparse"
    periodic = system.usesPeriodicBoundaryConditions()
    boxsize = _rectangular_box(context) if (method == "sparse" and periodic) else None
    try:
        if method == "dense":
            hessian = dense_hessian(probe, positions, probe.movable, step)
        else:
            hessian = sparse_hessian(probe, positions, probe.movable, step, cutoff, boxsize)
        constraints = ConstraintGeometry(system, index, positions)
        if len(constraints):
            curvature = constraints.curvature(probe.raw_forces(positions)[index])
            hessian = hessian + (curvature.toarray() if method == "dense" else curvature)
    finally:
        context.setPositions(saved)
    return _normal_modes(system, probe, positions, index, hessian, constraints, n_modes, method, threshold,
                         project_rigid, periodic, start)


def _normal_modes(system, probe, positions, index, hessian, constraints, n_modes, method, threshold,
                  project_rigid, periodic, start) -> StiffnessResult:
    """Mass-weight, project and diagonalize; package the result."""
    masses = np.array([system.getParticleMass(int(i)).value_in_unit(unit.dalton) for i in index])
    if project_rigid is None:
        project_rigid = not (probe.fixed & ~np.array([system.isVirtualSite(i)
                                                      for i in range(system.getNumParticles())])).any()
    rigid = rigid_body_basis(positions[index], masses, rotations=not periodic) if project_rigid \
        else np.zeros((3 * len(index), 0))
    inverse_root = np.repeat(1.0 / np.sqrt(masses), 3)
    projector = constraints.mass_weighted_projector(masses)
    available = 3 * len(index) - rigid.shape[1] - len(constraints)
    count = min(int(n_modes), available)
    if count < 1:
        raise ValueError("the System has no vibrational modes (every direction is rigid-body or constrained)")
    if method == "dense":
        weighted = inverse_root[:, None] * np.asarray(hessian) * inverse_root[None, :]
        values, vectors = lowest_dense(weighted, projector, rigid, count)
    else:
        scaling = scipy.sparse.diags(inverse_root)
        values, vectors = lowest_sparse((scaling @ hessian @ scaling).tocsr(), projector, rigid, count)
    frequencies = eigenvalues_to_wavenumbers(values)
    full = np.zeros((system.getNumParticles(), 3, count))
    full[index] = vectors.reshape(len(index), 3, count)
    full /= np.linalg.norm(full.reshape(-1, count), axis=0)
    return StiffnessResult(frequencies=frequencies, vectors=full, threshold=threshold,
                           is_minimum=bool((frequencies >= -threshold).all()), method=method,
                           force_evaluations=probe.evaluations, n_vibrational_modes=available,
                           projected_rigid=rigid.shape[1], projected_constraints=len(constraints),
                           wall_time=time.perf_counter() - start)
