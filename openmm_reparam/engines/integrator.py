"""``ReparamIntegrator``: reparametrized minimization as an OpenMM Integrator (compiled plugin).

    integrator = ReparamIntegrator(system, positions, method="gnn", seed=0, lr=1e-3)
    compound = openmm.CompoundIntegrator()
    compound.addIntegrator(integrator)                                   # 0: minimize
    compound.addIntegrator(openmm.LangevinMiddleIntegrator(300, 1, 0.002))  # 1: MD
    context = openmm.Context(system, compound)
    context.setPositions(positions)
    integrator.step(500)                 # 500 Adam steps on the generator weights, in C++
    integrator.applyBestPositions()      # the lowest-loss positions seen
    compound.setCurrentIntegrator(1)
    compound.step(1000)                  # MD in the same Context

Python builds the slow modes and fits the generator to ``positions`` (exactly as ``minimize`` does); the C++
class holds the weights, latent, modes and Adam state, and each ``step`` runs generator -> Context forces ->
backpropagation -> gradient clipping -> Adam without returning to Python.
"""
from __future__ import annotations

from typing import Any, Optional

import openmm
import torch

from .compiled import copy_weights_back, cpp_available, plugin, to_cpp_generator, unavailable_reason

# Options read by the integrator itself; every other option goes to the generator (n_modes, hidden, ...).
_INTEGRATOR_OPTIONS = ("lr", "clip_norm", "constraint_stiffness", "rel_tol")


def build_integrator_generator(system: openmm.System, positions, method: str = "gnn", seed: int = 0,
                               platform: Optional[openmm.Platform] = None, **options: Any):
    """The fitted Python generator for ``method`` ("gnn" or "linear") at ``positions``, built on a temporary
    Context of ``system`` (its forces give the slow modes)."""
    from ..core.units import as_positions
    from ..optimize.options import MinimizerOptions, canonical_method
    from ..reparam.build import build_generator
    method = canonical_method(method)
    if method not in ("gnn", "linear"):
        raise ValueError(f"ReparamIntegrator method must be 'gnn' or 'linear', got {method!r}")
    opts = MinimizerOptions.from_kwargs(**options)
    x0 = as_positions(positions)
    scratch = openmm.VerletIntegrator(0.001)
    context = openmm.Context(system, scratch) if platform is None else openmm.Context(system, scratch, platform)
    try:
        context.setPositions(x0)
        generator, _ = build_generator(context, method, int(seed), opts, x0)
    finally:
        del context
    return generator


if cpp_available():
    class ReparamIntegrator(plugin().ReparamIntegrator):
        """An ``openmm.Integrator`` whose ``step(n)`` performs n reparametrized Adam steps (C++ plugin).

        ``ReparamIntegrator(system, positions, method="gnn", seed=0, platform=None, **options)``: options are
        those of :class:`openmm_reparam.options.MinimizerOptions` (lr, clip_norm, rel_tol,
        constraint_stiffness for the steps; n_modes, hidden, layers, fit_*, slow_modes for the generator).
        ``platform`` only chooses where the slow modes are computed.
        """

        def __init__(self, system: openmm.System, positions, method: str = "gnn", seed: int = 0,
                     platform: Optional[openmm.Platform] = None, **options: Any):
            generator = build_integrator_generator(system, positions, method, seed, platform, **options)
            self._init_from_generator(generator, **{k: options[k] for k in _INTEGRATOR_OPTIONS if k in options})

        def _init_from_generator(self, generator: torch.nn.Module, lr: float = 1e-3, clip_norm: float = 1e3,
                                 constraint_stiffness: float = 1e4, rel_tol: float = 1e-5) -> None:
            super().__init__(to_cpp_generator(generator), float(lr))
            self.setClipNorm(float(clip_norm))
            self.setConstraintStiffness(float(constraint_stiffness))
            self.setRelativeTolerance(float(rel_tol))
            self.generator = generator

        @classmethod
        def from_generator(cls, generator: torch.nn.Module, **options: Any) -> "ReparamIntegrator":
            """An integrator for an already built Python generator (GNNGenerator or LinearModeGenerator)."""
            self = cls.__new__(cls)
            self._init_from_generator(generator, **options)
            return self

        def trained_generator(self) -> torch.nn.Module:
            """The Python generator with the integrator's current (trained) weights copied in."""
            copy_weights_back(self.getGenerator(), self.generator)
            return self.generator

else:
    class ReparamIntegrator:  # type: ignore[no-redef]
        """Placeholder: the C++ plugin is not built, so the integrator is not available."""

        def __init__(self, *args: Any, **kwargs: Any):
            raise ImportError(unavailable_reason() + " (reinstall with `pip install -e .` and a working "
                              "C++ toolchain; see the warning printed by setup.py)")

        @classmethod
        def from_generator(cls, *args: Any, **kwargs: Any):
            raise ImportError(unavailable_reason())
