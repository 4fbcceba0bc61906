"""Method ``adam``: Adam on the coordinates, then the L-BFGS polish; and the Adam stage every Adam-based method
runs (``adam``, the reparametrized methods' ``reparam``, ``restart<k>`` and ``fine`` stages).

The stage itself runs in the run's engine for it (:mod:`openmm_reparam.engines.runners`: Python reference,
compiled, or on the device), described by
:class:`~openmm_reparam.engines.settings.AdamStageSettings`, which :func:`adam_settings` builds from the options.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Dict, Optional, Tuple

import openmm
import torch

from ..engines import AdamStageSettings, stage_engine
from ..run.options import MinimizerOptions, require, require_ints, require_positive
from ..run.result import StageResult
from ..run.profile import SystemProfile
from .auto import MACROMOLECULE_ATOMS
from .base import Method, RunState


@dataclass
class AdamStageOptions:
    """What every Adam stage shares (``adam``, ``reparam``, ``restart<k>``, ``fine``)."""
    clip_norm: float = 1e3         # gradient clipping (total 2-norm over the parameters)
    rel_tol: float = 1e-5          # a step improves if energy < best - rel_tol * |best|
    spike_factor: float = 3.0      # a step is suspect when its largest atomic force is this x the calmest seen
    progress_window: int = 0       # steps: a stage ends when its energy fell less over this many steps...
    progress_fraction: float = 0.0  # ...than this x the most it fell over any such window (0 or window 0: off)

    def __post_init__(self) -> None:
        require_positive(self, ("clip_norm", "spike_factor"))
        require_positive(self, ("rel_tol",), strict=False)
        require_ints(self, ("progress_window",))
        require(0 <= self.progress_fraction <= 1, "progress_fraction must be within [0, 1]")


@dataclass
class CoordinateStageOptions:
    """``fine``: Adam on the coordinates after the reparametrized stage (methods gnn, linear)."""
    fine_steps: int = 1000
    fine_lr: float = 1e-3          # nm per step, roughly: Adam's steps are about lr in size
    fine_patience: int = 50        # early stopping: steps without relative improvement rel_tol
    fine_stop_at: float = 0.0      # stop once the RMS force is at most this x the tolerance (0: off; at 0.9 on
    #                                water boxes faster but above LEM's energy, benchmarks/RESULTS.md#auto-rules)

    def __post_init__(self) -> None:
        require_ints(self, ("fine_steps", "fine_patience"))
        require_positive(self, ("fine_lr",))
        require_positive(self, ("fine_stop_at",), strict=False)

    def stage_values(self) -> Tuple[float, int, int, float]:
        """(lr, steps, patience, stop_at) of the stage."""
        return self.fine_lr, self.fine_steps, self.fine_patience, self.fine_stop_at


@dataclass
class AdamCoordinateOptions:
    """``adam``: the whole of method adam is one coordinate stage (recorded as ``adam``), so it may run as long as
    gnn's reparametrized and fine stages together (2 x 1000 steps). Their former names for method adam,
    ``fine_steps``, ``fine_lr``, ``fine_patience`` and ``fine_stop_at``, are still accepted, with a FutureWarning."""
    adam_steps: int = 2000
    adam_lr: float = 1e-3          # nm per step, roughly: Adam's steps are about lr in size
    adam_patience: int = 50        # early stopping: steps without relative improvement rel_tol
    adam_stop_at: float = 0.0      # stop once the RMS force is at most this x the tolerance (0: off)

    def __post_init__(self) -> None:
        require_ints(self, ("adam_steps", "adam_patience"))
        require_positive(self, ("adam_lr",))
        require_positive(self, ("adam_stop_at",), strict=False)

    def stage_values(self) -> Tuple[float, int, int, float]:
        """(lr, steps, patience, stop_at) of the stage."""
        return self.adam_lr, self.adam_steps, self.adam_patience, self.adam_stop_at


def adam_settings(options: MinimizerOptions, name: str, lr: float, max_steps: int, patience: int,
                  deadline: Optional[float] = None, force_tolerance: float = 0.0) -> AdamStageSettings:
    """The engine's settings for one Adam stage called ``name``: its own step size, step cap, patience and
    force tolerance (0: none), the rest from the ``adam_stage``, ``safety`` and ``run`` groups of ``options``."""
    shared, safety = options.adam_stage, options.safety
    return AdamStageSettings(
        name=name, lr=lr, max_steps=max_steps, patience=patience, clip_norm=shared.clip_norm,
        rel_tol=shared.rel_tol, collapse_distance=safety.collapse_distance, spike_factor=shared.spike_factor,
        constraint_stiffness=safety.constraint_stiffness, progress_window=shared.progress_window,
        progress_fraction=shared.progress_fraction, force_tolerance=force_tolerance,
        torch_threads=options.run.torch_threads, deadline=deadline)


def coordinate_settings(options: MinimizerOptions, name: str, deadline: Optional[float],
                        tolerance: float) -> AdamStageSettings:
    """Settings of the coordinate stage ``name``: "adam" from the ``adam`` group (``adam_*``), "fine" from the
    ``coordinates`` group (``fine_*``); with ``adam_stop_at`` / ``fine_stop_at`` > 0 it stops once the RMS force
    is at most that x the run's ``tolerance``."""
    lr, steps, patience, stop_at = (options.adam if name == "adam" else options.coordinates).stage_values()
    return adam_settings(options, name, lr, steps, patience, deadline, tolerance * stop_at)


