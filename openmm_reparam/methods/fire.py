"""Method ``fire``: FIRE on the coordinates (Bitzek et al., PRL 97, 170201, 2006, as in ASE's ``FIRE``, with the
FIRE 2.0 corrections of Guénolé et al., Comput. Mater. Sci. 175, 109584, 2020), constraints by projection, then
the L-BFGS polish. The iteration runs in the run's FIRE runner (:mod:`openmm_reparam.engines.fire`: Python reference, or
compiled in the plugin, on the host or the device, parity-tested; :mod:`openmm_reparam.engines.runners`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..engines.fire import FireStageSettings
from ..run.options import require, require_ints, require_positive
from .base import Method, RunState


@dataclass
class FireOptions:
    """``fire``: the FIRE stage (unit masses, so time steps are in ps: a step from rest moves dt² F nm).
    Defaults measured on noisy chignolin in OBC2 against OpenMM's L-BFGS (benchmarks/RESULTS.md#everyday)."""
    fire_steps: int = 5000         # max iterations
    fire_dt: float = 3e-4          # initial time step
    fire_dt_max: float = 7e-4      # larger steps outgrow stability on proteins (about 30 resets per run)
    fire_dt_min: float = 1e-5      # floor of the time step after resets
    fire_delay: int = 5            # steps with F·v > 0 before dt may grow (also FIRE 2.0's initial delay)
    fire_alpha: float = 0.25       # velocity mixing after a reset (FIRE 2.0)
    fire_max_uphill: int = 50      # stop ("stuck") after more consecutive F·v <= 0 steps than this
    fire_max_step: float = 0.05    # nm: the largest per-atom displacement of one step
    fire_tolerance: float = 0.5    # the stage stops at this x the tolerance, leaving the polish little to do

    def __post_init__(self) -> None:
        require_ints(self, ("fire_steps", "fire_delay", "fire_max_uphill"))
        require_positive(self, ("fire_dt", "fire_dt_max", "fire_dt_min", "fire_alpha", "fire_max_step",
                                "fire_tolerance"))
        require(self.fire_dt_min <= self.fire_dt <= self.fire_dt_max,
                "FIRE needs fire_dt_min <= fire_dt <= fire_dt_max")
        require(self.fire_alpha < 1, f"fire_alpha must be < 1, got {self.fire_alpha}")

    def stage_settings(self, deadline: Optional[float]) -> FireStageSettings:
        """The stage's settings; FIRE's growth and shrink factors are the papers' (1.1, 0.5, 0.99)."""
        return FireStageSettings(
            name="fire", max_steps=self.fire_steps, dt=self.fire_dt, dt_max=self.fire_dt_max,
            dt_min=self.fire_dt_min, n_delay=self.fire_delay, f_inc=1.1, f_dec=0.5, alpha_start=self.fire_alpha,
            f_alpha=0.99, max_uphill=self.fire_max_uphill, max_step=self.fire_max_step,
            tolerance_factor=self.fire_tolerance, initial_delay=True, deadline=deadline)


class FireMethod(Method):
    """FIRE on the coordinates, then the polish."""

    name = "fire"
    summary = "FIRE 2.0 on the coordinates (constraints by projection), then the L-BFGS polish"
    option_groups = {"fire": FireOptions}

    def run(self, state: RunState) -> None:
        settings = state.options.fire.stage_settings(state.deadline)
        state.add(state.runners.fire(state.bridge, state.recorder, state.tolerance, settings))
