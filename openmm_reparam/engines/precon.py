"""L-BFGS on the coordinates preconditioned by the force-constant graph Laplacian: the iteration of method
``precon`` (:mod:`openmm_reparam.methods.precon`) and of the polish's projected finish (P = μI).

The preconditioner is P = L(K) + μ·I on the movable atoms, applied to x, y and z alike (P ⊗ I₃): K the sparse
per-atom-pair force-constant norms of :func:`~openmm_reparam.reparam.slow_modes.force_constant_matrix`, L its
graph Laplacian. P approximates the Hessian's coupling pattern, so P⁻¹ turns the stiff bond-dominated spectrum
into a nearly flat one and L-BFGS needs far fewer iterations (the idea of ASE's PreconLBFGS, Packwood et al.,
J. Chem. Phys. 144, 164109, 2016, with a force-constant K instead of their distance-based one). μ, unless given,
is estimated as theirs is: the curvature along a long-wavelength sine perturbation minus what L gives it, but
at least ``mu_floor`` × L's mean diagonal (in a liquid the sine sees the bulk's soft long-wavelength response,
not the contacts that hold each molecule: :data:`~openmm_reparam.methods.precon.BOX_MU_FLOOR`).

With the finite-difference K, L couples only the solute: waters and ions
(:func:`~openmm_reparam.core.atoms.solvent_mask`) get μ·I, which measured faster (their stiffness is in their
constraints, and their force constants cost most).
With the bonded K (:func:`~openmm_reparam.reparam.bonded.bonded_force_constants`, read from the bond and angle
terms at no evaluation) L couples every atom: rigid waters have no such terms and get μ·I anyway, flexible ones
their O-H springs.
P is factorized once (sparse LU, one factor for the three components) and rebuilt, with the L-BFGS memory
reset, when a coupled atom has moved more than ``rebuild_distance`` since the last build. The iteration is a
standard two-loop L-BFGS with H₀ = γ·P⁻¹ (γ = sᵀy / yᵀP⁻¹y, 1 before the first pair) and a backtracking
Armijo line search that also accepts a trial on its slope where the energy change is within the energy's noise
(:data:`ENERGY_NOISE`). With constraints, every trial point is put back on them by the bridge
(``Context.applyConstraints``), the iterate is the constrained point and the gradient is −F with its
constraint components removed (``EnergyBridge.evaluate_projected``), as in the Python engine's projected Adam.
Fixed particles never move.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from ..core.atoms import solvent_mask
from ..core.bridge import EnergyBridge
from ..core.errors import NonFiniteEnergyError
from ..reparam.bonded import bonded_force_constants
from ..reparam.slow_modes import force_constant_matrix, graph_laplacian
from ..run.recorder import RunRecorder
from .iterate import CoordinateIterate
from ..run.result import StageResult

SINE_AMPLITUDE = 1e-3  # nm: the μ test's perturbation (ASE: 1e-2 of a nearest-neighbour distance)
ARMIJO = 1e-4          # sufficient-decrease constant of the line search
MAX_BACKTRACKS = 12
# A trial Armijo rejects is accepted on its slope where its energy change is within ENERGY_NOISE x |E| (Hager
# and Zhang's approximate Wolfe conditions): slope along d between CURVATURE and (2 DECREASE - 1) x the start's.
# Energies that step where pairs cross an unswitched cutoff (measured on a Drude water box: 0.1 kJ/mol over
# 1e-5 nm) pass no Armijo test, while the slope still says where the minimum along d is.
ENERGY_NOISE = 1e-4
CURVATURE = 0.9
DECREASE = 0.1


@dataclass
class PreconSettings:
    """What one preconditioned L-BFGS stage needs; every value comes from the options of the method that runs it
    (:class:`~openmm_reparam.methods.precon.PreconOptions`, or the polish's projected finish), so there are no
    defaults here."""
    max_steps: int
    memory: int                          # L-BFGS (s, y) pairs kept
    mu: Optional[float]                  # kJ/mol/nm^2, the shift of P = L + mu I (None: estimate)
    rebuild_distance: float              # nm: rebuild P when a coupled atom moved farther since the last build
    cutoff: float                        # nm: pairs coupled in K (bonds and angles; 0.2 misses angles)
    max_step: float                      # nm: the largest atom displacement of one step
    tolerance_factor: float              # the stage stops at this x the run's tolerance (the polish then is short)
    atoms: str                           # "solute": waters and ions get μ·I only; "all": every movable atom
    laplacian: bool                      # False: P = μ·I, plain L-BFGS with the same code
    matrix: str                          # K: "finite-difference" (finite differences of the forces), "bonded"
    #                                      (read from the bond and angle terms, no evaluation; couples every atom)
    #                                      or "identity" (no K: P = μ·I, with ``laplacian`` False)
    deadline: Optional[float] = None     # time.perf_counter() value
    mu_floor: float = 1e-3               # the estimated μ is at least this x the mean diagonal of L


class Preconditioner:
    """P = L + μ·I over the movable atoms, factorized; :meth:`solve` applies P⁻¹ to an (n_movable, 3) array.
    ``coupled``: the (N,) mask of the atoms L couples (the others get μ·I)."""

    def __init__(self, laplacian: scipy.sparse.spmatrix, mu: float, coupled: np.ndarray):
        n = laplacian.shape[0]
        self.mu, self.coupled = float(mu), coupled
        self.matrix = (laplacian + self.mu * scipy.sparse.identity(n, format="csc")).tocsc()
        self.factor = scipy.sparse.linalg.splu(self.matrix)

    def solve(self, vectors: np.ndarray) -> np.ndarray:
        return self.factor.solve(np.ascontiguousarray(vectors))


def sine_perturbation(positions: np.ndarray, amplitude: float = SINE_AMPLITUDE) -> np.ndarray:
    """A smooth displacement field, ``amplitude`` · Π_c sin(π (r_c − min_c) / extent_c), the same along x, y, z:
    the longest wavelength the structure carries (ASE's μ test)."""
    span = np.ptp(positions, axis=0)
    field = np.ones(len(positions))
    for c in range(3):
        if span[c] > 1e-6:
            field *= np.sin(np.pi * (positions[:, c] - positions[:, c].min()) / span[c])
    return amplitude * np.repeat(field[:, None], 3, axis=1)


def estimate_mu(bridge: EnergyBridge, positions: np.ndarray, laplacian, floor: float) -> Tuple[float, int]:
    """μ such that vᵀ(L + μI)v equals the measured curvature vᵀHv along the sine perturbation v (two force
    evaluations, forward difference), at least ``floor``. Returns (μ, evaluations)."""
    movable = bridge.movable
    v = sine_perturbation(positions[movable])
    moved = positions.copy()
    moved[movable] += v
    reference = bridge.raw_forces(positions)
    changed = bridge.raw_forces(moved)
    bridge.set_positions(positions)
    curvature = -float(((changed - reference)[movable] * v).sum())
    from_laplacian = float((v * (laplacian @ v)).sum())
    mu = (curvature - from_laplacian) / max(float((v * v).sum()), 1e-300)
    return (mu if math.isfinite(mu) and mu > floor else floor), 2


def coupled_atoms(bridge: EnergyBridge, settings: PreconSettings) -> np.ndarray:
    """(N,) mask of the atoms the Laplacian couples: the movable ones, less waters and ions for "solute"
    (rigid waters are stiff only along their constraints, which the projection handles; measured: plain
    L-BFGS needs fewer iterations on water than with the Laplacian, and their force constants cost most)."""
    if not settings.laplacian:
        return np.zeros_like(bridge.movable)
    if settings.atoms == "solute" and settings.matrix == "finite-difference":
        return bridge.movable & ~solvent_mask(bridge.context.getSystem())
    return bridge.movable.copy()


def build_preconditioner(bridge: EnergyBridge, positions: np.ndarray, settings: PreconSettings,
                         coupled: np.ndarray) -> Tuple[Preconditioner, int]:
    """The factorized P at ``positions``, L over the ``coupled`` atoms (the Context is left at ``positions``).
    Returns (P, force evaluations)."""
    movable = bridge.movable
    n = int(movable.sum())
    evaluations, scale = 0, 1.0
    laplacian = scipy.sparse.csc_matrix((n, n))
    if coupled.any():
        if settings.matrix == "bonded":
            k = bonded_force_constants(bridge.context.getSystem(), positions)
        else:
            k, _, evaluations = force_constant_matrix(bridge.context, positions, method="sparse",
                                                      cutoff=settings.cutoff, atoms=coupled)
        index = np.flatnonzero(movable)
        keep = scipy.sparse.diags(coupled[index].astype(np.float64))
        laplacian = graph_laplacian(keep @ scipy.sparse.csr_matrix(k)[index][:, index] @ keep)
        scale = float(np.abs(laplacian.diagonal()).sum()) / max(1, int(coupled.sum()))
    bridge.set_positions(positions)
    mu = settings.mu
    if mu is None:
        mu, extra = estimate_mu(bridge, positions, laplacian, floor=settings.mu_floor * max(scale, 1e-12))
        evaluations += extra
    return Preconditioner(laplacian, mu, coupled), evaluations


class LBFGSMemory:
    """The last ``size`` (s, y) pairs and the two-loop recursion with H₀ = γ·P⁻¹."""

    def __init__(self, size: int):
        self.size = max(1, int(size))
        self.pairs: List[Tuple[np.ndarray, np.ndarray, float]] = []

    def reset(self) -> None:
        self.pairs = []

    def update(self, s: np.ndarray, y: np.ndarray) -> None:
        """Keep the pair only when it has positive curvature (sᵀy > 0), which keeps H positive definite."""
        sy = float((s * y).sum())
        if sy > 1e-12 * math.sqrt(float((s * s).sum()) * float((y * y).sum())) and sy > 0:
            self.pairs.append((s, y, 1.0 / sy))
            del self.pairs[:-self.size]

    def direction(self, gradient: np.ndarray, precon: Preconditioner) -> np.ndarray:
        """−H·gradient."""
        q = gradient.copy()
        alphas = []
        for s, y, rho in reversed(self.pairs):
            a = rho * float((s * q).sum())
            q -= a * y
            alphas.append(a)
        z = precon.solve(q)
        if self.pairs:
            s, y, rho = self.pairs[-1]
            z *= (1.0 / rho) / max(float((y * precon.solve(y)).sum()), 1e-300)
        for (s, y, rho), a in zip(self.pairs, reversed(alphas)):
            z += s * (a - rho * float((y * z).sum()))
        return -z


def slope_accepts(trial_slope: float, slope: float) -> bool:
    """The approximate Wolfe slope test: the slope at the trial lies between CURVATURE and (2 DECREASE − 1)
    times the start's (negative) slope, so the trial is near the minimum along the direction."""
    return CURVATURE * slope <= trial_slope <= (2.0 * DECREASE - 1.0) * slope


def line_search(bridge: EnergyBridge, x: np.ndarray, energy: float, gradient: np.ndarray, direction: np.ndarray,
                max_step: float) -> Tuple[Optional[Tuple[float, np.ndarray, np.ndarray]], int]:
    """Backtracking (quadratic interpolation, Armijo condition, or the slope test where the energy change is
    within the noise) along ``direction`` from ``x``, the first trial step capped at ``max_step`` nm per atom.
    Returns ((energy, positions, gradient) or None, evaluations)."""
    slope = float((gradient * direction).sum())
    longest = float(np.sqrt((direction * direction).sum(axis=1)).max()) if len(direction) else 0.0
    if not slope < 0 or longest == 0:
        return None, 0
    alpha = min(1.0, max_step / longest)
    for trial in range(1, MAX_BACKTRACKS + 1):
        moved = x.copy()
        moved[bridge.movable] += alpha * direction
        try:
            found = bridge.evaluate_projected(moved)
        except NonFiniteEnergyError:
            alpha *= 0.1
            continue
        rise = found[0] - energy
        if rise <= ARMIJO * alpha * slope:
            return found, trial
        if abs(rise) <= ENERGY_NOISE * abs(energy) and slope_accepts(float((found[2] * direction).sum()), slope):
            return found, trial
        interpolated = -slope * alpha * alpha / (2.0 * (rise - slope * alpha))
        alpha = min(max(interpolated, 0.1 * alpha), 0.5 * alpha)
    return None, MAX_BACKTRACKS


class PreconLBFGS(CoordinateIterate):
    """The iterate (positions of all particles, energy, −F⊥ on the movable atoms) and one iteration of the
    preconditioned L-BFGS."""

    def __init__(self, bridge: EnergyBridge, settings: PreconSettings, precon: Preconditioner):
        self.bridge, self.settings, self.precon = bridge, settings, precon
        self.memory = LBFGSMemory(settings.memory)
        self.energy, self.x, self.gradient = bridge.evaluate_projected(bridge.current_positions())
        self.evaluations, self.rebuilds = 1, 0
        self.anchor = self.x[precon.coupled].copy()

    def step(self) -> bool:
        """One iteration; False when no step lowers the energy even from a fresh memory (stuck)."""
        found, used = self._search()
        self.evaluations += used
        if found is None and self.memory.pairs:
            self.memory.reset()
            found, used = self._search()
            self.evaluations += used
        if found is None:
            return False
        energy, x, gradient = found
        movable = self.bridge.movable
        self.memory.update(x[movable] - self.x[movable], gradient - self.gradient)
        self.energy, self.x, self.gradient = energy, x, gradient
        moved = np.sqrt(((x[self.precon.coupled] - self.anchor) ** 2).sum(axis=1))
        if self.precon.coupled.any() and len(moved) and moved.max() > self.settings.rebuild_distance:
            self.rebuild()
        return True

    def _search(self):
        direction = self.memory.direction(self.gradient, self.precon)
        return line_search(self.bridge, self.x, self.energy, self.gradient, direction, self.settings.max_step)

    def rebuild(self) -> None:
        """P at the current positions, and a fresh memory (its pairs were scaled by the old P)."""
        self.precon, used = build_preconditioner(self.bridge, self.x, self.settings, self.precon.coupled)
        self.evaluations += used
        self.rebuilds += 1
        self.memory.reset()
        self.anchor = self.x[self.precon.coupled].copy()


def precon_setup(bridge: EnergyBridge, settings: PreconSettings) -> Tuple[Preconditioner, StageResult]:
    """Stage ``precon_setup``: the force constants, μ and the factorization at the Context's positions."""
    start, energy = time.perf_counter(), bridge.energy()
    precon, evaluations = build_preconditioner(bridge, bridge.current_positions(), settings,
                                               coupled_atoms(bridge, settings))
    return precon, StageResult("precon_setup", 0, evaluations, time.perf_counter() - start, energy, energy)


def precon_stage(bridge: EnergyBridge, recorder: RunRecorder, tolerance: float, settings: PreconSettings,
                 precon: Preconditioner, name: str = "precon") -> StageResult:
    """Stage ``precon``: iterate until the RMS force is at most ``tolerance``, the step or iteration cap, the
    deadline, a reporter's stop, or no acceptable step (stuck). Leaves the last iterate in the Context.
    ``tolerance`` is the run's; the stage aims at ``settings.tolerance_factor`` x it: OpenMM's L-BFGS polish,
    which handles constraints its own way, takes hundreds of iterations from a point just at the tolerance
    and a few dozen from one below it (measured on solvated chignolin)."""
    tolerance = tolerance * settings.tolerance_factor
    start = time.perf_counter()
    search = PreconLBFGS(bridge, settings, precon)
    initial, reason, steps = search.energy, "max_steps", 0
    for _ in range(recorder.capped(settings.max_steps)):
        if search.rms_force() <= tolerance:
            reason = "converged"
            break
        if recorder.stopped or (settings.deadline is not None and time.perf_counter() >= settings.deadline):
            reason = recorder.stop_reason if recorder.stopped else "deadline"
            break
        if not search.step():
            reason = "stuck"
            break
        steps += 1
        if recorder.record(name, search.energy, search.x, search.full_gradient(),
                           {"rms force": search.rms_force(), "rebuilds": float(search.rebuilds)}):
            reason = recorder.stop_reason
            break
    if reason == "max_steps" and search.rms_force() <= tolerance:
        reason = "converged"
    bridge.set_positions(search.x)
    return StageResult(name, steps, search.evaluations, time.perf_counter() - start, initial, search.energy,
                       stop_reason=reason, engine="python")
