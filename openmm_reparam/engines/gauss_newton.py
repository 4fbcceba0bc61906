"""A metric-aware step for the generator (``reparam_optimizer="gauss-newton"``), Python engine only.

Adam treats every generator parameter alike, however much it moves the atoms. This stage instead takes the
Gauss–Newton / natural-gradient step over the pullback of the coordinate metric, with J = ∂X/∂θ and g = ∂E/∂X::

    Δθ = −(JᵀJ + λI)⁻¹ Jᵀ g        λ = DAMPING × |J b|² / |b|²  (b = Jᵀg: the Rayleigh quotient along b)

solved by ``CG_ITERATIONS`` conjugate-gradient iterations whose products JᵀJ v are a Jacobian–vector product
(double backward through the generator) and a vector–Jacobian product; neither the Jacobian nor JᵀJ is formed.
J Δθ ≈ −(the part of g the generator can represent): a steepest-descent step in X, restricted to the
generator's tangent space. Its length (kJ/mol/nm × nm²) is meaningless, so the step is scaled to a trust length
of RMS atomic displacement (starting at ``INITIAL_TRUST`` nm, ×1.5 after a step accepted at once, halved on
each backtrack) and accepted by an Armijo backtracking line search on the real energy. Stopping rules, best
point and collapse guard are the Adam stages' (:class:`.python.StageTracker`); ``lr`` is not used.

Damping: on 1PLW (200 steps from a 0.05 nm-perturbed start) nearly pure Gauss–Newton (λ = 10⁻³ × the Rayleigh
quotient) did worst, λ of 1-100× about equally, and Adam better than every λ (benchmarks/RESULTS.md#restarts):
the coordinate metric does not see the force field's stiff directions, so the monotone line search shrinks the
trust length to ~10⁻⁴ nm.
"""
from __future__ import annotations

import time
from typing import List, Optional, Tuple

import torch

from ..core.bridge import EnergyBridge
from ..run.recorder import RunRecorder
from ..run.result import StageResult
from .python import StageTracker, finish_stage, observe_step
from .settings import AdamStageSettings

CG_ITERATIONS = 10
DAMPING = 1.0                 # relative to |J b|²/|b|²; see the note on damping below
INITIAL_TRUST = 0.01          # nm RMS per atom
TRUST_RANGE = (1e-5, 0.1)     # nm
BACKTRACKS = 8
ARMIJO = 1e-4

Vectors = List[torch.Tensor]


def _dot(a: Vectors, b: Vectors) -> float:
    return float(sum((x * y).sum() for x, y in zip(a, b)))


def _axpy(alpha: float, x: Vectors, y: Vectors) -> Vectors:
    return [alpha * xi + yi for xi, yi in zip(x, y)]


class _Linearization:
    """J v and Jᵀ u of X = G(θ) at the current parameters, through one retained graph."""

    def __init__(self, generator: torch.nn.Module, parameters: Vectors):
        self.parameters = parameters
        self.x = generator()
        self.dummy = torch.zeros_like(self.x, requires_grad=True)
        self.jt_dummy = torch.autograd.grad(self.x, parameters, self.dummy, create_graph=True)

    def jt(self, u: torch.Tensor) -> Vectors:
        return list(torch.autograd.grad(self.x, self.parameters, u, retain_graph=True))

    def j(self, v: Vectors) -> torch.Tensor:
        return torch.autograd.grad(self.jt_dummy, self.dummy, v, retain_graph=True)[0]