def progress_ineffective(options: MinimizerOptions, given: Collection[str]) -> Dict[str, str]:
    """The progress rule of the Adam stages is off while either of its two options is 0."""
    shared = options.adam_stage
    if shared.progress_window > 0 and shared.progress_fraction > 0:
        return {}
    return {name: "the progress rule needs both progress_window and progress_fraction > 0"
            for name in ("progress_window", "progress_fraction") if name in given}


def run_adam_stage(state: RunState, generator: Optional[torch.nn.Module], settings: AdamStageSettings,
                   reparam_optimizer: str = "adam") -> Optional[StageResult]:
    """Run one Adam stage on the run's runner for its kind (over the coordinates, or over ``generator``'s
    parameters; a generator stage with ``reparam_optimizer="gauss-newton"`` on the Gauss-Newton engine); None
    when it has no steps to run."""
    if settings.max_steps <= 0:
        return None
    runner = state.runners.coordinates if generator is None else state.runners.generator
    engine = stage_engine(runner, generator, reparam_optimizer)
    return state.add(engine.adam_stage(state.bridge, state.recorder, generator, settings))


class AdamMethod(Method):
    """Adam on the coordinates (projected onto the constraints), then the polish."""

    name = "adam"
    summary = "Adam on the coordinates, then the L-BFGS polish"
    option_groups = {"adam_stage": AdamStageOptions, "adam": AdamCoordinateOptions}
    auto_candidate = True

    def auto_rank(self, profile: SystemProfile) -> Optional[float]:
        """Periodic Systems with constraints holding a molecule of more than ``MACROMOLECULE_ATOMS`` atoms, without
        implicit solvent: well under OpenMM's L-BFGS time on solvated proteins of 3k-85k atoms and lower in energy
        (benchmarks/RESULTS.md#everyday)."""
        suits = (profile.periodic and profile.constrained and profile.largest_molecule > MACROMOLECULE_ATOMS
                 and not profile.implicit_solvent)
        return 1.0 if suits else None

    def ineffective(self, options: MinimizerOptions, given: Collection[str]) -> Dict[str, str]:
        return {**super().ineffective(options, given), **progress_ineffective(options, given)}

    def run(self, state: RunState) -> None:
        run_adam_stage(state, None, coordinate_settings(state.options, "adam", state.deadline, state.tolerance))
