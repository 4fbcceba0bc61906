"""``ReparamIntegrator``: reparametrized minimization as an OpenMM Integrator (compiled plugin).

    integrator = ReparamIntegrator(system, positions, method="gnn", seed=0, lr=1e-3)
    compound = openmm.CompoundIntegrator()
    compound.addIntegrator(integrator)                                   # 0: minimize
    compound.addIntegrator(openmm.LangevinMiddleIntegrator(300, 1, 0.002))  # 1: MD
    context = openmm.Context(system, compound)
    context.setPositions(positions)
    integrator.step(500)                 # 500 Adam steps on the generator weights, in C++
    integrator.applyBestPositions()      # the lowest-energy (non-suspect) positions seen
    compound.setCurrentIntegrator(1)
    compound.step(1000)                  # MD in the same Context

Python builds the slow modes and fits the generator to ``positions`` (exactly as ``minimize`` does); the C++
class holds the weights, latent, modes and Adam state, and each ``step`` is one ``adamStep`` of the compiled
engine over its host ``AdamStepper`` (generator -> Context forces -> backpropagation -> clipping -> Adam -> best
point and collapse guard) without returning to Python. Once a step collapses into a force-field singularity the
integrator puts the best positions back and stops stepping (``getCollapsed()``).

Options: those that build the generator (:class:`~openmm_reparam.reparam.options.GeneratorOptions`,
:class:`~openmm_reparam.reparam.options.SlowModeOptions`) and :data:`STEP_OPTIONS`, with the defaults of method
``gnn``'s options. Options of a minimization run (steps, patience, polish, never_worse, time_budget, fine_*,
engine, ...) mean nothing for an integrator and raise TypeError.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any, Dict, Optional

import openmm
import torch

from ..core.units import as_positions
from ..engines.compiled import copy_weights_back, cpp_available, cpp_step_settings, plugin, to_cpp_generator, \
    unavailable_reason
from ..reparam.build import build_generator
from ..reparam.options import GeneratorOptions, SlowModeOptions
from ..run.options import MinimizerOptions
from ..run.registry import get_method

# The options each step reads (the step fields of the C++ AdamStageSettings).
STEP_OPTIONS = ("lr", "clip_norm", "rel_tol", "collapse_distance", "spike_factor", "constraint_stiffness",
                "torch_threads")


def _generator_option_names() -> tuple:
    return tuple(f.name for group in (GeneratorOptions, SlowModeOptions) for f in fields(group))


def check_integrator_options(options: Dict[str, Any], generator_options: bool = True) -> None:
    """Raise TypeError naming the options an integrator cannot honour (unknown names included)."""
    allowed = set(STEP_OPTIONS) | (set(_generator_option_names()) if generator_options else set())
    rejected = sorted(set(options) - allowed)
    if rejected:
        known = sorted(set(MinimizerOptions.known()) & allowed)
        raise TypeError(f"ReparamIntegrator does not take option(s) {rejected}: they configure a minimization run "
                        f"(use openmm_reparam.minimize) or are unknown; it takes {known}")


def step_settings(**options: Any):
    """The C++ step settings for ``options`` (STEP_OPTIONS), defaults from method gnn's options."""
    resolved = MinimizerOptions.from_kwargs(method="gnn", **options)  # validates the values too
    return cpp_step_settings(**{name: getattr(resolved, name) for name in STEP_OPTIONS})


def build_integrator_generator(system: openmm.System, positions, method: str = "gnn", seed: int = 0,
                               platform: Optional[openmm.Platform] = None, **options: Any):
    """The fitted Python generator for ``method`` ("gnn" or "linear") at ``positions``, built on a temporary
    Context of ``system`` (its forces give the slow modes), as ``minimize`` builds it (with
    ``reparam_atoms="solute"`` waters and ions are plain coordinates)."""
    method = get_method(method).name
    if method not in ("gnn", "linear"):
        raise ValueError(f"ReparamIntegrator method must be 'gnn' or 'linear', got {method!r}")
    opts = MinimizerOptions.from_kwargs(method=method, **options)
    x0 = as_positions(positions)
    scratch = openmm.VerletIntegrator(0.001)
    context = openmm.Context(system, scratch) if platform is None else openmm.Context(system, scratch, platform)
    try:
        context.setPositions(x0)
        generator, _ = build_generator(context, method, int(seed), opts.generator, opts.modes, x0)
    finally:
        del context
    return generator


if cpp_available():
    class ReparamIntegrator(plugin().ReparamIntegrator):
        """An ``openmm.Integrator`` whose ``step(n)`` performs n reparametrized Adam steps (C++ plugin).

        ``ReparamIntegrator(system, positions, method="gnn", seed=0, platform=None, **options)``: see the module
        docstring for the options. ``platform`` only chooses where the slow modes are computed.
        """

        def __init__(self, system: openmm.System, positions, method: str = "gnn", seed: int = 0,
                     platform: Optional[openmm.Platform] = None, **options: Any):
            check_integrator_options(options)
            step = {k: options.pop(k) for k in STEP_OPTIONS if k in options}
            generator = build_integrator_generator(system, positions, method, seed, platform, **options)
            self._init_from_generator(generator, **step)

        def _init_from_generator(self, generator: torch.nn.Module, **step: Any) -> None:
            super().__init__(to_cpp_generator(generator), step_settings(**step))
            self.generator = generator

        @classmethod
        def from_generator(cls, generator: torch.nn.Module, **options: Any) -> "ReparamIntegrator":
            """An integrator for an already built Python generator (GNNGenerator or LinearModeGenerator);
            ``options``: STEP_OPTIONS only."""
            check_integrator_options(options, generator_options=False)
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