def gauss_newton_direction(linear: _Linearization, b: Vectors) -> Tuple[Vectors, torch.Tensor]:
    """(d, J d) with d ≈ (JᵀJ + λI)⁻¹ b by conjugate gradients from 0."""
    jb = linear.j(b)
    damping = DAMPING * float(jb.pow(2).sum()) / max(_dot(b, b), 1e-300)
    d = [torch.zeros_like(p) for p in b]
    r, p = [t.clone() for t in b], [t.clone() for t in b]
    rr = _dot(r, r)
    for _ in range(CG_ITERATIONS):
        ap = _axpy(damping, p, linear.jt(linear.j(p)))
        alpha = rr / max(_dot(p, ap), 1e-300)
        d, r = _axpy(alpha, p, d), _axpy(-alpha, ap, r)
        rr_new = _dot(r, r)
        if rr_new <= 1e-12 * _dot(b, b):
            break
        p, rr = _axpy(rr_new / rr, p, r), rr_new
    return d, linear.j(d)


class GaussNewtonEngine:
    """The reparametrized stage with Gauss–Newton steps (same contract as :class:`.python.PythonEngine`)."""

    name = "python"

    def adam_stage(self, bridge: EnergyBridge, recorder: RunRecorder, generator: Optional[torch.nn.Module],
                   settings: AdamStageSettings) -> StageResult:
        if generator is None:
            raise ValueError("the Gauss-Newton step needs a generator (methods gnn, linear)")
        start, evaluations = time.perf_counter(), bridge.evaluations
        tracker, stepper = StageTracker(settings, bridge.movable), None
        reason, steps = "max_steps", 0
        for _ in range(recorder.capped(settings.max_steps)):
            if recorder.stopped or (settings.deadline is not None and time.perf_counter() >= settings.deadline):
                reason = recorder.stop_reason if recorder.stopped else "deadline"
                break
            if stepper is None:  # the first iteration evaluates the start, as the Adam stages do
                stepper = _Stepper(bridge, generator)
            elif not stepper.step():
                reason = "stalled"  # no trial along the direction lowered the energy
                break
            steps += 1
            stop = observe_step(bridge, recorder, tracker, settings.name)
            if stop is not None:
                reason = stop
                break
        return finish_stage(bridge, tracker, settings.name, steps, evaluations, start, reason)


class _Stepper:
    """The state between steps: the loss at the current parameters and the trust length."""

    def __init__(self, bridge: EnergyBridge, generator: torch.nn.Module):
        self.bridge, self.generator = bridge, generator
        self.parameters = generator.ordered_parameters()
        self.after = getattr(generator, "after_evaluation", None)
        self.trust = INITIAL_TRUST
        self.loss, self.gradient = self._evaluate()

    def _evaluate(self) -> Tuple[float, torch.Tensor]:
        x = self.generator().detach().requires_grad_(True)
        loss = self.bridge(x)
        (gradient,) = torch.autograd.grad(loss, x)
        if self.after is not None:
            self.after(self.bridge)
        return float(loss.detach()), gradient

    def step(self) -> bool:
        """One Gauss–Newton step with backtracking; False when no trial lowered the loss (parameters kept)."""
        linear = _Linearization(self.generator, self.parameters)
        b = linear.jt(self.gradient)
        d, jd = gauss_newton_direction(linear, b)
        rms = float(jd.pow(2).sum(dim=1).mean().sqrt())
        slope = -_dot(b, d)  # dE/dα along −d, < 0
        if not rms > 0 or not slope < 0:
            return False
        origin = [p.detach().clone() for p in self.parameters]
        scale = self.trust / rms
        for attempt in range(BACKTRACKS):
            with torch.no_grad():
                for p, o, di in zip(self.parameters, origin, d):
                    p.copy_(o - scale * di)
            loss, gradient = self._evaluate()
            if loss <= self.loss + ARMIJO * scale * slope:
                self.loss, self.gradient = loss, gradient
                self.trust = min(TRUST_RANGE[1], self.trust * (1.5 if attempt == 0 else 1.0))
                return True
            scale, self.trust = scale / 2, max(TRUST_RANGE[0], self.trust / 2)
        with torch.no_grad():
            for p, o in zip(self.parameters, origin):
                p.copy_(o)
        self.loss, self.gradient = self._evaluate()
        return False
